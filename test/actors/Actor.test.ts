import { Effect, Either, Exit, Fiber, Scope, TestClock } from "effect"
import { describe, expect, it } from "@effect/vitest"
import type { ActorSpec } from "../../actors/kernel/Actor.js"
import { makeActor } from "../../actors/kernel/Actor.js"
import { makeActorSystem } from "../../actors/kernel/ActorSystem.js"
import { ActorStopped, ActorTimeout } from "../../actors/kernel/errors.js"
import type { EventStoreShape } from "../../infra/eventstore/EventStore.js"
import { EventStore, WrongExpectedRevision } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import type { BankCommand, BankError, BankEvent, BankState } from "./bank.js"
import { AlreadyOpen, bank, BankEvent as BankEventSchema, deposit, InsufficientFunds, NotOpen, open, Opened, withdraw } from "./bank.js"
import { instrument, readBack } from "./support.js"

const STREAM = "account-1"

const makeBank = (
  store: EventStoreShape,
  overrides: Partial<ActorSpec<BankState, BankCommand, BankEvent, BankError>> = {}
) =>
  makeActor({ stream: STREAM, decider: bank, eventSchema: BankEventSchema, ...overrides }).pipe(
    Effect.provideService(EventStore, store)
  )

/** Let other fibers run until `done()` holds (no clock involved). */
const until = (done: () => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000 && !done(); i++) yield* Effect.yieldNow()
    expect(done()).toBe(true)
  })

const settle = Effect.repeatN(Effect.yieldNow(), 50)

describe("actor kernel", () => {
  it.scoped("ask replies with the command's events, the new state and the revision; the store holds them", () =>
    Effect.gen(function* () {
      const store = yield* MemoryEventStore.make
      const actor = yield* makeBank(store, { metadata: (command) => ({ command: command._tag }) })

      const opened = yield* actor.ask(open())
      expect(opened.events).toEqual([new Opened({ owner: "alice" })])
      expect(opened.revision).toBe(0)
      const deposited = yield* actor.ask(deposit("d1", 5n))
      expect(deposited.state).toEqual({ owner: "alice", balance: 5n, moves: 1 })
      expect(deposited.revision).toBe(1)
      expect(yield* actor.state).toEqual(deposited.state)
      expect(yield* actor.revision).toBe(1)

      // type = _tag, data = the encoded rest, deterministic ids, metadata per command
      const recorded = yield* store.readStream(STREAM)
      expect(recorded.map(({ data, id, metadata, type }) => ({ type, data, id, metadata }))).toEqual([
        { type: "Opened", data: { owner: "alice" }, id: "account-1:0", metadata: { command: "Open" } },
        { type: "Deposited", data: { ref: "d1", amount: "5" }, id: "account-1:1", metadata: { command: "Deposit" } }
      ])
    }))

  it.scoped("a command with two events gets both, at consecutive revisions", () =>
    Effect.gen(function* () {
      const store = yield* MemoryEventStore.make
      const actor = yield* makeBank(store, { eventId: (command, index) => `${command._tag}-${index}` })
      const reply = yield* actor.ask({ _tag: "OpenWith", owner: "bob", ref: "first", amount: 9n })
      expect(reply.events.map((event) => event._tag)).toEqual(["Opened", "Deposited"])
      expect(reply.revision).toBe(1)
      expect((yield* store.readStream(STREAM)).map((event) => event.id)).toEqual(["OpenWith-0", "OpenWith-1"])
    }))

  it.scoped("a decide error is typed and appends nothing", () =>
    Effect.gen(function* () {
      const inner = yield* MemoryEventStore.make
      const store = instrument(inner)
      const actor = yield* makeBank(store.store)

      expect(yield* Effect.flip(actor.ask(withdraw("w0", 1n)))).toEqual(new NotOpen())
      yield* actor.ask(open())
      yield* actor.ask(deposit("d1", 3n))
      const refused = yield* Effect.flip(actor.ask(withdraw("w1", 10n)))
      expect(refused).toBeInstanceOf(InsufficientFunds)
      expect(refused).toMatchObject({ need: 10n, have: 3n })
      expect(yield* Effect.flip(actor.ask(open("mallory")))).toEqual(new AlreadyOpen({ owner: "alice" }))
      const have = yield* actor.ask(withdraw("w2", 10n)).pipe(Effect.catchTag("InsufficientFunds", (e) => Effect.succeed(e.have)))
      expect(have).toBe(3n)

      expect(store.appends(STREAM)).toBe(2)
      expect((yield* inner.readStream(STREAM)).length).toBe(2)
      expect(yield* actor.revision).toBe(1)
    }))

  it.scoped("concurrent asks are group-committed: fewer appends, every asker answered, revisions gap-free", () =>
    Effect.gen(function* () {
      const inner = yield* MemoryEventStore.make
      const store = instrument(inner)
      const actor = yield* makeBank(store.store)
      yield* actor.ask(open())

      const askers = 300
      const outcomes = yield* Effect.forEach(
        Array.from({ length: askers }, (_, i) => i),
        (i) => Effect.either(actor.ask(i % 10 === 9 ? withdraw(`w${i}`, 1_000_000n) : deposit(`d${i}`, 1n))),
        { concurrency: "unbounded" }
      )
      const replies = outcomes.flatMap((outcome) => (Either.isRight(outcome) ? [outcome.right] : []))
      const refused = outcomes.flatMap((outcome) => (Either.isLeft(outcome) ? [outcome.left] : []))
      expect(replies.length).toBe(270)
      expect(refused.every((error) => error instanceof InsufficientFunds)).toBe(true)

      // 300 asks, 1 + a few appends (the first batch may be taken before all arrive)
      expect(store.appends(STREAM)).toBeLessThanOrEqual(5)
      // each reply: its own revision, and the state right after its own event
      expect(new Set(replies.map((reply) => reply.revision)).size).toBe(270)
      for (const reply of replies) {
        expect(reply.events.length).toBe(1)
        expect(reply.state.moves).toBe(reply.revision)
        expect(reply.state.balance).toBe(BigInt(reply.revision))
      }
      const back = yield* readBack(inner, STREAM)
      expect(back.recorded.length).toBe(271)
      expect(yield* actor.state).toEqual(back.state)
    }))

  it.scoped("askAll sends many commands as one message: one append, one result per command, in order", () =>
    Effect.gen(function* () {
      const inner = yield* MemoryEventStore.make
      const store = instrument(inner)
      const actor = yield* makeBank(store.store)
      const results = yield* actor.askAll([
        open(),
        deposit("a", 2n),
        withdraw("b", 5n),
        { _tag: "OpenWith", owner: "bob", ref: "x", amount: 1n },
        deposit("c", 1n)
      ])
      expect(results.map((result) => (Either.isRight(result) ? result.right.revision : result.left._tag))).toEqual([
        0,
        1,
        "InsufficientFunds",
        "AlreadyOpen",
        2
      ])
      expect(store.appends(STREAM)).toBe(1)
      expect(yield* actor.askAll([])).toEqual([])
    }))

  it.scoped("a full mailbox suspends tell (back-pressure) until the actor catches up", () =>
    Effect.gen(function* () {
      const inner = yield* MemoryEventStore.make
      const gate = yield* Effect.makeLatch(false)
      const store = instrument(inner, { gate })
      const actor = yield* makeBank(store.store, { mailboxCapacity: 2 })

      yield* actor.tell(open())
      yield* until(() => store.appends(STREAM) === 1) // taken, stuck in its append
      yield* actor.tell(deposit("d1"))
      yield* actor.tell(deposit("d2")) // the mailbox is now full
      const blocked = yield* Effect.fork(actor.tell(deposit("d3")))
      yield* settle
      expect(blocked.unsafePoll()).toBeNull()

      yield* gate.open
      yield* Fiber.join(blocked)
      const last = yield* actor.ask(deposit("d4"))
      expect(last.state.moves).toBe(4)
    }))

  it.scoped("ask times out with a typed error; a command still queued is withdrawn and never runs", () =>
    Effect.gen(function* () {
      const inner = yield* MemoryEventStore.make
      const gate = yield* Effect.makeLatch(false)
      const store = instrument(inner, { gate })
      const actor = yield* makeBank(store.store)

      const inFlight = yield* Effect.fork(actor.ask(open(), { timeout: "1 second" }))
      yield* until(() => store.appends(STREAM) === 1)
      const queued = yield* Effect.fork(actor.ask(deposit("late"), { timeout: "1 second" }))
      yield* settle
      yield* TestClock.adjust("1 second")

      expect(yield* Effect.flip(Fiber.join(inFlight))).toEqual(new ActorTimeout({ stream: STREAM, timeoutMillis: 1000, started: true }))
      expect(yield* Effect.flip(Fiber.join(queued))).toEqual(new ActorTimeout({ stream: STREAM, timeoutMillis: 1000, started: false }))

      yield* gate.open
      const after = yield* actor.ask(deposit("after"))
      // the in-flight Open committed anyway; "late" never ran
      expect(after.revision).toBe(1)
      expect([...(yield* readBack(inner, STREAM)).refs]).toEqual(["after"])
    }))

  it.scoped("an ask waiting for room in a full mailbox times out too, and its command never runs", () =>
    Effect.gen(function* () {
      const inner = yield* MemoryEventStore.make
      const gate = yield* Effect.makeLatch(false)
      const store = instrument(inner, { gate })
      const actor = yield* makeBank(store.store, { mailboxCapacity: 1 })

      yield* actor.tell(open())
      yield* until(() => store.appends(STREAM) === 1)
      yield* actor.tell(deposit("fills"))
      const blocked = yield* Effect.fork(actor.ask(deposit("blocked"), { timeout: "1 second" }))
      yield* settle
      yield* TestClock.adjust("1 second")
      expect(yield* Effect.flip(Fiber.join(blocked))).toEqual(new ActorTimeout({ stream: STREAM, timeoutMillis: 1000, started: false }))

      yield* gate.open
      yield* actor.ask(deposit("after"))
      expect([...(yield* readBack(inner, STREAM)).refs]).toEqual(["fills", "after"])
    }))

  it.scoped("an interrupted asker's queued command is withdrawn", () =>
    Effect.gen(function* () {
      const inner = yield* MemoryEventStore.make
      const gate = yield* Effect.makeLatch(false)
      const store = instrument(inner, { gate })
      const actor = yield* makeBank(store.store)

      yield* actor.tell(open())
      yield* until(() => store.appends(STREAM) === 1)
      const asker = yield* Effect.fork(actor.ask(deposit("gone")))
      yield* settle
      yield* Fiber.interrupt(asker)
      yield* gate.open
      const after = yield* actor.ask(deposit("kept"))
      expect(after.revision).toBe(1)
      expect([...(yield* readBack(inner, STREAM)).refs]).toEqual(["kept"])
    }))

  it.scoped("closing the actor's scope fails every waiting asker with ActorStopped; later sends too", () =>
    Effect.gen(function* () {
      const inner = yield* MemoryEventStore.make
      const gate = yield* Effect.makeLatch(false)
      const store = instrument(inner, { gate })
      const scope = yield* Scope.make()
      const actor = yield* makeBank(store.store).pipe(Scope.extend(scope))

      const inFlight = yield* Effect.fork(actor.ask(open()))
      yield* until(() => store.appends(STREAM) === 1)
      const queued = yield* Effect.fork(actor.ask(deposit("q")))
      yield* settle
      yield* Scope.close(scope, Exit.void)

      expect(yield* Effect.flip(Fiber.join(inFlight))).toEqual(new ActorStopped({ stream: STREAM, started: true }))
      expect(yield* Effect.flip(Fiber.join(queued))).toEqual(new ActorStopped({ stream: STREAM, started: false }))
      expect(yield* Effect.flip(actor.tell(deposit("x")))).toEqual(new ActorStopped({ stream: STREAM, started: false }))
      expect(yield* Effect.flip(actor.ask(deposit("y")))).toBeInstanceOf(ActorStopped)
    }))

  it.scoped("another writer moves the stream: the batch fails with WrongExpectedRevision, the state catches up", () =>
    Effect.gen(function* () {
      const store = yield* MemoryEventStore.make
      const actor = yield* makeBank(store)
      yield* actor.ask(open())
      yield* store.append(STREAM, [{ id: "foreign", type: "Deposited", data: { ref: "foreign", amount: "7" } }], 0)

      const conflict = yield* Effect.flip(actor.ask(deposit("mine", 1n)))
      expect(conflict).toBeInstanceOf(WrongExpectedRevision)
      const retried = yield* actor.ask(deposit("mine", 1n))
      expect(retried.revision).toBe(2)
      expect(retried.state.balance).toBe(8n)
      expect(yield* actor.state).toEqual((yield* readBack(store, STREAM)).state)
    }))

  it.scoped("state and revision wait for the first replay", () =>
    Effect.gen(function* () {
      const store = yield* MemoryEventStore.make
      yield* store.append(STREAM, [{ id: "o", type: "Opened", data: { owner: "zed" } }], "no_stream")
      const actor = yield* makeBank(store)
      expect(yield* actor.state).toEqual({ owner: "zed", balance: 0n, moves: 0 })
      expect(yield* actor.revision).toBe(0)
    }))

  it.scoped("ActorSystem makes one actor per stream on first use and keeps it", () =>
    Effect.gen(function* () {
      const store = yield* MemoryEventStore.make
      const system = yield* makeActorSystem((stream) => ({ stream, decider: bank, eventSchema: BankEventSchema })).pipe(
        Effect.provideService(EventStore, store)
      )
      const [a, again] = yield* Effect.all([system.get("acct-a"), system.get("acct-a")], { concurrency: "unbounded" })
      expect(a).toBe(again)
      yield* a.ask(open("a"))
      const c = yield* system.get("acct-c")
      yield* c.ask(open("c"))
      expect(yield* system.streams).toEqual(["acct-a", "acct-c"])
      expect((yield* (yield* system.get("acct-a")).state).owner).toBe("a")
      expect((yield* store.heads).map((head) => head.stream)).toEqual(["acct-a", "acct-c"])
    }))

  it.scoped("ActorSystem releases an actor: it stops, and a later get replays its stream into a new one", () =>
    Effect.gen(function* () {
      const store = yield* MemoryEventStore.make
      const system = yield* makeActorSystem((stream) => ({ stream, decider: bank, eventSchema: BankEventSchema })).pipe(
        Effect.provideService(EventStore, store)
      )
      const first = yield* system.get("acct-r")
      yield* first.ask(open("r"))
      yield* system.release("acct-r")
      expect(yield* system.streams).toEqual([])
      const stopped = yield* first.ask(open("again")).pipe(Effect.flip)
      expect(stopped._tag).toBe("ActorStopped")
      const second = yield* system.get("acct-r")
      expect(second).not.toBe(first)
      expect((yield* second.state).owner).toBe("r")
      expect(yield* second.revision).toBe(0)
      yield* system.release("never-made") // releasing an unknown stream is a no-op
    }))
})

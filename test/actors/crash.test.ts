/**
 * Killing actors in the middle of work, with 100+ askers in flight. Every
 * scenario ends with the same checks:
 * - every asker got a reply or a typed failure (a defect or a hang fails the
 *   test; the ask timeout is far above the test's duration);
 * - the actor restarted and serves again;
 * - its state equals fold(evolve, initialState, the events read back);
 * - the stream's revisions are gap-free and no event appears twice;
 * - every acknowledged command's event is there, and no refused one's.
 */
import { Duration, Effect, Either, HashMap, Logger, Option } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { makeActor } from "../../actors/kernel/Actor.js"
import { restartDelay } from "../../actors/kernel/Supervisor.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import type { BankCommand } from "./bank.js"
import { bank, BankEvent, deposit, open, withdraw } from "./bank.js"
import type { Fault, InstrumentOptions } from "./support.js"
import { instrument, quickRestart, readBack } from "./support.js"
import { mulberry32 } from "../support/mulberry32.js"

const STREAM = "account-crash"

interface LogLine {
  readonly message: string
  readonly actor: string | undefined
}

/** Deposits, with every 7th command a withdrawal that is refused. */
const mixed = (i: number): BankCommand => (i % 7 === 6 ? withdraw(`w${i}`, 1_000_000n) : deposit(`d${i}`, 1n))

const refOf = (command: BankCommand): string | undefined => ("ref" in command ? command.ref : undefined)

const run = (options: InstrumentOptions & { readonly askers?: number; readonly command?: (i: number) => BankCommand }) =>
  Effect.gen(function* () {
    const inner = yield* MemoryEventStore.make
    const store = instrument(inner, options)
    const actor = yield* makeActor({
      stream: STREAM,
      decider: bank,
      eventSchema: BankEvent,
      mailboxCapacity: 8, // small batches, so a crash hits some askers and spares others
      askTimeout: "10 seconds", // a hang shows up as ActorTimeout
      restart: quickRestart
    }).pipe(Effect.provideService(EventStore, store.store))
    yield* actor.ask(open())

    const commands = Array.from({ length: options.askers ?? 100 }, (_, i) => (options.command ?? mixed)(i))
    const outcomes = yield* Effect.forEach(commands, (command) => Effect.either(actor.ask(command)), {
      concurrency: "unbounded"
    })
    // Served again after the crashes.
    const final = yield* actor.ask(deposit("final"))

    const back = yield* readBack(inner, STREAM)
    expect(yield* actor.state).toEqual(back.state)
    expect(final.revision).toBe(back.recorded.length - 1)
    const tags = new Map<string, number>()
    outcomes.forEach((outcome, i) => {
      const ref = refOf(commands[i]!)
      if (Either.isRight(outcome)) {
        if (ref !== undefined) expect(back.refs.has(ref)).toBe(true)
        return
      }
      const tag = outcome.left._tag
      tags.set(tag, (tags.get(tag) ?? 0) + 1)
      expect(["ActorCrashed", "EventStoreError", "InsufficientFunds"]).toContain(tag)
      // Refused, or failed before any commit: not in the stream.
      if (tag !== "ActorCrashed" && ref !== undefined) expect(back.refs.has(ref)).toBe(false)
    })
    const crashedRefs = outcomes.flatMap((outcome, i) => {
      const ref = refOf(commands[i]!)
      return Either.isLeft(outcome) && outcome.left._tag === "ActorCrashed" && ref !== undefined ? [ref] : []
    })
    return {
      tags,
      acknowledged: outcomes.filter(Either.isRight).length,
      crashedRefs,
      back,
      restarts: yield* actor.restarts,
      store
    }
  })

/** Runs `body` with logs captured instead of printed. */
const withLogs = <A, E, R>(body: (logs: Array<LogLine>) => Effect.Effect<A, E, R>) => {
  const logs: Array<LogLine> = []
  const capture = Logger.make(({ annotations, message }) => {
    const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
    logs.push({ message: text, actor: Option.getOrUndefined(HashMap.get(annotations, "actor")) as string | undefined })
  })
  return body(logs).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
}

const faultsAt =
  (faults: Record<number, Fault>) =>
  (n: number, stream: string): Fault | undefined =>
    stream === STREAM ? faults[n] : undefined

describe("actor supervision", () => {
  it.scopedLive("the store dies before a commit: in-flight askers get ActorCrashed, the actor restarts, nothing is lost", () =>
    withLogs((logs) =>
      Effect.gen(function* () {
        const result = yield* run({ faultAt: faultsAt({ 3: "die", 6: "die" }) })
        expect(result.restarts).toBe(2)
        expect(result.tags.get("ActorCrashed")).toBeGreaterThan(0)
        expect(result.acknowledged).toBeGreaterThan(50)
        for (const ref of result.crashedRefs) expect(result.back.refs.has(ref)).toBe(false)
        // restarts are logged with the actor's stream name
        const crashes = logs.filter((line) => line.message.includes("crashed"))
        expect(crashes.length).toBe(2)
        expect(crashes.every((line) => line.actor === STREAM && line.message.includes(STREAM))).toBe(true)
      })
    ))

  it.scopedLive("the store commits, then dies before the reply: the replay has the batch exactly once", () =>
    withLogs(() =>
      Effect.gen(function* () {
        const result = yield* run({ faultAt: faultsAt({ 3: "dieAfterCommit", 6: "dieAfterCommit" }) })
        expect(result.restarts).toBe(2)
        expect(result.crashedRefs.length).toBeGreaterThan(0)
        // deposits committed although their askers heard "crashed" (withdrawals were refused)
        const deposits = result.crashedRefs.filter((ref) => ref.startsWith("d"))
        expect(deposits.length).toBeGreaterThan(0)
        for (const ref of deposits) expect(result.back.refs.has(ref)).toBe(true)
      })
    ))

  it.scopedLive("a poison command (decide throws) kills the actor; the rest of the mailbox is served after the restart", () =>
    withLogs(() =>
      Effect.gen(function* () {
        const result = yield* run({ command: (i) => (i === 20 || i === 60 ? { _tag: "Poison" } : mixed(i)) })
        expect(result.restarts).toBe(2)
        expect(result.tags.get("ActorCrashed")).toBeGreaterThanOrEqual(2)
        for (const ref of result.crashedRefs) expect(result.back.refs.has(ref)).toBe(false)
      })
    ))

  it.scopedLive("the actor's fiber is interrupted, by itself and from another fiber, during an append", () =>
    withLogs(() =>
      Effect.gen(function* () {
        const result = yield* run({ faultAt: faultsAt({ 4: "interrupt", 8: "interruptFromOutside" }) })
        expect(result.restarts).toBe(2)
        expect(result.tags.get("ActorCrashed")).toBeGreaterThan(0)
        for (const ref of result.crashedRefs) expect(result.back.refs.has(ref)).toBe(false)
      })
    ))

  it.scopedLive("a typed store failure fails its batch with the store's error, without a restart", () =>
    withLogs(() =>
      Effect.gen(function* () {
        const result = yield* run({ faultAt: faultsAt({ 3: "fail" }) })
        expect(result.restarts).toBe(0)
        expect(result.tags.get("EventStoreError")).toBeGreaterThan(0)
      })
    ))

  it.scopedLive("the replay itself fails twice: the supervisor backs off, then queued askers are served", () =>
    withLogs((logs) =>
      Effect.gen(function* () {
        const result = yield* run({ readFailsAt: (n) => n <= 2, askers: 20 })
        expect(result.restarts).toBe(2)
        expect(result.acknowledged).toBe(20 - 2) // i = 6 and 13 are refused withdrawals
        expect(logs.filter((line) => line.message.includes("crashed")).length).toBe(2)
      })
    ))

  it.scopedLive("soak: random faults of every kind on 20% of appends, 2% poison, 400 askers", () =>
    withLogs(() =>
      Effect.gen(function* () {
        for (const seed of [1, 2, 3]) {
          const random = mulberry32(seed)
          const kinds: ReadonlyArray<Fault> = ["die", "dieAfterCommit", "interrupt", "interruptFromOutside", "fail"]
          const result = yield* run({
            askers: 400,
            faultAt: (_, stream) => (stream === STREAM && random() < 0.2 ? kinds[Math.floor(random() * kinds.length)] : undefined),
            command: (i) => (random() < 0.02 ? { _tag: "Poison" } : mixed(i))
          })
          expect(result.acknowledged).toBeGreaterThan(0)
          expect(result.restarts).toBeGreaterThan(0)
        }
      })
    ))
})

describe("restart back-off", () => {
  it("doubles from minDelay and is capped at maxDelay", () => {
    const policy = { minDelay: "10 millis", maxDelay: "1 second" } as const
    expect([1, 2, 3, 4, 8, 100, 10_000].map((n) => Duration.toMillis(restartDelay(policy, n)))).toEqual([
      10, 20, 40, 80, 1000, 1000, 1000
    ])
  })
})

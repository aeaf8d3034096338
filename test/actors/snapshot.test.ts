import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"
import { describe, expect, it } from "@effect/vitest"
import type { ActorSpec } from "../../actors/kernel/Actor.js"
import { makeActor } from "../../actors/kernel/Actor.js"
import { snapshotStream } from "../../actors/kernel/Snapshot.js"
import type { EventStoreShape } from "../../infra/eventstore/EventStore.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { SqliteEventStore } from "../../infra/eventstore/SqliteEventStore.js"
import type { BankCommand, BankError, BankEvent as BankEventType, BankState as BankStateType } from "./bank.js"
import { bank, BankEvent, BankState, deposit, open, withdraw } from "./bank.js"
import { instrument, readBack } from "./support.js"

const STREAM = "account-snap"

const spec = (
  overrides: Partial<ActorSpec<BankStateType, BankCommand, BankEventType, BankError>> = {}
): ActorSpec<BankStateType, BankCommand, BankEventType, BankError> => ({
  stream: STREAM,
  decider: bank,
  eventSchema: BankEvent,
  snapshot: { every: 10, schema: BankState },
  ...overrides
})

const onStore = (store: EventStoreShape, overrides?: Parameters<typeof spec>[0]) =>
  makeActor(spec(overrides)).pipe(Effect.provideService(EventStore, store))

/** Open the account, then `deposits` deposits, one ask each (one batch each). */
const fill = (store: EventStoreShape, deposits: number) =>
  Effect.gen(function* () {
    const actor = yield* onStore(store)
    yield* actor.ask(open())
    for (let i = 0; i < deposits; i++) yield* actor.ask(deposit(`d${i}`, BigInt(i)))
    return { state: yield* actor.state, revision: yield* actor.revision }
  }).pipe(Effect.scoped)

describe("actor snapshots", () => {
  it.scoped("a snapshot every N events; a restart loads the newest and reads only the tail", () =>
    Effect.gen(function* () {
      const storage = MemoryEventStore.makeStorage()
      const before = yield* fill(yield* MemoryEventStore.makeWith(storage), 24) // revisions 0..24

      const snapshots = yield* (yield* MemoryEventStore.makeWith(storage)).readStream(snapshotStream(STREAM))
      expect(snapshots.map((event) => (event.data as { revision: number }).revision)).toEqual([9, 19])

      const reopened = instrument(yield* MemoryEventStore.makeWith(storage))
      const actor = yield* onStore(reopened.store)
      expect(yield* actor.state).toEqual(before.state)
      expect(yield* actor.revision).toBe(24)
      expect(reopened.eventsRead(STREAM)).toBe(5) // 20..24
      // and it goes on from there
      const next = yield* actor.ask(deposit("more", 1n))
      expect(next.revision).toBe(25)
      expect(next.state).toEqual((yield* readBack(reopened.store, STREAM)).state)
    }))

  it.scoped("a snapshot that does not decode is ignored: replay from 0 gives the same state", () =>
    Effect.gen(function* () {
      const storage = MemoryEventStore.makeStorage()
      const store = yield* MemoryEventStore.makeWith(storage)
      const before = yield* fill(store, 14)
      yield* store.append(snapshotStream(STREAM), [{ id: "junk", type: "Snapshot", data: { revision: 12, state: { nonsense: true } } }], "any")

      const reopened = instrument(yield* MemoryEventStore.makeWith(storage))
      const actor = yield* onStore(reopened.store)
      expect(yield* actor.state).toEqual(before.state)
      expect(reopened.eventsRead(STREAM)).toBe(15)
    }))

  it.scoped("a snapshot past the stream's head is ignored", () =>
    Effect.gen(function* () {
      const storage = MemoryEventStore.makeStorage()
      const store = yield* MemoryEventStore.makeWith(storage)
      const before = yield* fill(store, 3)
      yield* store.append(
        snapshotStream(STREAM),
        [{ id: "ahead", type: "Snapshot", data: { revision: 99, state: { owner: "eve", balance: "1000", moves: 99 } } }],
        "any"
      )
      const actor = yield* onStore(yield* MemoryEventStore.makeWith(storage))
      expect(yield* actor.state).toEqual(before.state)
      expect(yield* actor.revision).toBe(3)
    }))

  it.scoped("restart after close on the same SQLite file gives the same state, with and without snapshots", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "topai-actor-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const sqlite = SqliteEventStore.layer({ filename: join(dir, "events.db") })
      const life = <A, E>(body: Effect.Effect<A, E, EventStore | Scope.Scope>) => body.pipe(Effect.provide(sqlite), Effect.scoped)

      const first = yield* life(
        Effect.gen(function* () {
          const actor = yield* makeActor(spec({ snapshot: { every: 7, schema: BankState } }))
          yield* actor.ask(open())
          // concurrent: group commits on disk, some refused
          yield* Effect.forEach(
            Array.from({ length: 60 }, (_, i) => i),
            (i) => Effect.either(actor.ask(i % 5 === 4 ? withdraw(`w${i}`, 1_000n) : deposit(`d${i}`, 3n))),
            { concurrency: "unbounded" }
          )
          return { state: yield* actor.state, revision: yield* actor.revision }
        })
      )
      expect(first.revision).toBe(48)

      const withSnapshots = yield* life(
        Effect.gen(function* () {
          const actor = yield* makeActor(spec({ snapshot: { every: 7, schema: BankState } }))
          return { state: yield* actor.state, revision: yield* actor.revision }
        })
      )
      expect(withSnapshots).toEqual(first)

      const fromEvents = yield* life(
        Effect.gen(function* () {
          const actor = yield* makeActor(spec({ snapshot: undefined }))
          const state = yield* actor.state
          expect(state).toEqual((yield* readBack(yield* EventStore, STREAM)).state)
          return { state, revision: yield* actor.revision }
        })
      )
      expect(fromEvents).toEqual(first)
    }))
})

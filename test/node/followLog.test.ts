import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream, TestClock } from "effect"
import { EventStore, EventStoreError } from "../../infra/eventstore/EventStore.js"
import type { RecordedEvent } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { followLog } from "../../src/node/followLog.js"

/** A real memory store whose first subscription breaks after `after` events. */
const breakingStore = (after: number) =>
  Effect.gen(function* () {
    const real = yield* MemoryEventStore.make
    let subscriptions = 0
    return {
      store: {
        ...real,
        subscribeAll: (from?: number) => {
          subscriptions += 1
          const stream = real.subscribeAll(from)
          return subscriptions === 1
            ? stream.pipe(Stream.take(after), Stream.concat(Stream.fail(new EventStoreError({ operation: "subscribe", detail: "connection lost" }))))
            : stream
        }
      },
      subscriptions: () => subscriptions
    }
  })

const append = (store: typeof EventStore.Service, n: number, offset: number) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i + offset), (i) =>
    store.append(`s-${i % 3}`, [{ id: `e${i}`, type: "T", data: { i } }], "any")
  )

describe("followLog", () => {
  it.scoped("resumes right after the last applied event when the subscription fails: every event once, in order", () =>
    Effect.gen(function* () {
      const { store, subscriptions } = yield* breakingStore(4)
      const seen: Array<number> = []
      yield* append(store, 6, 0)
      yield* followLog("test", (e: RecordedEvent) => Effect.sync(() => void seen.push(e.position))).pipe(
        Effect.provide(Layer.succeed(EventStore, store))
      )
      yield* TestClock.adjust("1 second") // the back-off before resubscribing
      yield* append(store, 4, 6)
      yield* TestClock.adjust("1 second")
      // Let the follower's fiber catch up (bounded: it either gets there or the assertion fails).
      for (let i = 0; i < 1_000 && seen.length < 10; i++) yield* Effect.yieldNow()
      expect(subscriptions()).toBe(2)
      expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    }))
})

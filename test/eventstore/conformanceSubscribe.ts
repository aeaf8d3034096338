/**
 * Conformance: subscriptions (RELIABILITY items 4 and 5). Catch-up then
 * live, strictly after a checkpoint, in order, with no gap and no duplicate,
 * while writers append concurrently, through many disconnect/resume cycles
 * and a slow consumer.
 */
import { Chunk, Effect, Fiber, Random, Schedule, Stream } from "effect"
import { expect, it } from "@effect/vitest"
import type { EventStoreShape, RecordedEvent } from "../../infra/eventstore/EventStore.js"
import { SUBSCRIPTION_PAGE_SIZE } from "../../infra/eventstore/subscription.js"
import type { MakeStore } from "./conformanceKit.js"
import { TEST_TIMEOUT_MS, event, events, expectConsecutive, range } from "./conformanceKit.js"

/** Bound on waiting for a subscription to deliver what was written. */
const DELIVERY_TIMEOUT = "10 seconds"
/** How often a test checks whether its subscribers have everything. */
const POLL_INTERVAL = "2 millis"
/** Seed for the random batch sizes, pauses and disconnect points. */
const SEED = 20_240_611

/** Events written before subscribing: more than two catch-up pages. */
const BACKLOG = SUBSCRIPTION_PAGE_SIZE * 2 + 500
/** Concurrent writers while subscribers run, and appends each makes. */
const LIVE_WRITERS = 4
const LIVE_APPENDS = 150
const MAX_BATCH = 4
/** Writer w's k-th append has this many events, so the total is known in advance. */
const batchSize = (w: number, k: number) => ((w + k) % MAX_BATCH) + 1
const LIVE_TOTAL = range(LIVE_WRITERS)
  .flatMap((w) => range(LIVE_APPENDS).map((k) => batchSize(w, k)))
  .reduce((a, b) => a + b, 0)
const MAX_PAUSE_MS = 2
/** Longest run a reconnecting subscriber reads before it drops. */
const MAX_EVENTS_PER_CONNECTION = 60

/** The long run of item 5: a log this big, read through at least this many reconnects. */
const SOAK_EVENTS = 100_000
const SOAK_RECONNECTS_MIN = 1_000
const SOAK_WRITE_BATCH = 100
/** Most events read per connection: a mean of ~75 gives ~1,300 reconnects over the log. */
const SOAK_TAKE_MAX = 150

const seeded = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.withRandom(effect, Random.make(SEED))

/** Writers appending batches to a few streams, with random short pauses; LIVE_TOTAL events in all. */
const liveWriters = (store: EventStoreShape, prefix: string) =>
  Effect.forEach(
    range(LIVE_WRITERS),
    (w) =>
      Effect.gen(function* () {
        for (const k of range(LIVE_APPENDS)) {
          yield* store.append(`${prefix}-${w % 2}`, events(`${prefix}-w${w}-a${k}`, batchSize(w, k)), "any")
          const pause = yield* Random.nextIntBetween(0, MAX_PAUSE_MS + 1)
          if (pause > 0) yield* Effect.sleep(pause)
          else yield* Effect.yieldNow()
        }
      }),
    { concurrency: "unbounded", discard: true }
  )

const collect = (stream: Stream.Stream<RecordedEvent, unknown>, count: number) =>
  stream.pipe(Stream.take(count), Stream.runCollect, Effect.map(Chunk.toReadonlyArray), Effect.timeout(DELIVERY_TIMEOUT))

/** Waits (bounded) until the condition holds. */
const eventually = (condition: () => boolean) =>
  Effect.sync(condition).pipe(
    Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced(POLL_INTERVAL) }),
    Effect.timeout(DELIVERY_TIMEOUT)
  )

const writeBacklog = (store: EventStoreShape) =>
  Effect.forEach(range(BACKLOG / 100), (k) => store.append(`backlog-${k % 2}`, events(`bl${k}`, 100), "any"), {
    discard: true
  })

export const subscribeConformance = (makeStore: MakeStore) => {
  it.scopedLive(
    "subscribeAll: catches up over several pages, then goes live with concurrent writers, no gap, no duplicate",
    () =>
      seeded(
        Effect.gen(function* () {
          const store = yield* (yield* makeStore()).open
          yield* writeBacklog(store)
          const received: Array<RecordedEvent> = []
          const subscriber = yield* store.subscribeAll().pipe(
            Stream.runForEach((e) => Effect.sync(() => received.push(e))),
            Effect.fork
          )
          yield* liveWriters(store, "live")
          yield* eventually(() => received.length >= BACKLOG + LIVE_TOTAL)
          yield* Fiber.interrupt(subscriber)
          expectConsecutive(received.map((e) => e.position), 1, BACKLOG + LIVE_TOTAL)
          expect(received).toEqual(yield* store.readAll())
        })
      ),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "subscribeAll resumes strictly after a checkpoint, through many disconnects, while writers append",
    () =>
      seeded(
        Effect.gen(function* () {
          const store = yield* (yield* makeStore()).open
          yield* writeBacklog(store)
          const writers = yield* Effect.fork(liveWriters(store, "resume"))
          const received: Array<RecordedEvent> = []
          let checkpoint = 0
          let reconnects = 0
          const total = BACKLOG + LIVE_TOTAL
          while (checkpoint < total) {
            // Often more than is written yet, so the subscriber also waits live.
            const take = yield* Random.nextIntBetween(1, MAX_EVENTS_PER_CONNECTION + 1)
            const batch = yield* collect(store.subscribeAll(checkpoint), Math.min(take, total - checkpoint))
            expect(batch[0]?.position).toBe(checkpoint + 1)
            received.push(...batch)
            checkpoint = batch[batch.length - 1]!.position
            reconnects++
          }
          yield* Fiber.join(writers)
          expect(reconnects).toBeGreaterThan(10)
          expectConsecutive(received.map((e) => e.position), 1, total)
          expect(yield* store.lastPosition).toBe(total)
        })
      ),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "subscribeAll with a slow consumer and several subscribers: each sees every event once, in order",
    () =>
      seeded(
        Effect.gen(function* () {
          const store = yield* (yield* makeStore()).open
          yield* store.append("early", events("early", 50), "no_stream")
          const startAfter = [0, 10, 50]
          const subscribers = yield* Effect.forEach(startAfter, (after, k) => {
            const received: Array<RecordedEvent> = []
            const slow = k === 0
            const pause = (e: RecordedEvent) => (slow && e.position % 25 === 0 ? Effect.sleep(5) : Effect.void)
            return store.subscribeAll(after).pipe(
              Stream.runForEach((e) => Effect.sync(() => received.push(e)).pipe(Effect.zipRight(pause(e)))),
              Effect.fork,
              Effect.map((fiber) => ({ fiber, received, after }))
            )
          })
          yield* liveWriters(store, "slow")
          const last = 50 + LIVE_TOTAL
          for (const s of subscribers) {
            yield* eventually(() => s.received.length >= last - s.after)
            yield* Fiber.interrupt(s.fiber)
            expectConsecutive(s.received.map((e) => e.position), s.after + 1, last - s.after)
          }
        })
      ),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "subscribeStream: one stream from a revision, catch-up then live, other streams ignored",
    () =>
      seeded(
        Effect.gen(function* () {
          const store = yield* (yield* makeStore()).open
          const from = 3
          yield* store.append("mine", events("m", 5), "no_stream")
          yield* store.append("other", events("o", 5), "no_stream")
          const subscriber = yield* Effect.fork(collect(store.subscribeStream("mine", from), 2 + 100))
          for (const k of range(100)) {
            yield* store.append(k % 2 === 0 ? "other" : "mine", [event(`live-${k}`)], "any")
            yield* store.append("mine", [event(`mine-live-${k}`)], "any")
            if (k % 10 === 0) yield* Effect.sleep(1)
          }
          const received = yield* Fiber.join(subscriber)
          expect(received.every((e) => e.stream === "mine")).toBe(true)
          expectConsecutive(received.map((e) => e.revision), from, 2 + 100)
          expect(received).toEqual(yield* store.readStream("mine", { from, limit: 2 + 100 }))
          // A stream that does not exist yet: the subscription waits for it.
          const later = yield* Effect.fork(collect(store.subscribeStream("later"), 2))
          yield* Effect.sleep(5)
          yield* store.append("later", events("l", 2), "no_stream")
          expect((yield* Fiber.join(later)).map((e) => e.revision)).toEqual([0, 1])
          // Resuming from the revision after a checkpoint gives the rest, nothing repeated.
          const rest = yield* collect(store.subscribeStream("mine", 50), 10)
          expectConsecutive(rest.map((e) => e.revision), 50, 10)
        })
      ),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    `subscribeStream catches up over a stream longer than one page (${SUBSCRIPTION_PAGE_SIZE})`,
    () =>
      Effect.gen(function* () {
        const store = yield* (yield* makeStore()).open
        yield* writeBacklog(store)
        const length = (yield* store.head("backlog-0"))!.revision + 1
        expect(length).toBeGreaterThan(SUBSCRIPTION_PAGE_SIZE)
        const received = yield* collect(store.subscribeStream("backlog-0"), length)
        expectConsecutive(received.map((e) => e.revision), 0, length)
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    `soak: ${SOAK_RECONNECTS_MIN}+ disconnects over a ${SOAK_EVENTS}-event log written while reading, 0 missing, 0 reordered`,
    () =>
      seeded(
        Effect.gen(function* () {
          const store = yield* (yield* makeStore()).open
          const batches = SOAK_EVENTS / SOAK_WRITE_BATCH
          // Half the log is there before the subscriber starts, half is written while it reads.
          const writeBatch = (b: number) =>
            store.append(`soak-${b % 7}`, events(`soak-${b}`, SOAK_WRITE_BATCH), "any")
          yield* Effect.forEach(range(batches / 2), writeBatch, { discard: true })
          const writer = yield* Effect.fork(
            Effect.forEach(range(batches / 2), (b) => Effect.zipRight(writeBatch(batches / 2 + b), Effect.yieldNow()), {
              discard: true
            })
          )
          let checkpoint = 0
          let reconnects = 0
          while (checkpoint < SOAK_EVENTS) {
            const take = yield* Random.nextIntBetween(1, SOAK_TAKE_MAX + 1)
            const batch = yield* collect(store.subscribeAll(checkpoint), Math.min(take, SOAK_EVENTS - checkpoint))
            for (const e of batch) {
              if (e.position !== checkpoint + 1) expect.fail(`after ${checkpoint} came ${e.position}`)
              checkpoint = e.position
            }
            reconnects++
          }
          yield* Fiber.join(writer)
          expect(reconnects).toBeGreaterThanOrEqual(SOAK_RECONNECTS_MIN)
          expect(yield* store.lastPosition).toBe(SOAK_EVENTS)
        })
      ),
    TEST_TIMEOUT_MS
  )
}

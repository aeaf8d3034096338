/**
 * Follows the whole event log from the start — catch-up, then live — with a
 * node-side projection's `apply`. If the subscription fails it resumes right
 * after the last event applied, with a capped back-off, so a projection never
 * silently stops (the chain index relays receipts; the AI projection feeds the
 * models and escrows).
 */
import { Effect, Schedule, Stream } from "effect"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import type { RecordedEvent } from "../../infra/eventstore/EventStore.js"

const RESUBSCRIBE = Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")))

export const followLog = (name: string, apply: (event: RecordedEvent) => Effect.Effect<void>) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    let applied = 0
    const follow = Effect.suspend(() =>
      store.subscribeAll(applied).pipe(
        Stream.runForEach((event) => apply(event).pipe(Effect.tap(() => Effect.sync(() => void (applied = event.position)))))
      )
    )
    yield* follow.pipe(
      Effect.tapErrorCause((cause) => Effect.logError(`${name}: the event log subscription failed; resuming after ${applied}`, cause)),
      Effect.retry(RESUBSCRIBE),
      Effect.forkScoped
    )
  })

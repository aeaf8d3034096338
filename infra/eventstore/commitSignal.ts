/**
 * The last committed global position, and a way to wait for it to move.
 * Drivers publish after each commit; subscribers wait on it once caught up.
 */
import { Effect } from "effect"
import { EventStoreError } from "./EventStore.js"

export interface CommitSignal {
  /** Last published position. */
  readonly position: () => number
  /** Called by the driver after a commit became visible to readers. */
  readonly publish: (position: number) => void
  /** Resumes once a position greater than `seen` is published; fails once the store closes. */
  readonly awaitAfter: (seen: number) => Effect.Effect<void, EventStoreError>
  /** Wakes every waiter with an error: the store is gone. */
  readonly close: () => void
}

type Waiter = (outcome: Effect.Effect<void, EventStoreError>) => void

export const makeCommitSignal = (initial: number): CommitSignal => {
  let last = initial
  let closed = false
  let waiters = new Set<Waiter>()
  const closedError = new EventStoreError({ operation: "subscribe", detail: "the store was closed" })
  const wakeAll = (outcome: Effect.Effect<void, EventStoreError>) => {
    const woken = waiters
    waiters = new Set()
    for (const waiter of woken) waiter(outcome)
  }
  return {
    position: () => last,
    publish: (position) => {
      if (position <= last) return
      last = position
      wakeAll(Effect.void)
    },
    // The check and the registration run in one synchronous step, so a
    // publish cannot slip between them.
    awaitAfter: (seen) =>
      Effect.async<void, EventStoreError>((resume) => {
        if (closed) return resume(Effect.fail(closedError))
        if (last > seen) return resume(Effect.void)
        waiters.add(resume)
        return Effect.sync(() => {
          waiters.delete(resume)
        })
      }),
    close: () => {
      closed = true
      wakeAll(Effect.fail(closedError))
    }
  }
}

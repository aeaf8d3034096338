/**
 * A counting semaphore that serves its waiters strictly in arrival order: a
 * freed slot is handed to the longest waiter, never taken by a newcomer.
 * (Effect's semaphore lets a fiber that asks at the moment a slot frees take
 * it ahead of the waiters; a compute node's connection that floods it would
 * then keep every slot and starve the other nodes' connections.)
 */
import { Deferred, Effect, Exit } from "effect"

export interface FairSlots {
  /**
   * Waits for a slot (in arrival order); interrupted while waiting, it takes
   * none. Gives the grant's number: 0, 1, 2, … in the order slots were granted.
   */
  readonly take: Effect.Effect<number>
  /** Gives a slot back: to the longest waiter if there is one. */
  readonly release: Effect.Effect<void>
  /** `self` holding one slot, released however it ends. */
  readonly withSlot: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly free: Effect.Effect<number>
  readonly waiting: Effect.Effect<number>
}

export const makeFairSlots = (slots: number): Effect.Effect<FairSlots> =>
  Effect.sync(() => {
    let free = slots
    let grants = 0
    const waiters: Array<Deferred.Deferred<number>> = []

    const release = Effect.sync(() => {
      const next = waiters.shift()
      // Handed over directly: `free` stays as it is, so no newcomer can slip in between.
      if (next === undefined) free++
      else Deferred.unsafeDone(next, Exit.succeed(grants++))
    })

    const take: Effect.Effect<number> = Effect.suspend(() => {
      if (free > 0 && waiters.length === 0) {
        free--
        return Effect.succeed(grants++)
      }
      return Effect.flatMap(Deferred.make<number>(), (d) => {
        waiters.push(d)
        return Deferred.await(d).pipe(
          Effect.onInterrupt(() =>
            Effect.suspend(() => {
              const at = waiters.indexOf(d)
              if (at >= 0) {
                waiters.splice(at, 1)
                return Effect.void
              }
              // The slot was handed over just as the wait was interrupted: pass it on.
              return release
            })
          )
        )
      })
    })

    return {
      take,
      release,
      withSlot: (self) => Effect.uninterruptibleMask((restore) => Effect.zipRight(restore(take), Effect.ensuring(restore(self), release))),
      free: Effect.sync(() => free),
      waiting: Effect.sync(() => waiters.length)
    }
  })

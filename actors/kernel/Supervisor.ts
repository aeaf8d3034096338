/**
 * Restart-forever supervision with a capped exponential back-off (Erlang's
 * one_for_one with a single child).
 *
 * The work runs in a child fiber so that anything ending it — a defect, a
 * failure, an interrupt aimed at that fiber alone — is seen here as a crash.
 * Interrupting the supervisor itself interrupts the child and stops: that is
 * how an owner's scope shuts the work down.
 */
import { Cause, Duration, Effect, Exit, Fiber } from "effect"

export interface RestartPolicy {
  /** Delay before the first restart after a healthy run. */
  readonly minDelay: Duration.DurationInput
  /** The delay doubles on each consecutive crash, up to this. */
  readonly maxDelay: Duration.DurationInput
}

export const defaultRestartPolicy: RestartPolicy = { minDelay: "10 millis", maxDelay: "5 seconds" }

/** Delay before restart number `consecutive` (1-based) of an unbroken run of crashes. */
export const restartDelay = (policy: RestartPolicy, consecutive: number): Duration.Duration => {
  const min = Duration.toMillis(policy.minDelay)
  const max = Duration.toMillis(policy.maxDelay)
  // Cap the exponent too, so a long outage never computes Infinity.
  return Duration.millis(Math.min(max, min * 2 ** Math.min(consecutive - 1, 30)))
}

export interface SuperviseOptions<E> {
  /**
   * The work; never returns normally. It calls `healthy()` when it has made
   * progress, which resets the back-off to `minDelay`.
   */
  readonly work: (healthy: () => void) => Effect.Effect<never, E>
  /** Runs after each crash, before the back-off; `restarts` counts every crash so far. */
  readonly onCrash: (cause: Cause.Cause<E>, restarts: number, delay: Duration.Duration) => Effect.Effect<void>
  readonly policy: RestartPolicy
}

export const supervise = <E>(options: SuperviseOptions<E>): Effect.Effect<never> =>
  Effect.suspend(() => {
    let restarts = 0
    let consecutive = 0
    const healthy = () => {
      consecutive = 0
    }
    const once: Effect.Effect<void> = Effect.gen(function* () {
      const fiber = yield* Effect.fork(options.work(healthy))
      const exit = yield* Fiber.await(fiber)
      // The work never succeeds, so any exit is a crash.
      const cause = Exit.isFailure(exit) ? exit.cause : Cause.empty
      restarts += 1
      consecutive += 1
      const delay = restartDelay(options.policy, consecutive)
      yield* options.onCrash(cause, restarts, delay)
      yield* Effect.sleep(delay)
    })
    return Effect.forever(once)
  })

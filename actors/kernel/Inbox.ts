/**
 * An actor's mailbox with replies: a bounded `Mailbox` of envelopes, a
 * one-shot reply cell per ask, one deadline timer per actor, and the
 * guarantee that no asker is left waiting (gotcha 9): every ask ends with its
 * reply, ActorTimeout, ActorStopped, or whatever the worker or its supervisor
 * answered.
 *
 * Costs measured on the ask path decided its shape:
 * - `Deferred.unsafeMake` copies a prototype per call (~8% of an ask), so the
 *   reply cell is two fields of the envelope behind one `Effect.async`;
 * - `Effect.timeout` forks two fibers per call (it halved the ask rate), so
 *   one watcher fiber per inbox sleeps until the earliest deadline instead.
 */
import { Duration, Effect, Exit, Mailbox } from "effect"
import type { Scope } from "effect"
import { ActorStopped, ActorTimeout } from "./errors.js"

// An envelope's life: QUEUED in the mailbox, then TAKEN by the worker, or
// WITHDRAWN by an asker that gave up first (the worker then skips it).
const QUEUED = 0
const TAKEN = 1
const WITHDRAWN = 2

export type InboxError = ActorTimeout | ActorStopped

export interface Envelope<C, A, E> {
  readonly payload: C
  /** False for a tell: nobody waits for a reply. */
  readonly asked: boolean
  status: typeof QUEUED | typeof TAKEN | typeof WITHDRAWN
  readonly timeoutMillis: number
  /** Clock millis at which the asker stops waiting (Infinity: never). */
  readonly deadline: number
  exit: Exit.Exit<A, E | InboxError> | undefined
  resume: ((exit: Exit.Exit<A, E | InboxError>) => void) | undefined
}

export interface Inbox<C, A, E> {
  /** Queue `payload` and wait for its reply, at most `timeout`. Suspends while the mailbox is full. */
  readonly ask: (payload: C, timeout: Duration.Duration) => Effect.Effect<A, E | InboxError>
  /** Queue `payload`; no reply. Suspends while the mailbox is full. */
  readonly tell: (payload: C) => Effect.Effect<void, ActorStopped>
  /**
   * The worker's side: wait for messages, then take all of them. They are in
   * flight until the next take. Only the wait is interruptible, so an
   * interrupt never loses messages between the mailbox and the bookkeeping.
   */
  readonly take: Effect.Effect<ReadonlyArray<Envelope<C, A, E>>>
  /** Answer an envelope (ignored for a tell, and once answered). */
  readonly reply: (envelope: Envelope<C, A, E>, exit: Exit.Exit<A, E>) => void
  /** Answer every unanswered envelope of the last batch taken (after a crash). */
  readonly failInFlight: (error: E) => void
}

export const makeInbox = <C, A, E>(
  stream: string,
  capacity: number
): Effect.Effect<Inbox<C, A, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    type Env = Envelope<C, A, E>
    const mailbox = yield* Mailbox.make<Env>(capacity)
    // Rung after every offer; the worker waits on it rather than on
    // mailbox.takeAll, which would take messages while interruptible.
    const doorbell = yield* Effect.makeLatch(false)
    const clock = yield* Effect.clock
    /** Asks not yet answered. */
    const pending = new Set<Env>()
    let inFlight: ReadonlyArray<Env> = []

    const answer = (env: Env, exit: Exit.Exit<A, E | InboxError>) => {
      if (!env.asked || env.exit !== undefined) return
      env.exit = exit
      pending.delete(env)
      const resume = env.resume
      env.resume = undefined
      resume?.(exit)
    }

    /** The asker gives up; returns whether its command had started (a queued one never will). */
    const withdraw = (env: Env): boolean => {
      pending.delete(env)
      if (env.status !== QUEUED) return true
      env.status = WITHDRAWN
      return false
    }

    const awaitReply = (env: Env) =>
      Effect.async<A, E | InboxError>((resume) => {
        if (env.exit !== undefined) return resume(env.exit)
        env.resume = resume
        return Effect.sync(() => {
          env.resume = undefined
          withdraw(env)
        })
      })

    // Deadlines: one watcher sleeps until the earliest one. It rarely wakes:
    // an ask only rings the alarm when its deadline comes before wakeAt.
    const alarm = yield* Effect.makeLatch(false)
    let wakeAt = Infinity
    const watch = Effect.suspend(() => {
      alarm.unsafeClose()
      const now = clock.unsafeCurrentTimeMillis()
      let next = Infinity
      for (const env of pending) {
        if (env.deadline > now) next = Math.min(next, env.deadline)
        else answer(env, Exit.fail(new ActorTimeout({ stream, timeoutMillis: env.timeoutMillis, started: withdraw(env) })))
      }
      wakeAt = next
      return next === Infinity ? alarm.await : Effect.raceFirst(Effect.sleep(next - now), alarm.await)
    })

    // Finalizers run last-in first-out: this one runs after the worker
    // (forked later by the actor) has been interrupted.
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        mailbox.shutdown,
        Effect.sync(() => {
          for (const env of pending) answer(env, Exit.fail(new ActorStopped({ stream, started: env.status === TAKEN })))
        })
      )
    )
    yield* Effect.forkScoped(Effect.forever(watch))

    const envelope = (payload: C, asked: boolean, timeout: Duration.Duration): Env => {
      const timeoutMillis = Duration.toMillis(timeout)
      const deadline = asked ? clock.unsafeCurrentTimeMillis() + timeoutMillis : Infinity
      return { payload, asked, status: QUEUED, timeoutMillis, deadline, exit: undefined, resume: undefined }
    }

    const ask = (payload: C, timeout: Duration.Duration): Effect.Effect<A, E | InboxError> =>
      Effect.suspend(() => {
        const env = envelope(payload, true, timeout)
        pending.add(env)
        if (env.deadline < wakeAt) {
          wakeAt = env.deadline
          alarm.unsafeOpen()
        }
        if (mailbox.unsafeOffer(env)) {
          doorbell.unsafeOpen()
          return awaitReply(env)
        }
        // Full (wait for room, within the deadline) or shut down. The reply
        // side carries every outcome, so the offer side never finishes.
        const enqueue = Effect.flatMap(mailbox.offer(env), (accepted) => {
          if (accepted) doorbell.unsafeOpen()
          else answer(env, Exit.fail(new ActorStopped({ stream, started: false })))
          return Effect.never
        })
        return Effect.raceFirst(enqueue, awaitReply(env))
      })

    const tell = (payload: C): Effect.Effect<void, ActorStopped> =>
      Effect.suspend(() => {
        const env = envelope(payload, false, Duration.infinity)
        if (mailbox.unsafeOffer(env)) {
          doorbell.unsafeOpen()
          return Effect.void
        }
        return Effect.flatMap(mailbox.offer(env), (accepted) =>
          accepted ? Effect.sync(() => doorbell.unsafeOpen()) : Effect.fail(new ActorStopped({ stream, started: false }))
        )
      })

    const take: Effect.Effect<ReadonlyArray<Env>> = Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        doorbell.unsafeClose()
        const size = mailbox.unsafeSize()
        // Wait only while empty: an offer landing after this check rings.
        // (A shut-down mailbox has no size; the actor is stopping: wait.)
        const empty = size._tag === "None" || size.value === 0
        return Effect.zipRight(empty ? restore(doorbell.await) : Effect.void, mailbox.clear)
      }).pipe(
        Effect.map((messages) => {
          const batch: Array<Env> = []
          for (const env of messages) {
            if (env.status !== QUEUED) continue
            env.status = TAKEN
            batch.push(env)
          }
          inFlight = batch
          return batch
        })
      )
    )

    return {
      ask,
      tell,
      take,
      reply: answer,
      failInFlight: (error) => {
        const failed = Exit.fail(error)
        for (const env of inFlight) answer(env, failed)
        inFlight = []
      }
    }
  })

/**
 * The actor kernel: a bounded mailbox, one fiber, a decider and its event
 * stream. Actor modules only supply the spec; this file does receive, decide,
 * append, evolve, reply.
 *
 * - Start: replay the stream (newest snapshot + tail), then serve.
 * - Group commit: the fiber takes every waiting message at once, decides and
 *   evolves each command in order against the running state, and appends all
 *   their events in ONE append with the exact expected revision. An Effect ask
 *   costs ~20-40 µs and a store append far more, so batching is the
 *   throughput win.
 * - A failed append fails every command of its batch with the store's error,
 *   and the state catches up from the store (nothing of ours may be in it, or,
 *   after an ambiguous EventStoreError, all of it).
 * - Supervision (Supervisor.ts): when the fiber dies, every command of the
 *   batch in flight fails with ActorCrashed, and the actor replays from the
 *   store after a back-off. Queued messages stay in the mailbox and are
 *   served after the restart.
 */
import { Cause, Deferred, Duration, Effect, Either, Exit, FiberId, Mailbox, Option, Schema } from "effect"
import type { Scope } from "effect"
import type { Decider } from "../../domain/Decider.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import type {
  AppendError,
  EventStoreError,
  ExpectedRevision,
  NewEvent,
  RecordedEvent
} from "../../infra/eventstore/EventStore.js"
import type { ActorError } from "./errors.js"
import { ActorCrashed, ActorStopped, ActorTimeout } from "./errors.js"
import type { Snapshot, SnapshotPolicy } from "./Snapshot.js"
import { makeSnapshots } from "./Snapshot.js"
import type { RestartPolicy } from "./Supervisor.js"
import { defaultRestartPolicy, supervise } from "./Supervisor.js"

export const DEFAULT_MAILBOX_CAPACITY = 1024
export const DEFAULT_ASK_TIMEOUT: Duration.DurationInput = "30 seconds"
/** Events per read while replaying. */
export const REPLAY_PAGE_SIZE = 4096

export interface ActorSpec<State, Command, Event extends { readonly _tag: string }, Err> {
  readonly stream: string
  readonly decider: Decider<State, Command, Event, Err>
  /**
   * A Schema union of TaggedClasses. The store's `type` is the `_tag`, its
   * `data` the rest of the encoded event (so it must encode to JSON).
   */
  readonly eventSchema: Schema.Schema<Event, any>
  /**
   * Id of the `index`-th event of `command`, written at `revision`. Derive it
   * from the causing transaction so that a retried command is idempotent in
   * the store. Default: `{stream}:{revision}`.
   */
  readonly eventId?: ((command: Command, index: number, revision: number) => string) | undefined
  /** Metadata for every event of `command` (causation tx, block height, shard). */
  readonly metadata?: ((command: Command) => Record<string, unknown>) | undefined
  readonly snapshot?: SnapshotPolicy<State> | undefined
  /** Messages (not commands) waiting; when full, tell and ask suspend: back-pressure. */
  readonly mailboxCapacity?: number | undefined
  /** Default timeout of ask/askAll; `Duration.infinity` for none. */
  readonly askTimeout?: Duration.DurationInput | undefined
  readonly restart?: RestartPolicy | undefined
}

export interface Reply<State, Event> {
  /** The events this command produced (maybe none), now committed. */
  readonly events: ReadonlyArray<Event>
  /** The state right after this command's events. */
  readonly state: State
  /** Revision of the stream's last event right after this command (-1: empty stream). */
  readonly revision: number
}

export interface AskOptions {
  readonly timeout?: Duration.DurationInput | undefined
}

/** Everything an ask can fail with besides the decider's own error. */
export type AskError = ActorError | AppendError

export interface Actor<State, Command, Event, Err> {
  readonly stream: string
  /** Run one command; its reply, or its decide error, or why there is none. */
  readonly ask: (command: Command, options?: AskOptions) => Effect.Effect<Reply<State, Event>, Err | AskError>
  /**
   * Run several commands as ONE message (one mailbox hop, one append, in
   * order). Each gets its own decide result; failures of the message as a
   * whole (store, timeout, crash) fail them all.
   */
  readonly askAll: (
    commands: ReadonlyArray<Command>,
    options?: AskOptions
  ) => Effect.Effect<ReadonlyArray<Either.Either<Reply<State, Event>, Err>>, AskError>
  /** Enqueue a command; no reply. Suspends while the mailbox is full. */
  readonly tell: (command: Command) => Effect.Effect<void, ActorStopped>
  /** The committed state (waits for the first replay). */
  readonly state: Effect.Effect<State>
  /** Revision of the stream's last committed event (waits for the first replay). */
  readonly revision: Effect.Effect<number>
  /** How many times the actor has crashed and restarted. */
  readonly restarts: Effect.Effect<number>
}

// An envelope's life: QUEUED in the mailbox, then TAKEN by the fiber, or
// WITHDRAWN by an asker that gave up first (the fiber then skips it).
const QUEUED = 0
const TAKEN = 1
const WITHDRAWN = 2

type Results<State, Event, Err> = ReadonlyArray<Either.Either<Reply<State, Event>, Err>>

interface Envelope<State, Command, Event, Err> {
  readonly commands: ReadonlyArray<Command>
  /** Undefined for a tell. */
  readonly reply: Deferred.Deferred<Results<State, Event, Err>, AskError> | undefined
  status: typeof QUEUED | typeof TAKEN | typeof WITHDRAWN
}

const expectedRevision = (revision: number): ExpectedRevision => (revision < 0 ? "no_stream" : revision)

const describe = (cause: Cause.Cause<unknown>): string => {
  const squashed = Cause.squash(cause)
  return squashed instanceof Error ? `${squashed.name}: ${squashed.message}` : String(squashed)
}

export const makeActor = <State, Command, Event extends { readonly _tag: string }, Err>(
  spec: ActorSpec<State, Command, Event, Err>
): Effect.Effect<Actor<State, Command, Event, Err>, never, EventStore | Scope.Scope> =>
  Effect.gen(function* () {
    type Env = Envelope<State, Command, Event, Err>
    const { stream, decider } = spec
    const store = yield* EventStore
    const mailbox = yield* Mailbox.make<Env>(spec.mailboxCapacity ?? DEFAULT_MAILBOX_CAPACITY)
    // Rung after every offer. The fiber waits on it, not on mailbox.takeAll,
    // so it can take messages uninterruptibly: an interrupt landing between a
    // take and the bookkeeping below would strand those askers.
    const doorbell = yield* Effect.makeLatch(false)
    const ready = yield* Effect.makeLatch(false)
    const askTimeout = Duration.decode(spec.askTimeout ?? DEFAULT_ASK_TIMEOUT)
    const eventId = spec.eventId ?? ((_: Command, _index: number, revision: number) => `${stream}:${revision}`)
    const encodeEvent = Schema.encodeSync(spec.eventSchema)
    const decodeEvent = Schema.decodeUnknownEither(spec.eventSchema)
    const snapshots = spec.snapshot === undefined ? undefined : makeSnapshots(store, stream, spec.snapshot)
    const snapshotEvery = spec.snapshot?.every ?? Infinity

    let current: Snapshot<State> = { state: decider.initialState, revision: -1 }
    let snapshotRevision = -1
    let restarts = 0
    /** Asks not yet answered: failed with ActorStopped on shutdown. */
    const pending = new Set<Env>()
    /** The batch being processed: failed with ActorCrashed if the fiber dies. */
    let inFlight: ReadonlyArray<Env> = []

    const complete = (env: Env, exit: Exit.Exit<Results<State, Event, Err>, AskError>) => {
      if (env.reply === undefined) return
      pending.delete(env)
      Deferred.unsafeDone(env.reply, exit)
    }

    const toNewEvent = (event: Event, id: string, metadata: Record<string, unknown> | undefined): NewEvent => {
      const { _tag, ...data } = encodeEvent(event) as { readonly _tag: string }
      return { id, type: _tag, data, metadata }
    }

    const fromRecorded = (recorded: RecordedEvent): Event => {
      const decoded = decodeEvent({ ...(recorded.data as object), _tag: recorded.type })
      if (Either.isRight(decoded)) return decoded.right
      // A stored event we cannot read is corruption or a schema break: a defect.
      throw new Error(`${stream}@${recorded.revision}: event ${recorded.type} does not decode: ${decoded.left.message}`)
    }

    /** Fold the events after `from` into it. */
    const catchUp = (from: Snapshot<State>): Effect.Effect<Snapshot<State>, EventStoreError> =>
      Effect.gen(function* () {
        let { state, revision } = from
        while (true) {
          const page = yield* store.readStream(stream, { from: revision + 1, limit: REPLAY_PAGE_SIZE })
          for (const recorded of page) {
            if (recorded.revision !== revision + 1) {
              return yield* Effect.dieMessage(`${stream}: replay expected revision ${revision + 1}, read ${recorded.revision}`)
            }
            state = decider.evolve(state, fromRecorded(recorded))
            revision = recorded.revision
          }
          if (page.length < REPLAY_PAGE_SIZE) return { state, revision }
        }
      })

    const load: Effect.Effect<Snapshot<State>, EventStoreError> = Effect.gen(function* () {
      let base: Snapshot<State> = { state: decider.initialState, revision: -1 }
      const newest = snapshots === undefined ? Option.none() : yield* snapshots.load
      if (Option.isSome(newest)) {
        const head = yield* store.head(stream)
        if (newest.value.revision <= (head?.revision ?? -1)) base = newest.value
        else yield* Effect.logWarning(`${stream}: snapshot at ${newest.value.revision} is past the head; ignored`)
      }
      snapshotRevision = base.revision
      return yield* catchUp(base)
    })

    const takeBatch: Effect.Effect<ReadonlyArray<Env>> = Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        doorbell.unsafeClose()
        const size = mailbox.unsafeSize()
        // Wait only while empty (an offer landing after this check rings).
        const wait = Option.isSome(size) && size.value > 0 ? Effect.void : restore(doorbell.await)
        return Effect.zipRight(wait, mailbox.clear)
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

    const maybeSnapshot = Effect.suspend(() => {
      if (snapshots === undefined || current.revision - snapshotRevision < snapshotEvery) return Effect.void
      snapshotRevision = current.revision
      return snapshots.save(current)
    })

    const processBatch = (batch: ReadonlyArray<Env>, healthy: () => void): Effect.Effect<void, EventStoreError> =>
      Effect.suspend(() => {
        let { state, revision } = current
        const events: Array<NewEvent> = []
        const results = batch.map((env) =>
          env.commands.map((command): Either.Either<Reply<State, Event>, Err> => {
            const decided = decider.decide(state, command)
            if (Either.isLeft(decided)) return Either.left(decided.left)
            const metadata = spec.metadata?.(command)
            decided.right.forEach((event, index) => {
              revision += 1
              state = decider.evolve(state, event)
              events.push(toNewEvent(event, eventId(command, index, revision), metadata))
            })
            return Either.right({ events: decided.right, state, revision })
          })
        )
        const replyAll = () => {
          batch.forEach((env, i) => complete(env, Exit.succeed(results[i]!)))
          inFlight = []
        }
        if (events.length === 0) return Effect.sync(replyAll)
        const committed: Snapshot<State> = { state, revision }
        return Effect.matchEffect(store.append(stream, events, expectedRevision(current.revision)), {
          onFailure: (error) => {
            const failed = Exit.fail(error)
            for (const env of batch) complete(env, failed)
            inFlight = []
            return Effect.map(catchUp(current), (caughtUp) => {
              current = caughtUp
            })
          },
          onSuccess: (result) => {
            if (result.nextRevision !== committed.revision) {
              return Effect.dieMessage(`${stream}: appended up to ${result.nextRevision}, expected ${committed.revision}`)
            }
            current = committed
            replyAll()
            healthy()
            return maybeSnapshot // after the replies: a snapshot never delays an asker
          }
        })
      })

    const work = (healthy: () => void): Effect.Effect<never, EventStoreError> =>
      load.pipe(
        Effect.flatMap((loaded) => {
          current = loaded
          ready.unsafeOpen()
          return Effect.forever(Effect.flatMap(takeBatch, (batch) => (batch.length === 0 ? Effect.void : processBatch(batch, healthy))))
        })
      )

    const onCrash = (cause: Cause.Cause<EventStoreError>, count: number, delay: Duration.Duration) =>
      Effect.suspend(() => {
        restarts = count
        const crashed = Exit.fail(new ActorCrashed({ stream, restarts: count, defect: describe(cause) }))
        for (const env of inFlight) complete(env, crashed)
        inFlight = []
        return Effect.logWarning(`actor ${stream} crashed; restart ${count} in ${Duration.format(delay)}`, cause)
      })

    // Finalizers run last-in first-out: this one runs after the supervisor
    // (forked below) is interrupted, so nobody is left waiting on a dead actor.
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        mailbox.shutdown,
        Effect.sync(() => {
          for (const env of pending) complete(env, Exit.fail(new ActorStopped({ stream, started: env.status === TAKEN })))
        })
      )
    )
    yield* Effect.forkScoped(
      supervise({ work, onCrash, policy: spec.restart ?? defaultRestartPolicy }).pipe(Effect.annotateLogs("actor", stream))
    )

    const send = (env: Env): Effect.Effect<void, ActorStopped> =>
      Effect.suspend(() => {
        if (mailbox.unsafeOffer(env)) {
          doorbell.unsafeOpen()
          return Effect.void
        }
        // Full (suspend: back-pressure) or shut down (false).
        return Effect.flatMap(mailbox.offer(env), (accepted) => {
          if (!accepted) return Effect.fail(new ActorStopped({ stream, started: false }))
          doorbell.unsafeOpen()
          return Effect.void
        })
      })

    /** The asker gives up: a command still queued will never run. */
    const withdraw = (env: Env): boolean => {
      pending.delete(env)
      if (env.status !== QUEUED) return true
      env.status = WITHDRAWN
      return false
    }

    const askAll = (
      commands: ReadonlyArray<Command>,
      options?: AskOptions
    ): Effect.Effect<Results<State, Event, Err>, AskError> =>
      Effect.suspend(() => {
        const reply = Deferred.unsafeMake<Results<State, Event, Err>, AskError>(FiberId.none)
        const env: Env = { commands, reply, status: QUEUED }
        pending.add(env)
        const timeout = options?.timeout === undefined ? askTimeout : Duration.decode(options.timeout)
        const answer = Duration.isFinite(timeout)
          ? Effect.timeoutFail(Deferred.await(reply), {
              duration: timeout,
              onTimeout: () => new ActorTimeout({ stream, timeoutMillis: Duration.toMillis(timeout), started: withdraw(env) })
            })
          : Deferred.await(reply)
        return send(env).pipe(
          Effect.zipRight(answer),
          Effect.ensuring(Effect.sync(() => withdraw(env)))
        )
      })

    return {
      stream,
      askAll,
      ask: (command, options) =>
        Effect.flatMap(askAll([command], options), ([result]) => result ?? Effect.dieMessage("one command, no result")),
      tell: (command) => send({ commands: [command], reply: undefined, status: QUEUED }),
      state: ready.whenOpen(Effect.sync(() => current.state)),
      revision: ready.whenOpen(Effect.sync(() => current.revision)),
      restarts: Effect.sync(() => restarts)
    }
  })

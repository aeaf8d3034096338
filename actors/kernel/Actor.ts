/**
 * The actor kernel: a bounded mailbox, one fiber, a decider and its event
 * stream. Actor modules only supply the spec; this file does receive, decide,
 * append, evolve, reply.
 *
 * - Start: replay the stream (newest snapshot + tail), then serve.
 * - Group commit: the fiber takes every waiting message at once, decides and
 *   evolves each command in order against the running state, and appends all
 *   their events in ONE append with the exact expected revision. Under load
 *   the per-append cost is shared by the whole batch: the throughput win.
 * - A failed append fails every command of its batch with the store's error,
 *   and the state catches up from the store (nothing of ours may be in it, or,
 *   after an ambiguous EventStoreError, all of it).
 * - Supervision (Supervisor.ts): when the fiber dies, every command of the
 *   batch in flight fails with ActorCrashed, and the actor replays from the
 *   store after a back-off. Queued messages stay in the mailbox (Inbox.ts)
 *   and are served after the restart.
 *
 * An actor module is wiring only:
 *
 *   export const makeModelActor = (id: ModelId) =>
 *     makeActor({
 *       stream: `model-${id}`,
 *       decider: modelDecider,                        // domain/: decide, evolve, initialState
 *       eventSchema: ModelEvent,                      // Schema.Union of TaggedClasses
 *       eventId: (cmd, i) => `${cmd.txHash}:${i}`,    // a retried tx appends nothing twice
 *       metadata: (cmd) => ({ tx: cmd.txHash, height: cmd.height }),
 *       snapshot: { every: 500, schema: ModelState }
 *     })
 *   const reply = yield* actor.ask(cmd)               // Reply | ModelError | AskError
 */
import { Cause, Duration, Effect, Either, Exit, Option, Schema } from "effect"
import { taggedData } from "../../domain/streamEvents.js"
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
import type { ActorError, ActorStopped } from "./errors.js"
import { ActorCrashed } from "./errors.js"
import type { Envelope } from "./Inbox.js"
import { makeInbox } from "./Inbox.js"
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

type Results<State, Event, Err> = ReadonlyArray<Either.Either<Reply<State, Event>, Err>>

/** What the inbox carries: commands in, one decide result per command out. */
type Message<State, Command, Event, Err> = Envelope<ReadonlyArray<Command>, Results<State, Event, Err>, AppendError | ActorCrashed>

const expectedRevision = (revision: number): ExpectedRevision => (revision < 0 ? "no_stream" : revision)

const describe = (cause: Cause.Cause<unknown>): string => {
  const squashed = Cause.squash(cause)
  return squashed instanceof Error ? `${squashed.name}: ${squashed.message}` : String(squashed)
}

export const makeActor = <State, Command, Event extends { readonly _tag: string }, Err>(
  spec: ActorSpec<State, Command, Event, Err>
): Effect.Effect<Actor<State, Command, Event, Err>, never, EventStore | Scope.Scope> =>
  Effect.gen(function* () {
    type Msg = Message<State, Command, Event, Err>
    const { stream, decider } = spec
    const store = yield* EventStore
    const inbox = yield* makeInbox<ReadonlyArray<Command>, Results<State, Event, Err>, AppendError | ActorCrashed>(
      stream,
      spec.mailboxCapacity ?? DEFAULT_MAILBOX_CAPACITY
    )
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

    const toNewEvent = (event: Event, id: string, metadata: Record<string, unknown> | undefined): NewEvent => {
      const { _tag, ...data } = encodeEvent(event) as { readonly _tag: string }
      return { id, type: _tag, data, metadata }
    }

    const fromRecorded = (recorded: RecordedEvent): Event => {
      const decoded = Either.flatMap(taggedData(recorded.type, recorded.data), (tagged) => Either.mapLeft(decodeEvent(tagged), (e) => e.message))
      if (Either.isRight(decoded)) return decoded.right
      // A stored event we cannot read is corruption or a schema break: a defect.
      throw new Error(`${stream}@${recorded.revision}: event ${recorded.type} does not decode: ${decoded.left}`)
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

    const maybeSnapshot = Effect.suspend(() => {
      if (snapshots === undefined || current.revision - snapshotRevision < snapshotEvery) return Effect.void
      snapshotRevision = current.revision
      return snapshots.save(current)
    })

    const processBatch = (batch: ReadonlyArray<Msg>, healthy: () => void): Effect.Effect<void, EventStoreError> =>
      Effect.suspend(() => {
        // decide + evolve every command in order against the running state
        let { state, revision } = current
        const events: Array<NewEvent> = []
        const results = batch.map((message) =>
          message.payload.map((command): Either.Either<Reply<State, Event>, Err> => {
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
        const replyAll = () => batch.forEach((message, i) => inbox.reply(message, Exit.succeed(results[i]!)))
        if (events.length === 0) return Effect.sync(replyAll)
        const committed: Snapshot<State> = { state, revision }
        // one append for the whole batch: the group commit
        return Effect.matchEffect(store.append(stream, events, expectedRevision(current.revision)), {
          onFailure: (error) => {
            const failed = Exit.fail(error)
            for (const message of batch) inbox.reply(message, failed)
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
      Effect.flatMap(load, (loaded) => {
        current = loaded
        ready.unsafeOpen()
        return Effect.forever(Effect.flatMap(inbox.take, (batch) => (batch.length === 0 ? Effect.void : processBatch(batch, healthy))))
      })

    const onCrash = (cause: Cause.Cause<EventStoreError>, count: number, delay: Duration.Duration) =>
      Effect.suspend(() => {
        restarts = count
        inbox.failInFlight(new ActorCrashed({ stream, restarts: count, defect: describe(cause) }))
        return Effect.logWarning(`actor ${stream} crashed; restart ${count} in ${Duration.format(delay)}`, cause)
      })

    yield* Effect.forkScoped(
      supervise({ work, onCrash, policy: spec.restart ?? defaultRestartPolicy }).pipe(Effect.annotateLogs("actor", stream))
    )

    const askAll = (commands: ReadonlyArray<Command>, options?: AskOptions): Effect.Effect<Results<State, Event, Err>, AskError> =>
      commands.length === 0
        ? Effect.succeed([])
        : inbox.ask(commands, options?.timeout === undefined ? askTimeout : Duration.decode(options.timeout))

    return {
      stream,
      askAll,
      ask: (command, options) =>
        Effect.flatMap(askAll([command], options), ([result]) => result ?? Effect.dieMessage("one command, no result")),
      tell: (command): Effect.Effect<void, ActorStopped> => inbox.tell([command]),
      state: ready.whenOpen(Effect.sync(() => current.state)),
      revision: ready.whenOpen(Effect.sync(() => current.revision)),
      restarts: Effect.sync(() => restarts)
    }
  })

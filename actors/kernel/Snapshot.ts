/**
 * Snapshots of an actor's state, kept in the event store itself, in the
 * stream `snapshot-{stream}`: each event there holds a state and the revision
 * of the last event it covers. Only the newest one is read.
 *
 * Snapshots are an optimisation, never a source of truth: one that fails to
 * decode (the State schema changed) or to write is logged and ignored, and the
 * actor replays from the events instead.
 */
import { Effect, Either, Option, Schema } from "effect"
import type { EventStoreError, EventStoreShape } from "../../infra/eventstore/EventStore.js"

export interface SnapshotPolicy<State> {
  /** Write a snapshot once at least this many events were committed since the last one. */
  readonly every: number
  /** Must encode the state to JSON (e.g. Schema.BigInt, not BigIntFromSelf). */
  readonly schema: Schema.Schema<State, any>
}

export interface Snapshot<State> {
  /** Revision of the last event the state includes. */
  readonly revision: number
  readonly state: State
}

export const snapshotStream = (stream: string): string => `snapshot-${stream}`

export const SNAPSHOT_EVENT_TYPE = "Snapshot"

export interface Snapshots<State> {
  /** The newest snapshot, or none (absent, or not decodable with today's schema). */
  readonly load: Effect.Effect<Option.Option<Snapshot<State>>, EventStoreError>
  /** Write a snapshot; failures are logged, never raised (defects still are). */
  readonly save: (snapshot: Snapshot<State>) => Effect.Effect<void>
}

export const makeSnapshots = <State>(
  store: EventStoreShape,
  stream: string,
  policy: SnapshotPolicy<State>
): Snapshots<State> => {
  const name = snapshotStream(stream)
  const schema = Schema.Struct({ revision: Schema.Int.pipe(Schema.nonNegative()), state: policy.schema })
  const decode = Schema.decodeUnknownEither(schema)
  const encode = Schema.encode(schema)

  const load = store.readStream(name, { direction: "backwards", limit: 1 }).pipe(
    Effect.flatMap(([newest]) => {
      if (newest === undefined) return Effect.succeedNone
      const decoded = decode(newest.data)
      if (Either.isRight(decoded)) return Effect.succeedSome(decoded.right)
      return Effect.logWarning(`snapshot of ${stream} at position ${newest.position} does not decode; replaying from 0`, decoded.left.message).pipe(
        Effect.as(Option.none<Snapshot<State>>())
      )
    })
  )

  const save = (snapshot: Snapshot<State>) =>
    encode(snapshot).pipe(
      // "any": one actor writes its snapshots, in order; the id makes a
      // repeated snapshot of the same revision an acknowledged no-op.
      Effect.flatMap((data) => store.append(name, [{ id: `${name}:${snapshot.revision}`, type: SNAPSHOT_EVENT_TYPE, data }], "any")),
      Effect.asVoid,
      Effect.catchAll((error) => Effect.logWarning(`snapshot of ${stream} at revision ${snapshot.revision} not written`, error.message))
    )

  return { load, save }
}

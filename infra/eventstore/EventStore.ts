/**
 * The event store: one service, many drivers (SQLite, memory; KurrentDB later).
 *
 * Streams are append-only sequences of events with 0-based revisions. Every
 * event also has a global position (1-based, strictly increasing in commit
 * order) and the hash of the previous event in its stream, so a stream is a
 * hash chain an auditor can check without trusting the store.
 */
import { Context, Schema } from "effect"
import type { Effect, Stream } from "effect"

/** What an append expects of the stream it writes to. */
export type ExpectedRevision =
  | "no_stream" // the stream must not exist yet
  | "any" // no check (our stores still recognise a repeated batch by its ids; KurrentDB forgets after a restart)
  | "stream_exists" // the stream must have at least one event
  | number // the revision of the stream's last event (a non-negative integer)

/** An event as a writer hands it to the store. `data` and `metadata` are JSON values. */
export interface NewEvent {
  /**
   * Deterministic id (e.g. causing tx hash + index), so a retried append is
   * idempotent. Unique within its stream; the same id in another stream is fine.
   */
  readonly id: string
  readonly type: string
  readonly data: unknown
  readonly metadata?: Record<string, unknown> | undefined
}

/** An event as the store recorded it. */
export interface RecordedEvent {
  readonly stream: string
  /** 0-based index in its stream. */
  readonly revision: number
  /** 1-based global commit position. */
  readonly position: number
  readonly id: string
  readonly type: string
  readonly data: unknown
  readonly metadata: Record<string, unknown>
  /** Hash of the previous event of the stream (GENESIS_HASH for revision 0). */
  readonly prevHash: string
  /** sha256 over prevHash and this event's canonical bytes (see eventHash). */
  readonly hash: string
}

export interface AppendResult {
  /**
   * Revision of the batch's last event. For an idempotent retry this is where
   * the batch was first written (later appends may have moved the head on).
   */
  readonly nextRevision: number
  /** Global position of the last event written (or already present). */
  readonly position: number
  /** False when every event was already present (an idempotent retry). */
  readonly written: boolean
}

export interface StreamHead {
  readonly stream: string
  readonly revision: number
  readonly hash: string
  readonly position: number
}

export interface ReadStreamOptions {
  /** First revision to read (forwards default 0, backwards default the head). */
  readonly from?: number | undefined
  /**
   * Last revision to read, inclusive (forwards default the head, backwards
   * default 0). Bounds that cross give nothing.
   */
  readonly to?: number | undefined
  readonly direction?: "forwards" | "backwards" | undefined
  readonly limit?: number | undefined
}

export interface ReadAllOptions {
  /** Read events with position strictly greater than this (default 0: from the start). */
  readonly after?: number | undefined
  readonly limit?: number | undefined
}

/** The expectation did not hold: nothing was written. */
export class WrongExpectedRevision extends Schema.TaggedError<WrongExpectedRevision>()("WrongExpectedRevision", {
  stream: Schema.String,
  expected: Schema.Union(Schema.Literal("no_stream", "any", "stream_exists"), Schema.Number),
  /** Revision of the stream's last event, or -1 when the stream does not exist. */
  actual: Schema.Number
}) {
  override get message() {
    return `stream ${this.stream}: expected revision ${this.expected}, actual ${this.actual}`
  }
}

/**
 * Bad input to the store: oversized event, empty batch, id reused with other
 * content, bad stream name, an event whose id/type is malformed or whose
 * data/metadata is not JSON (InvalidEvent), or an expected revision that is
 * not a non-negative integer nor one of the named expectations.
 */
export class InvalidAppend extends Schema.TaggedError<InvalidAppend>()("InvalidAppend", {
  stream: Schema.String,
  reason: Schema.Literal(
    "EventTooLarge",
    "EmptyBatch",
    "IdConflict",
    "InvalidStreamName",
    "DuplicateIdInBatch",
    "InvalidEvent",
    "InvalidExpectedRevision"
  ),
  detail: Schema.String
}) {
  override get message() {
    return `stream ${this.stream}: ${this.reason}: ${this.detail}`
  }
}

/** The driver failed (I/O, corrupt file): a fault of the store, not of the caller. */
export class EventStoreError extends Schema.TaggedError<EventStoreError>()("EventStoreError", {
  operation: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `event store ${this.operation} failed: ${this.detail}`
  }
}

export type AppendError = WrongExpectedRevision | InvalidAppend | EventStoreError

/** The largest event (data + metadata as JSON text, in UTF-8 bytes) any store accepts. */
export const MAX_EVENT_BYTES = 1024 * 1024

/** The prevHash of a stream's first event. */
export const GENESIS_HASH = "0".repeat(64)

export interface EventStoreShape {
  readonly append: (
    stream: string,
    events: ReadonlyArray<NewEvent>,
    expected: ExpectedRevision
  ) => Effect.Effect<AppendResult, AppendError>
  readonly readStream: (
    stream: string,
    options?: ReadStreamOptions
  ) => Effect.Effect<ReadonlyArray<RecordedEvent>, EventStoreError>
  readonly readAll: (options?: ReadAllOptions) => Effect.Effect<ReadonlyArray<RecordedEvent>, EventStoreError>
  /** Events of every stream after `after`, in global order: catches up, then goes live. Never ends. */
  readonly subscribeAll: (after?: number) => Stream.Stream<RecordedEvent, EventStoreError>
  /** Events of one stream from revision `from` (inclusive): catches up, then goes live. Never ends. */
  readonly subscribeStream: (stream: string, from?: number) => Stream.Stream<RecordedEvent, EventStoreError>
  /** The stream's last event, or undefined when it does not exist. */
  readonly head: (stream: string) => Effect.Effect<StreamHead | undefined, EventStoreError>
  /** Every stream's head, ordered by stream name (JS string order, the same in every store). */
  readonly heads: Effect.Effect<ReadonlyArray<StreamHead>, EventStoreError>
  /** Global position of the last committed event (0 when empty). */
  readonly lastPosition: Effect.Effect<number, EventStoreError>
}

export class EventStore extends Context.Tag("topai/EventStore")<EventStore, EventStoreShape>() {}

/**
 * The event log's stream kinds, each with the one Schema its events are
 * written and read by. The actor that writes a stream encodes with it; the
 * node's projections (chain index, AI projection, economy) and the auditor
 * decode a stored event of that stream through `decodeEventOf`, so every
 * reader sees the same typed events and none reads a field of stored JSON
 * it did not decode.
 *
 * A stored event is `{type, data}`: the data is the Schema encoding without
 * its `_tag`, which is the event's type.
 */
import { Either, Schema } from "effect"
import { EscrowEvent } from "./ai/escrow/events.js"
import { AiEvent } from "./ai/ledger/events.js"
import { ModelEvent } from "./ai/model/events.js"
import { TaskEvent } from "./ai/task/events.js"
import { WorkerEvent } from "./ai/worker/events.js"
import { SHARED_RECEIPTS_STREAM, SharedReceiptEvent } from "./ai/shared/events.js"
import { ShardEvent } from "./chain/events.js"
import { RewardEvent } from "./economics/events.js"

/** Each stream kind's event schema (the same the kind's actor is built with). */
export const STREAM_EVENT_SCHEMAS = {
  /** `shard-{id}`: the beacon's, the transfer shards' and the AI shard's (its ledger's `AiEvent`s are members). */
  shard: ShardEvent,
  /** `model-{id}`: this node's own verification of a model. */
  model: ModelEvent,
  /** `task-{id}` */
  task: TaskEvent,
  /** `worker-{address}` */
  worker: WorkerEvent,
  /** `escrow-{developer}-{model}` */
  escrow: EscrowEvent,
  /** `reward-epoch-{n}` */
  reward: RewardEvent,
  /** `shared-receipts`: receipts other gateways shared with this member. */
  shared: SharedReceiptEvent
} as const

export type StreamKind = keyof typeof STREAM_EVENT_SCHEMAS
export type EventOf<K extends StreamKind> = Schema.Schema.Type<(typeof STREAM_EVENT_SCHEMAS)[K]>
/** A decoded stored event with its stream's kind: a switch on `kind` types `event`. */
export type KindedEvent = { readonly [K in StreamKind]: { readonly kind: K; readonly event: EventOf<K> } }[StreamKind]

const SHARD_STREAM = /^shard-\d+$/
const REWARD_STREAM = /^reward-epoch-\d+$/
const PREFIXES: ReadonlyArray<readonly [string, StreamKind]> = [
  ["model-", "model"],
  ["task-", "task"],
  ["worker-", "worker"],
  ["escrow-", "escrow"]
]

/** The kind of a stream by its name; undefined for streams of no kind here (snapshots, consensus records). */
export const streamKindOf = (stream: string): StreamKind | undefined => {
  if (SHARD_STREAM.test(stream)) return "shard"
  if (REWARD_STREAM.test(stream)) return "reward"
  if (stream === SHARED_RECEIPTS_STREAM) return "shared"
  return PREFIXES.find(([prefix]) => stream.startsWith(prefix))?.[1]
}

/** The stored data with its type as `_tag`, if the data is a JSON object (what every event's encoding is). */
export const taggedData = (type: string, data: unknown): Either.Either<{ readonly _tag: string }, string> =>
  typeof data !== "object" || data === null || Array.isArray(data)
    ? Either.left(`its data is not a JSON object but ${data === null ? "null" : Array.isArray(data) ? "an array" : typeof data}`)
    : Either.right({ ...data, _tag: type })

const decoders: { readonly [K in StreamKind]: (u: unknown) => Either.Either<EventOf<K>, { readonly message: string }> } = {
  shard: Schema.decodeUnknownEither(STREAM_EVENT_SCHEMAS.shard),
  model: Schema.decodeUnknownEither(STREAM_EVENT_SCHEMAS.model),
  task: Schema.decodeUnknownEither(STREAM_EVENT_SCHEMAS.task),
  worker: Schema.decodeUnknownEither(STREAM_EVENT_SCHEMAS.worker),
  escrow: Schema.decodeUnknownEither(STREAM_EVENT_SCHEMAS.escrow),
  reward: Schema.decodeUnknownEither(STREAM_EVENT_SCHEMAS.reward),
  shared: Schema.decodeUnknownEither(STREAM_EVENT_SCHEMAS.shared)
}

/** One stored event of a stream of kind `kind`, typed; or why it does not decode. */
export const decodeEventOf = <K extends StreamKind>(kind: K, type: string, data: unknown): Either.Either<EventOf<K>, string> =>
  Either.flatMap(taggedData(type, data), (tagged) => Either.mapLeft(decoders[kind](tagged), (e) => `${type}: ${e.message}`))

const kinded = <K extends StreamKind>(kind: K, type: string, data: unknown): Either.Either<{ readonly kind: K; readonly event: EventOf<K> }, string> =>
  Either.map(decodeEventOf(kind, type, data), (event) => ({ kind, event }))

/** A stored event of any stream, by its stream's name; undefined when the stream is of no kind here. */
export const decodeStored = (event: { readonly stream: string; readonly type: string; readonly data: unknown }): Either.Either<KindedEvent, string> | undefined => {
  const kind = streamKindOf(event.stream)
  switch (kind) {
    case undefined:
      return undefined
    case "shard":
      return kinded("shard", event.type, event.data)
    case "model":
      return kinded("model", event.type, event.data)
    case "task":
      return kinded("task", event.type, event.data)
    case "worker":
      return kinded("worker", event.type, event.data)
    case "escrow":
      return kinded("escrow", event.type, event.data)
    case "reward":
      return kinded("reward", event.type, event.data)
    case "shared":
      return kinded("shared", event.type, event.data)
  }
}

const AI_EVENT_TAGS: ReadonlySet<string> = new Set(AiEvent.members.map((m) => m._tag))

/** The AI ledger's own events among a shard's (they are only on the AI shard's stream). */
export const isAiEvent = (event: ShardEvent): event is AiEvent => AI_EVENT_TAGS.has(event._tag)

/** Whether a stored event's type is one of the AI ledger's (before paying for its decoding). */
export const isAiEventType = (type: string): boolean => AI_EVENT_TAGS.has(type)

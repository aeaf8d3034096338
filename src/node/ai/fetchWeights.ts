/**
 * Weights by hash from peer nodes: a node that learns of a registered model
 * whose weights went to another node asks its peers' `blob.get` for them,
 * in BLOB_CHUNK_BYTES chunks, one peer after another until one serves them.
 *
 *   before   the declared size is within the node's bound (nothing is asked
 *            for a model the node would not take), and each peer's first
 *            answer names that same size
 *   during   a chunk is at most BLOB_CHUNK_BYTES, never empty before the end,
 *            and the bytes never run past the declared size
 *   after    the bytes hash to the declared sha256; only then does the blob
 *            store make them visible (temp file, fsync, rename: a crash or a
 *            lying peer leaves nothing under the real name)
 *
 * A peer that cannot be reached, does not hold them, or serves other bytes
 * is skipped with its reason; if none serves them, `WeightsUnavailable`
 * lists every peer's reason.
 */
import { Buffer } from "node:buffer"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import { Duration, Effect, Option, Schema, Stream } from "effect"
import { BLOB_HASH, BlobError, BlobStore } from "../../../infra/blobstore/BlobStore.js"
import { BLOB_CHUNK_BYTES } from "../../api/AiRpcs.js"
import { makeClient, type NodeClient } from "../../client/index.js"
import type { Scope } from "effect"

/** Why one peer did not serve the weights. */
export const PeerFailureReason = Schema.Literal("Unreachable", "TimedOut", "NotFound", "Refused", "SizeMismatch", "BadChunk", "HashMismatch")
export type PeerFailureReason = typeof PeerFailureReason.Type

export class PeerAttempt extends Schema.Class<PeerAttempt>("PeerAttempt")({
  peer: Schema.String,
  reason: PeerFailureReason,
  detail: Schema.String
}) {}

export class WeightsUnavailable extends Schema.TaggedError<WeightsUnavailable>()("WeightsUnavailable", {
  /**
   * TooLarge / BadHash: refused before asking anyone; NoPeers: none
   * configured; NoPeerServed: every peer failed (see `attempts`);
   * StoreFailed: this node could not write its own blob store.
   */
  reason: Schema.Literal("TooLarge", "BadHash", "NoPeers", "NoPeerServed", "StoreFailed"),
  weightsHash: Schema.String,
  detail: Schema.String,
  attempts: Schema.Array(PeerAttempt)
}) {
  override get message() {
    const peers = this.attempts.map((a) => `${a.peer}: ${a.reason}: ${a.detail}`).join("; ")
    return `weights ${this.weightsHash}: ${this.reason}: ${this.detail}${peers === "" ? "" : ` (${peers})`}`
  }
}

export interface FetchedWeights {
  readonly weightsHash: string
  readonly sizeBytes: number
  /** The peer that served them; null when the node already held them. */
  readonly peer: string | null
  /** The peers tried before it, with their reasons. */
  readonly skipped: ReadonlyArray<PeerAttempt>
}

export interface FetchWeightsOptions {
  /** The largest weights taken (the node's `modelBytesMax`). */
  readonly sizeMax: number
  /** Each `blob.get` gives up after this (default 10 s). */
  readonly callTimeout?: Duration.DurationInput | undefined
  /** How to reach a peer (default: an RPC client of its URL, closed when that peer's attempt ends). */
  readonly connect?: ((peer: string) => Effect.Effect<Pick<NodeClient, "blob">, unknown, Scope.Scope>) | undefined
}

export const DEFAULT_FETCH_CALL_TIMEOUT = Duration.seconds(10)

/** A peer's failure, as the attempt records it. */
class PeerFailed extends Schema.TaggedError<PeerFailed>()("PeerFailed", {
  reason: PeerFailureReason,
  detail: Schema.String
}) {}

/** The innermost readable reason of a transport failure (ECONNREFUSED, ...). */
const transportText = (e: unknown): string => {
  const messages: Array<string> = []
  let current: unknown = e
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const message = (current as { readonly message?: unknown }).message
    if (typeof message === "string" && message !== "" && !message.startsWith("An error has occurred")) messages.push(message)
    const next = current as { readonly cause?: unknown; readonly error?: unknown }
    current = next.cause ?? next.error
  }
  return messages[messages.length - 1] ?? String(e)
}

const callFailure = (e: unknown): PeerFailed => {
  if (e instanceof PeerFailed) return e
  if (e instanceof RpcClientError) return new PeerFailed({ reason: "Unreachable", detail: transportText(e) })
  const tag = typeof e === "object" && e !== null && "_tag" in e ? String(e._tag) : ""
  const message = typeof e === "object" && e !== null && "message" in e ? String(e.message) : String(e)
  return new PeerFailed({ reason: tag === "NotFound" ? "NotFound" : "Refused", detail: message })
}

/** One peer: the weights streamed into the blob store, or why not. */
const fetchFrom = (
  peer: string,
  weightsHash: string,
  sizeBytes: number,
  options: FetchWeightsOptions
): Effect.Effect<void, PeerFailed | WeightsUnavailable, BlobStore> =>
  Effect.gen(function* () {
    const blobs = yield* BlobStore
    const timeout = Duration.decode(options.callTimeout ?? DEFAULT_FETCH_CALL_TIMEOUT)
    const client = yield* (options.connect ?? makeClient)(peer).pipe(Effect.mapError(callFailure))
    const chunks = Stream.paginateEffect(0, (offset: number) =>
      client.blob.get({ hash: weightsHash, offset, length: BLOB_CHUNK_BYTES }).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => new PeerFailed({ reason: "TimedOut", detail: `blob.get at ${offset}: no answer within ${Duration.toMillis(timeout)} ms` }) }),
        Effect.mapError(callFailure),
        Effect.flatMap(({ data, size }) => {
          if (size !== sizeBytes) {
            return Effect.fail(new PeerFailed({ reason: "SizeMismatch", detail: `the peer holds ${size} bytes, the registration declares ${sizeBytes}` }))
          }
          if (data.length > 4 * Math.ceil(BLOB_CHUNK_BYTES / 3)) {
            return Effect.fail(new PeerFailed({ reason: "BadChunk", detail: `a chunk of ${data.length} base64 characters at ${offset}: more than ${BLOB_CHUNK_BYTES} bytes` }))
          }
          const bytes = new Uint8Array(Buffer.from(data, "base64"))
          if (bytes.length === 0 && offset < size) {
            return Effect.fail(new PeerFailed({ reason: "BadChunk", detail: `nothing at ${offset} of ${size}` }))
          }
          const next = offset + bytes.length
          return Effect.succeed([bytes, next < size ? Option.some(next) : Option.none()] as const)
        })
      )
    )
    // putStream counts against `sizeBytes` as it writes and keeps the file only if it hashes to `weightsHash`.
    const failed: { error: PeerFailed | undefined } = { error: undefined }
    yield* blobs
      .putStream(
        chunks.pipe(
          Stream.tapError((e) => Effect.sync(() => (failed.error = e))),
          Stream.mapError((e) => new BlobError({ reason: "Io", hash: weightsHash, detail: e.message }))
        ),
        weightsHash,
        sizeBytes
      )
      .pipe(
        Effect.mapError((e): PeerFailed | WeightsUnavailable => {
          if (failed.error !== undefined) return failed.error
          if (e.reason === "HashMismatch") return new PeerFailed({ reason: "HashMismatch", detail: e.detail })
          if (e.reason === "TooLarge") return new PeerFailed({ reason: "BadChunk", detail: `more than the declared ${sizeBytes} bytes` })
          return new WeightsUnavailable({ reason: "StoreFailed", weightsHash, detail: e.message, attempts: [] })
        })
      )
  }).pipe(Effect.scoped)

/**
 * The weights `weightsHash` of `sizeBytes` bytes into this node's blob store,
 * from the first of `peers` that serves them (by `blob.get`); at once if the
 * store already holds them.
 */
export const fetchWeightsFrom = (
  peers: ReadonlyArray<string>,
  weightsHash: string,
  sizeBytes: number,
  options: FetchWeightsOptions
): Effect.Effect<FetchedWeights, WeightsUnavailable, BlobStore> =>
  Effect.gen(function* () {
    const refuse = (reason: WeightsUnavailable["reason"], detail: string, attempts: ReadonlyArray<PeerAttempt> = []) =>
      new WeightsUnavailable({ reason, weightsHash, detail, attempts })
    if (!BLOB_HASH.test(weightsHash)) return yield* refuse("BadHash", "a weights hash is 0x + 64 lowercase hex digits (the file's sha256)")
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 1 || sizeBytes > options.sizeMax) {
      return yield* refuse("TooLarge", `the declared size ${sizeBytes} is not from 1 to ${options.sizeMax} bytes`)
    }
    const blobs = yield* BlobStore
    const held = yield* blobs.has(weightsHash).pipe(Effect.mapError((e) => refuse("StoreFailed", e.message)))
    if (held) return { weightsHash, sizeBytes, peer: null, skipped: [] }
    if (peers.length === 0) return yield* refuse("NoPeers", "no peer to fetch them from")
    const skipped: Array<PeerAttempt> = []
    for (const peer of peers) {
      const outcome = yield* Effect.either(fetchFrom(peer, weightsHash, sizeBytes, options))
      if (outcome._tag === "Right") return { weightsHash, sizeBytes, peer, skipped }
      const e = outcome.left
      if (e._tag === "WeightsUnavailable") return yield* refuse("StoreFailed", e.detail, skipped)
      skipped.push(new PeerAttempt({ peer, reason: e.reason, detail: e.detail }))
    }
    return yield* refuse("NoPeerServed", `none of ${peers.length} peer(s) served them`, skipped)
  })

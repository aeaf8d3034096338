/**
 * Content-addressed blobs (model weights, task outputs): stored under their
 * sha256, so an event can carry a hash and anyone can check the bytes. Reads
 * re-hash what they return: a file corrupted on disk is an error, never
 * silently wrong weights.
 */
import { Context, Schema } from "effect"
import type { Effect, Stream } from "effect"

export class BlobError extends Schema.TaggedError<BlobError>()("BlobError", {
  reason: Schema.Literal("NotFound", "Corrupt", "HashMismatch", "TooLarge", "BadHash", "Io"),
  hash: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `blob ${this.hash}: ${this.reason}: ${this.detail}`
  }
}

export interface BlobInfo {
  readonly hash: string
  readonly size: number
}

export interface BlobStoreShape {
  /** Store bytes; the hash is computed here. Idempotent. */
  readonly put: (bytes: Uint8Array) => Effect.Effect<BlobInfo, BlobError>
  /** Store a stream of chunks that must hash to `expectedHash` (checked before the blob becomes visible). */
  readonly putStream: (
    chunks: Stream.Stream<Uint8Array, BlobError>,
    expectedHash: string,
    sizeMax: number
  ) => Effect.Effect<BlobInfo, BlobError>
  /** The whole blob, verified against its hash. */
  readonly get: (hash: string) => Effect.Effect<Uint8Array, BlobError>
  readonly has: (hash: string) => Effect.Effect<boolean, BlobError>
  /** Where the blob lives on disk (for loaders that read files themselves, e.g. onnxruntime). */
  readonly path: (hash: string) => Effect.Effect<string, BlobError>
}

export class BlobStore extends Context.Tag("topai/BlobStore")<BlobStore, BlobStoreShape>() {}

/** 0x + 64 lowercase hex, as every hash in topai. */
export const BLOB_HASH = /^0x[0-9a-f]{64}$/

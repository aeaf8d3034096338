/**
 * What can be asked of a model (the ModelActor's messages) and the typed
 * error each command fails with. Every error carries a `reason` literal (what
 * a caller branches on) and a human-readable `detail`.
 */
import type { OverrunRejected, RecordOverrun } from "./overruns.js"
import { Schema } from "effect"
import { TimestampMs } from "../../chain/block.js"
import { Hash32 } from "../../chain/hash.js"
import { Address } from "../../chain/keys.js"
import { Uint256 } from "../../chain/transaction.js"
import { ModelManifest } from "../manifest.js"
import { ModelVerdict } from "../verdict.js"
import { GpuClassTable } from "../worker/gpuClass.js"
import { ModelId, PositiveInt, SizeBytes } from "./events.js"

/**
 * The verification rules in force, from the chain's configuration. An upload
 * records them in `ModelUploaded`; later changes do not touch Pending models.
 */
export const ModelRules = Schema.Struct({
  /** The AI shard's validators (one on the devnet). */
  validators: Schema.Array(Address),
  /** k: agreeing attestations that decide, 1 ≤ k ≤ validators. */
  attestationQuorum: PositiveInt,
  /** From upload to the deadline after which a Pending model may be expired. */
  verificationTimeoutMs: PositiveInt,
  gpuClasses: GpuClassTable
})
export type ModelRules = typeof ModelRules.Type

// ---------------------------------------------------------------- commands

export class UploadModel extends Schema.TaggedClass<UploadModel>()("UploadModel", {
  /** The hash of the upload transaction. */
  modelId: ModelId,
  provider: Address,
  manifest: ModelManifest,
  weightsHash: Hash32,
  sizeBytes: SizeBytes,
  at: TimestampMs
}) {}

export class AttestModel extends Schema.TaggedClass<AttestModel>()("AttestModel", {
  validator: Address,
  verdict: ModelVerdict,
  at: TimestampMs
}) {}

/** A validator is about to verify the file: records the attempt, or ends the attempts (see decide.ts). */
export class BeginVerification extends Schema.TaggedClass<BeginVerification>()("BeginVerification", {
  validator: Address,
  at: TimestampMs
}) {}

export class UpdatePrice extends Schema.TaggedClass<UpdatePrice>()("UpdatePrice", {
  provider: Address,
  price: Uint256
}) {}

export class DeprecateModel extends Schema.TaggedClass<DeprecateModel>()("DeprecateModel", {
  provider: Address
}) {}

/** Sent by a timer: a model still Pending at `at` ≥ its deadline ends Rejected. */
export class ExpireVerification extends Schema.TaggedClass<ExpireVerification>()("ExpireVerification", {
  at: TimestampMs
}) {}

export type ModelCommand = UploadModel | BeginVerification | AttestModel | UpdatePrice | DeprecateModel | ExpireVerification | RecordOverrun

// ---------------------------------------------------------------- errors

export class UploadRejected extends Schema.TaggedError<UploadRejected>()("UploadRejected", {
  reason: Schema.Literal("AlreadyUploaded", "UnknownGpuClass"),
  detail: Schema.String
}) {
  override get message(): string {
    return `upload rejected, ${this.reason}: ${this.detail}`
  }
}

export class AttestationRejected extends Schema.TaggedError<AttestationRejected>()("AttestationRejected", {
  reason: Schema.Literal("ModelAbsent", "NotPending", "NotAValidator", "AlreadyAttested", "WrongModel", "DeadlinePassed"),
  detail: Schema.String
}) {
  override get message(): string {
    return `attestation rejected, ${this.reason}: ${this.detail}`
  }
}

export class PriceUpdateRejected extends Schema.TaggedError<PriceUpdateRejected>()("PriceUpdateRejected", {
  reason: Schema.Literal("ModelAbsent", "NotProvider", "ModelRejected", "ModelDeprecated"),
  detail: Schema.String
}) {
  override get message(): string {
    return `price update rejected, ${this.reason}: ${this.detail}`
  }
}

export class DeprecationRejected extends Schema.TaggedError<DeprecationRejected>()("DeprecationRejected", {
  reason: Schema.Literal("ModelAbsent", "NotProvider", "NotVerified", "AlreadyDeprecated"),
  detail: Schema.String
}) {
  override get message(): string {
    return `deprecation rejected, ${this.reason}: ${this.detail}`
  }
}

export class ExpiryRejected extends Schema.TaggedError<ExpiryRejected>()("ExpiryRejected", {
  reason: Schema.Literal("ModelAbsent", "NotPending", "DeadlineNotReached"),
  detail: Schema.String
}) {
  override get message(): string {
    return `expiry rejected, ${this.reason}: ${this.detail}`
  }
}

export type ModelError = UploadRejected | AttestationRejected | PriceUpdateRejected | DeprecationRejected | ExpiryRejected | OverrunRejected

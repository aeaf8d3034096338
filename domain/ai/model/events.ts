/**
 * The events of one model's stream (`model-{id}`), the ModelActor's facts:
 * upload, each validator's attestation, the verdict of the quorum, price
 * changes and deprecation.
 *
 * `ModelUploaded` records the verification rules in force at upload (the
 * validator set, the quorum, the deadline), so a replay never depends on
 * today's configuration.
 */
import { ModelOverran, ModelSuspended } from "./overruns.js"
import { Schema } from "effect"
import { TimestampMs } from "../../chain/block.js"
import { Hash32 } from "../../chain/hash.js"
import { Address } from "../../chain/keys.js"
import { Uint256 } from "../../chain/transaction.js"
import { ModelManifest } from "../manifest.js"
import { ModelVerdict, RejectionCheck } from "../verdict.js"

/** A model is named by the hash of its upload transaction. */
export const ModelId = Hash32
export type ModelId = typeof ModelId.Type

export const SizeBytes = Schema.Int.pipe(Schema.positive())
export const PositiveInt = Schema.Int.pipe(Schema.positive())

export class ModelUploaded extends Schema.TaggedClass<ModelUploaded>()("ModelUploaded", {
  modelId: ModelId,
  provider: Address,
  manifest: ModelManifest,
  /** sha256 of the ONNX file, as the blob store names it. */
  weightsHash: Hash32,
  sizeBytes: SizeBytes,
  at: TimestampMs,
  /** The validators whose attestations count, in the order configured. */
  validators: Schema.Array(Address),
  /** k: agreeing attestations that decide. */
  attestationQuorum: PositiveInt,
  /** A model still Pending at this time may be expired (rejected). */
  verificationDeadline: TimestampMs
}) {}

/** One validator's verdict on the file. */
export class ModelAttested extends Schema.TaggedClass<ModelAttested>()("ModelAttested", {
  validator: Address,
  verdict: ModelVerdict,
  at: TimestampMs
}) {}

/**
 * A validator starts verifying the file: recorded before the sandbox runs,
 * so that a verification that kills the node is counted when the node
 * starts again (see `VERIFICATION_ATTEMPTS_MAX` in decide.ts).
 */
export class VerificationAttempted extends Schema.TaggedClass<VerificationAttempted>()("VerificationAttempted", {
  validator: Address,
  /** 1 for the validator's first attempt. */
  attempt: PositiveInt,
  at: TimestampMs
}) {}

export class ModelVerified extends Schema.TaggedClass<ModelVerified>()("ModelVerified", {
  /** The fingerprint of the outputs on the seeded inputs that k validators agree on. */
  referenceFingerprint: Hash32,
  /** The k (or more) validators that attested that fingerprint. */
  agreeing: Schema.Array(Address),
  /** Validators that had attested otherwise (another fingerprint, or a rejection) by then. */
  dissenting: Schema.Array(Address),
  at: TimestampMs
}) {}

/**
 * Why a model ended rejected:
 *   Attested          k validators rejected it (`check` is the most common of their checks)
 *   Nondeterministic  validators accepted it with different fingerprints, so no fingerprint can reach k
 *   NoQuorum          no side can reach k any more (acceptances and rejections split)
 *   TimedOut          the deadline passed with the model still Pending
 */
export const RejectionCause = Schema.Literal("Attested", "Nondeterministic", "NoQuorum", "TimedOut")
export type RejectionCause = typeof RejectionCause.Type

/**
 * The model's end when not verified. Not to be confused with the validator's
 * verdict of the same tag (verdict.ts), which travels inside `ModelAttested`.
 */
export class ModelRejected extends Schema.TaggedClass<ModelRejected>()("ModelRejected", {
  cause: RejectionCause,
  check: Schema.NullOr(RejectionCheck),
  /** Human-readable: what failed and what the provider can change. */
  reason: Schema.String,
  at: TimestampMs
}) {}

export class ModelPriceUpdated extends Schema.TaggedClass<ModelPriceUpdated>()("ModelPriceUpdated", {
  /** Per call, in TOP base units. */
  price: Uint256
}) {}

/** No new tasks; the model's history stays. */
export class ModelDeprecated extends Schema.TaggedClass<ModelDeprecated>()("ModelDeprecated", {}) {}

export const ModelEvent = Schema.Union(
  ModelOverran,
  ModelSuspended,
  ModelUploaded,
  VerificationAttempted,
  ModelAttested,
  ModelVerified,
  ModelRejected,
  ModelPriceUpdated,
  ModelDeprecated
)
export type ModelEvent = typeof ModelEvent.Type

/**
 * The outcomes of verification, as data events can carry: a smoke run's
 * verdict and a validator's verdict on a model. Every way a model can fail
 * has a `check` literal and a human-readable `reason`.
 */
import { Schema } from "effect"
import { Hash32 } from "../chain/hash.js"
import { StaticCheck } from "./legitimacy.js"
import { ElemType } from "./tensor.js"
import { ModelSignature } from "./signature.js"

export const OutputSummary = Schema.Struct({
  name: Schema.String,
  type: ElemType,
  dims: Schema.Array(Schema.Int),
  /** Over the elements, as numbers (NaN when there are none). */
  min: Schema.Number,
  max: Schema.Number,
  mean: Schema.Number
})
export type OutputSummary = typeof OutputSummary.Type

export class SmokePassed extends Schema.TaggedClass<SmokePassed>()("SmokePassed", {
  fingerprint: Hash32,
  outputs: Schema.Array(OutputSummary),
  /** Session creation in the child, then the one run. */
  loadMillis: Schema.Number,
  runMillis: Schema.Number,
  /** From spawn to result, child startup included. */
  totalMillis: Schema.Number,
  /** The child's peak resident set (VmHWM), 0 where /proc is not available. */
  peakRssBytes: Schema.Number
}) {}

export const SmokeFailureReason = Schema.Literal(
  "SpawnFailed",
  "LoadFailed",
  "RunFailed",
  "Timeout",
  "MemoryLimit",
  "NonFiniteOutput",
  "OutputTooLarge",
  "BadOutput",
  "Crashed",
  /** Two runs on the same inputs gave outputs that differ, bit for bit. */
  "Nondeterministic"
)
export type SmokeFailureReason = typeof SmokeFailureReason.Type

export class SmokeFailed extends Schema.TaggedClass<SmokeFailed>()("SmokeFailed", {
  reason: SmokeFailureReason,
  detail: Schema.String,
  totalMillis: Schema.Number,
  peakRssBytes: Schema.Number
}) {}

export const SmokeVerdict = Schema.Union(SmokePassed, SmokeFailed)
export type SmokeVerdict = typeof SmokeVerdict.Type

export const RejectionCheck = Schema.Union(
  /** VerificationCrashed: this validator's verification never finished, attempt after attempt (model/decide.ts). */
  Schema.Literal("HashMismatch", "Denylisted", "VerifierFailed", "VerificationCrashed"),
  StaticCheck,
  SmokeFailureReason
)
export type RejectionCheck = typeof RejectionCheck.Type

export class ModelAccepted extends Schema.TaggedClass<ModelAccepted>()("ModelAccepted", {
  modelHash: Hash32,
  sizeBytes: Schema.Number,
  signature: ModelSignature,
  /** The fingerprint of the outputs on the seeded inputs (seed: the model hash). */
  referenceFingerprint: Hash32,
  smoke: SmokePassed
}) {}

export class ModelRejected extends Schema.TaggedClass<ModelRejected>()("ModelRejected", {
  /** The hash the provider declared. */
  modelHash: Schema.String,
  check: RejectionCheck,
  reason: Schema.String
}) {}

export const ModelVerdict = Schema.Union(ModelAccepted, ModelRejected)
export type ModelVerdict = typeof ModelVerdict.Type

/** Min, max and mean of each output (in name order), for the verdict and the logs. */
export const summarizeOutputs = (outputs: Readonly<Record<string, { readonly type: ElemType; readonly dims: ReadonlyArray<number>; readonly data: ArrayLike<number | bigint> }>>): ReadonlyArray<OutputSummary> =>
  Object.keys(outputs)
    .sort()
    .map((name) => {
      const t = outputs[name]!
      let min = Infinity
      let max = -Infinity
      let sum = 0
      for (let i = 0; i < t.data.length; i++) {
        const x = Number(t.data[i]!)
        if (x < min) min = x
        if (x > max) max = x
        sum += x
      }
      const n = t.data.length
      return { name, type: t.type, dims: [...t.dims], min: n === 0 ? NaN : min, max: n === 0 ? NaN : max, mean: n === 0 ? NaN : sum / n }
    })

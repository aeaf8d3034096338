/**
 * The ModelActor's rules: one model's upload, verification quorum, price and
 * deprecation, as a decider.
 *
 * Verification. The validators in `ModelUploaded` each attest once, while the
 * model is Pending and before its deadline. After every attestation the
 * tally is checked, in this order:
 *
 *   1. k validators accepted with the same reference fingerprint → ModelVerified
 *   2. k validators rejected                                     → ModelRejected (Attested)
 *   3. neither can reach k any more, counting every validator
 *      still to attest on its side                               → ModelRejected
 *        (Nondeterministic when accepted fingerprints differ, else NoQuorum)
 *   4. otherwise the model stays Pending.
 *
 * Verification attempts. A validator records `BeginVerification` before it
 * runs the sandbox. Should the verification kill the node, the node starts
 * again, replays the Pending model and would verify it again — and die
 * again. So after `VERIFICATION_ATTEMPTS_MAX` recorded attempts without an
 * attestation, `BeginVerification` attests for the validator instead: a
 * rejection, check VerificationCrashed, reason "verification crashed ...".
 *
 * So a model never stays Pending once all validators have attested: with
 * none outstanding, rule 3 holds whenever 1 and 2 do not. And it never stays
 * Pending past its deadline: `ExpireVerification` rejects it (TimedOut).
 *
 * Conflicting fingerprints. Honest validators run the same seeded inputs,
 * so accepted attestations with different fingerprints mean the model's
 * outputs differ between machines beyond its tolerance (or a validator
 * lies). A minority fingerprint does not block a quorum — the dissenters are
 * named in `ModelVerified` — but as soon as the split makes a quorum
 * impossible the model is rejected as Nondeterministic: its quorum tasks
 * would dispute for ever. With k > n/2 (the usual setting), two different
 * fingerprints can never both be verified.
 */
import { Either } from "effect"
import type { Hash32 } from "../../chain/hash.js"
import type { Address } from "../../chain/keys.js"
import type { Decider } from "../../Decider.js"
import type { RejectionCheck } from "../verdict.js"
import { coefficientOf } from "../worker/gpuClass.js"
import {
  AttestationRejected,
  DeprecationRejected,
  ExpiryRejected,
  PriceUpdateRejected,
  UploadRejected,
  type AttestModel,
  type BeginVerification,
  type DeprecateModel,
  type ExpireVerification,
  type ModelCommand,
  type ModelError,
  type ModelRules,
  type UpdatePrice,
  type UploadModel
} from "./commands.js"
import {
  ModelAttested,
  ModelDeprecated,
  ModelPriceUpdated,
  ModelRejected,
  ModelUploaded,
  ModelVerified,
  VerificationAttempted,
  type ModelEvent
} from "./events.js"
import { ModelRejected as RejectedVerdict } from "../verdict.js"
import { decideOverrun } from "./overruns.js"
import { evolve, hasAttested, initialModelState, type ModelState } from "./state.js"
import { invariantsOf, type Assert, unreachable } from "../../assert.js"

export { evolve, initialModelState, isServable, type ModelState, type ModelStatus } from "./state.js"

type Decision<E> = Either.Either<ReadonlyArray<ModelEvent>, E>

// ---------------------------------------------------------------- the tally

/** The attestations so far, counted. */
export interface Tally {
  /** Accepting validators per reference fingerprint, fingerprints in order of first attestation. */
  readonly accepted: ReadonlyMap<Hash32, ReadonlyArray<Address>>
  /** The rejecting attestations, in arrival order. */
  readonly rejected: ReadonlyArray<ModelAttested>
  /** Validators yet to attest. */
  readonly outstanding: number
}

export const tallyOf = (s: ModelState): Tally => {
  const accepted = new Map<Hash32, Array<Address>>()
  const rejected: Array<ModelAttested> = []
  for (const a of s.attestations) {
    const v = a.verdict
    if (v._tag === "ModelAccepted") {
      const group = accepted.get(v.referenceFingerprint)
      if (group === undefined) accepted.set(v.referenceFingerprint, [a.validator])
      else group.push(a.validator)
    } else {
      rejected.push(a)
    }
  }
  const validators = s.upload === null ? 0 : s.upload.validators.length
  return { accepted, rejected, outstanding: validators - s.attestations.length }
}

/** The most common check among rejections (the earliest on a tie), with its first reason. */
const commonCheck = (rejected: ReadonlyArray<ModelAttested>): { check: RejectionCheck; reason: string; others: string } | null => {
  const counts = new Map<RejectionCheck, { count: number; reason: string }>()
  for (const a of rejected) {
    if (a.verdict._tag !== "ModelRejected") continue
    const seen = counts.get(a.verdict.check)
    if (seen === undefined) counts.set(a.verdict.check, { count: 1, reason: a.verdict.reason })
    else seen.count++
  }
  let best: [RejectionCheck, { count: number; reason: string }] | null = null
  for (const entry of counts) if (best === null || entry[1].count > best[1].count) best = entry
  if (best === null) return null
  const others = [...counts].filter(([c]) => c !== best[0]).map(([c, { count }]) => `${c} ×${count}`)
  return { check: best[0], reason: best[1].reason, others: others.length === 0 ? "" : ` (also: ${others.join(", ")})` }
}

/** The verdict of the tally under rules 1–3 of the module doc, or null while the model stays Pending. */
export const verdictOf = (s: ModelState, at: number): ModelVerified | ModelRejected | null => {
  const upload = s.upload
  if (upload === null) return null
  const k = upload.attestationQuorum
  const n = upload.validators.length
  const { accepted, rejected, outstanding } = tallyOf(s)
  let largest = 0
  for (const [fingerprint, agreeing] of accepted) {
    if (agreeing.length >= k) {
      const dissenting = s.attestations.map((a) => a.validator).filter((v) => !agreeing.includes(v))
      return new ModelVerified({ referenceFingerprint: fingerprint, agreeing, dissenting, at })
    }
    largest = Math.max(largest, agreeing.length)
  }
  const common = commonCheck(rejected)
  if (rejected.length >= k && common !== null) {
    const reason = `rejected by ${rejected.length} of ${n} validators: ${common.check}: ${common.reason}${common.others}`
    return new ModelRejected({ cause: "Attested", check: common.check, reason, at })
  }
  if (largest + outstanding >= k || rejected.length + outstanding >= k) return null
  if (accepted.size >= 2) {
    const counts = [...accepted].map(([f, vs]) => `${f.slice(0, 10)}… ×${vs.length}`).join(", ")
    const reason =
      `validators accepted the model with ${accepted.size} different output fingerprints (${counts}), ` +
      `so none can reach ${k} of ${n}: its outputs on the seeded inputs differ between machines beyond the ` +
      `tolerance ${upload.manifest.outputTolerance}; raise outputTolerance or avoid nondeterministic operators`
    return new ModelRejected({ cause: "Nondeterministic", check: null, reason, at })
  }
  const rejections = common === null ? "" : ` (${common.check}: ${common.reason}${common.others})`
  const reason =
    `validators disagree: ${s.attestations.length - rejected.length} accepted, ${rejected.length} rejected${rejections}, ` +
    `${outstanding} outstanding; neither side can reach ${k} of ${n}`
  return new ModelRejected({ cause: "NoQuorum", check: common?.check ?? null, reason, at })
}

// ---------------------------------------------------------------- decide, one function per command

const decideUpload = (rules: ModelRules, s: ModelState, cmd: UploadModel): Decision<UploadRejected> => {
  const reject = (reason: UploadRejected["reason"], detail: string) => Either.left(new UploadRejected({ reason, detail }))
  if (s.upload !== null) return reject("AlreadyUploaded", `model ${s.upload.modelId} is ${s.status}`)
  const minGpuClass = cmd.manifest.minGpuClass
  if (coefficientOf(rules.gpuClasses, minGpuClass) === undefined) {
    return reject("UnknownGpuClass", `minimum GPU class "${minGpuClass}" is not one of ${Object.keys(rules.gpuClasses).join(", ")}`)
  }
  const { modelId, provider, manifest, weightsHash, sizeBytes, at } = cmd
  return Either.right([
    new ModelUploaded({
      modelId,
      provider,
      manifest,
      weightsHash,
      sizeBytes,
      at,
      validators: rules.validators,
      attestationQuorum: rules.attestationQuorum,
      verificationDeadline: at + rules.verificationTimeoutMs
    })
  ])
}

/** Verification attempts a validator records before its next one attests "verification crashed" instead. */
export const VERIFICATION_ATTEMPTS_MAX = 3

/** Why `validator` may not attest (or begin to verify) now, if it may not. */
const attestationRefusal = (s: ModelState, validator: Address, at: number): AttestationRejected | undefined => {
  const reject = (reason: AttestationRejected["reason"], detail: string) => new AttestationRejected({ reason, detail })
  const upload = s.upload
  if (upload === null) return reject("ModelAbsent", "no model was uploaded on this stream")
  if (s.status !== "Pending") return reject("NotPending", `model ${upload.modelId} is already ${s.status}`)
  if (!upload.validators.includes(validator)) return reject("NotAValidator", `${validator} is not a validator of this model`)
  if (hasAttested(s, validator)) return reject("AlreadyAttested", `${validator} has attested already`)
  if (at >= upload.verificationDeadline) return reject("DeadlinePassed", `attested at ${at}, the deadline was ${upload.verificationDeadline}`)
  return undefined
}

/** An attestation and, if it decides the tally, the model's end. */
const attestation = (s: ModelState, attested: ModelAttested, at: number): ReadonlyArray<ModelEvent> => {
  const verdict = verdictOf(evolve(s, attested), at)
  return verdict === null ? [attested] : [attested, verdict]
}

const decideBegin = (s: ModelState, cmd: BeginVerification): Decision<AttestationRejected> => {
  const refusal = attestationRefusal(s, cmd.validator, cmd.at)
  if (refusal !== undefined) return Either.left(refusal)
  const upload = s.upload!
  const attempts = s.attempts.get(cmd.validator) ?? 0
  if (attempts < VERIFICATION_ATTEMPTS_MAX) {
    return Either.right([new VerificationAttempted({ validator: cmd.validator, attempt: attempts + 1, at: cmd.at })])
  }
  const verdict = new RejectedVerdict({
    modelHash: upload.weightsHash,
    check: "VerificationCrashed",
    reason: `verification crashed: ${attempts} attempts by this validator began and never finished`
  })
  return Either.right(attestation(s, new ModelAttested({ validator: cmd.validator, verdict, at: cmd.at }), cmd.at))
}

const decideAttest = (s: ModelState, cmd: AttestModel): Decision<AttestationRejected> => {
  const reject = (reason: AttestationRejected["reason"], detail: string) =>
    Either.left(new AttestationRejected({ reason, detail }))
  const refusal = attestationRefusal(s, cmd.validator, cmd.at)
  if (refusal !== undefined && refusal.reason !== "DeadlinePassed") return Either.left(refusal)
  const upload = s.upload!
  if (cmd.verdict.modelHash !== upload.weightsHash) {
    return reject("WrongModel", `the verdict is on ${cmd.verdict.modelHash}, the model's weights are ${upload.weightsHash}`)
  }
  if (refusal !== undefined) return Either.left(refusal)
  return Either.right(attestation(s, new ModelAttested({ validator: cmd.validator, verdict: cmd.verdict, at: cmd.at }), cmd.at))
}

const decideUpdatePrice = (s: ModelState, cmd: UpdatePrice): Decision<PriceUpdateRejected> => {
  const reject = (reason: PriceUpdateRejected["reason"], detail: string) =>
    Either.left(new PriceUpdateRejected({ reason, detail }))
  const upload = s.upload
  if (upload === null) return reject("ModelAbsent", "no model was uploaded on this stream")
  if (cmd.provider !== upload.provider) return reject("NotProvider", `${cmd.provider} is not the provider ${upload.provider}`)
  if (s.status === "Rejected") return reject("ModelRejected", `model ${upload.modelId} was rejected`)
  if (s.deprecated) return reject("ModelDeprecated", `model ${upload.modelId} is deprecated`)
  return Either.right([new ModelPriceUpdated({ price: cmd.price })])
}

const decideDeprecate = (s: ModelState, cmd: DeprecateModel): Decision<DeprecationRejected> => {
  const reject = (reason: DeprecationRejected["reason"], detail: string) =>
    Either.left(new DeprecationRejected({ reason, detail }))
  const upload = s.upload
  if (upload === null) return reject("ModelAbsent", "no model was uploaded on this stream")
  if (cmd.provider !== upload.provider) return reject("NotProvider", `${cmd.provider} is not the provider ${upload.provider}`)
  if (s.status !== "Verified") return reject("NotVerified", `model ${upload.modelId} is ${s.status}; only a verified model is deprecated`)
  if (s.deprecated) return reject("AlreadyDeprecated", `model ${upload.modelId} is deprecated already`)
  return Either.right([new ModelDeprecated()])
}

const decideExpire = (s: ModelState, cmd: ExpireVerification): Decision<ExpiryRejected> => {
  const reject = (reason: ExpiryRejected["reason"], detail: string) => Either.left(new ExpiryRejected({ reason, detail }))
  const upload = s.upload
  if (upload === null) return reject("ModelAbsent", "no model was uploaded on this stream")
  if (s.status !== "Pending") return reject("NotPending", `model ${upload.modelId} is already ${s.status}`)
  if (cmd.at < upload.verificationDeadline) {
    return reject("DeadlineNotReached", `at ${cmd.at}, the deadline is ${upload.verificationDeadline}`)
  }
  const k = upload.attestationQuorum
  const n = upload.validators.length
  const reason =
    `verification timed out at ${cmd.at} (deadline ${upload.verificationDeadline}): ` +
    `${s.attestations.length} of ${n} validators attested, ${k} agreeing needed`
  return Either.right([new ModelRejected({ cause: "TimedOut", check: null, reason, at: cmd.at })])
}

export const decide = (rules: ModelRules, s: ModelState, cmd: ModelCommand): Decision<ModelError> => {
  switch (cmd._tag) {
    case "UploadModel":
      return decideUpload(rules, s, cmd)
    case "BeginVerification":
      return decideBegin(s, cmd)
    case "AttestModel":
      return decideAttest(s, cmd)
    case "UpdatePrice":
      return decideUpdatePrice(s, cmd)
    case "DeprecateModel":
      return decideDeprecate(s, cmd)
    case "ExpireVerification":
      return decideExpire(s, cmd)
    case "RecordOverrun":
      return decideOverrun(s, cmd)
    default:
      return unreachable(cmd, "model command")
  }
}

const assert: Assert = invariantsOf("model rules")

/** The ModelActor's decider under `rules` (asserted sound: a bad configuration is a bug, not an input). */
export const makeModelDecider = (rules: ModelRules): Decider<ModelState, ModelCommand, ModelEvent, ModelError> => {
  assert(rules.validators.length >= 1, "no validators")
  assert(new Set(rules.validators).size === rules.validators.length, "a validator listed twice")
  assert(rules.attestationQuorum >= 1, "quorum below 1")
  assert(rules.attestationQuorum <= rules.validators.length, `quorum ${rules.attestationQuorum} > ${rules.validators.length} validators`)
  return { initialState: initialModelState, decide: (s, cmd) => decide(rules, s, cmd), evolve }
}

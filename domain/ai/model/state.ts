/**
 * One model's state and how each event changes it (`evolve`). A model is
 * Absent until uploaded, then Pending until the validators' quorum (or the
 * deadline) ends it Verified or Rejected; both ends are final. A Verified
 * model may be deprecated. Evolve asserts the lifecycle, so a corrupt stream
 * stops a replay instead of yielding a wrong model.
 */
import type { Hash32 } from "../../chain/hash.js"
import type { Address } from "../../chain/keys.js"
import type { ModelAttested, ModelEvent, ModelRejected, ModelUploaded } from "./events.js"
import { evolveOverrun } from "./overruns.js"
import { invariantsOf, type Assert } from "../../assert.js"

export type ModelStatus = "Absent" | "Pending" | "Verified" | "Rejected"

export interface ModelState {
  readonly status: ModelStatus
  /** The upload's facts, null while Absent. */
  readonly upload: ModelUploaded | null
  /** Current price per call (the manifest's until updated). */
  readonly price: bigint
  /** In arrival order; at most one per validator. */
  readonly attestations: ReadonlyArray<ModelAttested>
  /** Verification attempts recorded per validator (VerificationAttempted). */
  readonly attempts: ReadonlyMap<Address, number>
  /** Set by `ModelVerified`. */
  readonly referenceFingerprint: Hash32 | null
  /** Set by `ModelRejected`. */
  readonly rejection: ModelRejected | null
  readonly deprecated: boolean
  /** Tasks stopped by a compute node's limits (overruns.ts), in order. */
  readonly overranTasks: ReadonlyArray<Hash32>
  /** Set by `ModelSuspended`: no new tasks. */
  readonly suspended: boolean
}

export const initialModelState: ModelState = {
  status: "Absent",
  upload: null,
  price: 0n,
  attestations: [],
  attempts: new Map(),
  referenceFingerprint: null,
  rejection: null,
  deprecated: false,
  overranTasks: [],
  suspended: false
}

/** A model developers can call: verified, not deprecated, not suspended. */
export const isServable = (s: ModelState): boolean => s.status === "Verified" && !s.deprecated && !s.suspended

export const hasAttested = (s: ModelState, validator: Address): boolean =>
  s.attestations.some((a) => a.validator === validator)

const assert: Assert = invariantsOf("model")

export const evolve = (s: ModelState, e: ModelEvent): ModelState => {
  switch (e._tag) {
    case "ModelUploaded":
      assert(s.status === "Absent", `upload of a model already ${s.status}`)
      assert(e.attestationQuorum >= 1, "quorum below 1")
      assert(e.attestationQuorum <= e.validators.length, `quorum ${e.attestationQuorum} of ${e.validators.length} validators`)
      assert(new Set(e.validators).size === e.validators.length, "a validator listed twice")
      return { ...s, status: "Pending", upload: e, price: e.manifest.pricePerCall }
    case "VerificationAttempted": {
      assert(s.status === "Pending" && s.upload !== null, `verification attempt on a ${s.status} model`)
      assert(s.upload.validators.includes(e.validator), `verification attempt by ${e.validator}, not a validator`)
      assert(!hasAttested(s, e.validator), `${e.validator} attempts after attesting`)
      assert(e.attempt === (s.attempts.get(e.validator) ?? 0) + 1, `attempt ${e.attempt} out of order`)
      return { ...s, attempts: new Map([...s.attempts, [e.validator, e.attempt]]) }
    }
    case "ModelAttested": {
      assert(s.status === "Pending" && s.upload !== null, `attestation on a ${s.status} model`)
      assert(s.upload.validators.includes(e.validator), `attestation by ${e.validator}, not a validator`)
      assert(!hasAttested(s, e.validator), `${e.validator} attested twice`)
      return { ...s, attestations: [...s.attestations, e] }
    }
    case "ModelVerified":
      assert(s.status === "Pending" && s.upload !== null, `verification of a ${s.status} model`)
      assert(s.upload.attestationQuorum <= e.agreeing.length, `verified by ${e.agreeing.length} < quorum`)
      return { ...s, status: "Verified", referenceFingerprint: e.referenceFingerprint }
    case "ModelRejected":
      assert(s.status === "Pending", `rejection of a ${s.status} model`)
      return { ...s, status: "Rejected", rejection: e }
    case "ModelPriceUpdated":
      assert(s.status === "Pending" || s.status === "Verified", `price update on a ${s.status} model`)
      assert(!s.deprecated, "price update on a deprecated model")
      return { ...s, price: e.price }
    case "ModelDeprecated":
      assert(s.status === "Verified", `deprecation of a ${s.status} model`)
      assert(!s.deprecated, "deprecated twice")
      return { ...s, deprecated: true }
    case "ModelOverran":
    case "ModelSuspended":
      return evolveOverrun(s, e, assert)
  }
}

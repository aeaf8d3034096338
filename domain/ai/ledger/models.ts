/**
 * The model registry and its committee verdicts.
 *
 *   model.register   Pending; id = the tx hash; price = the manifest's pricePerCall
 *   model.price      provider only, while Pending or Verified
 *   model.deprecate  provider only; tasks already served still settle
 *   model.attest     a member of the AI committee, once per model, Pending models only.
 *                    Verified when members holding > 2/3 of the committee's stake
 *                    attested verified with the same fingerprint; Rejected when
 *                    > 1/3 rejected (exactly 2/3, or exactly 1/3, is not enough).
 *   BlockEnd         a model still Pending ATTEST_DEADLINE_BLOCKS after its
 *                    registration is Rejected "deadline".
 * Only the current committee's attestations count, weighted by its stakes.
 */
import { Either, HashMap, Schema } from "effect"
import type { Hash32 } from "../../chain/hash.js"
import type { Address } from "../../chain/keys.js"
import type {
  ModelAttestPayload,
  ModelDeprecatePayload,
  ModelPricePayload,
  ModelRegisterPayload,
  Transaction
} from "../../chain/transaction.js"
import { ModelManifest } from "../manifest.js"
import type { AiContext, CommitteeSeat } from "./context.js"
import {
  AiModelDeprecated,
  AiModelRegistered,
  AiModelRejected,
  AiModelRepriced,
  AiModelVerified,
  ModelAttested,
  reject,
  type AiEvent,
  type AiRejection
} from "./events.js"
import { modelOf, type AiLedgerState, type AiModel, type Attestation } from "./state.js"

/** Blocks a model may stay Pending before it is Rejected "deadline". */
export const ATTEST_DEADLINE_BLOCKS = 600
export const DEADLINE_REASON = "deadline"

type Decision = Either.Either<ReadonlyArray<AiEvent>, AiRejection>

const decodeManifest = Schema.decodeUnknownEither(Schema.parseJson(ModelManifest))

export const decideRegister = (ctx: AiContext, tx: Transaction, p: ModelRegisterPayload): Decision => {
  const manifest = decodeManifest(p.manifest)
  if (Either.isLeft(manifest)) return Either.left(reject("BadManifest", `model.register manifest: ${manifest.left.message}`))
  return Either.right([
    new AiModelRegistered({
      model: tx.hash,
      provider: tx.sender,
      weightsHash: p.weightsHash,
      sizeBytes: p.sizeBytes,
      manifest: p.manifest,
      price: manifest.right.pricePerCall,
      registeredHeight: ctx.height
    })
  ])
}

const ownModel = (s: AiLedgerState, sender: Address, model: Hash32): Either.Either<AiModel, AiRejection> => {
  const m = modelOf(s, model)
  if (m === undefined) return Either.left(reject("UnknownModel", `no model ${model}`))
  if (m.provider !== sender) return Either.left(reject("NotProvider", `model ${model} is ${m.provider}'s, not ${sender}'s`))
  if (m.status === "Rejected" || m.status === "Deprecated") return Either.left(reject("ModelClosed", `model ${model} is ${m.status}`))
  return Either.right(m)
}

export const decidePrice = (s: AiLedgerState, tx: Transaction, p: ModelPricePayload): Decision =>
  Either.map(ownModel(s, tx.sender, p.model), () => [new AiModelRepriced({ model: p.model, price: p.price })])

export const decideDeprecate = (s: AiLedgerState, tx: Transaction, p: ModelDeprecatePayload): Decision =>
  Either.map(ownModel(s, tx.sender, p.model), () => [new AiModelDeprecated({ model: p.model })])

/** Stake of the committee members among `attestations` that pass `which`. */
const stakeOf = (committee: ReadonlyArray<CommitteeSeat>, attestations: HashMap.HashMap<Address, Attestation>, which: (a: Attestation) => boolean): bigint =>
  committee.reduce((sum, seat) => {
    const a = HashMap.get(attestations, seat.address)
    return a._tag === "Some" && which(a.value) ? sum + seat.stake : sum
  }, 0n)

/** The committee's verdict on `m`'s attestations, if it has reached one. */
export const verdictOf = (
  committee: ReadonlyArray<CommitteeSeat>,
  attestations: HashMap.HashMap<Address, Attestation>
): { readonly verdict: "verified"; readonly fingerprint: Hash32 } | { readonly verdict: "rejected"; readonly rejected: bigint; readonly total: bigint } | null => {
  const total = committee.reduce((sum, seat) => sum + seat.stake, 0n)
  if (total === 0n) return null
  const fingerprints = new Set<Hash32>()
  for (const a of HashMap.values(attestations)) if (a.fingerprint !== null) fingerprints.add(a.fingerprint)
  for (const f of [...fingerprints].sort()) {
    if (3n * stakeOf(committee, attestations, (a) => a.verdict === "verified" && a.fingerprint === f) > 2n * total) {
      return { verdict: "verified", fingerprint: f }
    }
  }
  const rejected = stakeOf(committee, attestations, (a) => a.verdict === "rejected")
  return 3n * rejected > total ? { verdict: "rejected", rejected, total } : null
}

export const decideAttest = (s: AiLedgerState, ctx: AiContext, tx: Transaction, p: ModelAttestPayload): Decision => {
  const seat = ctx.committee.find((c) => c.address === tx.sender)
  if (seat === undefined) return Either.left(reject("NotCommitteeMember", `${tx.sender} is not a member of the AI shard's committee`))
  const m = modelOf(s, p.model)
  if (m === undefined) return Either.left(reject("UnknownModel", `no model ${p.model}`))
  if (m.status !== "Pending") return Either.left(reject("NotPending", `model ${p.model} is ${m.status}`))
  if (HashMap.has(m.attestations, tx.sender)) return Either.left(reject("AlreadyAttested", `${tx.sender} already attested model ${p.model}`))
  const attestation: Attestation =
    p.verdict === "verified" ? { verdict: "verified", fingerprint: p.fingerprint, reason: null } : { verdict: "rejected", fingerprint: null, reason: p.reason }
  const attested = new ModelAttested({ model: p.model, validator: tx.sender, ...attestation })
  const v = verdictOf(ctx.committee, HashMap.set(m.attestations, tx.sender, attestation))
  if (v === null) return Either.right([attested])
  if (v.verdict === "verified") {
    return Either.right([attested, new AiModelVerified({ model: p.model, provider: m.provider, fingerprint: v.fingerprint, at: ctx.timestamp })])
  }
  return Either.right([attested, new AiModelRejected({ model: p.model, reason: `rejected by members holding ${v.rejected} of ${v.total} stake` })])
}

/** Pending models past their deadline at this block, in id order. */
export const decideDeadlines = (s: AiLedgerState, ctx: AiContext): ReadonlyArray<AiEvent> =>
  [...s.pending]
    .filter(([, registeredHeight]) => ctx.height >= registeredHeight + ATTEST_DEADLINE_BLOCKS)
    .map(([model]) => model)
    .sort()
    .map((model) => new AiModelRejected({ model, reason: DEADLINE_REASON }))

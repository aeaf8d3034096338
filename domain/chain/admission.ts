/**
 * Admission of a signed transaction into a shard's mempool, pure. The node
 * runs, in order: `decodeForAdmission` (bytes → transaction), the cheap
 * `precheckTransaction`, the signature check (the `SignatureVerifier`
 * service, the one costly step, done once per transaction), then
 * `admitTransaction` with its result. Each failure is one typed reason.
 */
import { Either, Schema } from "effect"
import { Hash32 } from "./hash.js"
import type { LedgerState } from "./ledger.js"
import { accountOf } from "./ledger.js"
import { hasTransaction, isFull, pendingOf, type Mempool } from "./mempool.js"
import { decodeTransaction, type Transaction } from "./transaction.js"
import { checkTransaction, TransactionCheckReason } from "./txRules.js"
import { checkValidatorTransaction } from "./validatorRegistry.js"
import { aiContextOf } from "./aiContext.js"
import { decideAi } from "../ai/ledger/decide.js"
import { AiRejectionReason } from "../ai/ledger/events.js"

/** Admission refuses for the ledger's own reasons (`TransactionCheckReason`: the same check) and its own. */
export const AdmissionReason = Schema.Literal(
  "Malformed",
  "Oversized",
  "ShardNotReady",
  "AlreadyPending",
  ...TransactionCheckReason.literals,
  // the AI ledger's refusals of an AI-shard kind, judged against the shard's state as it stands
  ...AiRejectionReason.literals,
  "MempoolFull",
  "BadSignature"
)
export type AdmissionReason = typeof AdmissionReason.Type

export class AdmissionRejected extends Schema.TaggedError<AdmissionRejected>()("AdmissionRejected", {
  reason: AdmissionReason,
  /** Absent when the bytes did not decode. */
  txHash: Schema.optional(Hash32),
  detail: Schema.String
}) {
  override get message(): string {
    return `transaction not admitted, ${this.reason}: ${this.detail}`
  }
}

const reject = (reason: AdmissionReason, detail: string, txHash?: Hash32) =>
  Either.left(new AdmissionRejected(txHash === undefined ? { reason, detail } : { reason, detail, txHash }))

export const decodeForAdmission = (bytes: Uint8Array): Either.Either<Transaction, AdmissionRejected> => {
  const tx = decodeTransaction(bytes)
  if (Either.isRight(tx)) return Either.right(tx.right)
  return tx.left._tag === "OversizedTransaction" ? reject("Oversized", tx.left.message) : reject("Malformed", tx.left.detail)
}

/** Everything but the signature, in order: cheap, so it runs before the verifier. */
export const precheckTransaction = (
  state: LedgerState,
  pool: Mempool,
  tx: Transaction
): Either.Either<void, AdmissionRejected> => {
  if (state.chain === null) return reject("ShardNotReady", `shard ${state.shard} has no genesis yet`, tx.hash)
  if (hasTransaction(pool, tx.hash)) return reject("AlreadyPending", `${tx.hash} is already pending`, tx.hash)
  const account = accountOf(state, tx.sender)
  const pending = pendingOf(pool, tx.sender)
  const spendable = account.balance - pending.spend
  const ai = aiContextOf(state, state.height + 1, state.lastTimestamp)
  const check = Either.flatMap(
    checkTransaction(state.chain, { nextNonce: account.nonce + BigInt(pending.count), spendable }, tx),
    (): Either.Either<unknown, { readonly reason: AdmissionReason; readonly detail: string }> =>
      ai !== null // the AI shard: what its ledger would refuse now (bonds and all), without the pending transactions
        ? (tx.body.payload.kind === "usage.settle" || tx.body.payload.kind === "usage.overran") && ai.committee.some((m) => m.address === tx.sender)
          ? Either.right(undefined) // a member's settle or overran charge: per-receipt signature checks are execution's, not the door's
          : decideAi(state.ai!, ai, { _tag: "Tx", tx })
        : checkValidatorTransaction(state, spendable, tx)
  )
  if (Either.isLeft(check)) return reject(check.left.reason, check.left.detail, tx.hash)
  if (isFull(pool)) return reject("MempoolFull", `${pool.count} transactions pending`, tx.hash)
  return Either.void
}

/** Admit a transaction whose signature the verifier has checked (`signatureValid`). */
export const admitTransaction = (
  state: LedgerState,
  pool: Mempool,
  tx: Transaction,
  signatureValid: boolean
): Either.Either<Transaction, AdmissionRejected> => {
  const pre = precheckTransaction(state, pool, tx)
  if (Either.isLeft(pre)) return Either.left(pre.left)
  if (!signatureValid) return reject("BadSignature", `signature of ${tx.sender} does not verify`, tx.hash)
  return Either.right(tx)
}

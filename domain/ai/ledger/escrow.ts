/**
 * Escrow per (developer, model). An escrow receipt (its money already in
 * the ESCROW account) credits the sender's escrow for the model, once per
 * receipt id; `escrow.withdraw` pays unspent escrow back to the developer.
 */
import { Either, HashSet } from "effect"
import type { Hash32 } from "../../chain/hash.js"
import type { Transaction, EscrowWithdrawPayload } from "../../chain/transaction.js"
import { SYSTEM_ESCROW } from "../../economics/accounts.js"
import { EscrowCredited, EscrowWithdrawn, reject, type AiEvent, type AiRejection } from "./events.js"
import { numberedPayouts } from "./payouts.js"
import type { AiReceipt } from "./receiptPurpose.js"
import { escrowOf, type AiLedgerState } from "./state.js"

export const decideEscrowReceipt = (
  s: AiLedgerState,
  r: AiReceipt,
  model: Hash32
): Either.Either<ReadonlyArray<AiEvent>, AiRejection> => {
  if (r.to !== SYSTEM_ESCROW) return Either.left(reject("ReceiptMismatch", `an escrow receipt pays ${SYSTEM_ESCROW}, this one ${r.to}`))
  if (r.amount <= 0n) return Either.left(reject("ReceiptMismatch", `escrow receipt ${r.receiptId} of ${r.amount}`))
  if (HashSet.has(s.credited, r.receiptId)) return Either.left(reject("ReceiptAlreadyCredited", `receipt ${r.receiptId} was credited`))
  return Either.right([new EscrowCredited({ receiptId: r.receiptId, developer: r.from, model, amount: r.amount })])
}

export const decideWithdraw = (
  s: AiLedgerState,
  tx: Transaction,
  p: EscrowWithdrawPayload
): Either.Either<ReadonlyArray<AiEvent>, AiRejection> => {
  const have = escrowOf(s, tx.sender, p.model)
  if (p.amount > have) {
    return Either.left(reject("InsufficientEscrow", `${tx.sender} has ${have} in escrow for model ${p.model}, cannot withdraw ${p.amount}`))
  }
  return Either.right([
    new EscrowWithdrawn({ txHash: tx.hash, developer: tx.sender, model: p.model, amount: p.amount }),
    ...numberedPayouts(tx.hash, 0, [{ source: "escrow", to: tx.sender, amount: p.amount }])
  ])
}

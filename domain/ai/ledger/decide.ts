/**
 * The AI ledger's decider: what the chain ledger calls on the AI shard for
 * each AI-kind transaction (nonce and fee already charged), each receipt
 * (money already credited to the system account) and each block's end.
 * A refused transaction is an `AiRejection` (the chain records it as
 * `TransactionRejected`); a refused receipt is a bug on the chain side.
 */
import { Either } from "effect"
import type { Transaction } from "../../chain/transaction.js"
import type { AiContext, AiInput } from "./context.js"
import { decideChallenge } from "./challenge.js"
import { decideEscrowReceipt, decideWithdraw } from "./escrow.js"
import { decideEpochClose } from "./epochClose.js"
import { AiShardSharesSet, reject, type AiEvent, type AiRejection } from "./events.js"
import { decideAttest, decideDeadlines, decideDeprecate, decidePrice, decideRegister } from "./models.js"
import type { AiReceipt } from "./receiptPurpose.js"
import { decideOverran, decideSettle } from "./settle.js"
import type { AiLedgerState } from "./state.js"
import { decideBondReceipt, decideUnbond, decideWorkerRegister } from "./workers.js"
import { decideLiveness, decideLivenessUnderCommittee, decideMeasure } from "./workerLiveness.js"

type Decision = Either.Either<ReadonlyArray<AiEvent>, AiRejection>

const decideTx = (s: AiLedgerState, ctx: AiContext, tx: Transaction): Decision => {
  const p = tx.body.payload
  switch (p.kind) {
    case "model.register":
      return decideRegister(ctx, tx, p)
    case "model.price":
      return decidePrice(s, tx, p)
    case "model.deprecate":
      return decideDeprecate(s, tx, p)
    case "model.attest":
      return decideAttest(s, ctx, tx, p)
    case "worker.register":
      return decideWorkerRegister(ctx, tx, p)
    case "worker.unbond":
      return decideUnbond(s, tx, p)
    case "usage.settle":
      // Gateways are the AI shard's members: a settle costs every member a signature check per grant and result,
      // so only a member may make them pay it (the receipts are signed by their parties, so any member can submit them).
      if (!ctx.committee.some((m) => m.address === tx.sender)) {
        return Either.left(reject("NotCommitteeMember", `usage.settle from ${tx.sender}, not a member of the AI shard's committee`))
      }
      return decideSettle(s, ctx, tx, p)
    case "usage.overran":
      // As usage.settle: four signature checks per receipt on every member, so members only.
      if (!ctx.committee.some((m) => m.address === tx.sender)) {
        return Either.left(reject("NotCommitteeMember", `usage.overran from ${tx.sender}, not a member of the AI shard's committee`))
      }
      return decideOverran(s, ctx, tx, p)
    case "escrow.withdraw":
      return decideWithdraw(s, tx, p)
    case "result.challenge":
      return decideChallenge(s, ctx, tx, p)
    case "gov.shard-shares":
      if (tx.sender !== ctx.economics.governance) {
        return Either.left(reject("NotGovernance", `gov.shard-shares from ${tx.sender}; the governance address is ${ctx.economics.governance}`))
      }
      return Either.right([new AiShardSharesSet({ txHash: tx.hash, ai: p.ai, beacon: p.beacon, transfer: p.transfer })])
    case "worker.liveness":
      return decideLiveness(s, ctx, tx, p)
    case "worker.measure":
      return decideMeasure(s, ctx, tx, p)
    default:
      return Either.left(reject("NotAnAiKind", `${p.kind} does not run on the AI shard`))
  }
}

const decideReceipt = (s: AiLedgerState, ctx: AiContext, r: AiReceipt): Decision => {
  const purpose = r.purpose
  if (purpose === undefined) return Either.left(reject("ReceiptWithoutPurpose", `receipt ${r.receiptId} to ${r.to} has no purpose`))
  switch (purpose.kind) {
    case "escrow":
      return decideEscrowReceipt(s, r, purpose.model)
    case "bond":
      return decideBondReceipt(s, r, purpose.worker)
    case "epoch":
      if (r.amount !== 0n) return Either.left(reject("ReceiptMismatch", `epoch receipt ${r.receiptId} carries ${r.amount}`))
      return decideEpochClose(s, ctx, purpose)
  }
}

export const decideAi = (s: AiLedgerState, ctx: AiContext, input: AiInput): Decision => {
  switch (input._tag) {
    case "Tx":
      return decideTx(s, ctx, input.tx)
    case "Receipt":
      return decideReceipt(s, ctx, input.receipt)
    case "BlockEnd":
      return Either.right([...decideDeadlines(s, ctx), ...decideLivenessUnderCommittee(s, ctx)])
  }
}

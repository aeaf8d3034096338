/**
 * Which of the receipts waiting at a shard a proposer puts in its next
 * block, in the order to credit them.
 *
 * The AI ledger closes epochs in order: an epoch receipt whose epoch is not
 * the ledger's open one is carried by the block but not credited (it waits,
 * ledger.ts). So a proposer takes the epoch receipts first, in epoch order,
 * from the open epoch on and each only after its predecessor: a receipt
 * whose predecessor is neither credited nor in this block is held back
 * (proposed, it would only fill a block that credits nothing). Epochs
 * before the open one are closed; their receipts are never creditable and
 * never proposed. First, so that a flood of other receipts cannot push an
 * epoch's close out of capped blocks. Every other receipt follows as it
 * waits.
 */
import { HashMap } from "effect"
import type { Hash32 } from "./hash.js"
import type { LedgerState } from "./ledgerState.js"
import type { CrossShardReceipt } from "./receipt.js"

export const receiptsToPropose = (
  ledger: LedgerState,
  waiting: HashMap.HashMap<Hash32, CrossShardReceipt>,
  max: number = Number.POSITIVE_INFINITY
): ReadonlyArray<CrossShardReceipt> => {
  const others: Array<CrossShardReceipt> = []
  const epochs: Array<{ readonly epoch: number; readonly receipt: CrossShardReceipt }> = []
  for (const r of HashMap.values(waiting)) {
    // Only the AI shard orders them; elsewhere the ledger's routing decides what an epoch receipt is.
    if (r.purpose?.kind === "epoch" && ledger.ai !== null) epochs.push({ epoch: r.purpose.epoch, receipt: r })
    else others.push(r)
  }
  epochs.sort((a, b) => a.epoch - b.epoch || (a.receipt.receiptId < b.receipt.receiptId ? -1 : 1))
  const ordered: Array<CrossShardReceipt> = []
  let next = ledger.ai?.economy.epoch ?? 0
  for (const { epoch, receipt } of epochs) {
    if (epoch !== next) {
      if (epoch > next) break // its predecessor is missing: it and every later one wait
      continue
    }
    ordered.push(receipt)
    next += 1
  }
  return [...ordered, ...others].slice(0, max)
}

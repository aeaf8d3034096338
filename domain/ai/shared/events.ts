/**
 * The `shared-receipts` stream: usage receipts other gateways shared with
 * this AI committee member (`usage.receipts`), each held after the ledger's
 * checks passed. Replayed on start, so a crash of this member loses none it
 * accepted: what the ledger has not settled or refused is pending again.
 */
import { Schema } from "effect"
import { UsageReceipt } from "../../chain/transaction.js"

export const SHARED_RECEIPTS_STREAM = "shared-receipts"

export class ReceiptShared extends Schema.TaggedClass<ReceiptShared>()("ReceiptShared", {
  receipt: UsageReceipt,
  /** When this member accepted it (its clock; a node-local record, not consensus). */
  at: Schema.Number
}) {}

export const SharedReceiptEvent = Schema.Union(ReceiptShared)
export type SharedReceiptEvent = typeof SharedReceiptEvent.Type

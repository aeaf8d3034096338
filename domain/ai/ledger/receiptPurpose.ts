/**
 * Why money (or news) crosses to the AI shard: the `purpose` a cross-shard
 * receipt carries (the spec of issue 12, "Receipts"). The AI ledger reads a
 * plain receipt shape so the chain side can pass its `CrossShardReceipt` in.
 *
 *   escrow   a developer's deposit for calls to `model` (from = developer)
 *   bond     an owner's stake for `worker` (from = owner)
 *   epoch    the beacon ended `epoch` over [startAt, endAt) (amount 0)
 */
import type { Hash32 } from "../../chain/hash.js"
import type { Address } from "../../chain/keys.js"
import type { ReceiptPurpose } from "../../chain/receipt.js"

/** The purposes are the chain's receipt field (`domain/chain/receipt.ts`): one schema, hashed into the receipt leaf. */
export { ReceiptPurpose } from "../../chain/receipt.js"

/** What the AI ledger needs of a cross-shard receipt (the chain's `CrossShardReceipt` has these fields). */
export interface AiReceipt {
  readonly receiptId: Hash32
  readonly sourceShard: number
  readonly from: Address
  readonly to: Address
  readonly amount: bigint
  readonly txHash: Hash32
  readonly purpose?: ReceiptPurpose | undefined
}

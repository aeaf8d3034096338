/**
 * Why money (or news) crosses to the AI shard: the `purpose` a cross-shard
 * receipt carries (the spec of issue 12, "Receipts"). The AI ledger reads a
 * plain receipt shape so the chain side can pass its `CrossShardReceipt` in.
 *
 *   escrow   a developer's deposit for calls to `model` (from = developer)
 *   bond     an owner's stake for `worker` (from = owner)
 *   epoch    the beacon ended `epoch` over [startAt, endAt) (amount 0)
 */
import { Schema } from "effect"
import { Hash32 } from "../../chain/hash.js"
import { Address } from "../../chain/keys.js"

const Ms = Schema.Int.pipe(Schema.nonNegative())

export const ReceiptPurpose = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("escrow"), model: Hash32 }),
  Schema.Struct({ kind: Schema.Literal("bond"), worker: Address }),
  Schema.Struct({ kind: Schema.Literal("epoch"), epoch: Schema.Int.pipe(Schema.nonNegative()), startAt: Ms, endAt: Ms })
)
export type ReceiptPurpose = typeof ReceiptPurpose.Type

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

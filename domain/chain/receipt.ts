/**
 * Cross-shard receipts. A transfer to an account of another shard debits the
 * sender at the source (event `CrossShardSent`) and becomes a receipt that a
 * later block of the destination shard carries; the destination credits it
 * once, by receipt id, however many times it is relayed.
 */
import { Schema } from "effect"
import { hashBytes, keccakHex, keccak256, Hash32 } from "./hash.js"
import { Address, addressBytes } from "./keys.js"
import { encodeRlp } from "./rlp.js"
import { ShardId } from "./sharding.js"
import { PositiveAmount } from "./transaction.js"

export class CrossShardReceipt extends Schema.Class<CrossShardReceipt>("CrossShardReceipt")({
  receiptId: Hash32,
  sourceShard: ShardId,
  destShard: ShardId,
  from: Address,
  to: Address,
  amount: PositiveAmount,
  txHash: Hash32
}) {}

/** One receipt per transaction: the id is keccak256(txHash). */
export const receiptIdOf = (txHash: Hash32): Hash32 => keccakHex(hashBytes(txHash))

/** The leaf committed by a block's receiptRoot: keccak256 of the receipt's canonical RLP. */
export const receiptLeaf = (r: CrossShardReceipt): Uint8Array =>
  keccak256(
    encodeRlp([
      hashBytes(r.receiptId),
      BigInt(r.sourceShard),
      BigInt(r.destShard),
      addressBytes(r.from),
      addressBytes(r.to),
      r.amount,
      hashBytes(r.txHash)
    ])
  )

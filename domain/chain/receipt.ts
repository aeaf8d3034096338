/**
 * Cross-shard receipts. A transfer to an account of another shard debits the
 * sender at the source (event `CrossShardSent`) and becomes a receipt that a
 * later block of the destination shard carries; the destination credits it
 * once, by receipt id, however many times it is relayed.
 *
 * A receipt may carry an `index` (absent = 0: the one receipt of its cause;
 * one cause may send several, 0, 1, 2, …) and a `purpose` that says what the
 * AI shard does with it: `escrow` (a developer's deposit for a model), `bond`
 * (a worker's stake) or `epoch` (the beacon telling the AI shard an epoch
 * ended; amount 0, the only receipt without money). Both are absent on plain
 * transfers, whose receipts hash and encode exactly as before they existed.
 */
import { Schema } from "effect"
import { hashBytes, keccakHex, keccak256, Hash32 } from "./hash.js"
import { utf8 } from "./hex.js"
import { Address, addressBytes } from "./keys.js"
import { encodeRlp, type RlpInput } from "./rlp.js"
import { ShardId } from "./sharding.js"
import { Uint256 } from "./transaction.js"

/** Which of its cause's sends a receipt is: a uint32. */
export const ReceiptIndex = Schema.Int.pipe(Schema.between(0, 0xffff_ffff))

const Ms = Schema.Int.pipe(Schema.nonNegative())

export const EscrowPurpose = Schema.Struct({ kind: Schema.Literal("escrow"), model: Hash32 })
export const BondPurpose = Schema.Struct({ kind: Schema.Literal("bond"), worker: Address })
export const EpochPurpose = Schema.Struct({
  kind: Schema.Literal("epoch"),
  epoch: Schema.Int.pipe(Schema.nonNegative()),
  startAt: Ms,
  endAt: Ms
})
export const ReceiptPurpose = Schema.Union(EscrowPurpose, BondPurpose, EpochPurpose)
export type ReceiptPurpose = typeof ReceiptPurpose.Type

/** Money moves by every receipt but an epoch receipt, which moves none. */
export const receiptAmountHolds = (r: { readonly amount: bigint; readonly purpose?: ReceiptPurpose | undefined }): boolean =>
  r.purpose?.kind === "epoch" ? r.amount === 0n : r.amount >= 1n

/**
 * The receipt's fields in their order (their JSON is part of the events root
 * of `CrossShardSent`/`CrossShardReceived`): `index` and `purpose` last and
 * only when present.
 */
export const receiptFields = {
  receiptId: Hash32,
  sourceShard: ShardId,
  destShard: ShardId,
  from: Address,
  to: Address,
  amount: Uint256,
  txHash: Hash32,
  index: Schema.optionalWith(ReceiptIndex, { exact: true }),
  purpose: Schema.optionalWith(ReceiptPurpose, { exact: true })
}

/** The receipt fields with the amount rule: ≥ 1, or exactly 0 for an epoch receipt. */
export const ReceiptStruct = Schema.Struct(receiptFields).pipe(
  Schema.filter((r) => receiptAmountHolds(r) || `receipt amount ${r.amount}: must be ≥ 1, or 0 for an epoch receipt`)
)

export class CrossShardReceipt extends Schema.Class<CrossShardReceipt>("CrossShardReceipt")(ReceiptStruct) {}

const uint32be = (n: number): Uint8Array => {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, n)
  return out
}

/**
 * A receipt's id: keccak256(txHash) for index 0 (one receipt per
 * transaction, as always), keccak256(txHash ‖ uint32be(index)) for the
 * further sends of one cause.
 */
export const receiptIdOf = (txHash: Hash32, index = 0): Hash32 => {
  if (index === 0) return keccakHex(hashBytes(txHash))
  const bytes = new Uint8Array(32 + 4)
  bytes.set(hashBytes(txHash), 0)
  bytes.set(uint32be(index), 32)
  return keccakHex(bytes)
}

const purposeRlp = (p: ReceiptPurpose): RlpInput => {
  switch (p.kind) {
    case "escrow":
      return [utf8(p.kind), hashBytes(p.model)]
    case "bond":
      return [utf8(p.kind), addressBytes(p.worker)]
    case "epoch":
      return [utf8(p.kind), BigInt(p.epoch), BigInt(p.startAt), BigInt(p.endAt)]
  }
}

/**
 * The leaf committed by a block's receiptRoot: keccak256 of the receipt's
 * canonical RLP. `index` (an integer) and `purpose` (a list) are appended
 * only when present, so a receipt without them hashes as it always did; RLP
 * tells an integer from a list, so each tail has one reading.
 */
export const receiptLeaf = (r: CrossShardReceipt): Uint8Array =>
  keccak256(
    encodeRlp([
      hashBytes(r.receiptId),
      BigInt(r.sourceShard),
      BigInt(r.destShard),
      addressBytes(r.from),
      addressBytes(r.to),
      r.amount,
      hashBytes(r.txHash),
      ...(r.index === undefined ? [] : [BigInt(r.index)]),
      ...(r.purpose === undefined ? [] : [purposeRlp(r.purpose)])
    ])
  )

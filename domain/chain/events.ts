/**
 * A shard's events (the beacon's too: shard 0 runs the same ledger with no
 * accounts, and its blocks end the epochs). The stream alone re-executes: `BlockApplied` carries the
 * whole block in its wire form, and `BlockExecuted` seals each block's events
 * with their root, which the next header must commit to.
 *
 * eventsRoot = merkle root over sha256(JSON.stringify(encode(event))) for
 * the events of one block, from its `GenesisApplied`/`BlockApplied` up to,
 * not including, its `BlockExecuted`. The JSON is the Schema encoding, so the
 * field order of these classes is part of the consensus rules.
 */
import { Schema } from "effect"
import { Block, Height, TimestampMs } from "./block.js"
import { Hash32, sha256 } from "./hash.js"
import { Address } from "./keys.js"
import { merkleRoot } from "./merkle.js"
import { CrossShardReceipt, ReceiptStruct } from "./receipt.js"
import { EpochBlocks, ShardId, TransferShardCount } from "./sharding.js"
import { BLS_PROOF_HEX, BLS_PUBLIC_KEY_HEX, PositiveAmount, Uint256, ValidatorEndpoint } from "./transaction.js"
import { ShardCommittee } from "./committees.js"
import { TransactionCheckReason } from "./txRules.js"
import { GenesisValidator } from "./validators.js"
import { AiGenesis } from "./aiGenesis.js"
import { AiEvent, AiRejectionReason } from "../ai/ledger/events.js"

/**
 * `governance` and `epochBlocks` came with the economics: absent from older
 * stores' events (which then decode and re-encode to the same JSON, so their
 * events roots still hold) and meaning "no governance address" / "not the
 * beacon". `epochBlocks` is only on the beacon's genesis.
 */
export class GenesisApplied extends Schema.TaggedClass<GenesisApplied>()("GenesisApplied", {
  chainId: Uint256,
  shard: ShardId,
  transferShards: TransferShardCount,
  timestamp: TimestampMs,
  genesisHash: Hash32,
  governance: Schema.optionalWith(Address, { exact: true }),
  epochBlocks: Schema.optionalWith(EpochBlocks, { exact: true }),
  /** A BFT chain's validator set (absent: a single-producer chain). */
  validators: Schema.optionalWith(Schema.Array(GenesisValidator), { exact: true }),
  /** The beacon's seats per elected committee, if the genesis set it (absent: the number of genesis validators). */
  committeeSize: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { exact: true }),
  /** "ai" on the AI shard's genesis (shard S + 1); absent elsewhere, so other shards' events are as before. */
  kind: Schema.optionalWith(Schema.Literal("ai"), { exact: true }),
  /** The AI shard's rules (its genesis only). */
  ai: Schema.optionalWith(AiGenesis, { exact: true })
}) {}

/** A genesis allocation. */
export class AccountFunded extends Schema.TaggedClass<AccountFunded>()("AccountFunded", {
  address: Address,
  amount: PositiveAmount
}) {}

export class BlockApplied extends Schema.TaggedClass<BlockApplied>()("BlockApplied", {
  block: Block
}) {}

/** A same-shard transfer. */
export class Transferred extends Schema.TaggedClass<Transferred>()("Transferred", {
  txHash: Hash32,
  from: Address,
  to: Address,
  amount: PositiveAmount
}) {}

/** Every executed transaction pays its fee (burned) and uses up its nonce here. */
export class FeeCharged extends Schema.TaggedClass<FeeCharged>()("FeeCharged", {
  txHash: Hash32,
  payer: Address,
  fee: Uint256,
  nonce: Uint256
}) {}

/**
 * Debited here; in flight until the destination shard records `CrossShardReceived`.
 * Both carry the receipt's own fields, in its order (their JSON is part of the events root).
 */
export class CrossShardSent extends Schema.TaggedClass<CrossShardSent>()("CrossShardSent", ReceiptStruct) {
  /** What a relayer carries to the destination shard. */
  get receipt(): CrossShardReceipt {
    const { _tag, index, purpose, ...fields } = this
    return new CrossShardReceipt({
      ...fields,
      ...(index === undefined ? {} : { index }),
      ...(purpose === undefined ? {} : { purpose })
    })
  }
}

export class CrossShardReceived extends Schema.TaggedClass<CrossShardReceived>()("CrossShardReceived", ReceiptStruct) {}

/** A transaction in a block that failed at execution: recorded, no state change, nonce not used. */
export class TransactionRejected extends Schema.TaggedClass<TransactionRejected>()("TransactionRejected", {
  txHash: Hash32,
  sender: Address,
  nonce: Uint256,
  /** A check every shard runs, or the AI ledger's refusal of an AI-shard kind. */
  reason: Schema.Union(TransactionCheckReason, AiRejectionReason),
  detail: Schema.String
}) {}

/** An `escrow.deposit` executed: its amount went to the escrow account (a transfer beside this). */
export class EscrowDeposited extends Schema.TaggedClass<EscrowDeposited>()("EscrowDeposited", {
  txHash: Hash32,
  developer: Address,
  model: Hash32,
  amount: PositiveAmount
}) {}

/**
 * A `validator.register` executed on the beacon: `validator` is in the
 * registry with this key and endpoint (a re-registration replaces them).
 */
export class ValidatorRegistered extends Schema.TaggedClass<ValidatorRegistered>()("ValidatorRegistered", {
  txHash: Hash32,
  validator: Address,
  blsPublicKey: BLS_PUBLIC_KEY_HEX,
  proofOfPossession: BLS_PROOF_HEX,
  endpoint: ValidatorEndpoint
}) {}

/** A `validator.unbond` executed on the beacon: `validator` leaves the registry at the next epoch end. */
export class ValidatorLeaving extends Schema.TaggedClass<ValidatorLeaving>()("ValidatorLeaving", {
  txHash: Hash32,
  validator: Address
}) {}

/**
 * At the end of `epoch` a leaving validator left the registry; its beacon
 * balance, `paidBack`, went back to its transfer shard by the `CrossShardSent`
 * before this (receipt of the unbond transaction `txHash`; none when 0).
 */
export class ValidatorLeft extends Schema.TaggedClass<ValidatorLeft>()("ValidatorLeft", {
  txHash: Hash32,
  validator: Address,
  epoch: Schema.Int.pipe(Schema.nonNegative()),
  paidBack: Uint256
}) {}

/**
 * The beacon's election at an epoch end: the committees of every shard (the
 * beacon, each transfer shard, then the AI shard) for `epoch`, elected from the registry by
 * `electShardCommittees` seeded with `seed` (the parent hash of the block
 * that ended the epoch before). `kept`: the election failed (`failure` says
 * why) and these are the previous epoch's committees, re-labelled.
 */
export class CommitteesElected extends Schema.TaggedClass<CommitteesElected>()("CommitteesElected", {
  epoch: Schema.Int.pipe(Schema.nonNegative()),
  seed: Hash32,
  kept: Schema.Boolean,
  failure: Schema.optionalWith(Schema.String, { exact: true }),
  committees: Schema.Array(ShardCommittee)
}) {}

/**
 * The beacon's epoch clock: in every beacon block whose height is a multiple
 * of epochBlocks, epoch `height / epochBlocks − 1` ends. It ran from `startAt`
 * (genesis time for epoch 0, else the previous epoch's `endAt`) to `endAt`,
 * this block's timestamp.
 */
export class EpochEnded extends Schema.TaggedClass<EpochEnded>()("EpochEnded", {
  epoch: Schema.Int.pipe(Schema.nonNegative()),
  height: Height,
  startAt: TimestampMs,
  endAt: TimestampMs
}) {}

/** Seals a block's (or genesis') events. */
export class BlockExecuted extends Schema.TaggedClass<BlockExecuted>()("BlockExecuted", {
  height: Height,
  blockHash: Hash32,
  timestamp: TimestampMs,
  eventsRoot: Hash32
}) {}

export const ShardEvent = Schema.Union(
  GenesisApplied,
  AccountFunded,
  BlockApplied,
  Transferred,
  FeeCharged,
  CrossShardSent,
  CrossShardReceived,
  TransactionRejected,
  EscrowDeposited,
  ValidatorRegistered,
  ValidatorLeaving,
  EpochEnded,
  ValidatorLeft,
  CommitteesElected,
  BlockExecuted,
  ...AiEvent.members
)
export type ShardEvent = typeof ShardEvent.Type

/** One encoder per tag: the same output as encoding through the union, without its dispatch. */
const encoders = new Map<string, (e: ShardEvent) => unknown>(
  ShardEvent.members.map((m) => [m.identifier, Schema.encodeSync(m as Schema.Schema<ShardEvent, unknown>)])
)

/** The canonical JSON of an event, as hashed into eventsRoot: JSON.stringify(Schema.encodeSync(ShardEvent)(e)). */
export const eventJson = (event: ShardEvent): string => JSON.stringify(encoders.get(event._tag)!(event))

export const eventsRoot = (events: ReadonlyArray<ShardEvent>): Hash32 =>
  merkleRoot(events.map((e) => sha256(eventJson(e))))

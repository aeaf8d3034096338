/**
 * The node's RPC surface: one RpcGroup shared by the server and the typed
 * client, so both sides agree on every payload, reply and error by type.
 * Tags are `area.verb`; @effect/rpc turns the prefix into `client.area.verb`.
 */
import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { AdmissionReason } from "../../domain/chain/admission.js"

// ---- wire shapes (JSON-safe: bigints travel as decimal strings) ----

export const HexString = Schema.String.pipe(Schema.pattern(/^0x[0-9a-f]*$/i))
export const AddressString = Schema.String.pipe(Schema.pattern(/^0x[0-9a-fA-F]{40}$/))

export class ShardStatus extends Schema.Class<ShardStatus>("ShardStatus")({
  shard: Schema.Number,
  kind: Schema.Literal("beacon", "transfer", "ai"),
  height: Schema.Number,
  lastBlockHash: Schema.String,
  pendingTransactions: Schema.Number,
  /** The beacon's epoch in progress (epochs ended so far); absent on transfer shards. */
  epoch: Schema.optional(Schema.Number)
}) {}

export class NodeStatus extends Schema.Class<NodeStatus>("NodeStatus")({
  chainId: Schema.BigInt,
  /** `genesisConfigHash` of the node's genesis: which chain it runs (two chains may share a chain id). */
  genesisHash: Schema.optional(Schema.String),
  version: Schema.String,
  shards: Schema.Array(ShardStatus),
  eventsPosition: Schema.Number
}) {}

export class AccountInfo extends Schema.Class<AccountInfo>("AccountInfo")({
  address: Schema.String,
  shard: Schema.Number,
  balance: Schema.BigInt,
  nonce: Schema.BigInt,
  /** The nonce the next transaction must carry, counting admitted but unincluded ones. */
  pendingNonce: Schema.BigInt
}) {}

/** One validator of the beacon's registry. */
export class RegistryEntryView extends Schema.Class<RegistryEntryView>("RegistryEntryView")({
  address: Schema.String,
  blsPublicKey: Schema.String,
  /** Absent for a genesis validator that never registered one. */
  endpoint: Schema.optional(Schema.String),
  /** Its genesis stake plus its beacon balance. */
  stake: Schema.BigInt,
  genesisStake: Schema.BigInt,
  beaconBalance: Schema.BigInt,
  /** It unbonded: it leaves (and is paid back) at the end of the open epoch. */
  leaving: Schema.Boolean
}) {}

export class CommitteeMemberView extends Schema.Class<CommitteeMemberView>("CommitteeMemberView")({
  address: Schema.String,
  stake: Schema.BigInt
}) {}

export class CommitteeView extends Schema.Class<CommitteeView>("CommitteeView")({
  shard: Schema.Number,
  epoch: Schema.Number,
  members: Schema.Array(CommitteeMemberView)
}) {}

/** `validators.list`: the registry now and the committees of one epoch (the open one unless asked). */
export class ValidatorsView extends Schema.Class<ValidatorsView>("ValidatorsView")({
  /** The beacon's open epoch. */
  epoch: Schema.Number,
  /** The epoch whose committees these are. */
  committeesEpoch: Schema.Number,
  registry: Schema.Array(RegistryEntryView),
  /** Empty on a chain without validators, or for an epoch not elected yet. */
  committees: Schema.Array(CommitteeView)
}) {}

export const TxStatusLiteral = Schema.Literal("pending", "included", "rejected")

export class SubmitResult extends Schema.Class<SubmitResult>("SubmitResult")({
  hash: Schema.String,
  shard: Schema.Number,
  status: TxStatusLiteral,
  blockHeight: Schema.optional(Schema.Number)
}) {}

export class TxView extends Schema.Class<TxView>("TxView")({
  hash: Schema.String,
  shard: Schema.Number,
  status: TxStatusLiteral,
  from: Schema.String,
  to: Schema.optional(Schema.String),
  kind: Schema.String,
  nonce: Schema.BigInt,
  fee: Schema.BigInt,
  amount: Schema.optional(Schema.BigInt),
  blockHeight: Schema.optional(Schema.Number),
  /** Why execution rejected it, when it was included but failed. */
  reason: Schema.optional(Schema.String),
  /** For a cross-shard transfer: the receipt id and whether the destination credited it. */
  receiptId: Schema.optional(Schema.String),
  receiptDelivered: Schema.optional(Schema.Boolean),
  raw: Schema.String
}) {}

export class BlockView extends Schema.Class<BlockView>("BlockView")({
  shard: Schema.Number,
  height: Schema.Number,
  hash: Schema.String,
  parentHash: Schema.String,
  txRoot: Schema.String,
  receiptRoot: Schema.String,
  eventsRoot: Schema.String,
  proposer: Schema.String,
  timestamp: Schema.Number,
  transactions: Schema.Array(Schema.String),
  receipts: Schema.Array(Schema.String)
}) {}

export class EventView extends Schema.Class<EventView>("EventView")({
  stream: Schema.String,
  revision: Schema.Number,
  position: Schema.Number,
  id: Schema.String,
  type: Schema.String,
  data: Schema.Unknown,
  metadata: Schema.Unknown,
  hash: Schema.String,
  prevHash: Schema.String
}) {}

// ---- errors (every bad input is one of these, with a readable message) ----

/** Admission's verdict on a transaction, with the domain's reason (bad signature, nonce, balance, ...). */
export class TransactionRejected extends Schema.TaggedError<TransactionRejected>()("TransactionRejected", {
  reason: AdmissionReason,
  detail: Schema.String
}) {
  override get message() {
    return `transaction rejected (${this.reason}): ${this.detail}`
  }
}

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  what: Schema.String,
  id: Schema.String
}) {
  override get message() {
    return `${this.what} ${this.id} not found`
  }
}

export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  detail: Schema.String
}) {
  override get message() {
    return `invalid request: ${this.detail}`
  }
}

export class NodeUnavailable extends Schema.TaggedError<NodeUnavailable>()("NodeUnavailable", {
  detail: Schema.String
}) {
  override get message() {
    return `node unavailable: ${this.detail}`
  }
}

// ---- the group ----

// The calls a compute node also makes (to register on chain): ComputeNodeRpcs takes them as they are.
export const AccountGetRpc = Rpc.make("account.get", {
  /** `shard`: the account on that shard (0: the beacon, where validator stakes live); absent: the address's transfer shard. */
  payload: { address: Schema.String, shard: Schema.optional(Schema.Number) },
  success: AccountInfo,
  error: Schema.Union(InvalidRequest, NodeUnavailable)
})
export const TxSubmitRpc = Rpc.make("tx.submit", {
  payload: Schema.Struct({
    /** The signed transaction's canonical RLP bytes, 0x-hex. */
    raw: Schema.String,
    /** Reply only once the transaction is in a block (or rejected by execution). */
    wait: Schema.optionalWith(Schema.Boolean, { default: () => false })
  }),
  success: SubmitResult,
  error: Schema.Union(TransactionRejected, NodeUnavailable)
})
export const TxGetRpc = Rpc.make("tx.get", {
  payload: { hash: Schema.String },
  success: TxView,
  error: Schema.Union(NotFound, InvalidRequest, NodeUnavailable)
})

/** The chain's calls; `Rpcs.ts` merges them with the AI shard's into NodeRpcs. */
export class ChainRpcs extends RpcGroup.make(
  Rpc.make("node.status", { success: NodeStatus, error: NodeUnavailable }),
  AccountGetRpc,
  TxSubmitRpc,
  Rpc.make("validators.list", {
    payload: { epoch: Schema.optional(Schema.Number) },
    success: ValidatorsView,
    error: Schema.Union(InvalidRequest, NodeUnavailable)
  }),
  TxGetRpc,
  Rpc.make("block.get", {
    payload: { shard: Schema.Number, height: Schema.Number },
    success: BlockView,
    error: Schema.Union(NotFound, InvalidRequest, NodeUnavailable)
  }),
  Rpc.make("events.read", {
    payload: Schema.Struct({
      /** One stream by name, or every stream in global order when absent. */
      stream: Schema.optional(Schema.String),
      /** Stream revision (inclusive) when `stream` is given, else global position (exclusive). */
      from: Schema.optionalWith(Schema.Number, { default: () => 0 }),
      limit: Schema.optionalWith(Schema.Number, { default: () => 100 })
    }),
    success: Schema.Array(EventView),
    error: Schema.Union(InvalidRequest, NodeUnavailable)
  }),
  Rpc.make("events.subscribe", {
    payload: Schema.Struct({
      stream: Schema.optional(Schema.String),
      from: Schema.optionalWith(Schema.Number, { default: () => 0 })
    }),
    success: EventView,
    error: Schema.Union(InvalidRequest, NodeUnavailable),
    stream: true
  })
) {}

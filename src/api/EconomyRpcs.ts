/**
 * The economy's RPC surface: epoch ledgers, statements, the supply and
 * worker stakes. Every amount is a bigint (a decimal string in JSON).
 * Merged into NodeRpcs.
 *
 *   rewards.epoch {epoch}     the whole closed ledger (NotFound while the epoch is open)
 *   rewards.show {address}    the address's statement, per epoch and in total
 *   supply {}                 reserve, minted, burned, circulating, stakes, ... and whether it balances
 *   stake.get {worker, owner?} a worker's bonded and unbonding stake (all its owners' bonds), and owner's own
 */
import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { RewardEvent } from "../../domain/economics/events.js"
import { InvalidRequest, NodeUnavailable, NotFound } from "./NodeRpcs.js"

// ---- views ----

export class RewardLedgerView extends Schema.Class<RewardLedgerView>("RewardLedgerView")({
  epoch: Schema.Number,
  /** The ledger ends with its EpochClosed header. */
  closed: Schema.Boolean,
  events: Schema.Array(RewardEvent)
}) {}

const statementFields = {
  taskMining: Schema.BigInt,
  launchReward: Schema.BigInt,
  serviceFees: Schema.BigInt,
  computeFeesPaid: Schema.BigInt,
  onlineMining: Schema.BigInt,
  computeFeesEarned: Schema.BigInt,
  subsidy: Schema.BigInt,
  slashed: Schema.BigInt,
  slashCompensation: Schema.BigInt,
  /** taskMining + launchReward + serviceFees − computeFeesPaid */
  providerNet: Schema.BigInt,
  /** every credit − every debit */
  net: Schema.BigInt
}

export class StatementLineView extends Schema.Class<StatementLineView>("StatementLineView")(statementFields) {}

export class StatementEpochView extends Schema.Class<StatementEpochView>("StatementEpochView")({
  epoch: Schema.Number,
  ...statementFields
}) {}

export class StatementView extends Schema.Class<StatementView>("StatementView")({
  address: Schema.String,
  /** Closed epochs the statement reads (every one, whether or not the address appears in it). */
  closedEpochs: Schema.Number,
  epochs: Schema.Array(StatementEpochView),
  total: StatementLineView
}) {}

export class SupplyView extends Schema.Class<SupplyView>("SupplyView")({
  /** The open epoch, and the last closed one (null before the first close). */
  epoch: Schema.Number,
  lastClosed: Schema.NullOr(Schema.Number),
  totalSupply: Schema.BigInt,
  /** What the mining reserve has not minted yet. */
  reserveRemaining: Schema.BigInt,
  minted: Schema.BigInt,
  foundationRemaining: Schema.BigInt,
  foundationPaid: Schema.BigInt,
  stakedBonded: Schema.BigInt,
  unbonding: Schema.BigInt,
  burnedBySlashes: Schema.BigInt,
  protocolFeesBurned: Schema.BigInt,
  /** Transaction fees the shards burned. */
  chainFeesBurned: Schema.BigInt,
  /** burnedBySlashes + protocolFeesBurned + chainFeesBurned */
  burned: Schema.BigInt,
  /** totalSupply − reserve − foundation − stakes − burned */
  circulating: Schema.BigInt,
  /** The system accounts' balances on chain. */
  onChain: Schema.Struct({
    reserve: Schema.BigInt,
    foundation: Schema.BigInt,
    stakePool: Schema.BigInt,
    escrow: Schema.BigInt,
    treasury: Schema.BigInt,
    burnAddress: Schema.BigInt
  }),
  /**
   * What each system account owes (cumulative, from the ledgers and settled usage), has paid on chain (arrived in
   * the recipients' balances) and has in flight (sent to another shard, its receipt not received yet).
   */
  sources: Schema.Array(Schema.Struct({ source: Schema.String, owed: Schema.BigInt, paid: Schema.BigInt, inFlight: Schema.BigInt })),
  balanced: Schema.Boolean
}) {}

export class StakeView extends Schema.Class<StakeView>("StakeView")({
  worker: Schema.String,
  bonded: Schema.BigInt,
  unbonding: Schema.BigInt,
  /** The economy's open epoch. */
  epoch: Schema.Number,
  /** With an `owner` asked: that account's own bond to the worker and its part of the unbonding; else null. */
  owner: Schema.NullOr(Schema.String),
  ownerBonded: Schema.NullOr(Schema.BigInt),
  ownerUnbonding: Schema.NullOr(Schema.BigInt)
}) {}

const Common = Schema.Union(InvalidRequest, NodeUnavailable)

// ---- the group ----

export class EconomyRpcs extends RpcGroup.make(
  Rpc.make("rewards.epoch", {
    payload: { epoch: Schema.Number },
    success: RewardLedgerView,
    error: Schema.Union(NotFound, Common)
  }),
  Rpc.make("rewards.show", { payload: { address: Schema.String }, success: StatementView, error: Common }),
  Rpc.make("supply", { success: SupplyView, error: Common }),
  Rpc.make("stake.get", { payload: { worker: Schema.String, owner: Schema.optional(Schema.String) }, success: StakeView, error: Common })
) {}

/**
 * The reward ledger: what an epoch's close decided, one stream per epoch
 * (`reward-epoch-{n}`). Every amount is a `Schema.BigInt` (a decimal string
 * in JSON). Each event stands on its own: a credit says who is paid, from
 * which account, for what and on which basis. The `EpochClosed` header comes
 * LAST: folding it is what closes the epoch in the economy's state.
 */
import { Schema } from "effect"
import { Address } from "../chain/keys.js"
import { ModelId } from "../ai/model/events.js"
import { TaskId } from "../ai/task/events.js"
import { PayoutSource } from "./accounts.js"

const Amount = Schema.BigInt.pipe(Schema.nonNegativeBigInt())
const Epoch = Schema.Int.pipe(Schema.nonNegative())
const Ms = Schema.Int
const ShardSharesValue = Schema.Struct({ ai: Amount, beacon: Amount, transfer: Amount })

export const rewardEpochStreamId = (epoch: number): string => `reward-epoch-${epoch}`

export const RewardKind = Schema.Literal("LaunchReward", "OnlineMining", "TaskMining", "FoundationSubsidy")
export type RewardKind = typeof RewardKind.Type

/**
 * `to` is paid `amount` from `source`. Basis: `weight` of `totalWeight`
 * (gpuUnitsMilli × ms: online time, or execution time of settled tasks; 0 for
 * a launch reward), `role` in task mining, `modelId` for a launch reward.
 */
export class RewardCredited extends Schema.TaggedClass<RewardCredited>()("RewardCredited", {
  epoch: Epoch,
  kind: RewardKind,
  source: Schema.Literal(...PayoutSource),
  to: Address,
  amount: Amount,
  weight: Amount,
  totalWeight: Amount,
  role: Schema.NullOr(Schema.Literal("worker", "provider")),
  modelId: Schema.NullOr(ModelId)
}) {}

/**
 * A worker's bonded stake slashed, paid out of the stake pool: `toUser` to
 * the developer who was served the wrong result, `toReporter` to who proved
 * it, `burned` to the burn address. An offline slash is all burned; it
 * names its outage (`outageSince`) and the grade now applied (`gradePpm`).
 * `fromBonds` is what each owner's bond gave (owner order; they sum to
 * `amount`; `domain/economics/bonds.ts`).
 */
export class Slashed extends Schema.TaggedClass<Slashed>()("Slashed", {
  epoch: Epoch,
  worker: Address,
  reason: Schema.Literal("WrongResult", "Offline"),
  stakeBefore: Amount,
  amount: Amount,
  toUser: Amount,
  user: Schema.NullOr(Address),
  toReporter: Amount,
  reporter: Schema.NullOr(Address),
  burned: Amount,
  taskId: Schema.NullOr(TaskId),
  outageSince: Schema.NullOr(Ms),
  gradePpm: Amount,
  detail: Schema.String,
  fromBonds: Schema.Array(Schema.Struct({ owner: Address, amount: Amount }))
}) {}

/** Unbonding stake back to its owner, from the stake pool. */
export class StakeReleased extends Schema.TaggedClass<StakeReleased>()("StakeReleased", {
  epoch: Epoch,
  worker: Address,
  owner: Address,
  amount: Amount
}) {}

/**
 * Fees of the tasks settled this epoch, per address, for statements only:
 * the escrow paid them when each task settled. `serviceFees` and
 * `computeFeesPaid` as a provider (service fee = price − protocol fee),
 * `computeFeesEarned` as a worker, `protocolFees` taken from its models'
 * prices; `tasks` it took part in.
 */
export class FeesRecorded extends Schema.TaggedClass<FeesRecorded>()("FeesRecorded", {
  epoch: Epoch,
  address: Address,
  serviceFees: Amount,
  computeFeesPaid: Amount,
  computeFeesEarned: Amount,
  protocolFees: Amount,
  tasks: Schema.Int.pipe(Schema.nonNegative())
}) {}

/**
 * The epoch's totals, last in its ledger. Issuance is split by the shard
 * shares in effect; only the AI portion is paid (beacon and transfer stay in
 * the reserve until validators are rewarded). `minted` is what the reserve
 * paid (launch + online + task mining); `conservation` states
 * issuance = minted + retained, and reserveBefore − minted = reserveAfter.
 */
export class EpochClosed extends Schema.TaggedClass<EpochClosed>()("EpochClosed", {
  epoch: Epoch,
  startAt: Ms,
  endAt: Ms,
  year: Epoch,
  reserveAtYearStart: Amount,
  totalSupply: Amount,
  issuance: Amount,
  shardShares: ShardSharesValue,
  aiPool: Amount,
  beaconPortion: Amount,
  transferPortion: Amount,
  launchRewards: Amount,
  onlineMining: Amount,
  onlineMiningPaid: Amount,
  taskMining: Amount,
  taskMiningPaid: Amount,
  minted: Amount,
  foundationPaid: Amount,
  slashed: Amount,
  burned: Amount,
  released: Amount,
  reserveBefore: Amount,
  reserveAfter: Amount,
  totalMinted: Amount,
  conservation: Schema.Struct({ issuance: Amount, minted: Amount, retained: Amount })
}) {}

export const RewardEvent = Schema.Union(RewardCredited, Slashed, StakeReleased, FeesRecorded, EpochClosed)
export type RewardEvent = typeof RewardEvent.Type

/** One epoch's ledger, header last. */
export type EpochLedger = ReadonlyArray<RewardEvent>

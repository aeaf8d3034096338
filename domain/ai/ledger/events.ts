/**
 * What the AI ledger decided, one event per fact. Money leaves the AI shard
 * only as `AiPayout` (the chain ledger turns each into a cross-shard send
 * from the system account, a transfer to a system account on the AI shard,
 * or a burn). The epoch close's reward events (`domain/economics/events.ts`)
 * are AI events too, so the `reward-epoch-N` stream is what execution wrote.
 */
import { Schema } from "effect"
import { Hash32 } from "../../chain/hash.js"
import { Address } from "../../chain/keys.js"
import { PayoutSource } from "../../economics/accounts.js"
import { EpochClosed, FeesRecorded, RewardCredited, Slashed, StakeReleased } from "../../economics/events.js"

const Amount = Schema.BigInt.pipe(Schema.nonNegativeBigInt())
const Positive = Schema.BigInt.pipe(Schema.positiveBigInt())
const Height = Schema.Int.pipe(Schema.nonNegative())
const Ms = Schema.Int

export class EscrowCredited extends Schema.TaggedClass<EscrowCredited>()("EscrowCredited", {
  receiptId: Hash32,
  developer: Address,
  model: Hash32,
  amount: Positive
}) {}

export class EscrowWithdrawn extends Schema.TaggedClass<EscrowWithdrawn>()("EscrowWithdrawn", {
  txHash: Hash32,
  developer: Address,
  model: Hash32,
  amount: Positive
}) {}

/** Pending from `registeredHeight`; the model's id is the registering tx's hash. */
export class AiModelRegistered extends Schema.TaggedClass<AiModelRegistered>()("AiModelRegistered", {
  model: Hash32,
  provider: Address,
  weightsHash: Hash32,
  sizeBytes: Positive,
  manifest: Schema.String,
  price: Amount,
  registeredHeight: Height
}) {}

export class AiModelRepriced extends Schema.TaggedClass<AiModelRepriced>()("AiModelRepriced", {
  model: Hash32,
  price: Amount
}) {}

export class AiModelDeprecated extends Schema.TaggedClass<AiModelDeprecated>()("AiModelDeprecated", {
  model: Hash32
}) {}

export class ModelAttested extends Schema.TaggedClass<ModelAttested>()("ModelAttested", {
  model: Hash32,
  validator: Address,
  verdict: Schema.Literal("verified", "rejected"),
  fingerprint: Schema.NullOr(Hash32),
  reason: Schema.NullOr(Schema.String)
}) {}

/** Members holding > 2/3 of the committee's stake attested `fingerprint`. */
export class AiModelVerified extends Schema.TaggedClass<AiModelVerified>()("AiModelVerified", {
  model: Hash32,
  provider: Address,
  fingerprint: Hash32,
  at: Ms
}) {}

/** Members holding > 1/3 rejected it, or the deadline passed ("deadline"). */
export class AiModelRejected extends Schema.TaggedClass<AiModelRejected>()("AiModelRejected", {
  model: Hash32,
  reason: Schema.String
}) {}

/** Signed by the worker's key: `publicKey` checks its results' signatures. */
export class AiWorkerRegistered extends Schema.TaggedClass<AiWorkerRegistered>()("AiWorkerRegistered", {
  worker: Address,
  owner: Address,
  publicKey: Schema.String,
  gpuClass: Schema.String,
  devices: Schema.Int,
  gpuUnitsMilli: Positive,
  endpoint: Schema.String,
  registeredHeight: Height,
  at: Ms
}) {}

/** A bond receipt: `owner`'s stake to `worker`, already in the stake pool. */
export class AiStakeBonded extends Schema.TaggedClass<AiStakeBonded>()("AiStakeBonded", {
  receiptId: Hash32,
  worker: Address,
  owner: Address,
  amount: Positive
}) {}

export class AiUnbondRequested extends Schema.TaggedClass<AiUnbondRequested>()("AiUnbondRequested", {
  txHash: Hash32,
  worker: Address,
  owner: Address,
  amount: Positive
}) {}

/** A usage receipt settled (a validated task, or a confirmed overrun: `usage.overran`): `price` captured from the developer's escrow for `model`, under `grant`. */
export class UsageSettled extends Schema.TaggedClass<UsageSettled>()("UsageSettled", {
  taskId: Hash32,
  model: Hash32,
  provider: Address,
  developer: Address,
  /** keccak of the session grant's signed digest: its spend is capped at `spendMax`. */
  grant: Hash32,
  spendMax: Amount,
  price: Amount,
  workers: Schema.Array(Schema.Struct({ worker: Address, execMs: Schema.Int.pipe(Schema.nonNegative()) })),
  at: Ms
}) {}

export const UsageRefusal = Schema.Literal(
  "AlreadySettled",
  "WrongChain",
  "WrongModel",
  "BadGrantSignature",
  "GrantFromFuture",
  "GrantExpired",
  "UnknownModel",
  "ModelNotServable",
  "WrongPrice",
  "OverCap",
  "UnregisteredWorker",
  "WorkerUnderStaked",
  "DuplicateWorker",
  "BadResultSignature",
  "ResultsDisagree",
  "InsufficientEscrow",
  /** The task id is not the digest of the receipt's request (grant's chain and nonce, model, inputs, nonce). */
  "TaskNotRequested",
  /** The request's signature does not verify for the grant's key: the developer did not ask for this task. */
  "BadRequestSignature",
  /** A `usage.overran` claim's signature does not verify for its worker's key (`overrunDigest`). */
  "BadClaimSignature"
)
export type UsageRefusal = typeof UsageRefusal.Type

/** One receipt of a `usage.settle` or `usage.overran` skipped; the others settle. */
export class UsageRefused extends Schema.TaggedClass<UsageRefused>()("UsageRefused", {
  txHash: Hash32,
  taskId: Hash32,
  reason: UsageRefusal,
  detail: Schema.String
}) {}

export class AiShardSharesSet extends Schema.TaggedClass<AiShardSharesSet>()("AiShardSharesSet", {
  txHash: Hash32,
  ai: Amount,
  beacon: Amount,
  transfer: Amount
}) {}

/** Money out of a system account: cause + index name its cross-shard receipt (`receiptIdOf(cause, index)`). */
export class AiPayout extends Schema.TaggedClass<AiPayout>()("AiPayout", {
  source: Schema.Literal(...PayoutSource),
  to: Address,
  amount: Positive,
  cause: Hash32,
  index: Schema.Int.pipe(Schema.nonNegative())
}) {}

/**
 * A `result.challenge` proved `worker`'s signed result for `taskId` wrong
 * (two other workers signed another fingerprint): its bond is slashed at the
 * epoch close, part to `developer` (served the wrong result) and `reporter`
 * (the member that sent the proof), the rest burned.
 */
export class AiResultProvenWrong extends Schema.TaggedClass<AiResultProvenWrong>()("AiResultProvenWrong", {
  taskId: Hash32,
  worker: Address,
  developer: Address,
  reporter: Address,
  at: Ms
}) {}

/** A member's latest view of a worker (`worker.liveness`); the ledger counts the current committee's views. */
export class AiWorkerLivenessViewed extends Schema.TaggedClass<AiWorkerLivenessViewed>()("AiWorkerLivenessViewed", {
  worker: Address,
  member: Address,
  online: Schema.Boolean
}) {}

/** Members holding > 1/2 of the committee's stake now see `worker` online (from `at`, the block's time). */
export class AiWorkerOnline extends Schema.TaggedClass<AiWorkerOnline>()("AiWorkerOnline", {
  worker: Address,
  at: Ms
}) {}

/** Members holding > 1/2 of the committee's stake no longer see `worker` online (from `at`). */
export class AiWorkerOffline extends Schema.TaggedClass<AiWorkerOffline>()("AiWorkerOffline", {
  worker: Address,
  at: Ms
}) {}

/** A member's latest benchmark of a worker (`worker.measure`), uncapped. */
export class AiWorkerMeasured extends Schema.TaggedClass<AiWorkerMeasured>()("AiWorkerMeasured", {
  worker: Address,
  member: Address,
  unitsMilli: Positive
}) {}

/** The worker's units from now on: the stake-weighted median of the members' measurements, capped by its declared class. */
export class AiWorkerUnitsMeasured extends Schema.TaggedClass<AiWorkerUnitsMeasured>()("AiWorkerUnitsMeasured", {
  worker: Address,
  gpuUnitsMilli: Positive,
  at: Ms
}) {}

/** The committee changed: these former members' views and measures no longer count and are dropped. */
export class AiLivenessViewsDropped extends Schema.TaggedClass<AiLivenessViewsDropped>()("AiLivenessViewsDropped", {
  members: Schema.Array(Address)
}) {}

export const AiEvent = Schema.Union(
  EscrowCredited,
  EscrowWithdrawn,
  AiModelRegistered,
  AiModelRepriced,
  AiModelDeprecated,
  ModelAttested,
  AiModelVerified,
  AiModelRejected,
  AiWorkerRegistered,
  AiStakeBonded,
  AiUnbondRequested,
  UsageSettled,
  UsageRefused,
  AiShardSharesSet,
  AiPayout,
  RewardCredited,
  Slashed,
  StakeReleased,
  FeesRecorded,
  EpochClosed,
  AiResultProvenWrong,
  AiWorkerLivenessViewed,
  AiWorkerOnline,
  AiWorkerOffline,
  AiWorkerMeasured,
  AiWorkerUnitsMeasured,
  AiLivenessViewsDropped
)
export type AiEvent = typeof AiEvent.Type

export const AiRejectionReason = Schema.Literal(
  "NotProvider",
  "UnknownModel",
  "ModelClosed",
  "NotCommitteeMember",
  "AlreadyAttested",
  "NotPending",
  "UnknownGpuClass",
  "NotStakeOwner",
  "UnbondOverBond",
  "InsufficientEscrow",
  "NotGovernance",
  "NotAnAiKind",
  "BadManifest",
  "ReceiptWithoutPurpose",
  "ReceiptMismatch",
  "ReceiptAlreadyCredited",
  "EpochOutOfOrder",
  "AlreadyChallenged",
  "WrongChain",
  "WrongModel",
  "BadGrantSignature",
  "DuplicateWorker",
  "UnregisteredWorker",
  "BadResultSignature",
  "ResultsAgree",
  "WitnessesDisagree",
  "UnknownWorker"
)
export type AiRejectionReason = typeof AiRejectionReason.Type

/** A refused transaction (recorded as `TransactionRejected`); for a receipt input it is a bug. */
export interface AiRejection {
  readonly reason: AiRejectionReason
  readonly detail: string
}

export const reject = (reason: AiRejectionReason, detail: string): AiRejection => ({ reason, detail })

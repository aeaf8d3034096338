/**
 * The AI ledger's state: the sub-ledgers behind the AI shard's system
 * accounts and the registries its rules read. Keyed parts are persistent
 * HashMaps (a fold is O(log n)).
 *
 *   escrow      per (developer, model): sums to balance(ESCROW)
 *   models      the registry with each model's attestations
 *   workers     registered workers (with the key their results are signed with)
 *   settled     usage receipt ids (task ids) settled: each at most once
 *   grantSpent  what each session grant has spent (≤ its spendMax)
 *   credited    escrow and bond receipt ids already taken
 *   challenged  (task id, loser) pairs proven wrong: each slashed at most once
 *   liveness    per worker, each member's latest view (online or not)
 *   online      the workers the committee's stake sees online (> 1/2)
 *   measures    per worker, each member's latest measured units
 *   economy     the reward economy, folded from this ledger's own events;
 *               its stakes + unbonding sum to balance(STAKE_POOL)
 */
import { HashMap, HashSet, Option } from "effect"
import type { Hash32 } from "../../chain/hash.js"
import type { Address } from "../../chain/keys.js"
import type { EconomicsConfig } from "../../economics/config.js"
import { initialEconomy, type EconomyState } from "../../economics/state.js"

export type ModelStatus = "Pending" | "Verified" | "Rejected" | "Deprecated"

export interface Attestation {
  readonly verdict: "verified" | "rejected"
  readonly fingerprint: Hash32 | null
  readonly reason: string | null
}

export interface AiModel {
  readonly provider: Address
  readonly weightsHash: Hash32
  readonly sizeBytes: bigint
  readonly manifest: string
  readonly price: bigint
  readonly status: ModelStatus
  readonly registeredHeight: number
  readonly attestations: HashMap.HashMap<Address, Attestation>
  /** The committee's reference fingerprint, once Verified. */
  readonly fingerprint: Hash32 | null
  /** Was it ever Verified (a deprecated model's served tasks still settle). */
  readonly verified: boolean
  readonly reason: string | null
}

export interface AiWorker {
  readonly owner: Address
  readonly publicKey: string
  readonly gpuClass: string
  /** What settlement, scheduling and the economy use: the class's units until measured. */
  readonly gpuUnitsMilli: bigint
  /** Devices × the declared class's coefficient: the cap on measured units. */
  readonly classUnitsMilli: bigint
  readonly endpoint: string
  readonly registeredHeight: number
}

export interface AiLedgerState {
  readonly escrow: HashMap.HashMap<string, bigint>
  readonly models: HashMap.HashMap<Hash32, AiModel>
  /** Pending models by registration height: what `BlockEnd` checks for the deadline. */
  readonly pending: HashMap.HashMap<Hash32, number>
  readonly workers: HashMap.HashMap<Address, AiWorker>
  readonly settled: HashSet.HashSet<Hash32>
  readonly grantSpent: HashMap.HashMap<Hash32, bigint>
  readonly credited: HashSet.HashSet<Hash32>
  /** `challengeKey(taskId, loser)` of every result proven wrong. */
  readonly challenged: HashSet.HashSet<string>
  readonly liveness: HashMap.HashMap<Address, HashMap.HashMap<Address, boolean>>
  readonly online: HashSet.HashSet<Address>
  readonly measures: HashMap.HashMap<Address, HashMap.HashMap<Address, bigint>>
  /** The genesis economics: folding the economy needs it (fees, unbonding epochs). */
  readonly economics: EconomicsConfig
  readonly economy: EconomyState
}

/** A function of the genesis economics (not a constant as the spec sketched): `evolveAi` folds the economy with it. */
export const initialAiLedgerState = (economics: EconomicsConfig): AiLedgerState => ({
  escrow: HashMap.empty(),
  models: HashMap.empty(),
  pending: HashMap.empty(),
  workers: HashMap.empty(),
  settled: HashSet.empty(),
  grantSpent: HashMap.empty(),
  credited: HashSet.empty(),
  challenged: HashSet.empty(),
  liveness: HashMap.empty(),
  online: HashSet.empty(),
  measures: HashMap.empty(),
  economics,
  economy: initialEconomy(economics)
})

/** The key of (developer, model) in `escrow`. */
export const escrowKey = (developer: Address, model: Hash32): string => `${developer}/${model}`

export const escrowOf = (s: AiLedgerState, developer: Address, model: Hash32): bigint =>
  Option.getOrElse(HashMap.get(s.escrow, escrowKey(developer, model)), () => 0n)

export const modelOf = (s: AiLedgerState, model: Hash32): AiModel | undefined => Option.getOrUndefined(HashMap.get(s.models, model))

export const workerOf = (s: AiLedgerState, worker: Address): AiWorker | undefined => Option.getOrUndefined(HashMap.get(s.workers, worker))

export const spentOf = (s: AiLedgerState, grant: Hash32): bigint => Option.getOrElse(HashMap.get(s.grantSpent, grant), () => 0n)

/** `member`'s latest liveness view of `worker` (`worker.liveness`; undefined: none). */
export const livenessViewOf = (s: AiLedgerState, worker: Address, member: Address): boolean | undefined =>
  Option.getOrUndefined(Option.flatMap(HashMap.get(s.liveness, worker), (views) => HashMap.get(views, member)))

/** `member`'s latest measurement of `worker` (`worker.measure`; undefined: none). */
export const measureOf = (s: AiLedgerState, worker: Address, member: Address): bigint | undefined =>
  Option.getOrUndefined(Option.flatMap(HashMap.get(s.measures, worker), (measures) => HashMap.get(measures, member)))

/** The key of (task, loser) in `challenged`. */
export const challengeKey = (taskId: Hash32, loser: Address): string => `${taskId}/${loser}`

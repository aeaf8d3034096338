/**
 * The economy's state: everything the epoch close needs, rebuilt by folding
 * facts (`foldFact`) and closed ledgers (`foldLedger`) in log order. The live
 * node and the auditor fold the same log, so they hold the same state.
 *
 * Cumulative parts (stakes, minted, what each account owes) live for ever;
 * per-epoch parts (tasks settled, fees, wrong results, ended outages, models
 * verified, closed online intervals) are emptied when the epoch's ledger is
 * folded. Keyed parts are persistent HashMaps: a fold costs O(log n), not a
 * copy of every worker.
 */
import { Chunk, HashMap, HashSet, Option } from "effect"
import type { Hash32 } from "../chain/hash.js"
import type { Address } from "../chain/keys.js"
import type { ModelId } from "../ai/model/events.js"
import type { TaskId } from "../ai/task/events.js"
import type { PayoutSource } from "./accounts.js"
import type { BondTake } from "./bonds.js"
import type { EconomicsConfig, ShardShares } from "./config.js"

/** An outage still going on; `appliedPpm` is the offline grade already slashed for it. */
export interface OpenOutage {
  readonly since: number
  readonly appliedPpm: bigint
}

export interface EndedOutage extends OpenOutage {
  readonly worker: Address
  readonly until: number
}

export interface WorkerRecord {
  readonly owner: Address
  readonly gpuUnitsMilli: bigint
  readonly status: "online" | "offline" | "left"
  /** Start of the current online interval (null when offline or left). */
  readonly onlineSince: number | null
  /** Online intervals [from, to) that ended in the open epoch. */
  readonly intervals: ReadonlyArray<readonly [number, number]>
  readonly outage: OpenOutage | null
}

/** A worker's stake: every owner's bond (`bonds.ts`; no zero bonds kept) and their sum. */
export interface StakeRecord {
  readonly bonded: bigint
  readonly bonds: HashMap.HashMap<Address, bigint>
}

/** Stake on its way back: released to `owner` at the close of `releaseEpoch`. */
export interface Unbonding {
  readonly txHash: Hash32
  readonly worker: Address
  readonly owner: Address
  readonly amount: bigint
  readonly releaseEpoch: number
}

/** A settled task's work: weight = gpuUnitsMilli × execMs per worker. */
export interface SettledWork {
  readonly taskId: TaskId
  readonly provider: Address
  readonly weights: ReadonlyArray<{ readonly worker: Address; readonly weight: bigint }>
}

export interface FeeLine {
  readonly serviceFees: bigint
  readonly computeFeesPaid: bigint
  readonly computeFeesEarned: bigint
  readonly protocolFees: bigint
  readonly tasks: number
}

export interface WrongResult {
  readonly taskId: TaskId
  readonly worker: Address
  readonly developer: Address
  readonly reporter: Address
  /**
   * The slash, fixed when the proof is folded (on the bond left after the
   * worker's earlier pending slashes): unbonding before the close cannot
   * shrink it, and an unbond cannot take the stake it will come from.
   */
  readonly slash: bigint
  /** Who gives it: the slash split over the owners' bonds left by earlier pending slashes (`splitOverBonds`). */
  readonly shares: ReadonlyArray<BondTake>
}

export type Owed = Readonly<Record<PayoutSource, HashMap.HashMap<Address, bigint>>>

export interface EconomyState {
  /** The open epoch; it advances when a closed ledger is folded. */
  readonly epoch: number
  /** The year whose first epoch opened last, and what the reserve held then. */
  readonly yearStart: { readonly year: number; readonly reserve: bigint }
  readonly shares: ShardShares
  /** Set by governance in the open epoch; in effect from the next. */
  readonly pendingShares: ShardShares | null
  readonly workers: HashMap.HashMap<Address, WorkerRecord>
  readonly stakes: HashMap.HashMap<Address, StakeRecord>
  readonly unbonding: ReadonlyArray<Unbonding>
  /** Stake and governance transactions already counted. */
  readonly seenTx: HashSet.HashSet<Hash32>
  readonly verifiedModels: HashSet.HashSet<ModelId>
  readonly paused: HashSet.HashSet<ModelId>
  /** Cumulative: what each source account must have paid each address. */
  readonly owed: Owed
  readonly minted: bigint
  readonly foundationPaid: bigint
  readonly burnedBySlashes: bigint
  readonly protocolFeesBurned: bigint
  // The open epoch's accumulators:
  readonly launches: HashMap.HashMap<ModelId, Address>
  readonly tasks: Chunk.Chunk<SettledWork>
  readonly fees: HashMap.HashMap<Address, FeeLine>
  readonly wrongResults: Chunk.Chunk<WrongResult>
  readonly endedOutages: Chunk.Chunk<EndedOutage>
}

export const initialEconomy = (config: EconomicsConfig): EconomyState => ({
  epoch: 0,
  yearStart: { year: 0, reserve: config.miningReserve },
  shares: config.shardShares,
  pendingShares: null,
  workers: HashMap.empty(),
  stakes: HashMap.empty(),
  unbonding: [],
  seenTx: HashSet.empty(),
  verifiedModels: HashSet.empty(),
  paused: HashSet.empty(),
  owed: { reserve: HashMap.empty(), foundation: HashMap.empty(), stakePool: HashMap.empty(), escrow: HashMap.empty() },
  minted: 0n,
  foundationPaid: 0n,
  burnedBySlashes: 0n,
  protocolFeesBurned: 0n,
  launches: HashMap.empty(),
  tasks: Chunk.empty(),
  fees: HashMap.empty(),
  wrongResults: Chunk.empty(),
  endedOutages: Chunk.empty()
})

export const emptyFeeLine: FeeLine = { serviceFees: 0n, computeFeesPaid: 0n, computeFeesEarned: 0n, protocolFees: 0n, tasks: 0 }

/** `owed[source][to] += amount`. */
export const owe = (owed: Owed, source: PayoutSource, to: Address, amount: bigint): Owed =>
  amount === 0n ? owed : { ...owed, [source]: HashMap.set(owed[source], to, amountIn(owed[source], to) + amount) }

export const amountIn = <K>(m: HashMap.HashMap<K, bigint>, key: K): bigint => Option.getOrElse(HashMap.get(m, key), () => 0n)

/** A worker's bonded (slashable) stake. */
export const bondedOf = (s: EconomyState, worker: Address): bigint => Option.match(HashMap.get(s.stakes, worker), { onNone: () => 0n, onSome: (x) => x.bonded })

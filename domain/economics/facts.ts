/**
 * The facts the economics folds, in log order. They are decoupled from the
 * stream events that report them: a node adapter maps store events (worker
 * registrations, heartbeats, stake transactions, settled tasks, disputes,
 * governance) to these, so the rules here never depend on another aggregate's
 * event shapes. Times are the ms timestamps the facts carry, never a clock.
 */
import { Data } from "effect"
import type { Hash32 } from "../chain/hash.js"
import type { Address } from "../chain/keys.js"
import type { ModelId } from "../ai/model/events.js"
import type { TaskId } from "../ai/task/events.js"
import type { ShardShares } from "./config.js"

/** A worker whose result validated, with how long it computed. */
export interface SettledWorker {
  readonly worker: Address
  readonly execMs: number
}

export type EconomyFact = Data.TaggedEnum<{
  /** Registration: the worker is online from `at`. A known worker re-joining takes the new owner and units. */
  WorkerJoined: { readonly worker: Address; readonly owner: Address; readonly gpuUnitsMilli: bigint; readonly at: number }
  /** Registered on chain: known with these units, offline (no outage) until it comes online; a known worker keeps its status. */
  WorkerRegistered: { readonly worker: Address; readonly owner: Address; readonly gpuUnitsMilli: bigint }
  /** The worker's units from now on (measured by the committee). */
  WorkerUnitsMeasured: { readonly worker: Address; readonly gpuUnitsMilli: bigint }
  /** A heartbeat: ends an outage at `at`; nothing changes for a worker already online. */
  WorkerOnline: { readonly worker: Address; readonly at: number }
  /** Went offline at `at`: an outage starts. */
  WorkerOffline: { readonly worker: Address; readonly at: number }
  /** Deregistered: offline for good, and its outage is no longer slashed. */
  WorkerLeft: { readonly worker: Address; readonly at: number }
  /** Already moved owner → stake pool on chain; counted once per tx hash. */
  StakeBonded: { readonly txHash: Hash32; readonly worker: Address; readonly owner: Address; readonly amount: bigint }
  /** Clamped to what the worker has bonded; counted once per tx hash. */
  UnbondRequested: { readonly txHash: Hash32; readonly worker: Address; readonly owner: Address; readonly amount: bigint }
  /** Earns a one-time launch reward at the next close. */
  ModelVerified: { readonly modelId: ModelId; readonly provider: Address; readonly at: number }
  /** A validated task; its price was captured in escrow. */
  TaskSettled: {
    readonly taskId: TaskId
    readonly modelId: ModelId
    readonly provider: Address
    readonly developer: Address
    readonly price: bigint
    readonly workers: ReadonlyArray<SettledWorker>
    readonly at: number
  }
  /** Slashed at the next close. */
  ResultProvenWrong: { readonly taskId: TaskId; readonly worker: Address; readonly developer: Address; readonly reporter: Address; readonly at: number }
  /** Governance: in effect from the epoch after the one it is folded in. */
  ShardSharesSet: { readonly txHash: Hash32; readonly shares: ShardShares }
  /** The provider repriced a paused model: it runs again. */
  ModelRepriced: { readonly modelId: ModelId }
}>

export const EconomyFact = Data.taggedEnum<EconomyFact>()

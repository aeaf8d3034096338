/**
 * The econ-sim's own reading of a log of the old node-side facts (the node
 * now folds the AI shard's events: src/audit/economyReplay.ts). Kept for the
 * simulation only, until it drives the AI ledger.
 *
 *
 * Reads the economy's facts out of the event log. The rules in
 * domain/economics know nothing of streams; this turns what the chain, the
 * models, the workers and the tasks recorded into the facts they fold, and
 * the beacon's `EpochEnded` into the window of the epoch to close.
 *
 * It keeps a little memory per task (who was assigned when, who was right),
 * because a settled task's compute units are its validated workers' GPU units
 * × the time from their assignment to their result, as the node's Clock
 * recorded both. The node and the auditor run this same reader over the same
 * log, so both fold the same facts in the same order.
 */
import { Schema } from "effect"
import { Hash32 } from "../domain/chain/hash.js"
import { Address } from "../domain/chain/keys.js"
import { PositiveAmount, PpmValue } from "../domain/chain/transaction.js"
import { closeEpoch, type EpochWindow } from "../domain/economics/closeEpoch.js"
import type { EconomicsConfig } from "../domain/economics/config.js"
import type { EpochLedger } from "../domain/economics/events.js"
import { foldFact } from "../domain/economics/foldFact.js"
import { applyClosed } from "../domain/economics/foldLedger.js"
import { initialEconomy, type EconomyState } from "../domain/economics/state.js"
import type { RecordedEvent } from "../infra/eventstore/EventStore.js"
import type { EconomyFact } from "../domain/economics/facts.js"
import type { OverrunKind } from "../domain/ai/model/overruns.js"
import { refutationProvesLie } from "../domain/ai/task/overrun.js"

type Data = { readonly [key: string]: unknown }

// ---------------------------------------------------------------- the sim's own chain facts

/**
 * Where the econ-sim records what its simulated chain did that the chain's
 * events no longer say (bonds and governance are the AI ledger's now:
 * `AiStakeBonded`, `AiUnbondRequested`, `AiShardSharesSet`): a stream of no
 * kind (streamEvents.ts), so the auditor only checks its hash chain.
 */
export const SIM_CHAIN_STREAM = "econ-sim-chain"

/** `owner` bonded `amount` for `worker`. */
export class SimStakeBonded extends Schema.TaggedClass<SimStakeBonded>()("StakeBonded", {
  txHash: Hash32,
  owner: Address,
  worker: Address,
  amount: PositiveAmount
}) {}

/** `owner` asked `amount` of its bond to `worker` back. */
export class SimUnbondRequested extends Schema.TaggedClass<SimUnbondRequested>()("UnbondRequested", {
  txHash: Hash32,
  owner: Address,
  worker: Address,
  amount: PositiveAmount
}) {}

/** Governance's split of each epoch's issuance (ppm). */
export class SimShardSharesProposed extends Schema.TaggedClass<SimShardSharesProposed>()("ShardSharesProposed", {
  txHash: Hash32,
  ai: PpmValue,
  beacon: PpmValue,
  transfer: PpmValue
}) {}

export const SimChainEvent = Schema.Union(SimStakeBonded, SimUnbondRequested, SimShardSharesProposed)
export type SimChainEvent = typeof SimChainEvent.Type

/** The window of an epoch the beacon just ended. */
export interface EpochWindowFact {
  readonly _tag: "EpochEnded"
  readonly epoch: number
  readonly height: number
  readonly startAt: number
  readonly endAt: number
  readonly position: number
}

export type LogFact = EconomyFact | EpochWindowFact

interface TaskMemory {
  developer: string
  modelId: string
  readonly assignedAt: Map<string, number>
  readonly execMs: Map<string, number>
  referee: string | null
  correct: ReadonlyArray<string>
}

const str = (d: Data, k: string): string => d[k] as string
const num = (d: Data, k: string): number => d[k] as number
const big = (d: Data, k: string): bigint => BigInt(d[k] as string)
/** Stored events were checked by their schemas when written: their fields are trusted here. */
const fact = (f: { readonly _tag: EconomyFact["_tag"]; readonly [field: string]: unknown }): EconomyFact => f as unknown as EconomyFact
const idOf = (e: RecordedEvent, prefix: string): string => e.stream.slice(prefix.length)

export const makeFactReader = () => {
  const providers = new Map<string, string>() // model id → provider
  const tasks = new Map<string, TaskMemory>()

  const fromShard = (e: RecordedEvent, d: Data): ReadonlyArray<LogFact> => {
    switch (e.type) {
      case "EpochEnded":
        return [{ _tag: "EpochEnded", epoch: num(d, "epoch"), height: num(d, "height"), startAt: num(d, "startAt"), endAt: num(d, "endAt"), position: e.position }]
      case "StakeBonded":
        return [fact({ _tag: "StakeBonded", txHash: str(d, "txHash"), worker: str(d, "worker"), owner: str(d, "owner"), amount: big(d, "amount") })]
      case "UnbondRequested":
        return [fact({ _tag: "UnbondRequested", txHash: str(d, "txHash"), worker: str(d, "worker"), owner: str(d, "owner"), amount: big(d, "amount") })]
      case "ShardSharesProposed":
        return [
          fact({
            _tag: "ShardSharesSet",
            txHash: str(d, "txHash"),
            shares: { ai: big(d, "ai"), beacon: big(d, "beacon"), transfer: big(d, "transfer") }
          })
        ]
      default:
        return []
    }
  }

  const fromModel = (e: RecordedEvent, d: Data): ReadonlyArray<LogFact> => {
    const modelId = idOf(e, "model-")
    switch (e.type) {
      case "ModelUploaded":
        providers.set(modelId, str(d, "provider"))
        return []
      case "ModelVerified": {
        const provider = providers.get(modelId)
        return provider === undefined ? [] : [fact({ _tag: "ModelVerified", modelId, provider, at: num(d, "at") })]
      }
      case "ModelPriceUpdated":
        return [fact({ _tag: "ModelRepriced", modelId })]
      default:
        return []
    }
  }

  const fromWorker = (e: RecordedEvent, d: Data): ReadonlyArray<LogFact> => {
    const worker = idOf(e, "worker-")
    switch (e.type) {
      case "WorkerRegistered":
        return [fact({ _tag: "WorkerJoined", worker, owner: str(d, "owner"), gpuUnitsMilli: big(d, "gpuUnitsMilli"), at: num(d, "at") })]
      case "WorkerHeartbeat":
        return [fact({ _tag: "WorkerOnline", worker, at: num(d, "at") })]
      case "WorkerWentOffline":
        // Online time ends at the last heartbeat, not when the grace ran out: the grace is not paid.
        return [fact({ _tag: "WorkerOffline", worker, at: num(d, "lastHeartbeatAt") })]
      case "WorkerDeregistered":
        return [fact({ _tag: "WorkerLeft", worker, at: num(d, "at") })]
      default:
        return []
    }
  }

  const fromTask = (e: RecordedEvent, d: Data): ReadonlyArray<LogFact> => {
    const taskId = idOf(e, "task-")
    if (e.type === "TaskRequested") {
      tasks.set(taskId, {
        developer: str(d, "developer"),
        modelId: str(d, "modelId"),
        assignedAt: new Map(),
        execMs: new Map(),
        referee: null,
        correct: []
      })
      return []
    }
    const t = tasks.get(taskId)
    if (t === undefined) return []
    switch (e.type) {
      case "TaskAssigned":
        for (const w of d["workers"] as ReadonlyArray<string>) t.assignedAt.set(w, num(d, "at"))
        return []
      case "TaskReassigned":
        t.assignedAt.set(str(d, "replacement"), num(d, "at"))
        return []
      case "TaskResultSubmitted": {
        const worker = str(d, "worker")
        t.execMs.set(worker, Math.max(0, num(d, "at") - (t.assignedAt.get(worker) ?? num(d, "at"))))
        return []
      }
      case "DisputeResolved":
        t.referee = str(d, "referee")
        return []
      case "TaskValidated": {
        t.correct = d["correct"] as ReadonlyArray<string>
        // Who reported the wrong result: the referee that settled the dispute, else a worker that was right.
        const reporter = t.referee ?? t.correct[0]
        const wrong = d["wrong"] as ReadonlyArray<string>
        return reporter === undefined
          ? []
          : wrong.map((worker) => fact({ _tag: "ResultProvenWrong", taskId, worker, developer: t.developer, reporter, at: num(d, "at") }))
      }
      case "OverrunClaimed": {
        // The claimant burned `millis` if the claim is confirmed; the confirmer starts now.
        t.execMs.set(str(d, "worker"), num(d, "millis"))
        t.assignedAt.set(str(d, "confirmer"), num(d, "at"))
        return []
      }
      case "OverrunClaimRefuted": {
        // A worker ran the inputs within the limits: a deadline claim was a lie, slashed as for a wrong result.
        const claimant = str(d, "claimant")
        t.execMs.delete(claimant)
        if (!refutationProvesLie(str(d, "kind") as OverrunKind)) return []
        return [fact({ _tag: "ResultProvenWrong", taskId, worker: claimant, developer: t.developer, reporter: str(d, "refutedBy"), at: num(d, "at") })]
      }
      case "TaskOverran": {
        // A confirmed overrun is settled like a result run by both workers: each is paid the `millis` it burned.
        const worker = str(d, "worker")
        t.correct = [str(d, "claimant"), worker]
        t.execMs.set(worker, num(d, "millis"))
        return []
      }
      case "TaskFailed":
        tasks.delete(taskId)
        return []
      case "TaskSettled": {
        tasks.delete(taskId)
        const provider = providers.get(t.modelId)
        if (provider === undefined) return []
        const workers = t.correct.map((worker) => ({ worker: worker as Address, execMs: t.execMs.get(worker) ?? 0 }))
        return [
          fact({ _tag: "TaskSettled", taskId, modelId: t.modelId, provider, developer: t.developer, price: big(d, "amount"), workers, at: num(d, "at") })
        ]
      }
      default:
        return []
    }
  }

  /** The facts of one event of the log, in order (most events have none). */
  return (e: RecordedEvent): ReadonlyArray<LogFact> => {
    const d = e.data as Data
    if (e.stream.startsWith("shard-") || e.stream === SIM_CHAIN_STREAM) return fromShard(e, d)
    if (e.stream.startsWith("model-")) return fromModel(e, d)
    if (e.stream.startsWith("worker-")) return fromWorker(e, d)
    if (e.stream.startsWith("task-")) return fromTask(e, d)
    return []
  }
}

export type FactReader = ReturnType<typeof makeFactReader>

// ---------------------------------------------------------------- the shared loop

/** An epoch the loop closed: its window, the economy it was closed from, its ledger (already folded). */
export interface ClosedEpoch {
  readonly ended: EpochWindowFact
  readonly window: EpochWindow
  readonly before: EconomyState
  readonly ledger: EpochLedger
}

export interface LogFold {
  readonly state: () => EconomyState
  /** Fold one event of the log (in log order); the epochs it closed, if any. */
  readonly apply: (event: RecordedEvent) => ReadonlyArray<ClosedEpoch>
}

const NONE: ReadonlyArray<ClosedEpoch> = []

export const makeLogFold = (economics: EconomicsConfig, totalSupply: bigint): LogFold => {
  const read = makeFactReader()
  const fold = foldFact(economics)
  let state = initialEconomy(economics)
  return {
    state: () => state,
    apply: (event) => {
      let closed: Array<ClosedEpoch> | undefined
      for (const f of read(event)) {
        if (f._tag !== "EpochEnded") {
          state = fold(state, f)
          continue
        }
        if (f.epoch < state.epoch) continue // already folded (a replayed boundary)
        const window: EpochWindow = { epoch: f.epoch, startAt: f.startAt, endAt: f.endAt, totalSupply }
        const before = state
        const ledger = closeEpoch(economics, before, window)
        state = applyClosed(before, ledger)
        ;(closed ??= []).push({ ended: f, window, before, ledger })
      }
      return closed ?? NONE
    }
  }
}


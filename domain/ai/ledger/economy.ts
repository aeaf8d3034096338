/**
 * The economy folded from the AI ledger's own events: each event that is an
 * economic fact maps to an `EconomyFact` (`domain/economics/facts.ts`), and
 * the epoch close's reward events fold as a closed ledger (`foldLedger`).
 *
 * Online duration comes from chain data: a registered worker is known (its
 * units count for task mining and compute fees) but offline until the
 * committee's stake sees it online (`AiWorkerOnline`, `workerLiveness.ts`);
 * from `AiWorkerOffline` an outage runs (graded offline slash). Measured
 * units (`AiWorkerUnitsMeasured`) replace the class's from then on.
 */
import type { Hash32 } from "../../chain/hash.js"
import { EconomyFact } from "../../economics/facts.js"
import { foldFact } from "../../economics/foldFact.js"
import { foldLedger } from "../../economics/foldLedger.js"
import type { EconomicsConfig } from "../../economics/config.js"
import type { EconomyState } from "../../economics/state.js"
import type { AiEvent } from "./events.js"

/** The economy facts an AI event reports (none for most). */
export const economyFactsOf = (e: AiEvent): ReadonlyArray<EconomyFact> => {
  switch (e._tag) {
    case "AiModelVerified":
      return [EconomyFact.ModelVerified({ modelId: e.model, provider: e.provider, at: e.at })]
    case "AiModelRepriced":
      return [EconomyFact.ModelRepriced({ modelId: e.model })]
    case "UsageSettled":
      return [
        EconomyFact.TaskSettled({
          taskId: e.taskId,
          modelId: e.model,
          provider: e.provider,
          developer: e.developer,
          price: e.price,
          workers: e.workers,
          at: e.at
        })
      ]
    case "AiWorkerRegistered":
      return [EconomyFact.WorkerRegistered({ worker: e.worker, owner: e.owner, gpuUnitsMilli: e.gpuUnitsMilli })]
    case "AiWorkerOnline":
      return [EconomyFact.WorkerOnline({ worker: e.worker, at: e.at })]
    case "AiWorkerOffline":
      return [EconomyFact.WorkerOffline({ worker: e.worker, at: e.at })]
    case "AiWorkerUnitsMeasured":
      return [EconomyFact.WorkerUnitsMeasured({ worker: e.worker, gpuUnitsMilli: e.gpuUnitsMilli })]
    case "AiStakeBonded":
      return [EconomyFact.StakeBonded({ txHash: e.receiptId as Hash32, worker: e.worker, owner: e.owner, amount: e.amount })]
    case "AiUnbondRequested":
      return [EconomyFact.UnbondRequested({ txHash: e.txHash, worker: e.worker, owner: e.owner, amount: e.amount })]
    case "AiResultProvenWrong":
      return [EconomyFact.ResultProvenWrong({ taskId: e.taskId, worker: e.worker, developer: e.developer, reporter: e.reporter, at: e.at })]
    case "AiShardSharesSet":
      return [EconomyFact.ShardSharesSet({ txHash: e.txHash, shares: { ai: e.ai, beacon: e.beacon, transfer: e.transfer } })]
    default:
      return []
  }
}

/** The economy after `e`. */
export const foldEconomy = (config: EconomicsConfig, s: EconomyState, e: AiEvent): EconomyState => {
  switch (e._tag) {
    case "RewardCredited":
    case "Slashed":
    case "StakeReleased":
    case "FeesRecorded":
    case "EpochClosed":
      return foldLedger(s, e)
    default:
      return economyFactsOf(e).reduce(foldFact(config), s)
  }
}

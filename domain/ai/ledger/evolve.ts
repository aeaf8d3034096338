/**
 * Folding an AI event into the ledger's state. Events report decisions
 * already checked, so a broken invariant here is a bug or a corrupt stream
 * (it throws): escrow never negative, no receipt id settled or credited
 * twice, no grant over its cap.
 */
import { HashMap, HashSet, Option } from "effect"
import type { Address } from "../../chain/keys.js"
import type { Hash32 } from "../../chain/hash.js"
import { invariantsOf, unreachable, type Assert } from "../../assert.js"
import type { AiEvent } from "./events.js"
import { foldEconomy } from "./economy.js"
import { challengeKey, escrowKey, escrowOf, modelOf, spentOf, workerOf, type AiLedgerState, type AiModel } from "./state.js"

const assert: Assert = invariantsOf("AI ledger")

const addEscrow = (s: AiLedgerState, developer: Address, model: Hash32, delta: bigint): AiLedgerState => {
  const next = escrowOf(s, developer, model) + delta
  assert(next >= 0n, `escrow of ${developer} for ${model} would be ${next}`)
  const key = escrowKey(developer, model)
  return { ...s, escrow: next === 0n ? HashMap.remove(s.escrow, key) : HashMap.set(s.escrow, key, next) }
}

const withModel = (s: AiLedgerState, model: Hash32, f: (m: AiModel) => AiModel): AiLedgerState => {
  const m = modelOf(s, model)
  assert(m !== undefined, `event on unknown model ${model}`)
  return { ...s, models: HashMap.set(s.models, model, f(m)) }
}

/** One worker's reports by member (empty when none). */
const reportsOf = <V>(reports: HashMap.HashMap<Address, HashMap.HashMap<Address, V>>, worker: Address): HashMap.HashMap<Address, V> =>
  Option.getOrElse(HashMap.get(reports, worker), () => HashMap.empty<Address, V>())

const credit = (s: AiLedgerState, receiptId: Hash32): AiLedgerState => {
  assert(!HashSet.has(s.credited, receiptId), `receipt ${receiptId} credited twice`)
  return { ...s, credited: HashSet.add(s.credited, receiptId) }
}

/** The registry and sub-ledgers after `e` (the economy is folded by `evolveAi`). */
const evolveLedger = (s: AiLedgerState, e: AiEvent): AiLedgerState => {
  switch (e._tag) {
    case "EscrowCredited":
      return addEscrow(credit(s, e.receiptId), e.developer, e.model, e.amount)
    case "EscrowWithdrawn":
      return addEscrow(s, e.developer, e.model, -e.amount)
    case "AiModelRegistered":
      assert(modelOf(s, e.model) === undefined, `model ${e.model} registered twice`)
      return {
        ...s,
        models: HashMap.set(s.models, e.model, {
          provider: e.provider,
          weightsHash: e.weightsHash,
          sizeBytes: e.sizeBytes,
          manifest: e.manifest,
          price: e.price,
          status: "Pending",
          registeredHeight: e.registeredHeight,
          attestations: HashMap.empty(),
          fingerprint: null,
          verified: false,
          reason: null
        }),
        pending: HashMap.set(s.pending, e.model, e.registeredHeight)
      }
    case "AiModelRepriced":
      return withModel(s, e.model, (m) => ({ ...m, price: e.price }))
    case "AiModelDeprecated":
      return { ...withModel(s, e.model, (m) => ({ ...m, status: "Deprecated" })), pending: HashMap.remove(s.pending, e.model) }
    case "ModelAttested":
      return withModel(s, e.model, (m) => {
        assert(m.status === "Pending", `attestation on ${m.status} model ${e.model}`)
        assert(!HashMap.has(m.attestations, e.validator), `${e.validator} attested ${e.model} twice`)
        return { ...m, attestations: HashMap.set(m.attestations, e.validator, { verdict: e.verdict, fingerprint: e.fingerprint, reason: e.reason }) }
      })
    case "AiModelVerified":
      return {
        ...withModel(s, e.model, (m) => ({ ...m, status: "Verified", fingerprint: e.fingerprint, verified: true })),
        pending: HashMap.remove(s.pending, e.model)
      }
    case "AiModelRejected":
      return { ...withModel(s, e.model, (m) => ({ ...m, status: "Rejected", reason: e.reason })), pending: HashMap.remove(s.pending, e.model) }
    case "AiWorkerRegistered":
      // A (re-)registration declares a class: units are the class's until the committee measures them again.
      return {
        ...s,
        workers: HashMap.set(s.workers, e.worker, {
          owner: e.owner,
          publicKey: e.publicKey,
          gpuClass: e.gpuClass,
          gpuUnitsMilli: e.gpuUnitsMilli,
          classUnitsMilli: e.gpuUnitsMilli,
          endpoint: e.endpoint,
          registeredHeight: e.registeredHeight
        }),
        measures: HashMap.remove(s.measures, e.worker)
      }
    case "AiWorkerLivenessViewed":
      return { ...s, liveness: HashMap.set(s.liveness, e.worker, HashMap.set(reportsOf(s.liveness, e.worker), e.member, e.online)) }
    case "AiWorkerOnline":
      assert(!HashSet.has(s.online, e.worker), `worker ${e.worker} came online twice`)
      return { ...s, online: HashSet.add(s.online, e.worker) }
    case "AiWorkerOffline":
      assert(HashSet.has(s.online, e.worker), `worker ${e.worker} went offline while not online`)
      return { ...s, online: HashSet.remove(s.online, e.worker) }
    case "AiWorkerMeasured":
      return { ...s, measures: HashMap.set(s.measures, e.worker, HashMap.set(reportsOf(s.measures, e.worker), e.member, e.unitsMilli)) }
    case "AiWorkerUnitsMeasured": {
      const w = workerOf(s, e.worker)
      assert(w !== undefined, `units measured for unknown worker ${e.worker}`)
      assert(e.gpuUnitsMilli <= w.classUnitsMilli, `worker ${e.worker} measured ${e.gpuUnitsMilli} over its class's ${w.classUnitsMilli}`)
      return { ...s, workers: HashMap.set(s.workers, e.worker, { ...w, gpuUnitsMilli: e.gpuUnitsMilli }) }
    }
    case "AiLivenessViewsDropped": {
      const drop = <V>(reports: HashMap.HashMap<Address, HashMap.HashMap<Address, V>>) =>
        HashMap.filter(
          HashMap.map(reports, (byMember) => e.members.reduce((m, member) => HashMap.remove(m, member), byMember)),
          (byMember) => HashMap.size(byMember) > 0
        )
      return { ...s, liveness: drop(s.liveness), measures: drop(s.measures) }
    }
    case "AiStakeBonded":
      return credit(s, e.receiptId)
    case "UsageSettled": {
      assert(!HashSet.has(s.settled, e.taskId), `usage receipt ${e.taskId} settled twice`)
      const spent = spentOf(s, e.grant) + e.price
      assert(spent <= e.spendMax, `grant ${e.grant} spent ${spent} over its cap ${e.spendMax}`)
      const debited = addEscrow(s, e.developer, e.model, -e.price)
      return { ...debited, settled: HashSet.add(s.settled, e.taskId), grantSpent: HashMap.set(s.grantSpent, e.grant, spent) }
    }
    case "AiResultProvenWrong": {
      const key = challengeKey(e.taskId, e.worker)
      assert(!HashSet.has(s.challenged, key), `result of ${e.worker} for task ${e.taskId} proven wrong twice`)
      return { ...s, challenged: HashSet.add(s.challenged, key) }
    }
    case "AiUnbondRequested":
    case "UsageRefused":
    case "AiShardSharesSet":
    case "AiPayout":
    case "RewardCredited":
    case "Slashed":
    case "StakeReleased":
    case "FeesRecorded":
    case "EpochClosed":
      return s
    default:
      return unreachable(e, "AI event")
  }
}

export const evolveAi = (s: AiLedgerState, e: AiEvent): AiLedgerState => {
  const next = evolveLedger(s, e)
  return { ...next, economy: foldEconomy(s.economics, next.economy, e) }
}

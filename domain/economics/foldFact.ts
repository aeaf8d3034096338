/**
 * Folding one fact into the economy. Facts never fail: they report what
 * already happened (money moved on chain, a task settled), so one that makes
 * no sense here (a heartbeat from an unknown worker) changes nothing.
 *
 *   workers     online intervals and outages, from joins (or registrations,
 *               offline until online), heartbeats, leaves; units as measured
 *   stakes      per owner (`bonds.ts`): a worker's stake is the sum of its
 *               owners' bonds; an owner's unbond is clamped to its own bond
 *               (less its share of pending slashes) and starts
 *               unbonding, released to that owner at the close of epoch
 *               `e + unbondingEpochs − 1` (e = the epoch it is folded in):
 *               the owner has it back `unbondingEpochs` closes later, counting
 *               the close of e. Unbonding stake is no longer slashable.
 *   tasks       fees owed by escrow at once (fees.ts); work kept for mining
 *   governance  shard shares wait for the next epoch
 */
import { Chunk, HashMap, HashSet, Option } from "effect"
import type { Hash32 } from "../chain/hash.js"
import type { Address } from "../chain/keys.js"
import { BURN_ADDRESS, SYSTEM_TREASURY } from "./accounts.js"
import type { EconomicsConfig } from "./config.js"
import type { EconomyFact } from "./facts.js"
import { taskFees, unitMs } from "./fees.js"
import { minBig, sumOf } from "./proRata.js"
import { addToBond, bondOf, bondsInOrder, splitOverBonds, stakeOf } from "./bonds.js"
import { emptyFeeLine, owe, type EconomyState, type FeeLine, type WorkerRecord } from "./state.js"
import { wrongResultSlash } from "./slashing.js"
import { unreachable } from "../assert.js"

type Of<T extends EconomyFact["_tag"]> = Extract<EconomyFact, { _tag: T }>

const workerOf = (s: EconomyState, worker: Address): WorkerRecord | undefined => Option.getOrUndefined(HashMap.get(s.workers, worker))

const withWorker = (s: EconomyState, worker: Address, w: WorkerRecord): EconomyState => ({ ...s, workers: HashMap.set(s.workers, worker, w) })

/** Ends a worker's outage at `at`: it is slashed (if long enough) at the close. */
const endOutage = (s: EconomyState, worker: Address, w: WorkerRecord, at: number): EconomyState =>
  w.outage === null ? s : { ...s, endedOutages: Chunk.append(s.endedOutages, { worker, since: w.outage.since, appliedPpm: w.outage.appliedPpm, until: at }) }

/** Closes the worker's online interval at `at`. */
const offlineAt = (w: WorkerRecord, at: number): Pick<WorkerRecord, "onlineSince" | "intervals"> => ({
  onlineSince: null,
  intervals: w.onlineSince === null ? w.intervals : [...w.intervals, [w.onlineSince, at] as const]
})

const joined = (s: EconomyState, f: Of<"WorkerJoined">): EconomyState => {
  const w = workerOf(s, f.worker)
  const base = { owner: f.owner, gpuUnitsMilli: f.gpuUnitsMilli }
  if (w === undefined) return withWorker(s, f.worker, { ...base, status: "online", onlineSince: f.at, intervals: [], outage: null })
  if (w.status === "online") return withWorker(s, f.worker, { ...w, ...base })
  return withWorker(endOutage(s, f.worker, w, f.at), f.worker, { ...w, ...base, status: "online", onlineSince: f.at, outage: null })
}

const registered = (s: EconomyState, f: Of<"WorkerRegistered">): EconomyState => {
  const w = workerOf(s, f.worker)
  const base = { owner: f.owner, gpuUnitsMilli: f.gpuUnitsMilli }
  return withWorker(s, f.worker, w === undefined ? { ...base, status: "offline", onlineSince: null, intervals: [], outage: null } : { ...w, ...base })
}

const unitsMeasured = (s: EconomyState, f: Of<"WorkerUnitsMeasured">): EconomyState => {
  const w = workerOf(s, f.worker)
  return w === undefined ? s : withWorker(s, f.worker, { ...w, gpuUnitsMilli: f.gpuUnitsMilli })
}

const online = (s: EconomyState, f: Of<"WorkerOnline">): EconomyState => {
  const w = workerOf(s, f.worker)
  if (w === undefined || w.status !== "offline") return s
  return withWorker(endOutage(s, f.worker, w, f.at), f.worker, { ...w, status: "online", onlineSince: f.at, outage: null })
}

const offline = (s: EconomyState, f: Of<"WorkerOffline">): EconomyState => {
  const w = workerOf(s, f.worker)
  if (w === undefined || w.status !== "online") return s
  return withWorker(s, f.worker, { ...w, ...offlineAt(w, f.at), status: "offline", outage: { since: f.at, appliedPpm: 0n } })
}

/** A worker that leaves drops its open outage: deregistering is not an outage. */
const left = (s: EconomyState, f: Of<"WorkerLeft">): EconomyState => {
  const w = workerOf(s, f.worker)
  if (w === undefined || w.status === "left") return s
  return withWorker(s, f.worker, { ...w, ...offlineAt(w, f.at), status: "left", outage: null })
}

/** Stake and governance transactions count once, whatever delivers them again. */
const seen = (s: EconomyState, f: { readonly txHash: Hash32 }): boolean => HashSet.has(s.seenTx, f.txHash)

/** A bond adds to its owner's bond to the worker: every owner's bond counts toward the worker's stake. */
const bonded = (s: EconomyState, f: Of<"StakeBonded">): EconomyState => {
  if (seen(s, f)) return s
  const marked = { ...s, seenTx: HashSet.add(s.seenTx, f.txHash) }
  if (f.amount <= 0n) return marked
  return { ...marked, stakes: HashMap.set(s.stakes, f.worker, addToBond(stakeOf(s, f.worker), f.owner, f.amount)) }
}

/**
 * An owner unbonds from its own bond only, clamped to it less its share of
 * the pending wrong-result slashes (that share stays bonded until the close
 * takes it). An account with no bond to the worker changes nothing (the
 * chain refuses it first, the AI ledger, `domain/ai/ledger/workers.ts`).
 */
const unbondRequested = (config: EconomicsConfig, s: EconomyState, f: Of<"UnbondRequested">): EconomyState => {
  if (seen(s, f)) return s
  const marked = { ...s, seenTx: HashSet.add(s.seenTx, f.txHash) }
  const free = bondOf(s, f.worker, f.owner) - reservedOf(s, f.worker, f.owner)
  const amount = f.amount <= 0n || free <= 0n ? 0n : minBig(f.amount, free)
  if (amount === 0n) return marked
  const releaseEpoch = s.epoch + config.unbondingEpochs - 1
  return {
    ...marked,
    stakes: HashMap.set(s.stakes, f.worker, addToBond(stakeOf(s, f.worker), f.owner, -amount)),
    unbonding: [...s.unbonding, { txHash: f.txHash, worker: f.worker, owner: f.owner, amount, releaseEpoch }]
  }
}

/** A model's verification earns one launch reward, ever. */
const verified = (s: EconomyState, f: Of<"ModelVerified">): EconomyState =>
  HashSet.has(s.verifiedModels, f.modelId)
    ? s
    : { ...s, verifiedModels: HashSet.add(s.verifiedModels, f.modelId), launches: HashMap.set(s.launches, f.modelId, f.provider) }

const addFees = (fees: HashMap.HashMap<Address, FeeLine>, address: Address, add: Partial<FeeLine>): HashMap.HashMap<Address, FeeLine> => {
  const l = Option.getOrElse(HashMap.get(fees, address), () => emptyFeeLine)
  return HashMap.set(fees, address, {
    serviceFees: l.serviceFees + (add.serviceFees ?? 0n),
    computeFeesPaid: l.computeFeesPaid + (add.computeFeesPaid ?? 0n),
    computeFeesEarned: l.computeFeesEarned + (add.computeFeesEarned ?? 0n),
    protocolFees: l.protocolFees + (add.protocolFees ?? 0n),
    tasks: l.tasks + (add.tasks ?? 0)
  })
}

const settled = (config: EconomicsConfig, s: EconomyState, f: Of<"TaskSettled">): EconomyState => {
  const usage = f.workers.map((w) => ({ worker: w.worker, execMs: w.execMs, gpuUnitsMilli: workerOf(s, w.worker)?.gpuUnitsMilli ?? 0n }))
  const t = taskFees(config, f.price, usage)
  const sink = config.protocolFeeSink === "burn" ? BURN_ADDRESS : SYSTEM_TREASURY
  let owed = owe(owe(s.owed, "escrow", f.provider, t.providerNet), "escrow", sink, t.protocolFee)
  let fees = addFees(s.fees, f.provider, { serviceFees: t.serviceFee, computeFeesPaid: t.computeFeesTotal, protocolFees: t.protocolFee, tasks: 1 })
  for (const c of t.computeFees) {
    owed = owe(owed, "escrow", c.worker, c.amount)
    fees = addFees(fees, c.worker, { computeFeesEarned: c.amount, tasks: 1 })
  }
  const work = { taskId: f.taskId, provider: f.provider, weights: usage.map((u) => ({ worker: u.worker, weight: unitMs(u.gpuUnitsMilli, u.execMs) })) }
  return {
    ...s,
    owed,
    fees,
    tasks: Chunk.append(s.tasks, work),
    paused: t.capped ? HashSet.add(s.paused, f.modelId) : s.paused,
    protocolFeesBurned: s.protocolFeesBurned + (config.protocolFeeSink === "burn" ? t.protocolFee : 0n)
  }
}

/** What the wrong results folded in the open epoch will take from `owner`'s bond to `worker` at its close. */
const reservedOf = (s: EconomyState, worker: Address, owner: Address): bigint =>
  Chunk.reduce(s.wrongResults, 0n, (sum, r) => (r.worker === worker ? sum + sumOf(r.shares.filter((x) => x.owner === owner).map((x) => x.amount)) : sum))

/**
 * A wrong result's slash is fixed when its proof is folded, on the bonds left
 * after the worker's earlier pending slashes, and so is each owner's share of
 * it: an owner that unbonds before the close cannot pass its share to the others.
 */
const provenWrong = (config: EconomicsConfig, s: EconomyState, f: Of<"ResultProvenWrong">): EconomyState => {
  const { taskId, worker, developer, reporter } = f
  const free = bondsInOrder(stakeOf(s, worker)).map(([owner, b]) => [owner, b - reservedOf(s, worker, owner)] as const)
  const slash = wrongResultSlash(config, sumOf(free.map(([, b]) => b))).amount
  const shares = splitOverBonds(slash, free)
  return { ...s, wrongResults: Chunk.append(s.wrongResults, { taskId, worker, developer, reporter, slash, shares }) }
}

export const foldFact =
  (config: EconomicsConfig) =>
  (s: EconomyState, f: EconomyFact): EconomyState => {
    switch (f._tag) {
      case "WorkerJoined":
        return joined(s, f)
      case "WorkerRegistered":
        return registered(s, f)
      case "WorkerUnitsMeasured":
        return unitsMeasured(s, f)
      case "WorkerOnline":
        return online(s, f)
      case "WorkerOffline":
        return offline(s, f)
      case "WorkerLeft":
        return left(s, f)
      case "StakeBonded":
        return bonded(s, f)
      case "UnbondRequested":
        return unbondRequested(config, s, f)
      case "ModelVerified":
        return verified(s, f)
      case "TaskSettled":
        return settled(config, s, f)
      case "ResultProvenWrong":
        return provenWrong(config, s, f)
      case "ShardSharesSet":
        return seen(s, f) ? s : { ...s, seenTx: HashSet.add(s.seenTx, f.txHash), pendingShares: f.shares }
      case "ModelRepriced":
        return { ...s, paused: HashSet.remove(s.paused, f.modelId) }
      default:
        return unreachable(f, "economics fact")
    }
  }

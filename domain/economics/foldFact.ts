/**
 * Folding one fact into the economy. Facts never fail: they report what
 * already happened (money moved on chain, a task settled), so one that makes
 * no sense here (a heartbeat from an unknown worker) changes nothing.
 *
 *   workers     online intervals and outages, from joins, heartbeats, leaves
 *   stakes      the first bonder owns a worker's stake; its bonds add, anyone
 *               else's go back to them; the owner's unbond is clamped to the bond and starts
 *               unbonding, released at the close of epoch
 *               `e + unbondingEpochs − 1` (e = the epoch it is folded in):
 *               the owner has it back `unbondingEpochs` closes later, counting
 *               the close of e. Unbonding stake is no longer slashable.
 *   tasks       fees owed by escrow at once (fees.ts); work kept for mining
 *   governance  shard shares wait for the next epoch
 */
import { Chunk, HashMap, HashSet, Option } from "effect"
import type { Hash32 } from "../chain/hash.js"
import type { Address } from "../chain/keys.js"
import { BURN_ADDRESS, TREASURY_ADDRESS } from "./accounts.js"
import type { EconomicsConfig } from "./config.js"
import type { EconomyFact } from "./facts.js"
import { taskFees, unitMs } from "./fees.js"
import { minBig } from "./proRata.js"
import { bondedOf, emptyFeeLine, owe, type EconomyState, type FeeLine, type WorkerRecord } from "./state.js"
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

/**
 * The first account to bond to a worker owns its stake; a second bond never
 * changes the owner. A bond from anyone else (the chain cannot refuse it: bonds
 * come from every shard) never becomes the worker's stake: it goes back to
 * its bonder at this epoch's close, like an unbond that is never slashable.
 * Once nothing is bonded, the next bonder owns the stake.
 */
const bonded = (s: EconomyState, f: Of<"StakeBonded">): EconomyState => {
  if (seen(s, f)) return s
  const marked = { ...s, seenTx: HashSet.add(s.seenTx, f.txHash) }
  if (f.amount <= 0n) return marked
  const before = Option.getOrUndefined(HashMap.get(s.stakes, f.worker))
  if (before !== undefined && before.bonded > 0n && before.owner !== f.owner) {
    return { ...marked, unbonding: [...s.unbonding, { txHash: f.txHash, worker: f.worker, owner: f.owner, amount: f.amount, releaseEpoch: s.epoch }] }
  }
  const stake = { owner: before !== undefined && before.bonded > 0n ? before.owner : f.owner, bonded: (before?.bonded ?? 0n) + f.amount }
  return { ...marked, stakes: HashMap.set(s.stakes, f.worker, stake) }
}

/** Only the stake's owner unbonds it (the chain refuses an account that never bonded to the worker; this refuses a refunded bonder too). */
const unbondRequested = (config: EconomicsConfig, s: EconomyState, f: Of<"UnbondRequested">): EconomyState => {
  if (seen(s, f)) return s
  const marked = { ...s, seenTx: HashSet.add(s.seenTx, f.txHash) }
  const stake = Option.getOrUndefined(HashMap.get(s.stakes, f.worker))
  if (stake === undefined || stake.owner !== f.owner) return marked
  // What pending wrong-result slashes will take stays bonded until the close takes it.
  const free = stake.bonded - pendingSlashOf(s, f.worker)
  const amount = f.amount <= 0n || free <= 0n ? 0n : minBig(f.amount, free)
  if (amount === 0n) return marked
  const releaseEpoch = s.epoch + config.unbondingEpochs - 1
  return {
    ...marked,
    stakes: HashMap.set(s.stakes, f.worker, { ...stake, bonded: stake.bonded - amount }),
    unbonding: [...s.unbonding, { txHash: f.txHash, worker: f.worker, owner: stake.owner, amount, releaseEpoch }]
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
  const sink = config.protocolFeeSink === "burn" ? BURN_ADDRESS : TREASURY_ADDRESS
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

/** What the worker's wrong results folded in the open epoch will slash at its close. */
const pendingSlashOf = (s: EconomyState, worker: Address): bigint =>
  Chunk.reduce(s.wrongResults, 0n, (sum, r) => (r.worker === worker ? sum + r.slash : sum))

export const foldFact =
  (config: EconomicsConfig) =>
  (s: EconomyState, f: EconomyFact): EconomyState => {
    switch (f._tag) {
      case "WorkerJoined":
        return joined(s, f)
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
      case "ResultProvenWrong": {
        const { taskId, worker, developer, reporter } = f
        const slash = wrongResultSlash(config, bondedOf(s, worker) - pendingSlashOf(s, worker)).amount
        return { ...s, wrongResults: Chunk.append(s.wrongResults, { taskId, worker, developer, reporter, slash }) }
      }
      case "ShardSharesSet":
        return seen(s, f) ? s : { ...s, seenTx: HashSet.add(s.seenTx, f.txHash), pendingShares: f.shares }
      case "ModelRepriced":
        return { ...s, paused: HashSet.remove(s.paused, f.modelId) }
      default:
        return unreachable(f, "economics fact")
    }
  }

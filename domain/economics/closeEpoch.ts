/**
 * The epoch close: the economy's state and the epoch's window in, the
 * epoch's ledger out (the RewardActor's decide). Pure and deterministic:
 * every list is ordered by address or id (or log order, for wrong results),
 * so the same (config, state, window) gives the same ledger, byte for byte.
 *
 * In order:
 *   1. issuance (issuance.ts), split by the shard shares in effect; only the
 *      AI pool is paid, beacon and transfer portions stay in the reserve
 *   2. launch rewards, in model id order, each min(launchReward, pool left)
 *   3. the rest: online mining (gpuUnitsMilli × ms online in the window) and
 *      task mining (gpuUnitsMilli × execMs of tasks settled this epoch; the
 *      task-mining part is cut into a workers' pool, taskMiningWorkerPpm, and
 *      a providers' pool, each shared by the same weights). Rewards go to the
 *      worker's own address (a worker id is an address), not its owner.
 *   4. foundation subsidy for the first subsidyYears, while the fund lasts
 *   5. slashes (slashing.ts): wrong results in log order, then outages by
 *      worker and start; each on the stake left by the ones before, taken
 *      from the owners' bonds pro rata (bonds.ts; a wrong result's shares
 *      were fixed when its proof was folded)
 *   6. unbonding stake due this close, back to its owners
 *   7. the epoch's fees, per address, for statements (escrow paid them live)
 *   8. the EpochClosed header, last
 * Pro-rata dust, and parts with no one to share them, are not minted.
 */
import { Chunk } from "effect"
import type { Address } from "../chain/keys.js"
import type { ModelId } from "../ai/model/events.js"
import { UNIT_MS_PER_UNIT_SECOND, type EconomicsConfig } from "./config.js"
import { EpochClosed, FeesRecorded, RewardCredited, Slashed, StakeReleased, type EpochLedger, type RewardKind } from "./events.js"
import { epochIssuance, subsidyActive, yearOf } from "./issuance.js"
import { onlineMsIn } from "./online.js"
import { addTo, byKey, minBig, ppmOf, proRata, sumOf } from "./proRata.js"
import { offlineSlash, splitWrongResultSlash } from "./slashing.js"
import { bondsInOrder, splitOverBonds, stakeOf, takeFromBonds } from "./bonds.js"
import type { EconomyState, StakeRecord } from "./state.js"
import { invariantsOf, type Assert } from "../assert.js"

const assert: Assert = invariantsOf("epoch close")

/** The events are built from checked values (non-negative by the asserts below): skip re-validating each. */
const CHECKED = true

/** The closing epoch: its time window and the chain's total supply at its end. */
export interface EpochWindow {
  readonly epoch: number
  readonly startAt: number
  readonly endAt: number
  readonly totalSupply: bigint
}

const credit = (
  epoch: number,
  kind: RewardKind,
  to: Address,
  amount: bigint,
  basis: { weight?: bigint; totalWeight?: bigint; role?: "worker" | "provider"; modelId?: ModelId } = {}
): RewardCredited =>
  new RewardCredited({
    epoch,
    kind,
    source: kind === "FoundationSubsidy" ? "foundation" : "reserve",
    to,
    amount,
    weight: basis.weight ?? 0n,
    totalWeight: basis.totalWeight ?? 0n,
    role: basis.role ?? null,
    modelId: basis.modelId ?? null
  }, CHECKED)

/** Pro-rata credits of `amount` by `weights`, zero amounts left out. */
const shared = (
  epoch: number,
  kind: RewardKind,
  amount: bigint,
  weights: ReadonlyMap<Address, bigint>,
  role?: "worker" | "provider"
): ReadonlyArray<RewardCredited> => {
  const totalWeight = sumOf([...weights.values()].filter((w) => w > 0n))
  return proRata(amount, weights)
    .filter((s) => s.amount > 0n)
    .map((s) => credit(epoch, kind, s.key, s.amount, { weight: s.weight, totalWeight, ...(role === undefined ? {} : { role }) }))
}

const paid = (credits: ReadonlyArray<RewardCredited>): bigint => sumOf(credits.map((c) => c.amount))

const launchRewards = (config: EconomicsConfig, s: EconomyState, epoch: number, aiPool: bigint) => {
  let left = aiPool
  const credits: Array<RewardCredited> = []
  for (const [modelId, provider] of [...s.launches].sort(([a], [b]) => byKey(a, b))) {
    const amount = minBig(config.launchReward, left)
    left -= amount
    if (amount > 0n) credits.push(credit(epoch, "LaunchReward", provider, amount, { modelId }))
  }
  return { credits, left }
}

const onlineWeights = (s: EconomyState, w: { startAt: number; endAt: number }): Map<Address, bigint> => {
  const weights = new Map<Address, bigint>()
  for (const [worker, record] of s.workers) addTo(weights, worker, record.gpuUnitsMilli * BigInt(onlineMsIn(record, w.startAt, w.endAt)))
  return weights
}

const taskWeights = (s: EconomyState) => {
  const workers = new Map<Address, bigint>()
  const providers = new Map<Address, bigint>()
  for (const task of s.tasks) {
    for (const { worker, weight } of task.weights) {
      addTo(workers, worker, weight)
      addTo(providers, task.provider, weight)
    }
  }
  return { workers, providers }
}

const subsidy = (config: EconomicsConfig, s: EconomyState, epoch: number, workWeights: ReadonlyMap<Address, bigint>): ReadonlyArray<RewardCredited> => {
  const remaining = config.foundationFund - s.foundationPaid
  if (!subsidyActive(config, epoch) || remaining <= 0n) return []
  const due = new Map<Address, bigint>()
  for (const [worker, weight] of workWeights) addTo(due, worker, (weight * config.subsidyPerUnitSecond) / UNIT_MS_PER_UNIT_SECOND)
  const total = sumOf(due.values())
  // Short of money: everyone gets the same fraction of what is due.
  const amountOf = (d: bigint) => (total <= remaining ? d : (d * remaining) / total)
  return [...due]
    .sort(([a], [b]) => byKey(a, b))
    .map(([worker, d]) => ({ worker, amount: amountOf(d), weight: workWeights.get(worker) ?? 0n }))
    .filter((x) => x.amount > 0n)
    .map((x) => credit(epoch, "FoundationSubsidy", x.worker, x.amount, { weight: x.weight, totalWeight: sumOf(workWeights.values()) }))
}

const slashes = (config: EconomicsConfig, s: EconomyState, w: EpochWindow): ReadonlyArray<Slashed> => {
  // Each worker's stake as the slashes before leave it.
  const stakes = new Map<Address, StakeRecord>()
  const stakeNow = (worker: Address) => stakes.get(worker) ?? stakeOf(s, worker)
  const out: Array<Slashed> = []
  for (const r of s.wrongResults) {
    const stake = stakeNow(r.worker)
    const stakeBefore = stake.bonded
    // Fixed with its shares when the proof was folded; unbonds never took the shares (foldFact.ts).
    assert(r.slash <= stakeBefore, `wrong-result slash ${r.slash} of ${r.worker} over its ${stakeBefore} stake`)
    const x = splitWrongResultSlash(config, r.slash)
    if (x.amount === 0n) continue
    stakes.set(r.worker, takeFromBonds(stake, r.shares))
    out.push(
      new Slashed({
        epoch: w.epoch,
        worker: r.worker,
        reason: "WrongResult",
        stakeBefore,
        amount: x.amount,
        toUser: x.toUser,
        user: r.developer,
        toReporter: x.toReporter,
        reporter: r.reporter,
        burned: x.burned,
        taskId: r.taskId,
        outageSince: null,
        gradePpm: config.slashing.wrongResultPpm,
        detail: `result of task ${r.taskId} proven wrong by ${r.reporter}`,
        fromBonds: r.shares
      }, CHECKED)
    )
  }
  const outages = [
    ...Chunk.toReadonlyArray(s.endedOutages).map((o) => ({ ...o, open: false })),
    ...[...s.workers].flatMap(([worker, rec]) => (rec.outage === null ? [] : [{ worker, ...rec.outage, until: w.endAt, open: true }]))
  ].sort((a, b) => byKey(a.worker, b.worker) || a.since - b.since)
  for (const o of outages) {
    const stake = stakeNow(o.worker)
    const stakeBefore = stake.bonded
    const lengthMs = o.until - o.since
    const x = offlineSlash(config, stakeBefore, lengthMs, o.appliedPpm)
    if (x === null || x.amount === 0n) continue
    const fromBonds = splitOverBonds(x.amount, bondsInOrder(stake))
    stakes.set(o.worker, takeFromBonds(stake, fromBonds))
    out.push(
      new Slashed({
        epoch: w.epoch,
        worker: o.worker,
        reason: "Offline",
        stakeBefore,
        amount: x.amount,
        toUser: 0n,
        user: null,
        toReporter: 0n,
        reporter: null,
        burned: x.amount,
        taskId: null,
        outageSince: o.since,
        gradePpm: x.gradePpm,
        detail: `offline ${lengthMs} ms from ${o.since}${o.open ? " (still offline)" : ""}: grade ${x.gradePpm} ppm, ${o.appliedPpm} ppm already applied`,
        fromBonds
      }, CHECKED)
    )
  }
  return out
}

const releases = (s: EconomyState, epoch: number): ReadonlyArray<StakeReleased> =>
  s.unbonding.filter((u) => u.releaseEpoch <= epoch).map((u) => new StakeReleased({ epoch, worker: u.worker, owner: u.owner, amount: u.amount }, CHECKED))

const feeLines = (s: EconomyState, epoch: number): ReadonlyArray<FeesRecorded> =>
  [...s.fees].sort(([a], [b]) => byKey(a, b)).map(([address, l]) => new FeesRecorded({ epoch, address, ...l }, CHECKED))

export const closeEpoch = (config: EconomicsConfig, s: EconomyState, w: EpochWindow): EpochLedger => {
  assert(w.epoch === s.epoch, `closing epoch ${w.epoch}, the economy is in epoch ${s.epoch}`)
  assert(w.startAt <= w.endAt, `window [${w.startAt}, ${w.endAt})`)
  const epoch = w.epoch
  const reserveBefore = config.miningReserve - s.minted
  const year = yearOf(config, epoch)
  const reserveAtYearStart = year === s.yearStart.year ? s.yearStart.reserve : reserveBefore
  const issuance = epochIssuance(config, { reserveAtYearStart, reserveRemaining: reserveBefore, totalSupply: w.totalSupply })
  const shares = s.shares
  const aiPool = ppmOf(issuance, shares.ai)

  const launch = launchRewards(config, s, epoch, aiPool)
  const onlineMining = ppmOf(launch.left, config.aiPoolShares.onlineMining)
  const taskMining = launch.left - onlineMining
  const workerPool = ppmOf(taskMining, config.taskMiningWorkerPpm)
  const work = taskWeights(s)
  const online = shared(epoch, "OnlineMining", onlineMining, onlineWeights(s, w))
  const tasks = [
    ...shared(epoch, "TaskMining", workerPool, work.workers, "worker"),
    ...shared(epoch, "TaskMining", taskMining - workerPool, work.providers, "provider")
  ]
  const subsidies = subsidy(config, s, epoch, work.workers)
  const slashed = slashes(config, s, w)
  const released = releases(s, epoch)
  const fees = feeLines(s, epoch)

  const minted = paid(launch.credits) + paid(online) + paid(tasks)
  const foundationPaid = paid(subsidies)
  const slashedTotal = sumOf(slashed.map((x) => x.amount))
  const protocolFeesBurned = config.protocolFeeSink === "burn" ? sumOf(fees.map((f) => f.protocolFees)) : 0n
  assert(minted <= aiPool, `minted ${minted} > AI pool ${aiPool}`)
  assert(aiPool <= issuance, `AI pool ${aiPool} > issuance ${issuance}`)
  assert(issuance <= reserveBefore, `issuance ${issuance} > reserve ${reserveBefore}`)
  assert(s.minted + minted <= config.miningReserve, "minted beyond the mining reserve")
  assert(s.foundationPaid + foundationPaid <= config.foundationFund, "subsidy beyond the foundation fund")
  for (const x of slashed) {
    assert(x.amount <= x.stakeBefore, `slash ${x.amount} of a ${x.stakeBefore} bond`)
    assert(sumOf(x.fromBonds.map((b) => b.amount)) === x.amount, `slash ${x.amount} of ${x.worker} not what its bonds gave`)
  }

  const header = new EpochClosed({
    epoch,
    startAt: w.startAt,
    endAt: w.endAt,
    year,
    reserveAtYearStart,
    totalSupply: w.totalSupply,
    issuance,
    shardShares: { ai: shares.ai, beacon: shares.beacon, transfer: shares.transfer },
    aiPool,
    beaconPortion: ppmOf(issuance, shares.beacon),
    transferPortion: ppmOf(issuance, shares.transfer),
    launchRewards: paid(launch.credits),
    onlineMining,
    onlineMiningPaid: paid(online),
    taskMining,
    taskMiningPaid: paid(tasks),
    minted,
    foundationPaid,
    slashed: slashedTotal,
    burned: sumOf(slashed.map((x) => x.burned)) + protocolFeesBurned,
    released: sumOf(released.map((r) => r.amount)),
    reserveBefore,
    reserveAfter: reserveBefore - minted,
    totalMinted: s.minted + minted,
    conservation: { issuance, minted, retained: issuance - minted }
  }, CHECKED)
  return [...launch.credits, ...online, ...tasks, ...subsidies, ...slashed, ...released, ...fees, header]
}

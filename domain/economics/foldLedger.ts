/**
 * Folding a closed epoch's ledger into the economy. Credits, slashes and
 * releases add to what their source account owes (a slash takes from the
 * bonds it names, a release is owed to the owner that unbonded it); the `EpochClosed` header,
 * last, closes the epoch: the released unbondings leave, the per-epoch
 * accumulators empty, governance's pending shares take effect, and the open
 * epoch advances. Each event is checked against the state it lands on (a
 * ledger folded twice, or out of order, is a corrupt log, not bad input).
 */
import { Chunk, HashMap } from "effect"
import { BURN_ADDRESS } from "./accounts.js"
import type { EpochLedger, RewardEvent } from "./events.js"
import { sumOf } from "./proRata.js"
import { stakeOf, takeFromBonds } from "./bonds.js"
import { owe, type EconomyState, type WorkerRecord } from "./state.js"
import { invariantsOf, unreachable, type Assert } from "../assert.js"

const assert: Assert = invariantsOf("economy")

const closed = (s: EconomyState, e: Extract<RewardEvent, { _tag: "EpochClosed" }>): EconomyState => {
  assert(s.minted === e.totalMinted, `minted ${s.minted}, the header says ${e.totalMinted}`)
  const due = s.unbonding.filter((u) => u.releaseEpoch <= e.epoch)
  assert(sumOf(due.map((u) => u.amount)) === e.released, `released ${e.released}, due ${sumOf(due.map((u) => u.amount))}`)
  let workers = s.workers
  for (const [worker, w] of s.workers) {
    if (w.intervals.length > 0) workers = HashMap.set(workers, worker, { ...w, intervals: [] } satisfies WorkerRecord)
  }
  return {
    ...s,
    epoch: s.epoch + 1,
    yearStart: { year: e.year, reserve: e.reserveAtYearStart },
    shares: s.pendingShares ?? s.shares,
    pendingShares: null,
    workers,
    unbonding: s.unbonding.filter((u) => u.releaseEpoch > e.epoch),
    launches: HashMap.empty(),
    tasks: Chunk.empty(),
    fees: HashMap.empty(),
    wrongResults: Chunk.empty(),
    endedOutages: Chunk.empty()
  }
}

export const foldLedger = (s: EconomyState, e: RewardEvent): EconomyState => {
  assert(e.epoch === s.epoch, `${e._tag} of epoch ${e.epoch} folded in epoch ${s.epoch}`)
  switch (e._tag) {
    case "RewardCredited":
      return {
        ...s,
        owed: owe(s.owed, e.source, e.to, e.amount),
        minted: s.minted + (e.source === "reserve" ? e.amount : 0n),
        foundationPaid: s.foundationPaid + (e.source === "foundation" ? e.amount : 0n)
      }
    case "Slashed": {
      const stake = stakeOf(s, e.worker)
      assert(stake.bonded === e.stakeBefore, `slash of ${e.worker} on a ${e.stakeBefore} bond, bonded ${stake.bonded}`)
      assert(e.amount === e.toUser + e.toReporter + e.burned, "a slash's parts sum to it")
      assert(sumOf(e.fromBonds.map((b) => b.amount)) === e.amount, "a slash is what the bonds gave")
      let owed = owe(s.owed, "stakePool", BURN_ADDRESS, e.burned)
      if (e.user !== null) owed = owe(owed, "stakePool", e.user, e.toUser)
      if (e.reporter !== null) owed = owe(owed, "stakePool", e.reporter, e.toReporter)
      // An offline slash raises its outage's applied grade while the outage is still open.
      const w = HashMap.get(s.workers, e.worker)
      const workers =
        e.reason === "Offline" && w._tag === "Some" && w.value.outage !== null && w.value.outage.since === e.outageSince
          ? HashMap.set(s.workers, e.worker, { ...w.value, outage: { since: e.outageSince, appliedPpm: e.gradePpm } })
          : s.workers
      return {
        ...s,
        owed,
        workers,
        stakes: HashMap.set(s.stakes, e.worker, takeFromBonds(stake, e.fromBonds)),
        burnedBySlashes: s.burnedBySlashes + e.burned
      }
    }
    case "StakeReleased":
      return { ...s, owed: owe(s.owed, "stakePool", e.owner, e.amount) }
    case "FeesRecorded":
      return s
    case "EpochClosed":
      return closed(s, e)
    default:
      return unreachable(e, "reward event")
  }
}

/** A whole closed ledger. */
export const applyClosed = (s: EconomyState, ledger: EpochLedger): EconomyState => ledger.reduce(foldLedger, s)

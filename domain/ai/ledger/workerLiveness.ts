/**
 * Workers' liveness and measured GPU units, from the AI committee's word
 * (issue 12 item 4). Each member's gateway reports what it sees; the ledger
 * keeps each member's latest report and decides by stake, so no single
 * member (holding at most half the stake) decides alone.
 *
 *   worker.liveness  a member's view (online or not) of a registered worker.
 *                    The worker is online iff members holding > 1/2 of the
 *                    committee's stake view it online; a flip emits
 *                    AiWorkerOnline / AiWorkerOffline at the block's time.
 *   worker.measure   a member's benchmark of a registered worker. Once
 *                    members holding > 1/2 of the stake have measured it,
 *                    its units are the stake-weighted (lower) median of
 *                    their measurements, capped by its declared class's
 *                    units (AiWorkerUnitsMeasured, when they change).
 *   BlockEnd         the committee changes at epochs: views and measures of
 *                    non-members are dropped, and a worker whose verdict the
 *                    new committee's stake no longer holds flips.
 * Only the current committee's reports count, weighted by its stakes.
 */
import { Either, HashMap, HashSet, Option } from "effect"
import type { Address } from "../../chain/keys.js"
import type { Transaction } from "../../chain/transaction.js"
import type { WorkerLivenessPayload, WorkerMeasurePayload } from "../../chain/payloads/workerLiveness.js"
import type { AiContext, CommitteeSeat } from "./context.js"
import {
  AiLivenessViewsDropped,
  AiWorkerLivenessViewed,
  AiWorkerMeasured,
  AiWorkerOffline,
  AiWorkerOnline,
  AiWorkerUnitsMeasured,
  reject,
  type AiEvent,
  type AiRejection
} from "./events.js"
import { workerOf, type AiLedgerState, type AiWorker } from "./state.js"

type Decision = Either.Either<ReadonlyArray<AiEvent>, AiRejection>

const totalStake = (committee: ReadonlyArray<CommitteeSeat>): bigint => committee.reduce((sum, seat) => sum + seat.stake, 0n)

/** Is `worker` online by these views: members holding > 1/2 of the committee's stake see it online. */
export const onlineByStake = (committee: ReadonlyArray<CommitteeSeat>, views: HashMap.HashMap<Address, boolean>): boolean => {
  const online = committee.reduce((sum, seat) => (Option.getOrElse(HashMap.get(views, seat.address), () => false) ? sum + seat.stake : sum), 0n)
  return 2n * online > totalStake(committee)
}

/**
 * The stake-weighted lower median of the members' measurements, once members
 * holding > 1/2 of the committee's stake measured (null before): the smallest
 * value at which the measured stake up to it reaches half the measured stake.
 * A minority of the measured stake cannot move it outside the others' values.
 */
export const medianByStake = (committee: ReadonlyArray<CommitteeSeat>, measures: HashMap.HashMap<Address, bigint>): bigint | null => {
  const taken = committee
    .flatMap((seat) => Option.match(HashMap.get(measures, seat.address), { onNone: () => [], onSome: (units) => [{ units, stake: seat.stake }] }))
    .sort((a, b) => (a.units < b.units ? -1 : a.units > b.units ? 1 : 0))
  const measured = taken.reduce((sum, m) => sum + m.stake, 0n)
  if (2n * measured <= totalStake(committee)) return null
  let upTo = 0n
  for (const m of taken) {
    upTo += m.stake
    if (2n * upTo >= measured) return m.units
  }
  return null // unreachable: upTo reaches measured
}

const member = (ctx: AiContext, tx: Transaction, kind: string): Either.Either<CommitteeSeat, AiRejection> => {
  const seat = ctx.committee.find((c) => c.address === tx.sender)
  return seat === undefined
    ? Either.left(reject("NotCommitteeMember", `${kind} from ${tx.sender}, not a member of the AI shard's committee`))
    : Either.right(seat)
}

const registered = (s: AiLedgerState, worker: Address, kind: string): Either.Either<AiWorker, AiRejection> => {
  const w = workerOf(s, worker)
  return w === undefined ? Either.left(reject("UnknownWorker", `${kind} of ${worker}, which is not a registered worker`)) : Either.right(w)
}

const viewsOf = (s: AiLedgerState, worker: Address): HashMap.HashMap<Address, boolean> =>
  Option.getOrElse(HashMap.get(s.liveness, worker), () => HashMap.empty<Address, boolean>())

/** The flip (if any) of `worker` when the committee's verdict on `views` differs from the ledger's. */
const flipOf = (s: AiLedgerState, ctx: AiContext, worker: Address, views: HashMap.HashMap<Address, boolean>): ReadonlyArray<AiEvent> => {
  const now = onlineByStake(ctx.committee, views)
  if (now === HashSet.has(s.online, worker)) return []
  return [now ? new AiWorkerOnline({ worker, at: ctx.timestamp }) : new AiWorkerOffline({ worker, at: ctx.timestamp })]
}

export const decideLiveness = (s: AiLedgerState, ctx: AiContext, tx: Transaction, p: WorkerLivenessPayload): Decision =>
  Either.gen(function* () {
    yield* member(ctx, tx, "worker.liveness")
    yield* registered(s, p.worker, "worker.liveness")
    const viewed = new AiWorkerLivenessViewed({ worker: p.worker, member: tx.sender, online: p.online })
    return [viewed, ...flipOf(s, ctx, p.worker, HashMap.set(viewsOf(s, p.worker), tx.sender, p.online))]
  })

export const decideMeasure = (s: AiLedgerState, ctx: AiContext, tx: Transaction, p: WorkerMeasurePayload): Decision =>
  Either.gen(function* () {
    yield* member(ctx, tx, "worker.measure")
    const w = yield* registered(s, p.worker, "worker.measure")
    const measured = new AiWorkerMeasured({ worker: p.worker, member: tx.sender, unitsMilli: p.unitsMilli })
    const measures = HashMap.set(Option.getOrElse(HashMap.get(s.measures, p.worker), () => HashMap.empty<Address, bigint>()), tx.sender, p.unitsMilli)
    const median = medianByStake(ctx.committee, measures)
    if (median === null) return [measured]
    const units = median < w.classUnitsMilli ? median : w.classUnitsMilli
    if (units === w.gpuUnitsMilli) return [measured]
    return [measured, new AiWorkerUnitsMeasured({ worker: p.worker, gpuUnitsMilli: units, at: ctx.timestamp })]
  })

/** At each block's end: drop non-members' reports, then flip the workers the current committee's stake no longer holds. */
export const decideLivenessUnderCommittee = (s: AiLedgerState, ctx: AiContext): ReadonlyArray<AiEvent> => {
  if (HashMap.size(s.liveness) === 0 && HashMap.size(s.measures) === 0) return []
  const members = new Set(ctx.committee.map((c) => c.address))
  const gone = new Set<Address>()
  for (const reports of [...HashMap.values(s.liveness), ...HashMap.values(s.measures)]) {
    for (const m of HashMap.keys(reports as HashMap.HashMap<Address, unknown>)) if (!members.has(m)) gone.add(m)
  }
  const flips = [...HashMap.keys(s.liveness)].sort().flatMap((worker) => flipOf(s, ctx, worker, viewsOf(s, worker)))
  return gone.size === 0 ? flips : [new AiLivenessViewsDropped({ members: [...gone].sort() }), ...flips]
}

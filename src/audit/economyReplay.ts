/**
 * The economy rebuilt from the log, and the epoch ledgers checked against it.
 *
 * `makeLogFold` is the one loop the node (src/node/economy/Economy.ts) and the
 * auditor share: each event of the log, in order, goes through the fact
 * reader (factsOfLog.ts); facts are folded (foldFact); at each beacon
 * `EpochEnded` the epoch is closed from the economy as it stood at that point
 * of the log (closeEpoch) and its ledger folded in (applyClosed).
 *
 * `makeEconomyReplay` is the auditor's side: it runs that loop over the raw
 * rows, keeps what each `reward-epoch-{n}` stream holds, and at the end
 * compares every stored event with the rebuilt one, field by field (both in
 * their Schema-encoded JSON form: the stored row's own text against the
 * encoding of the rebuilt event), listing every difference.
 *
 * A ledger must exist for every ended epoch the node has had the chance to
 * close: one whose stream is missing while a later epoch's ledger is stored
 * is a failure. The ended epochs after the last stored ledger are reported as
 * not closed yet (a log cut between the beacon's EpochEnded and the node's
 * close, e.g. by a stop or a crash: the node closes them when it starts).
 */
import { Either, Schema } from "effect"
import type { EconomicsConfig } from "../../domain/economics/config.js"
import { closeEpoch, type EpochWindow } from "../../domain/economics/closeEpoch.js"
import { RewardEvent, rewardEpochStreamId, type EpochLedger } from "../../domain/economics/events.js"
import { foldFact } from "../../domain/economics/foldFact.js"
import { applyClosed } from "../../domain/economics/foldLedger.js"
import { initialEconomy, type EconomyState } from "../../domain/economics/state.js"
import type { RecordedEvent } from "../../infra/eventstore/EventStore.js"
import type { RawEventRow } from "../../infra/eventstore/RawEventRow.js"
import { toRecordedEvent } from "../../infra/eventstore/RawEventRow.js"
import { makeFactReader, type EpochWindowFact } from "../node/economy/factsOfLog.js"

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

// ---------------------------------------------------------------- the audit

const REWARD_STREAM = /^reward-epoch-(\d+)$/
/** The differences an audit lists at most (the count is always exact). */
export const DIFFERENCES_LISTED_MAX = 200

export const rewardEpochOf = (stream: string): number | undefined => {
  const m = REWARD_STREAM.exec(stream)
  return m === null ? undefined : Number(m[1])
}

/** One field of one ledger event that differs: `stored` and `rebuilt` as JSON text, "(absent)" when missing. */
export interface LedgerDifference {
  readonly epoch: number
  readonly stream: string
  /** Index of the event in the epoch's ledger (= its revision in the stream). */
  readonly index: number
  readonly position: number | null
  readonly event: string
  readonly field: string
  readonly stored: string
  readonly rebuilt: string
}

export interface EconomyAudit {
  /** Epochs the beacon ended in the log (each rebuilt). */
  readonly epochsEnded: number
  /** Ledgers compared with their rebuild. */
  readonly epochsChecked: ReadonlyArray<number>
  /** Ended, after the last stored ledger, no ledger yet: the node closes them at its next start. */
  readonly notClosedYet: ReadonlyArray<number>
  readonly differences: ReadonlyArray<LedgerDifference>
  /** All differences, also those not listed. */
  readonly differenceCount: number
  /** The rebuilt economy's totals at the end of the log. */
  readonly totals: { readonly minted: bigint; readonly foundationPaid: bigint; readonly burnedBySlashes: bigint; readonly protocolFeesBurned: bigint }
}

interface StoredRow {
  readonly revision: number
  readonly position: number
  readonly type: string
  readonly json: unknown
}

const encodeEvent = Schema.encodeSync(RewardEvent)
const ABSENT = "(absent)"

/** Leaves of a JSON value by dotted path (`shardShares.ai`); arrays by index. */
const flatten = (value: unknown, prefix = "", out = new Map<string, string>()): Map<string, string> => {
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value)
    if (entries.length === 0) out.set(prefix, JSON.stringify(value))
    for (const [k, v] of entries) flatten(v, prefix === "" ? k : `${prefix}.${k}`, out)
  } else {
    out.set(prefix, JSON.stringify(value))
  }
  return out
}

/** Field-by-field differences of a stored event (its row's JSON, `_tag` = its type) and the rebuilt one's encoding. */
const compareEvent = (stored: unknown, rebuilt: unknown): ReadonlyArray<{ readonly field: string; readonly stored: string; readonly rebuilt: string }> => {
  const s = flatten(stored)
  const r = flatten(rebuilt)
  const fields = [...new Set([...r.keys(), ...s.keys()])]
  return fields.flatMap((field) => {
    const a = s.get(field) ?? ABSENT
    const b = r.get(field) ?? ABSENT
    return a === b ? [] : [{ field, stored: a, rebuilt: b }]
  })
}

export class EconomyReplayFailed {
  constructor(readonly detail: string, readonly row: RawEventRow) {}
}

/**
 * The auditor's economy: `add` every row of the log in order (all streams:
 * the economy depends on shards, models, workers and tasks), then `finish`,
 * optionally for one epoch only.
 */
export const makeEconomyReplay = (economics: EconomicsConfig, totalSupply: bigint) => {
  const log = makeLogFold(economics, totalSupply)
  const rebuilt = new Map<number, EpochLedger>()
  const stored = new Map<number, Array<StoredRow>>()

  const add = (row: RawEventRow): void => {
    const epoch = rewardEpochOf(row.stream)
    if (epoch !== undefined) {
      const rows = stored.get(epoch) ?? []
      rows.push({ revision: row.revision, position: row.position, type: row.type, json: { ...(JSON.parse(row.dataJson) as object), _tag: row.type } })
      stored.set(epoch, rows)
      return
    }
    try {
      for (const c of log.apply(toRecordedEvent(row))) rebuilt.set(c.ended.epoch, c.ledger)
    } catch (e) {
      throw new EconomyReplayFailed(e instanceof Error ? e.message : String(e), row)
    }
  }

  const finish = (only?: number): EconomyAudit => {
    const differences: Array<LedgerDifference> = []
    let differenceCount = 0
    const note = (d: LedgerDifference) => {
      differenceCount += 1
      if (differences.length < DIFFERENCES_LISTED_MAX) differences.push(d)
    }
    const lastStored = stored.size === 0 ? -1 : Math.max(...stored.keys())
    const epochs = [...new Set([...rebuilt.keys(), ...stored.keys()])].sort((a, b) => a - b).filter((e) => only === undefined || e === only)
    const checked: Array<number> = []
    const notClosedYet: Array<number> = []
    for (const epoch of epochs) {
      const stream = rewardEpochStreamId(epoch)
      const ours = rebuilt.get(epoch)
      const theirs = stored.get(epoch)
      const base = { epoch, stream }
      if (ours === undefined) {
        note({ ...base, index: 0, position: theirs?.[0]?.position ?? null, event: theirs?.[0]?.type ?? ABSENT, field: "(stream)", stored: `${theirs?.length ?? 0} events`, rebuilt: "no such epoch ended in the log" })
        continue
      }
      if (theirs === undefined) {
        if (epoch > lastStored) notClosedYet.push(epoch)
        else note({ ...base, index: 0, position: null, event: ABSENT, field: "(stream)", stored: "missing", rebuilt: `${ours.length} events` })
        continue
      }
      checked.push(epoch)
      for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
        const s = theirs[i]
        const r = ours[i]
        const at = { ...base, index: i, position: s?.position ?? null, event: s?.type ?? r?._tag ?? ABSENT }
        if (s === undefined || r === undefined) {
          note({ ...at, field: "(event)", stored: s === undefined ? ABSENT : s.type, rebuilt: r === undefined ? ABSENT : r._tag })
          continue
        }
        if (s.revision !== i) note({ ...at, field: "(revision)", stored: String(s.revision), rebuilt: String(i) })
        for (const d of compareEvent(s.json, encodeEvent(r))) note({ ...at, ...d })
      }
    }
    const state = log.state()
    return {
      epochsEnded: rebuilt.size,
      epochsChecked: checked,
      notClosedYet,
      differences,
      differenceCount,
      totals: {
        minted: state.minted,
        foundationPaid: state.foundationPaid,
        burnedBySlashes: state.burnedBySlashes,
        protocolFeesBurned: state.protocolFeesBurned
      }
    }
  }

  return { add, finish }
}

/** Decode a stored ledger (events of a `reward-epoch-{n}` stream as read from a store). */
export const decodeLedger = (events: ReadonlyArray<{ readonly type: string; readonly data: unknown }>): Either.Either<EpochLedger, string> => {
  const out: Array<RewardEvent> = []
  for (const e of events) {
    const d = Schema.decodeUnknownEither(RewardEvent)({ ...(e.data as object), _tag: e.type })
    if (Either.isLeft(d)) return Either.left(d.left.message)
    out.push(d.right)
  }
  return Either.right(out)
}

/**
 * The economy rebuilt from the AI shard's events, and the epoch ledgers
 * checked against them.
 *
 * `makeLogFold` is the one loop the node (src/node/economy/Economy.ts) and the
 * auditor share: each event of the AI shard's stream (`shard-{S+1}`), in
 * order, is decoded as the AI ledger's event and folded into the economy the
 * way the ledger folds it (`foldEconomy`); the reward events an epoch's close
 * emitted (RewardCredited … EpochClosed, header last) are that epoch's ledger.
 * Events of other streams are not the economy's: the AI ledger decided
 * everything on chain, by consensus.
 *
 * `makeEconomyReplay` is the auditor's side: it runs that loop over the raw
 * rows, keeps what each `reward-epoch-{n}` stream holds, and at the end
 * compares every stored event with the rebuilt one, field by field (both in
 * their Schema-encoded JSON form: the stored row's own text against the
 * encoding of the rebuilt event), listing every difference.
 *
 * A ledger must exist for every epoch the AI shard closed: one whose stream
 * is missing while a later epoch's ledger is stored is a failure. The closed
 * epochs after the last stored ledger are reported as not written yet (a log
 * cut between the AI block and the node's RewardActor, e.g. by a crash: the
 * node writes them when it starts).
 */
import { Either, Schema } from "effect"
import { foldEconomy } from "../../domain/ai/ledger/economy.js"
import type { Address } from "../../domain/chain/keys.js"
import { receiptIdOf } from "../../domain/chain/receipt.js"
import type { PayoutSource } from "../../domain/economics/accounts.js"
import type { EconomicsConfig } from "../../domain/economics/config.js"
import { RewardEvent, rewardEpochStreamId, type EpochLedger } from "../../domain/economics/events.js"
import { decodeEventOf, isAiEvent, isAiEventType } from "../../domain/streamEvents.js"
import { initialEconomy, type EconomyState } from "../../domain/economics/state.js"
import type { RecordedEvent } from "../../infra/eventstore/EventStore.js"
import type { RawEventRow } from "../../infra/eventstore/RawEventRow.js"
import { toRecordedEvent } from "../../infra/eventstore/RawEventRow.js"

// ---------------------------------------------------------------- the shared loop

/** An epoch the AI shard closed: its ledger (already folded), as its block emitted it. */
export interface ClosedEpoch {
  readonly epoch: number
  readonly ledger: EpochLedger
}

/** An amount a system account paid out (an `AiPayout`): the ledger's own figure of what left it. */
export interface PaidOut {
  readonly source: PayoutSource
  readonly to: Address
  readonly amount: bigint
  /** The id of the receipt that delivers it (`receiptIdOf(cause, index)`). */
  readonly receiptId: string
}

export interface LogFold {
  readonly state: () => EconomyState
  /** Fold one event of the log (in log order); the epochs it closed, if any, and what it paid out. */
  readonly apply: (event: RecordedEvent) => { readonly closed: ReadonlyArray<ClosedEpoch>; readonly paid: PaidOut | undefined }
}

const NOTHING = { closed: [], paid: undefined } as const

export const aiShardStream = (aiShard: number): string => `shard-${aiShard}`

export const makeLogFold = (economics: EconomicsConfig, aiShard: number): LogFold => {
  const stream = aiShardStream(aiShard)
  let state = initialEconomy(economics)
  let open: Array<RewardEvent> = []
  return {
    state: () => state,
    apply: (event) => {
      // Only the AI ledger's events of the AI shard's stream are the economy's (decoded by the shard's one schema).
      if (event.stream !== stream || !isAiEventType(event.type)) return NOTHING
      const decoded = decodeEventOf("shard", event.type, event.data)
      if (Either.isLeft(decoded)) throw new Error(`${event.stream}@${event.revision}: ${decoded.left}`)
      const e = decoded.right
      if (!isAiEvent(e)) return NOTHING
      state = foldEconomy(economics, state, e)
      switch (e._tag) {
        case "AiPayout":
          return { closed: [], paid: { source: e.source, to: e.to, amount: e.amount, receiptId: receiptIdOf(e.cause, e.index) } }
        case "RewardCredited":
        case "Slashed":
        case "StakeReleased":
        case "FeesRecorded":
          open.push(e)
          return NOTHING
        case "EpochClosed": {
          open.push(e)
          const ledger = open
          open = []
          return { closed: [{ epoch: e.epoch, ledger }], paid: undefined }
        }
        default:
          return NOTHING
      }
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
 * The auditor's economy: `add` every row of the log in order (the AI shard's
 * stream and the reward streams count), then `finish`, optionally for one
 * epoch only.
 */
export const makeEconomyReplay = (economics: EconomicsConfig, aiShard: number) => {
  const log = makeLogFold(economics, aiShard)
  const rebuilt = new Map<number, EpochLedger>()
  const stored = new Map<number, Array<StoredRow>>()

  /** `data`: the row's data, already checked to be a JSON object (`storedEvent.ts`). */
  const add = (row: RawEventRow, data: Record<string, unknown>): void => {
    const epoch = rewardEpochOf(row.stream)
    if (epoch !== undefined) {
      // Compared as stored (its own JSON against the rebuilt event's encoding), so every field counts.
      const rows = stored.get(epoch) ?? []
      rows.push({ revision: row.revision, position: row.position, type: row.type, json: { ...data, _tag: row.type } })
      stored.set(epoch, rows)
      return
    }
    try {
      for (const c of log.apply(toRecordedEvent(row)).closed) rebuilt.set(c.epoch, c.ledger)
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
        note({ ...base, index: 0, position: theirs?.[0]?.position ?? null, event: theirs?.[0]?.type ?? ABSENT, field: "(stream)", stored: `${theirs?.length ?? 0} events`, rebuilt: "the AI shard closed no such epoch" })
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
export const decodeLedger = (events: ReadonlyArray<{ readonly type: string; readonly data: unknown }>): Either.Either<EpochLedger, string> =>
  Either.all(events.map((e) => decodeEventOf("reward", e.type, e.data)))

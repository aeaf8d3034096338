/**
 * The auditor's replay: read a node's event log offline, trust nothing.
 *
 * 1. Every stream's hash chain is recomputed over the exact stored bytes.
 * 2. Every shard, the beacon included, is rebuilt by re-executing its own
 *    stream: genesis from the genesis file, then each block carried in its
 *    `BlockApplied` event (the beacon's epoch ends are re-derived too). The
 *    events the ledger rules produce must equal the stored ones byte for
 *    byte, and each block must pass the ledger's checks (parent hash,
 *    proposer signature, and the header's eventsRoot = root of the parent's
 *    events).
 * 3. Money is conserved across shards: balances + burned + in flight =
 *    genesis supply.
 * 4. The AI shard's streams (model-*, task-*, worker-*, escrow-*) are
 *    rebuilt through their deciders' `evolve` and checked against the chain
 *    and each other (aiReplay.ts).
 * 5. The economy (with the genesis file): the AI shard's events (checked
 *    by re-execution in 2) folded in order as the node folds them, each
 *    epoch's ledger taken from the block that closed it, and each stored
 *    `reward-epoch-{n}` ledger compared with it field by field
 *    (economyReplay.ts); auditing one `reward-epoch-{n}` stream still folds
 *    the whole AI shard, and compares that epoch only. Streams of any other
 *    prefix (snapshot-*, ...) are only hash-chain checked.
 *
 * The first failure of 1–4 stops the audit and names the stream and
 * revision; the economy lists every difference it finds.
 */
import { Effect, Either, HashMap, Stream } from "effect"
import { eventJson, type ShardEvent } from "../../domain/chain/events.js"
import { genesisCommand, genesisConfigHash, genesisSupply } from "../../domain/chain/genesis.js"
import type { GenesisConfig } from "../../domain/chain/genesis.js"
import { ApplyBlock, ApplyGenesis, Allocation, decide, evolve, initialLedgerState } from "../../domain/chain/ledger.js"
import type { LedgerCommand, LedgerState } from "../../domain/chain/ledger.js"
import { aiShardOf, type ShardId } from "../../domain/chain/sharding.js"
import { decodeEventOf, streamKindOf } from "../../domain/streamEvents.js"
import type { EventStoreError } from "../../infra/eventstore/EventStore.js"
import { makeChainChecker } from "../../infra/eventstore/RawEventRow.js"
import type { RawEventRow } from "../../infra/eventstore/RawEventRow.js"
import { readRawRows } from "../../infra/eventstore/sqliteRaw.js"
import { AiAuditFailed, makeAiReplay } from "./aiReplay.js"
import type { AiSummary } from "./aiReplay.js"
import { EconomyReplayFailed, makeEconomyReplay, rewardEpochOf } from "./economyReplay.js"
import type { EconomyAudit } from "./economyReplay.js"
import { storedData } from "./storedEvent.js"

export type { AiSummary } from "./aiReplay.js"
export type { EconomyAudit, LedgerDifference } from "./economyReplay.js"

export interface AuditFailure {
  readonly stream: string
  readonly revision: number
  readonly position: number
  readonly reason: string
  readonly detail: string
}

export interface ShardSummary {
  readonly shard: number
  readonly height: number
  readonly accounts: number
  readonly balances: bigint
  readonly burned: bigint
  readonly sentOut: bigint
  readonly receivedIn: bigint
}

export interface AuditReport {
  readonly ok: boolean
  readonly streams: number
  readonly events: number
  readonly heads: ReadonlyArray<{ readonly stream: string; readonly revision: number; readonly hash: string }>
  readonly shards: ReadonlyArray<ShardSummary>
  readonly genesisSupply: bigint | undefined
  /** `genesisConfigHash` of the genesis replayed from (absent without one). */
  readonly genesisHash: string | undefined
  /** Models, tasks, workers and escrows rebuilt from their streams. */
  readonly ai: AiSummary
  /** The epoch ledgers rebuilt and compared (absent without a genesis, or when auditing another stream). */
  readonly economy: EconomyAudit | undefined
  readonly failure: AuditFailure | undefined
}

export interface AuditOptions {
  /** Audit only this stream (its chain, and its rebuild if it is a shard). */
  readonly stream?: string | undefined
  /** The chain's genesis; without it a shard's genesis events are taken as they are. */
  readonly genesis?: GenesisConfig | undefined
  /** Called every `progressEvery` events. */
  readonly onProgress?: ((events: number) => void) | undefined
}

export const PROGRESS_EVERY = 100_000

class AuditFailed {
  constructor(readonly failure: AuditFailure) {}
}

/** One shard's re-execution: buffers a block's stored events until its BlockExecuted, then re-decides it. */
class ShardReplay {
  state: LedgerState
  private unit: Array<{ readonly event: ShardEvent; readonly row: RawEventRow }> = []

  constructor(
    readonly shard: ShardId,
    private readonly genesis: GenesisConfig | undefined,
    /** Each stored event, decoded (the AI replay follows model registrations and escrow deposits). */
    private readonly onEvent: (event: ShardEvent) => void = () => {}
  ) {
    this.state = initialLedgerState(shard)
  }

  private fail(row: RawEventRow, reason: string, detail: string): never {
    throw new AuditFailed({ stream: row.stream, revision: row.revision, position: row.position, reason, detail })
  }

  private commandOf(first: { readonly event: ShardEvent; readonly row: RawEventRow }): LedgerCommand {
    const e = first.event
    if (e._tag === "BlockApplied") return new ApplyBlock({ block: e.block })
    if (e._tag !== "GenesisApplied") return this.fail(first.row, "UnexpectedEvent", `${e._tag} does not start a block`)
    if (this.genesis !== undefined) return genesisCommand(this.genesis, this.shard)
    const allocations = this.unit.flatMap((u) =>
      u.event._tag === "AccountFunded" ? [new Allocation({ address: u.event.address, amount: u.event.amount })] : []
    )
    return new ApplyGenesis({
      chainId: e.chainId,
      transferShards: e.transferShards,
      timestamp: e.timestamp,
      allocations,
      ...(e.governance === undefined ? {} : { governance: e.governance }),
      ...(e.epochBlocks === undefined ? {} : { epochBlocks: e.epochBlocks }),
      ...(e.kind === undefined ? {} : { kind: e.kind })
    })
  }

  /** `data`: the row's data, already checked to be a JSON object (`storedData`). */
  add(row: RawEventRow, data: Record<string, unknown>): void {
    const decoded = decodeEventOf("shard", row.type, data)
    if (Either.isLeft(decoded)) return this.fail(row, "UndecodableEvent", decoded.left)
    this.unit.push({ event: decoded.right, row })
    this.onEvent(decoded.right)
    if (decoded.right._tag === "BlockExecuted") this.replayUnit()
  }

  private replayUnit(): void {
    const first = this.unit[0]!
    const expected = decide(this.state, this.commandOf(first))
    if (Either.isLeft(expected)) return this.fail(first.row, "BlockRejectedOnReplay", expected.left.message)
    const stored = this.unit
    for (let i = 0; i < Math.max(stored.length, expected.right.length); i++) {
      const s = stored[i]
      const x = expected.right[i]
      const at = s?.row ?? stored[stored.length - 1]!.row
      if (s === undefined || x === undefined) {
        return this.fail(at, "EventCountMismatch", `stored ${stored.length} events, re-execution gives ${expected.right.length}`)
      }
      if (eventJson(s.event) !== eventJson(x)) {
        return this.fail(s.row, "EventMismatch", `stored ${s.event._tag} differs from re-execution's ${x._tag}`)
      }
    }
    for (const u of stored) this.state = evolve(this.state, u.event)
    this.unit = []
  }

  finish(): void {
    const pending = this.unit[0]
    if (pending !== undefined) this.fail(pending.row, "UnfinishedBlock", "the stream ends inside a block (no BlockExecuted)")
  }
}

const summary = (r: ShardReplay): ShardSummary => ({
  shard: r.shard,
  height: r.state.height,
  accounts: HashMap.size(r.state.accounts),
  balances: r.state.totals.balances,
  burned: r.state.totals.burned,
  sentOut: r.state.totals.sentOut,
  receivedIn: r.state.totals.receivedIn
})

/** Audit the SQLite event log at `filename`. */
export const auditEventLog = (filename: string, options: AuditOptions = {}): Effect.Effect<AuditReport, EventStoreError> =>
  Effect.gen(function* () {
    const checker = makeChainChecker()
    const replays = new Map<number, ShardReplay>()
    const ai = makeAiReplay()
    const onlyEpoch = options.stream === undefined ? undefined : rewardEpochOf(options.stream)
    const economy =
      options.genesis !== undefined && (options.stream === undefined || onlyEpoch !== undefined)
        ? makeEconomyReplay(options.genesis.economics, aiShardOf(options.genesis.transferShards))
        : undefined
    let events = 0
    let failure: AuditFailure | undefined

    const malformed = (row: RawEventRow, reason: string, detail: string): false => {
      failure = { stream: row.stream, revision: row.revision, position: row.position, reason, detail: `${row.type}: ${detail}` }
      return false
    }

    /** Every stream goes to the economy: an epoch depends on shards, models, workers and tasks. */
    const economyAdd = (row: RawEventRow): boolean => {
      if (economy === undefined) return true
      const data = storedData(row)
      if (Either.isLeft(data)) return malformed(row, "MalformedEvent", data.left)
      try {
        economy.add(row, data.right)
        return true
      } catch (e) {
        if (!(e instanceof EconomyReplayFailed)) return malformed(row, "MalformedEvent", e instanceof Error ? e.message : String(e))
        failure = { stream: e.row.stream, revision: e.row.revision, position: e.row.position, reason: "EconomyReplayFailed", detail: e.detail }
        return false
      }
    }

    const visit = (row: RawEventRow): boolean => {
      if (options.stream !== undefined && row.stream !== options.stream) return economyAdd(row)
      events += 1
      if (options.onProgress !== undefined && events % PROGRESS_EVERY === 0) options.onProgress(events)
      const broken = checker.check(row)
      if (broken !== undefined) {
        failure = { ...broken, detail: `the hash chain breaks here (${broken.reason}): a stored event was altered, removed or inserted` }
        return false
      }
      const data = storedData(row)
      if (Either.isLeft(data)) return malformed(row, "MalformedEvent", data.left)
      // Shards and AI streams decode their events by their kind's schema (streamEvents.ts) before the economy reads a field of them.
      const kind = streamKindOf(row.stream)
      try {
        if (kind === "model" || kind === "task" || kind === "worker" || kind === "escrow") ai.add(row, kind, data.right)
        else if (kind === "shard") {
          const shard = Number(row.stream.slice("shard-".length)) as ShardId
          let replay = replays.get(shard)
          if (replay === undefined) replays.set(shard, (replay = new ShardReplay(shard, options.genesis, ai.chainEvent)))
          replay.add(row, data.right)
        }
      } catch (e) {
        if (e instanceof AuditFailed || e instanceof AiAuditFailed) {
          failure = e.failure
          return false
        }
        // Whatever else a stored event makes a replay throw, it fails the audit there.
        return malformed(row, "MalformedEvent", e instanceof Error ? e.message : String(e))
      }
      return economyAdd(row)
    }

    yield* readRawRows(filename).pipe(Stream.takeWhile(visit), Stream.runDrain)

    if (failure === undefined) {
      try {
        for (const r of replays.values()) r.finish()
        // Cross-checks need the other streams: not when auditing one stream.
        ai.finish(options.stream === undefined)
      } catch (e) {
        if (!(e instanceof AuditFailed || e instanceof AiAuditFailed)) throw e
        failure = e.failure
      }
    }
    const economyAudit = failure === undefined && economy !== undefined ? economy.finish(onlyEpoch) : undefined
    if (failure === undefined && economyAudit !== undefined) {
      const first = economyAudit.differences[0]
      if (first !== undefined) {
        failure = {
          stream: first.stream,
          revision: first.index,
          position: first.position ?? -1,
          reason: "RewardLedgerMismatch",
          detail: `${economyAudit.differenceCount} difference(s) between the stored epoch ledgers and their rebuild from the log`
        }
      } else if (onlyEpoch !== undefined && !economyAudit.epochsChecked.includes(onlyEpoch)) {
        failure = {
          stream: options.stream!,
          revision: -1,
          position: -1,
          reason: "NoSuchLedger",
          detail: economyAudit.notClosedYet.includes(onlyEpoch)
            ? `epoch ${onlyEpoch} ended but the log holds no ledger for it yet (the node closes it when it runs again)`
            : `epoch ${onlyEpoch} has not ended in this log`
        }
      }
    }
    const shards = [...replays.values()].sort((a, b) => a.shard - b.shard).map(summary)
    const supply = options.genesis === undefined ? undefined : genesisSupply(options.genesis)
    if (failure === undefined && supply !== undefined && options.stream === undefined) {
      const held = shards.reduce((sum, s) => sum + s.balances + s.burned + s.sentOut - s.receivedIn, 0n)
      if (held !== supply) {
        failure = {
          stream: "*",
          revision: -1,
          position: -1,
          reason: "SupplyMismatch",
          detail: `balances + burned + in flight = ${held}, genesis supply = ${supply}`
        }
      }
    }
    const heads = [...checker.heads()]
      .map(([stream, h]) => ({ stream, revision: h.revision, hash: h.hash }))
      .sort((a, b) => a.stream.localeCompare(b.stream))
    return {
      ok: failure === undefined,
      streams: heads.length,
      events,
      heads,
      shards,
      genesisSupply: supply,
      genesisHash: options.genesis === undefined ? undefined : genesisConfigHash(options.genesis),
      ai: ai.summary(),
      economy: economyAudit,
      failure
    }
  })

/**
 * The economy on a node, as the AI ledger decided it. Follows the event log
 * from the start and folds the AI shard's events in order (`makeLogFold`,
 * the auditor's loop too): the economy's state, and each epoch's ledger —
 * the reward events (RewardCredited … EpochClosed) of the block that
 * received the beacon's epoch receipt. Each ledger is written to its
 * `reward-epoch-N` stream by the epoch's RewardActor, on every node, from
 * those events: the same bytes on every validator.
 *
 * Nothing here moves money: the AI ledger pays every reward, fee, slash
 * share and release as an `AiPayout` with its cross-shard receipt. The
 * supply reads the keyless system accounts' balances on the AI shard and
 * checks them against the ledger's figures.
 */
import { Context, Effect, Either, HashMap, Layer, Schedule, Schema } from "effect"
import type { Address } from "../../../domain/chain/keys.js"
import {
  BURN_ADDRESS,
  isSystemAddress,
  PayoutSource,
  SYSTEM_ESCROW,
  SYSTEM_FOUNDATION,
  SYSTEM_RESERVE,
  SYSTEM_STAKE_POOL,
  SYSTEM_TREASURY
} from "../../../domain/economics/accounts.js"
import type { EconomicsConfig } from "../../../domain/economics/config.js"
import { RecordEpoch } from "../../../domain/economics/epochDecider.js"
import { RewardEvent, rewardEpochStreamId, type EpochLedger } from "../../../domain/economics/events.js"
import { bondedOf, bondOf, isPaused, owedBy, supplyOf, unbondingOf } from "../../../domain/economics/queries.js"
import type { EconomyState } from "../../../domain/economics/state.js"
import { statementOf } from "../../../domain/economics/statement.js"
import { makeRewardActors } from "../../../actors/RewardActor.js"
import { EventStore } from "../../../infra/eventstore/EventStore.js"
import type { RecordedEvent } from "../../../infra/eventstore/EventStore.js"
import { ChainNode } from "../ChainNode.js"
import { followLog } from "../followLog.js"
import { decodeLedger, makeLogFold, type ClosedEpoch } from "../../audit/economyReplay.js"
import type { ShardEvent } from "../../../domain/chain/events.js"
import { decodeEventOf, streamKindOf } from "../../../domain/streamEvents.js"

export interface EconomySettings {
  readonly economics: EconomicsConfig
  /** The genesis supply (reserve and foundation included): the supply figures' total. */
  readonly totalSupply: bigint
  /** The AI shard (S + 1): its stream carries the economy's events, its accounts the system balances. */
  readonly aiShard: number
}

const encodeLedger = Schema.encodeSync(Schema.Array(RewardEvent))
/** The chains' event types the supply reads besides the AI ledger's (fees burned, payouts arrived). */
const CHAIN_TYPES: ReadonlySet<string> = new Set<ShardEvent["_tag"]>(["FeeCharged", "CrossShardReceived"])

export const makeEconomy = (settings: EconomySettings) =>
  Effect.gen(function* () {
    const { economics, totalSupply, aiShard } = settings
    const store = yield* EventStore
    const chain = yield* ChainNode
    const rewards = yield* makeRewardActors()
    const log = makeLogFold(economics, aiShard)
    let state: EconomyState = log.state()
    const ledgers = new Map<number, EpochLedger>()
    /** What each system account paid out (`AiPayout`), by source: the ledger's own figure. */
    const paid = new Map<PayoutSource, bigint>()
    /**
     * Payouts whose receipt the payee's shard has not credited yet, by receipt id: in flight (they
     * left the account in their block; the payee's balance holds them once received). A receipt
     * read before its payout (another shard's block applied first) is remembered until it is.
     */
    const inFlight = new Map<string, { readonly source: PayoutSource; readonly amount: bigint }>()
    const arrivedEarly = new Set<string>()
    /** Transaction fees the shards burned (every `FeeCharged`): not the economy's, but part of the supply. */
    let chainFeesBurned = 0n

    /** Write the ledger the AI shard emitted (once: the RewardActor appends only to an empty stream). */
    const record = (c: ClosedEpoch) =>
      Effect.gen(function* () {
        const actor = yield* rewards.get(rewardEpochStreamId(c.epoch))
        const stored = yield* actor.ask(new RecordEpoch({ epoch: c.epoch, ledger: c.ledger })).pipe(
          Effect.map((r) => r.state.events),
          Effect.retry(Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(5)))),
          Effect.tapError((e) => Effect.logError(`reward-epoch-${c.epoch} could not be written: ${e.message}`)),
          Effect.orElseSucceed(() => c.ledger)
        )
        if (JSON.stringify(encodeLedger(stored)) !== JSON.stringify(encodeLedger(c.ledger))) {
          yield* Effect.logError(`reward-epoch-${c.epoch} in the store differs from the AI shard's; the AI shard's figures are used`)
        }
        yield* rewards.release(rewardEpochStreamId(c.epoch))
        ledgers.set(c.epoch, c.ledger)
        const header = c.ledger.at(-1)
        if (header?._tag === "EpochClosed") {
          yield* Effect.logInfo(
            `epoch ${c.epoch} closed: issuance ${header.issuance}, minted ${header.minted}, reserve ${header.reserveAfter}, ${c.ledger.length} ledger events`
          )
        }
      })

    const apply = (e: RecordedEvent): Effect.Effect<void> =>
      Effect.gen(function* () {
        const decoded = CHAIN_TYPES.has(e.type) && streamKindOf(e.stream) === "shard" ? decodeEventOf("shard", e.type, e.data) : undefined
        if (decoded !== undefined && Either.isLeft(decoded)) return yield* Effect.logError(`economy: ${e.stream}@${e.revision} does not decode: ${decoded.left}`)
        const onChain = decoded?.right
        if (onChain?._tag === "FeeCharged") chainFeesBurned += onChain.fee
        const folded = log.apply(e)
        state = log.state()
        if (onChain?._tag === "CrossShardReceived") {
          // Only a system account's receipts can be payouts: no other is remembered.
          if (!inFlight.delete(onChain.receiptId) && isSystemAddress(onChain.from)) arrivedEarly.add(onChain.receiptId)
        }
        const p = folded.paid
        if (p !== undefined) {
          paid.set(p.source, (paid.get(p.source) ?? 0n) + p.amount)
          // To a system account on the AI shard (the treasury) it is a transfer: arrived at once.
          if (!isSystemAddress(p.to) && !arrivedEarly.delete(p.receiptId)) inFlight.set(p.receiptId, { source: p.source, amount: p.amount })
        }
        for (const c of folded.closed) yield* record(c)
      }).pipe(
        Effect.catchAllDefect((d) => Effect.logError(`economy: event ${e.stream}@${e.revision} not applied`, d)),
        Effect.ensuring(Effect.sync(() => void (state = log.state())))
      )

    yield* followLog("economy", apply)

    const balance = (address: string, shard?: number) =>
      chain.account(address, shard).pipe(Effect.map((a) => a.balance), Effect.orElseSucceed(() => 0n))

    /**
     * The supply from the ledger's figures, and the system accounts' balances
     * on the AI shard beside them. A payout leaves its account in the block
     * that decided it and reaches its recipient by receipt: until then it is
     * in flight (the chain's conservation counts it), so the recipient's
     * balance may trail its statement, never the system account's.
     */
    const supply = Effect.gen(function* () {
      const s = supplyOf(economics, state, totalSupply)
      const ai = (yield* chain.ledger(aiShard).pipe(Effect.orElseSucceed(() => null)))?.ai ?? null
      const escrowHeld = ai === null ? 0n : HashMap.reduce(ai.escrow, 0n, (sum, x) => sum + x)
      const onChain = {
        reserve: yield* balance(SYSTEM_RESERVE, aiShard),
        foundation: yield* balance(SYSTEM_FOUNDATION, aiShard),
        stakePool: yield* balance(SYSTEM_STAKE_POOL, aiShard),
        escrow: yield* balance(SYSTEM_ESCROW, aiShard),
        treasury: yield* balance(SYSTEM_TREASURY, aiShard),
        burnAddress: yield* balance(BURN_ADDRESS)
      }
      const paidFrom = (source: PayoutSource) => paid.get(source) ?? 0n
      const owedFrom = (source: PayoutSource) => [...owedBy(state, source).values()].reduce((a, b) => a + b, 0n)
      const inFlightFrom = (source: PayoutSource) => [...inFlight.values()].filter((x) => x.source === source).reduce((a, x) => a + x.amount, 0n)
      // `paid`: arrived at the payee; `inFlight`: left the account, its receipt not credited yet.
      const sources = PayoutSource.map((source) => ({ source, owed: owedFrom(source), paid: paidFrom(source) - inFlightFrom(source), inFlight: inFlightFrom(source) }))
      return {
        epoch: state.epoch,
        lastClosed: ledgers.size === 0 ? null : Math.max(...ledgers.keys()),
        totalSupply,
        ...s,
        chainFeesBurned,
        burned: s.burnedBySlashes + s.protocolFeesBurned + chainFeesBurned,
        circulating: s.circulating - chainFeesBurned,
        foundationPaid: economics.foundationFund - s.foundationRemaining,
        onChain,
        sources,
        // Each keyless account holds exactly what the ledger says is left in it.
        balanced:
          onChain.reserve === s.reserveRemaining &&
          onChain.foundation === s.foundationRemaining &&
          onChain.stakePool === s.stakedBonded + s.unbonding &&
          onChain.escrow === escrowHeld &&
          s.minted <= economics.miningReserve
      }
    })

    const ledger = (epoch: number) =>
      Effect.gen(function* () {
        const known = ledgers.get(epoch)
        if (known !== undefined) return known
        const events = yield* store.readStream(rewardEpochStreamId(epoch)).pipe(Effect.orElseSucceed(() => []))
        return Either.getOrThrowWith(decodeLedger(events), (why) => new Error(`${rewardEpochStreamId(epoch)} does not decode: ${why}`))
      })

    return {
      settings,
      /** The open epoch. */
      epoch: Effect.sync(() => state.epoch),
      state: Effect.sync(() => state),
      ledger,
      closedEpochs: Effect.sync(() => [...ledgers.keys()].sort((a, b) => a - b)),
      statement: (address: string) =>
        Effect.sync(() =>
          statementOf(
            [...ledgers.entries()].sort(([a], [b]) => a - b).map(([, l]) => l),
            address.toLowerCase() as Address
          )
        ),
      supply,
      bondedOf: (worker: string) => bondedOf(state, worker.toLowerCase() as Address),
      /** `owner`'s own bond to `worker`. */
      bondOf: (worker: string, owner: string) => bondOf(state, worker.toLowerCase() as Address, owner.toLowerCase() as Address),
      unbondingOf: (worker: string, owner?: string) => unbondingOf(state, worker.toLowerCase() as Address, owner?.toLowerCase() as Address | undefined),
      isPaused: (model: string) => isPaused(state, model.toLowerCase() as never)
    }
  })

export type EconomyShape = Effect.Effect.Success<ReturnType<typeof makeEconomy>>
export class Economy extends Context.Tag("topai/Economy")<Economy, EconomyShape>() {}

export const EconomyLive = (settings: EconomySettings): Layer.Layer<Economy, never, EventStore | ChainNode> =>
  Layer.scoped(Economy, makeEconomy(settings))

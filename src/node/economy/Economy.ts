/**
 * The economy on a node: follows the event log from the start, folds the
 * economy's facts in log order, and at every beacon `EpochEnded` closes that
 * epoch — the ledger is computed from the economy as it stood at that point
 * of the log, appended by the epoch's RewardActor, and folded in. Then it
 * pays on chain what the fold says is owed (Payouts.ts).
 *
 * Everything here is a function of the log: a restart refolds it and gets
 * the same state, a close that already happened appends nothing, and a
 * payout already on chain is not owed any more.
 */
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import type { Address, PrivateKey } from "../../../domain/chain/keys.js"
import { ESCROW_ADDRESS } from "../../../domain/chain/ledger.js"
import {
  BURN_ADDRESS,
  FOUNDATION_ADDRESS,
  foundationKey,
  RESERVE_ADDRESS,
  reserveKey,
  STAKE_POOL_ADDRESS,
  stakePoolKey,
  TREASURY_ADDRESS,
  type PayoutSource
} from "../../../domain/economics/accounts.js"
import type { EconomicsConfig } from "../../../domain/economics/config.js"
import { CloseEpoch } from "../../../domain/economics/epochDecider.js"
import { RewardEvent, rewardEpochStreamId, type EpochLedger } from "../../../domain/economics/events.js"
import { bondedOf, bondOf, isPaused, owedBy, supplyOf, unbondingOf } from "../../../domain/economics/queries.js"
import type { EconomyState } from "../../../domain/economics/state.js"
import { statementOf } from "../../../domain/economics/statement.js"
import { makeRewardActors } from "../../../actors/RewardActor.js"
import { EventStore } from "../../../infra/eventstore/EventStore.js"
import type { RecordedEvent } from "../../../infra/eventstore/EventStore.js"
import { ChainNode } from "../ChainNode.js"
import { followLog } from "../followLog.js"
import type { EpochWindowFact } from "./factsOfLog.js"
import { makeLogFold, type ClosedEpoch } from "../../audit/economyReplay.js"
import { makePaidBook } from "./paidBook.js"
import { runPayoutRound } from "./Payouts.js"

export interface EconomySettings {
  readonly economics: EconomicsConfig
  /** The genesis supply (reserve and foundation included): the supply figures' total. */
  readonly totalSupply: bigint
  readonly escrowKey: PrivateKey
}

const SOURCE_ADDRESS: Readonly<Record<PayoutSource, Address>> = {
  reserve: RESERVE_ADDRESS,
  foundation: FOUNDATION_ADDRESS,
  stakePool: STAKE_POOL_ADDRESS,
  escrow: ESCROW_ADDRESS
}

const encodeLedger = Schema.encodeSync(Schema.Array(RewardEvent))

export const makeEconomy = (settings: EconomySettings) =>
  Effect.gen(function* () {
    const { economics, totalSupply } = settings
    const store = yield* EventStore
    const chain = yield* ChainNode
    const rewards = yield* makeRewardActors()
    const log = makeLogFold(economics, totalSupply)
    let state: EconomyState = log.state()
    const ledgers = new Map<number, EpochLedger>()
    let lastEnded: EpochWindowFact | null = null
    /** Transaction fees the shards burned (every `FeeCharged`): not the economy's, but part of the supply. */
    let chainFeesBurned = 0n
    const sourceOf = new Map<string, PayoutSource>(Object.entries(SOURCE_ADDRESS).map(([s, a]) => [a, s as PayoutSource]))
    // Paid = arrived in the recipient's balance; a cross-shard payout is in flight until its receipt lands.
    const paid = makePaidBook((address) => sourceOf.get(address))

    /** Persist the ledger of an epoch the log's fold closed (once: the RewardActor appends it if the stream has none). */
    const close = (c: ClosedEpoch) =>
      Effect.gen(function* () {
        const { ended, window, before, ledger: computed } = c
        const actor = yield* rewards.get(rewardEpochStreamId(ended.epoch))
        const stored = yield* actor.ask(new CloseEpoch({ epoch: ended.epoch, window, economy: before, config: economics })).pipe(
          Effect.map((r) => r.state.events),
          Effect.retry(Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(5)))),
          Effect.tapError((e) => Effect.logError(`reward-epoch-${ended.epoch} could not be written: ${e.message}`)),
          Effect.orElseSucceed(() => computed)
        )
        if (JSON.stringify(encodeLedger(stored)) !== JSON.stringify(encodeLedger(computed))) {
          yield* Effect.logError(`reward-epoch-${ended.epoch} in the store differs from the log's; the log's figures are used`)
        }
        yield* rewards.release(rewardEpochStreamId(ended.epoch))
        ledgers.set(ended.epoch, computed)
        lastEnded = ended
        const header = computed.find((e) => e._tag === "EpochClosed")
        if (header?._tag === "EpochClosed") {
          yield* Effect.logInfo(
            `epoch ${ended.epoch} closed: issuance ${header.issuance}, minted ${header.minted}, reserve ${header.reserveAfter}, ${computed.length} ledger events`
          )
        }
      })

    const apply = (e: RecordedEvent): Effect.Effect<void> =>
      Effect.gen(function* () {
        if (e.stream.startsWith("shard-")) {
          paid.note(e)
          if (e.type === "FeeCharged") chainFeesBurned += BigInt((e.data as { readonly fee: string }).fee)
        }
        // The fold (facts, and each epoch's close at the beacon's EpochEnded) is the auditor's too.
        const closed = log.apply(e)
        state = log.state()
        for (const c of closed) yield* close(c)
      }).pipe(
        Effect.catchAllDefect((d) => Effect.logError(`economy: event ${e.stream}@${e.revision} not applied`, d)),
        Effect.ensuring(Effect.sync(() => void (state = log.state())))
      )

    yield* followLog("economy", apply)

    const sentBy = (source: PayoutSource, to: string) => Effect.sync(() => paid.sent(source, to))
    const due = (source: PayoutSource) =>
      Effect.sync(() => {
        const out = new Map<string, bigint>()
        for (const [to, owed] of owedBy(state, source)) {
          // What is in flight left the account already: owed again only what never left it.
          const left = owed - paid.sent(source, to)
          if (left > 0n) out.set(to, left)
        }
        return out as ReadonlyMap<string, bigint>
      })

    const keys = new Map<PayoutSource, PrivateKey>([
      ["escrow", settings.escrowKey],
      ["reserve", reserveKey()],
      ["foundation", foundationKey()],
      ["stakePool", stakePoolKey()]
    ])
    const chainId = (yield* chain.status).chainId

    /** One round of payouts; `before` runs first (the AI shard rotates its receipt batch). */
    const payOut = (before: Effect.Effect<void>) =>
      before.pipe(Effect.zipRight(runPayoutRound(chainId, chain, keys, { due, sent: sentBy })))

    const balance = (address: string) => chain.account(address).pipe(Effect.map((a) => a.balance), Effect.orElseSucceed(() => 0n))

    const supply = Effect.gen(function* () {
      const s = supplyOf(economics, state, totalSupply)
      const sentFrom = (source: PayoutSource) => paid.paidFrom(source) + paid.inFlightFrom(source)
      const owedFrom = (source: PayoutSource) => [...owedBy(state, source).values()].reduce((a, b) => a + b, 0n)
      const onChain = {
        reserve: yield* balance(RESERVE_ADDRESS),
        foundation: yield* balance(FOUNDATION_ADDRESS),
        stakePool: yield* balance(STAKE_POOL_ADDRESS),
        escrow: yield* balance(ESCROW_ADDRESS),
        treasury: yield* balance(TREASURY_ADDRESS),
        burnAddress: yield* balance(BURN_ADDRESS)
      }
      const sources = (["reserve", "foundation", "stakePool", "escrow"] as const).map((source) => ({
        source,
        owed: owedFrom(source),
        paid: paid.paidFrom(source),
        inFlight: paid.inFlightFrom(source)
      }))
      return {
        epoch: state.epoch,
        lastClosed: lastEnded === null ? null : (lastEnded as EpochWindowFact).epoch,
        totalSupply,
        ...s,
        chainFeesBurned,
        burned: s.burnedBySlashes + s.protocolFeesBurned + chainFeesBurned,
        circulating: s.circulating - chainFeesBurned,
        foundationPaid: economics.foundationFund - s.foundationRemaining,
        onChain,
        sources,
        // Nothing leaves the reserve or the foundation but payouts (arrived or in flight), and none exceeds what is owed.
        balanced:
          onChain.reserve === economics.miningReserve - sentFrom("reserve") &&
          onChain.foundation === economics.foundationFund - sentFrom("foundation") &&
          sources.every((x) => x.paid + x.inFlight <= x.owed) &&
          s.minted <= economics.miningReserve
      }
    })

    const ledger = (epoch: number) =>
      Effect.gen(function* () {
        const known = ledgers.get(epoch)
        if (known !== undefined) return known
        const events = yield* store.readStream(rewardEpochStreamId(epoch)).pipe(Effect.orElseSucceed(() => []))
        return events.map((e) => Schema.decodeUnknownSync(RewardEvent)({ ...(e.data as object), _tag: e.type })) as EpochLedger
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
      isPaused: (model: string) => isPaused(state, model.toLowerCase() as never),
      payOut
    }
  })

export type EconomyShape = Effect.Effect.Success<ReturnType<typeof makeEconomy>>
export class Economy extends Context.Tag("topai/Economy")<Economy, EconomyShape>() {}

export const EconomyLive = (settings: EconomySettings): Layer.Layer<Economy, never, EventStore | ChainNode> =>
  Layer.scoped(Economy, makeEconomy(settings))

/** The economy's RPC handlers: each delegates to the Economy service (and the fee-burn projection for the supply). */
import { Effect } from "effect"
import type { Address } from "../../domain/chain/keys.js"
import { Economy } from "../node/economy/Economy.js"
import { makeFeeBurns } from "../node/FeeBurns.js"
import { EconomyRpcs, RewardLedgerView, StakeView, StatementEpochView, StatementLineView, StatementView, SupplyView } from "./EconomyRpcs.js"
import { InvalidRequest, NotFound } from "./NodeRpcs.js"

const ADDRESS = /^0x[0-9a-f]{40}$/

const address = (text: string, what: string): Effect.Effect<Address, InvalidRequest> => {
  const lower = text.trim().toLowerCase()
  return ADDRESS.test(lower)
    ? Effect.succeed(lower as Address)
    : Effect.fail(new InvalidRequest({ detail: `${what} must be 0x followed by 40 hex digits, got "${text}"` }))
}

export const EconomyRpcHandlers = EconomyRpcs.toLayer(
  Effect.gen(function* () {
    const economy = yield* Economy
    const feeBurns = yield* makeFeeBurns()
    return {
      "rewards.epoch": ({ epoch }) =>
        Effect.gen(function* () {
          if (!Number.isSafeInteger(epoch) || epoch < 0) {
            return yield* new InvalidRequest({ detail: `epoch must be a whole number ≥ 0, got ${epoch}` })
          }
          const events = yield* economy.ledger(epoch)
          const closed = events.length > 0 && events[events.length - 1]!._tag === "EpochClosed"
          if (!closed) {
            const open = yield* economy.epoch
            return yield* new NotFound({ what: "closed epoch", id: `${epoch} (the open epoch is ${open})` })
          }
          return new RewardLedgerView({ epoch, closed, events })
        }),
      "rewards.show": ({ address: text }) =>
        Effect.gen(function* () {
          const who = yield* address(text, "address")
          const s = yield* economy.statement(who)
          return new StatementView({
            address: s.address,
            closedEpochs: (yield* economy.closedEpochs).length,
            epochs: s.epochs.map((l) => new StatementEpochView(l)),
            total: new StatementLineView(s.total)
          })
        }),
      supply: () =>
        Effect.gen(function* () {
          const s = yield* economy.supply
          const chainFeesBurned = yield* feeBurns.total
          return new SupplyView({
            epoch: s.epoch,
            lastClosed: s.lastClosed,
            totalSupply: s.totalSupply,
            reserveRemaining: s.reserveRemaining,
            minted: s.minted,
            foundationRemaining: s.foundationRemaining,
            foundationPaid: economy.settings.economics.foundationFund - s.foundationRemaining,
            stakedBonded: s.stakedBonded,
            unbonding: s.unbonding,
            burnedBySlashes: s.burnedBySlashes,
            protocolFeesBurned: s.protocolFeesBurned,
            chainFeesBurned,
            burned: s.burnedBySlashes + s.protocolFeesBurned + chainFeesBurned,
            circulating: s.circulating - chainFeesBurned,
            onChain: s.onChain,
            sources: s.sources,
            balanced: s.balanced
          })
        }),
      "stake.get": ({ worker }) =>
        Effect.gen(function* () {
          const w = yield* address(worker, "worker")
          return new StakeView({ worker: w, bonded: economy.bondedOf(w), unbonding: economy.unbondingOf(w), epoch: yield* economy.epoch })
        })
    }
  })
)

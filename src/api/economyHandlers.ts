/** The economy's RPC handlers: each delegates to the Economy service. */
import { Effect } from "effect"
import type { Address } from "../../domain/chain/keys.js"
import { Economy } from "../node/economy/Economy.js"
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
      supply: () => economy.supply.pipe(Effect.map((s) => new SupplyView(s))),
      "stake.get": ({ worker, owner }) =>
        Effect.gen(function* () {
          const w = yield* address(worker, "worker")
          const o = owner === undefined ? null : yield* address(owner, "owner")
          return new StakeView({
            worker: w,
            bonded: economy.bondedOf(w),
            unbonding: economy.unbondingOf(w),
            epoch: yield* economy.epoch,
            owner: o,
            ownerBonded: o === null ? null : economy.bondOf(w, o),
            ownerUnbonding: o === null ? null : economy.unbondingOf(w, o)
          })
        })
    }
  })
)

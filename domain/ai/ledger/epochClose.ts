/**
 * The epoch closes on the beacon's epoch receipt: `closeEpoch` over the
 * receipt's window with the chain's total supply, its reward events emitted
 * as AI events (the `reward-epoch-N` ledger, header last) and each amount
 * that leaves a system account as an `AiPayout`:
 *
 *   RewardCredited  from reserve (mining) or foundation (subsidy) → to
 *   Slashed         from stakePool: toUser → user, toReporter → reporter, burned → BURN
 *   StakeReleased   from stakePool → owner
 *   FeesRecorded    nothing (escrow paid each task when it settled)
 *
 * Payouts are numbered under keccak256("topai/epoch-close/" + epoch).
 */
import { Either } from "effect"
import { keccakHex, type Hash32 } from "../../chain/hash.js"
import { utf8 } from "../../chain/hex.js"
import { BURN_ADDRESS } from "../../economics/accounts.js"
import { closeEpoch } from "../../economics/closeEpoch.js"
import type { RewardEvent } from "../../economics/events.js"
import { unreachable } from "../../assert.js"
import type { AiContext } from "./context.js"
import { reject, type AiEvent, type AiRejection } from "./events.js"
import { numberedPayouts, type PayoutLine } from "./payouts.js"
import type { AiLedgerState } from "./state.js"

/** The cause hash of an epoch close's payouts (no transaction caused them). */
export const epochCloseCause = (epoch: number): Hash32 => keccakHex(utf8(`topai/epoch-close/${epoch}`))

const payoutLinesOf = (e: RewardEvent): ReadonlyArray<PayoutLine> => {
  switch (e._tag) {
    case "RewardCredited":
      return [{ source: e.source, to: e.to, amount: e.amount }]
    case "Slashed":
      return [
        ...(e.user === null ? [] : [{ source: "stakePool" as const, to: e.user, amount: e.toUser }]),
        ...(e.reporter === null ? [] : [{ source: "stakePool" as const, to: e.reporter, amount: e.toReporter }]),
        { source: "stakePool", to: BURN_ADDRESS, amount: e.burned }
      ]
    case "StakeReleased":
      return [{ source: "stakePool", to: e.owner, amount: e.amount }]
    case "FeesRecorded":
    case "EpochClosed":
      return []
    default:
      return unreachable(e, "reward event")
  }
}

export const decideEpochClose = (
  s: AiLedgerState,
  ctx: AiContext,
  w: { readonly epoch: number; readonly startAt: number; readonly endAt: number }
): Either.Either<ReadonlyArray<AiEvent>, AiRejection> => {
  if (w.epoch !== s.economy.epoch) {
    return Either.left(reject("EpochOutOfOrder", `epoch receipt for epoch ${w.epoch}; the AI shard's open epoch is ${s.economy.epoch}`))
  }
  if (w.endAt < w.startAt) return Either.left(reject("ReceiptMismatch", `epoch window [${w.startAt}, ${w.endAt})`))
  const ledger = closeEpoch(ctx.economics, s.economy, { ...w, totalSupply: ctx.totalSupply })
  const payouts = numberedPayouts(epochCloseCause(w.epoch), 0, ledger.flatMap(payoutLinesOf))
  return Either.right([...ledger, ...payouts])
}

/**
 * Slashing rules. Only bonded stake is slashed: stake already unbonding is
 * out of reach (the unbonding period is the price of leaving, not a window
 * for punishment). Amounts are floored, so a slash never exceeds the bond.
 *
 *   wrong result  slash = ⌊bonded × wrongResultPpm / 10^6⌋; of it
 *                 ⌊slash × toUserPpm⌋ to the developer served the wrong
 *                 result, ⌊slash × toReporterPpm⌋ to who proved it (clamped
 *                 to what is left), the rest burned
 *   offline       the highest grade whose `afterMs` is below the outage's
 *                 length; slashed only for the part of its ppm not already
 *                 applied to that outage, so each grade hits an outage once.
 *                 All burned.
 */
import type { EconomicsConfig } from "./config.js"
import { minBig, ppmOf } from "./proRata.js"

export interface WrongResultSlash {
  readonly amount: bigint
  readonly toUser: bigint
  readonly toReporter: bigint
  readonly burned: bigint
}

export const wrongResultSlash = (config: EconomicsConfig, bonded: bigint): WrongResultSlash =>
  splitWrongResultSlash(config, ppmOf(bonded, config.slashing.wrongResultPpm))

/** A wrong-result slash of `amount`, split: the user's share, the reporter's, the rest burned. */
export const splitWrongResultSlash = (config: EconomicsConfig, amount: bigint): WrongResultSlash => {
  const toUser = ppmOf(amount, config.slashing.toUserPpm)
  const toReporter = minBig(ppmOf(amount, config.slashing.toReporterPpm), amount - toUser)
  return { amount, toUser, toReporter, burned: amount - toUser - toReporter }
}

/** The ppm of the highest grade an outage of `lengthMs` has passed (0 below the first). */
export const offlineGradePpm = (config: EconomicsConfig, lengthMs: number): bigint => {
  let best: { afterMs: number; ppm: bigint } | undefined
  for (const g of config.slashing.offline) if (g.afterMs < lengthMs && (best === undefined || g.afterMs > best.afterMs)) best = g
  return best?.ppm ?? 0n
}

/** What an outage costs now, given the grade it was already slashed at; null when nothing new applies. */
export const offlineSlash = (
  config: EconomicsConfig,
  bonded: bigint,
  lengthMs: number,
  appliedPpm: bigint
): { readonly amount: bigint; readonly gradePpm: bigint } | null => {
  const gradePpm = offlineGradePpm(config, lengthMs)
  if (gradePpm <= appliedPpm) return null
  return { amount: ppmOf(bonded, gradePpm - appliedPpm), gradePpm }
}

/**
 * What the rest of the node asks of the economy, all pure. `owedBy` is what
 * a payout loop needs: cumulative amounts, so a payout is owed − already
 * paid on chain, and a crash between the two never pays twice.
 */
import { HashMap, HashSet } from "effect"
import type { Address } from "../chain/keys.js"
import type { ModelId } from "../ai/model/events.js"
import type { PayoutSource } from "./accounts.js"
import type { EconomicsConfig } from "./config.js"
import { byKey, sumOf } from "./proRata.js"
import { bondOf } from "./bonds.js"
import { bondedOf, type EconomyState } from "./state.js"

export { bondedOf, bondOf }

/** Everything `source` must have paid each address so far, by address. */
export const owedBy = (s: EconomyState, source: PayoutSource): ReadonlyMap<Address, bigint> =>
  new Map([...s.owed[source]].sort(([a], [b]) => byKey(a, b)))

/** A model whose compute fees were capped runs no tasks until repriced. */
export const isPaused = (s: EconomyState, modelId: ModelId): boolean => HashSet.has(s.paused, modelId)

/** A worker's stake on its way back to its owners (to `owner` only, when given). */
export const unbondingOf = (s: EconomyState, worker: Address, owner?: Address): bigint =>
  sumOf(s.unbonding.filter((u) => u.worker === worker && (owner === undefined || u.owner === owner)).map((u) => u.amount))

export interface Supply {
  readonly reserveRemaining: bigint
  readonly minted: bigint
  readonly foundationRemaining: bigint
  readonly stakedBonded: bigint
  readonly unbonding: bigint
  readonly burnedBySlashes: bigint
  readonly protocolFeesBurned: bigint
  /** totalSupply less the reserve, the foundation, stakes and what was burned. */
  readonly circulating: bigint
}

export const supplyOf = (config: EconomicsConfig, s: EconomyState, totalSupply: bigint): Supply => {
  const reserveRemaining = config.miningReserve - s.minted
  const foundationRemaining = config.foundationFund - s.foundationPaid
  const stakedBonded = sumOf([...HashMap.values(s.stakes)].map((x) => x.bonded))
  const unbonding = sumOf(s.unbonding.map((u) => u.amount))
  return {
    reserveRemaining,
    minted: s.minted,
    foundationRemaining,
    stakedBonded,
    unbonding,
    burnedBySlashes: s.burnedBySlashes,
    protocolFeesBurned: s.protocolFeesBurned,
    circulating: totalSupply - reserveRemaining - foundationRemaining - stakedBonded - unbonding - s.burnedBySlashes - s.protocolFeesBurned
  }
}

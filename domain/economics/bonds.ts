/**
 * A worker's stake is the sum of its owners' bonds: (owner, worker) → amount.
 * Each owner unbonds only from its own bond, is released only what it
 * unbonded, and bears a slash of the worker in proportion to its bond.
 *
 * A slash is split by largest remainder: each bond gives ⌊amount × bond / Σ⌋,
 * and the units the floors leave (the dust, fewer than the number of bonds)
 * are taken one each from the bonds with the largest remainders, ties to the
 * lower owner address. So the takes sum to the slash exactly (nothing is
 * minted or lost) and no bond gives more than ⌈its exact share⌉ ≤ itself.
 */
import { HashMap, Option } from "effect"
import type { Address } from "../chain/keys.js"
import { byKey, sumOf } from "./proRata.js"
import type { EconomyState, StakeRecord } from "./state.js"
import { invariantsOf, type Assert } from "../assert.js"

const assert: Assert = invariantsOf("economics")

/** What one owner's bond gives to a slash. */
export interface BondTake {
  readonly owner: Address
  readonly amount: bigint
}

export const noStake: StakeRecord = { bonded: 0n, bonds: HashMap.empty() }

export const stakeOf = (s: EconomyState, worker: Address): StakeRecord => Option.getOrElse(HashMap.get(s.stakes, worker), () => noStake)

/** `owner`'s bond to `worker` (0 when it has none). */
export const bondOf = (s: EconomyState, worker: Address, owner: Address): bigint =>
  Option.getOrElse(HashMap.get(stakeOf(s, worker).bonds, owner), () => 0n)

/** The stake with `delta` added to `owner`'s bond (a bond that reaches 0 leaves the map). */
export const addToBond = (stake: StakeRecord, owner: Address, delta: bigint): StakeRecord => {
  const next = Option.getOrElse(HashMap.get(stake.bonds, owner), () => 0n) + delta
  assert(next >= 0n, `bond of ${owner} would be ${next}`)
  return { bonded: stake.bonded + delta, bonds: next === 0n ? HashMap.remove(stake.bonds, owner) : HashMap.set(stake.bonds, owner, next) }
}

/** The bonds in owner order. */
export const bondsInOrder = (stake: StakeRecord): ReadonlyArray<readonly [Address, bigint]> => [...stake.bonds].sort(([a], [b]) => byKey(a, b))

/**
 * `amount` taken from `bonds` pro rata (largest remainder, see above), in
 * owner order, zero takes left out. Needs amount ≤ Σ bonds.
 */
export const splitOverBonds = (amount: bigint, bonds: ReadonlyArray<readonly [Address, bigint]>): ReadonlyArray<BondTake> => {
  const held = bonds.filter(([, b]) => b > 0n).sort(([a], [b]) => byKey(a, b))
  const total = sumOf(held.map(([, b]) => b))
  assert(amount >= 0n && amount <= total, `a take of ${amount} from bonds of ${total}`)
  if (amount === 0n) return []
  const parts = held.map(([owner, b], i) => ({ i, owner, b, take: (amount * b) / total, rest: (amount * b) % total }))
  let dust = amount - sumOf(parts.map((p) => p.take))
  for (const p of [...parts].sort((x, y) => (x.rest === y.rest ? x.i - y.i : x.rest > y.rest ? -1 : 1))) {
    if (dust === 0n) break
    p.take += 1n
    dust -= 1n
  }
  const takes = parts.filter((p) => p.take > 0n).map((p) => ({ owner: p.owner, amount: p.take }))
  assert(sumOf(takes.map((t) => t.amount)) === amount, `takes of a ${amount} slash do not sum to it`)
  for (const p of parts) assert(p.take <= p.b, `${p.owner} gives ${p.take} of a ${p.b} bond`)
  return takes
}

/** The stake after `takes` left it (each ≤ its owner's bond). */
export const takeFromBonds = (stake: StakeRecord, takes: ReadonlyArray<BondTake>): StakeRecord =>
  takes.reduce((st, t) => addToBond(st, t.owner, -t.amount), stake)

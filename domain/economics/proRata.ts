/**
 * Pro-rata shares, floored. Every share is `amount × weight / Σ weights`
 * rounded down, so the shares never sum to more than `amount`; what is left
 * (the dust) stays with whoever holds `amount`. Zero total weight pays
 * nothing. Entries come back in key order, so a ledger built from them is
 * deterministic.
 */
import { invariantsOf, type Assert } from "../assert.js"

const assert: Assert = invariantsOf("economics")

export interface Share<K extends string> {
  readonly key: K
  readonly weight: bigint
  readonly amount: bigint
}

/** Sorted by key, weights ≤ 0 dropped. */
export const proRata = <K extends string>(amount: bigint, weights: ReadonlyMap<K, bigint>): ReadonlyArray<Share<K>> => {
  assert(amount >= 0n, `pro-rata amount ${amount}`)
  const entries = [...weights].filter(([, w]) => w > 0n).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const total = entries.reduce((sum, [, w]) => sum + w, 0n)
  if (total === 0n) return []
  return entries.map(([key, weight]) => ({ key, weight, amount: (amount * weight) / total }))
}

/** Adds `weight` to `key` in a mutable accumulator (used while building one ledger). */
export const addTo = <K>(m: Map<K, bigint>, key: K, weight: bigint): void => {
  m.set(key, (m.get(key) ?? 0n) + weight)
}

export const sumOf = (xs: Iterable<bigint>): bigint => {
  let sum = 0n
  for (const x of xs) sum += x
  return sum
}

/** `a × ppm / 10^6`, floored. */
export const ppmOf = (a: bigint, ppm: bigint): bigint => (a * ppm) / 1_000_000n

export const minBig = (a: bigint, b: bigint): bigint => (a < b ? a : b)
export const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b)

export const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

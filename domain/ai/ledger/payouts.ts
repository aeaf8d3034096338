/**
 * `AiPayout`s numbered under one cause: zero amounts are left out (a
 * receipt moves at least 1), the others take indexes from `first` on.
 */
import type { Hash32 } from "../../chain/hash.js"
import type { Address } from "../../chain/keys.js"
import type { PayoutSource } from "../../economics/accounts.js"
import { AiPayout } from "./events.js"

export interface PayoutLine {
  readonly source: PayoutSource
  readonly to: Address
  readonly amount: bigint
}

export const numberedPayouts = (cause: Hash32, first: number, lines: ReadonlyArray<PayoutLine>): ReadonlyArray<AiPayout> =>
  lines
    .filter((l) => l.amount > 0n)
    .map((l, i) => new AiPayout({ source: l.source, to: l.to, amount: l.amount, cause, index: first + i }))

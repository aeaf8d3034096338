/**
 * One escrow's state and `evolve`. Evolve asserts conservation on every
 * event — deposited = available + reserved + captured, no part negative —
 * and that a reservation is released or captured whole and once.
 */
import { HashMap, HashSet, Option } from "effect"
import type { Hash32 } from "../../chain/hash.js"
import type { Address } from "../../chain/keys.js"
import type { ModelId } from "../model/events.js"
import type { EscrowEvent } from "./events.js"
import { invariantsOf, type Assert } from "../../assert.js"

export interface EscrowTotals {
  readonly deposited: bigint
  readonly available: bigint
  readonly reserved: bigint
  readonly captured: bigint
}

export interface EscrowState {
  /** Whose escrow for which model: set by the first deposit. */
  readonly owner: { readonly developer: Address; readonly modelId: ModelId } | null
  /** Deposit tx hash → amount: each deposit counts once. */
  readonly deposits: HashMap.HashMap<Hash32, bigint>
  /** Open reservations: task id → amount. */
  readonly reservations: HashMap.HashMap<Hash32, bigint>
  /** Tasks whose capture the ledger refused and this book returned: a task's capture returns once. */
  readonly returned: HashSet.HashSet<Hash32>
  readonly totals: EscrowTotals
}

export const initialEscrowState: EscrowState = {
  owner: null,
  deposits: HashMap.empty(),
  reservations: HashMap.empty(),
  returned: HashSet.empty(),
  totals: { deposited: 0n, available: 0n, reserved: 0n, captured: 0n }
}

export const reservationOf = (s: EscrowState, taskId: Hash32): bigint | undefined =>
  Option.getOrUndefined(HashMap.get(s.reservations, taskId))

const assert: Assert = invariantsOf("escrow")

const withTotals = (s: EscrowState, delta: Partial<EscrowTotals>, returning = false): EscrowState => {
  const t = s.totals
  const totals: EscrowTotals = {
    deposited: t.deposited + (delta.deposited ?? 0n),
    available: t.available + (delta.available ?? 0n),
    reserved: t.reserved + (delta.reserved ?? 0n),
    captured: t.captured + (delta.captured ?? 0n)
  }
  assert(totals.available >= 0n, `available ${totals.available}`)
  assert(totals.reserved >= 0n, `reserved ${totals.reserved}`)
  assert(returning || totals.captured >= t.captured, "captured decreased")
  assert(totals.deposited === totals.available + totals.reserved + totals.captured, "conservation")
  return { ...s, totals }
}

export const evolve = (s: EscrowState, e: EscrowEvent): EscrowState => {
  switch (e._tag) {
    case "EscrowDeposited": {
      assert(!HashMap.has(s.deposits, e.txHash), `deposit ${e.txHash} counted twice`)
      assert(s.owner === null || (s.owner.developer === e.developer && s.owner.modelId === e.modelId), "deposit into another escrow")
      const next = { ...s, owner: s.owner ?? { developer: e.developer, modelId: e.modelId }, deposits: HashMap.set(s.deposits, e.txHash, e.amount) }
      return withTotals(next, { deposited: e.amount, available: e.amount })
    }
    case "EscrowReserved": {
      assert(!HashMap.has(s.reservations, e.taskId), `task ${e.taskId} reserved twice`)
      const next = { ...s, reservations: HashMap.set(s.reservations, e.taskId, e.amount) }
      return withTotals(next, { available: -e.amount, reserved: e.amount })
    }
    case "EscrowReleased": {
      assert(reservationOf(s, e.taskId) === e.amount, `release of ${e.amount} for task ${e.taskId}, reserved ${reservationOf(s, e.taskId)}`)
      const next = { ...s, reservations: HashMap.remove(s.reservations, e.taskId) }
      return withTotals(next, { reserved: -e.amount, available: e.amount })
    }
    case "EscrowCaptured": {
      assert(reservationOf(s, e.taskId) === e.amount, `capture of ${e.amount} for task ${e.taskId}, reserved ${reservationOf(s, e.taskId)}`)
      const next = { ...s, reservations: HashMap.remove(s.reservations, e.taskId) }
      return withTotals(next, { reserved: -e.amount, captured: e.amount })
    }
    case "EscrowCaptureReturned": {
      assert(!HashSet.has(s.returned, e.taskId), `task ${e.taskId}'s capture returned twice`)
      const next = { ...s, returned: HashSet.add(s.returned, e.taskId) }
      return withTotals(next, { captured: -e.amount, available: e.amount }, true)
    }
  }
}

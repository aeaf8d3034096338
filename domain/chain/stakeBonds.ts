/**
 * Who bonded stake to which worker, as far as one shard can know: every
 * `worker.stake` and `worker.unbond` runs on its sender's home shard, so the
 * shard that executes an unbond has seen every bond its sender made. An
 * unbond from an account that never bonded to that worker is refused
 * (`NotStakeOwner`) at admission and at execution, and moves nothing.
 *
 * Which bonder owns a worker's stake (the first, `domain/economics/foldFact.ts`)
 * is the economy's to decide: bonds to one worker can come from every shard.
 */
import { Either, HashSet } from "effect"
import type { Address } from "./keys.js"
import type { LedgerState } from "./ledgerState.js"
import type { Transaction } from "./transaction.js"
import type { TransactionCheckFailure } from "./txRules.js"

/** The key of one (owner, worker) bond in `LedgerState.stakeBonds`. */
export const stakeBondKey = (owner: Address, worker: Address): string => `${owner}>${worker}`

export const hasBonded = (state: LedgerState, owner: Address, worker: Address): boolean =>
  HashSet.has(state.stakeBonds, stakeBondKey(owner, worker))

/** After `checkTransaction` passed: an unbond needs a bond of the sender's to that worker. */
export const checkStakeTransaction = (state: LedgerState, tx: Transaction): Either.Either<void, TransactionCheckFailure> => {
  const p = tx.body.payload
  if (p.kind === "worker.unbond" && !hasBonded(state, tx.sender, p.worker)) {
    return Either.left({ reason: "NotStakeOwner", detail: `${tx.sender} has bonded no stake to worker ${p.worker}; only its bonder can unbond it` })
  }
  return Either.void
}

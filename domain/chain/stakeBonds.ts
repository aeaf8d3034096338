/**
 * What each account bonded to each worker, as far as one shard can know:
 * every `worker.stake` and `worker.unbond` runs on its sender's home shard,
 * so the shard that executes an unbond has seen every bond and unbond its
 * sender made. An account unbonds only its own bond: an unbond from an
 * account with nothing bonded to that worker is `NotStakeOwner`, one over
 * what it bonded less what it already asked back is `UnbondOverBond`, both
 * at admission and at execution, and neither moves anything.
 *
 * The chain does not see slashes (the economy takes them at its epoch close,
 * `domain/economics/bonds.ts`), so its amount is before slashes: the economy
 * clamps an unbond to the bond a slash left. What the economy lets an owner
 * unbond is never more than what the chain lets it ask.
 */
import { Either, HashMap, Option } from "effect"
import type { Address } from "./keys.js"
import type { LedgerState } from "./ledgerState.js"
import type { Transaction } from "./transaction.js"
import type { TransactionCheckFailure } from "./txRules.js"
import { bondOf } from "../economics/bonds.js"

/** The key of one (owner, worker) bond in `LedgerState.stakeBonds`. */
export const stakeBondKey = (owner: Address, worker: Address): string => `${owner}>${worker}`

/** What `owner` bonded to `worker` here, less what it asked back (0 when nothing). */
export const bondedBy = (state: LedgerState, owner: Address, worker: Address): bigint =>
  Option.getOrElse(HashMap.get(state.stakeBonds, stakeBondKey(owner, worker)), () => 0n)

/** `stakeBonds` with `delta` added to (owner, worker); a bond back to 0 leaves the map. */
export const addBond = (bonds: HashMap.HashMap<string, bigint>, owner: Address, worker: Address, delta: bigint): HashMap.HashMap<string, bigint> => {
  const key = stakeBondKey(owner, worker)
  const next = Option.getOrElse(HashMap.get(bonds, key), () => 0n) + delta
  return next <= 0n ? HashMap.remove(bonds, key) : HashMap.set(bonds, key, next)
}

/** After `checkTransaction` passed: an unbond needs a bond of the sender's to that worker, at least as large. */
export const checkStakeTransaction = (state: LedgerState, tx: Transaction): Either.Either<void, TransactionCheckFailure> => {
  const p = tx.body.payload
  if (p.kind !== "worker.unbond") return Either.void
  // On the AI shard the bonds are its AI ledger's (bond receipts), not this shard's own worker.stake txs.
  const own = state.ai !== null ? bondOf(state.ai.economy, p.worker, tx.sender) : bondedBy(state, tx.sender, p.worker)
  if (own === 0n) {
    return Either.left({ reason: "NotStakeOwner", detail: `${tx.sender} has no stake bonded to worker ${p.worker}; an account unbonds only its own bond` })
  }
  if (p.amount > own) {
    return Either.left({
      reason: "UnbondOverBond",
      detail: `${tx.sender} has ${own} bonded to worker ${p.worker} (before slashes); cannot unbond ${p.amount}: an account unbonds only its own bond`
    })
  }
  return Either.void
}

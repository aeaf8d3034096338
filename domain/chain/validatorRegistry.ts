/**
 * The beacon's validator registry: the rules of the `validator.*`
 * transactions and of the election at each epoch end.
 *
 * - `validator.stake {amount}` runs on the sender's transfer shard and sends
 *   `amount` to the sender's own account on the beacon (a `CrossShardSent` to
 *   shard 0); the beacon credits the receipt like any other.
 * - `validator.register {blsPublicKey, proofOfPossession, endpoint}` and
 *   `validator.unbond {}` run on the beacon (the sender's beacon account pays
 *   the fee and counts the nonce). Register needs a proof of possession that
 *   verifies, a key no other validator holds and some stake; unbond marks the
 *   validator leaving.
 * - A validator's stake is its beacon balance (plus, for a genesis
 *   validator, the stake its genesis declared).
 * - In the beacon block that ends epoch e, after `EpochEnded`: each leaving
 *   validator's beacon balance goes back to its transfer shard
 *   (`CrossShardSent` named by its unbond transaction) and it leaves
 *   (`ValidatorLeft`); then `CommitteesElected` for epoch e + 1, elected from
 *   the validators that stay with stake, seeded with the block's parent hash.
 *   An election that fails keeps the previous committees (`kept`): the chain
 *   never halts on a bad election.
 */
import { Either, HashMap } from "effect"
import { chainShardIds, type ShardId } from "./sharding.js"
import { electShardCommittees, ShardCommittee, type Candidate } from "./committees.js"
import { hexToBytes } from "./hex.js"
import type { Hash32 } from "./hash.js"
import type { Address } from "./keys.js"
import { balanceOf, registeredValidator, type LedgerState } from "./ledgerState.js"
import type { Transaction } from "./transaction.js"
import type { TransactionCheckFailure } from "./txRules.js"
import { verifyProofOfPossession } from "../consensus/bls.js"

const fail = (reason: TransactionCheckFailure["reason"], detail: string) => Either.left<TransactionCheckFailure>({ reason, detail })

/** Checked (key, proof) pairs: a pairing costs tens of ms, and admission and execution check the same registration. */
const popChecked = new Map<string, boolean>()
const POP_CACHE_MAX = 1024

/** Whether `proof` proves possession of the secret of `publicKey` (both 0x-hex). */
export const proofOfPossessionHolds = (publicKey: string, proof: string): boolean => {
  const key = `${publicKey}:${proof}`
  let ok = popChecked.get(key)
  if (ok === undefined) {
    const pk = hexToBytes(publicKey)
    const pop = hexToBytes(proof)
    ok = Either.isRight(pk) && Either.isRight(pop) && verifyProofOfPossession(pk.right, pop.right)
    if (popChecked.size >= POP_CACHE_MAX) popChecked.clear()
    popChecked.set(key, ok)
  }
  return ok
}

/**
 * The registry's checks of a beacon transaction, after `checkTransaction`
 * (chain, shard, nonce, the fee) passed; `spendable` is the sender's beacon
 * balance (less what its pending transactions spend, at admission).
 */
export const checkValidatorTransaction = (
  state: LedgerState,
  spendable: bigint,
  tx: Transaction
): Either.Either<void, TransactionCheckFailure> => {
  const p = tx.body.payload
  const known = registeredValidator(state, tx.sender)
  switch (p.kind) {
    case "validator.register": {
      if (!proofOfPossessionHolds(p.blsPublicKey, p.proofOfPossession)) {
        return fail("BadProofOfPossession", `the proof of possession does not verify under BLS key ${p.blsPublicKey}`)
      }
      for (const [address, v] of state.registry) {
        if (address !== tx.sender && v.blsPublicKey === p.blsPublicKey) {
          return fail("KeyTaken", `BLS key ${p.blsPublicKey} is registered by ${address}`)
        }
      }
      if (known?.leaving === true) {
        return fail("AlreadyLeaving", `${tx.sender} unbonded and leaves at the end of epoch ${state.epoch}; register again after`)
      }
      const stake = (known?.genesisStake ?? 0n) + spendable - tx.body.fee
      if (stake <= 0n) {
        return fail("NoStake", `${tx.sender} has no beacon balance to stake (send validator.stake first); ${spendable} after fee ${tx.body.fee}`)
      }
      return Either.void
    }
    case "validator.unbond":
      if (known === undefined) return fail("NotAValidator", `${tx.sender} is not in the validator registry`)
      if (known.leaving) return fail("AlreadyLeaving", `${tx.sender} already unbonded; it leaves at the end of epoch ${state.epoch}`)
      return Either.void
    default:
      return Either.void
  }
}

/** Every shard of a chain with `transferShards` transfer shards: the beacon, 1..S, the AI shard (each gets a committee). */
export const chainShards = (transferShards: number): ReadonlyArray<ShardId> => chainShardIds(transferShards)

/** What an election draws from: registered validators not leaving, with stake, by address. */
export const candidatesOf = (state: LedgerState): ReadonlyArray<Candidate> =>
  Array.from(state.registry)
    .filter(([, v]) => !v.leaving && v.stake > 0n)
    .map(([address, v]) => ({ address, blsPublicKey: v.blsPublicKey, stake: v.stake }))
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0))

/** The validators leaving at this epoch end, by address: who, the unbond tx, the beacon balance to pay back. */
export const leavingOf = (
  state: LedgerState
): ReadonlyArray<{ readonly validator: Address; readonly unbondTx: Hash32; readonly balance: bigint }> =>
  Array.from(state.registry)
    .filter(([, v]) => v.leaving)
    .map(([validator, v]) => ({ validator, unbondTx: v.unbondTx!, balance: balanceOf(state, validator) }))
    .sort((a, b) => (a.validator < b.validator ? -1 : a.validator > b.validator ? 1 : 0))

export interface Election {
  readonly committees: ReadonlyArray<ShardCommittee>
  readonly kept: boolean
  readonly failure?: string
}

/**
 * The committees of `epoch` (the one starting): elected from the registry as
 * it stands (leavers gone), or, if that fails, the previous epoch's re-labelled.
 */
export const electNext = (state: LedgerState, epoch: number, seed: Hash32): Election => {
  const chain = state.chain!
  const shards = chainShards(chain.transferShards)
  const elected = electShardCommittees({
    candidates: candidatesOf(state),
    shards,
    committeeSize: chain.committeeSize ?? chain.validators?.length ?? 1,
    epoch,
    seed
  })
  if (Either.isRight(elected)) return { committees: elected.right, kept: false }
  const previous = HashMap.unsafeGet(state.elections, epoch - 1)
  return {
    committees: previous.map((c) => new ShardCommittee({ shard: c.shard, epoch, members: c.members })),
    kept: true,
    failure: `${elected.left.reason}: ${elected.left.detail}`
  }
}

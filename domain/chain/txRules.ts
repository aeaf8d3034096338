/**
 * The rules a transaction must pass against an account, shared by admission
 * (against the state plus the sender's pending transactions) and by block
 * execution (against the state as the block has changed it so far), so the
 * two can never drift apart. Checked in this order; the first failure wins.
 */
import { Either, Schema } from "effect"
import { shardOf, type ShardId } from "./sharding.js"
import type { Transaction } from "./transaction.js"

export const TransactionCheckReason = Schema.Literal(
  "WrongChain",
  "WrongShard",
  "NonceReused",
  "NonceGap",
  "InsufficientBalance"
)
export type TransactionCheckReason = typeof TransactionCheckReason.Type

export interface TransactionCheckFailure {
  readonly reason: TransactionCheckReason
  readonly detail: string
}

export interface ChainContext {
  readonly chainId: bigint
  readonly shard: ShardId
  readonly transferShards: number
}

/** What the sender has to spend: the next nonce it may use and its spendable balance. */
export interface SenderView {
  readonly nextNonce: bigint
  readonly spendable: bigint
}

const fail = (reason: TransactionCheckReason, detail: string) => Either.left<TransactionCheckFailure>({ reason, detail })

export const checkTransaction = (
  ctx: ChainContext,
  sender: SenderView,
  tx: Transaction
): Either.Either<void, TransactionCheckFailure> => {
  const { body } = tx
  if (body.chainId !== ctx.chainId) return fail("WrongChain", `chain id ${body.chainId}, expected ${ctx.chainId}`)
  const home = shardOf(tx.sender, ctx.transferShards)
  if (home !== ctx.shard) return fail("WrongShard", `sender ${tx.sender} lives on shard ${home}, not ${ctx.shard}`)
  if (body.nonce < sender.nextNonce) return fail("NonceReused", `nonce ${body.nonce} already used, next is ${sender.nextNonce}`)
  if (body.nonce > sender.nextNonce) return fail("NonceGap", `nonce ${body.nonce} leaves a gap, next is ${sender.nextNonce}`)
  if (sender.spendable < tx.spend) {
    return fail("InsufficientBalance", `needs ${tx.spend} (amount + fee), spendable ${sender.spendable}`)
  }
  return Either.void
}

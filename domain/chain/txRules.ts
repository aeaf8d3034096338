/**
 * The rules a transaction must pass against an account, shared by admission
 * (against the state plus the sender's pending transactions) and by block
 * execution (against the state as the block has changed it so far), so the
 * two can never drift apart. Checked in this order; the first failure wins.
 * A governance transaction from anyone but the chain's governance address
 * fails like any other check: refused at admission, and if a block holds it
 * anyway, recorded as rejected with nothing charged.
 */
import { Either, Schema } from "effect"
import type { Address } from "./keys.js"
import type { GenesisValidator } from "./validators.js"
import type { AiGenesis } from "./aiGenesis.js"
import { isSystemAddress } from "../economics/accounts.js"
import { aiShardOf, BEACON_SHARD, shardOf, type ShardId, type ShardKind } from "./sharding.js"
import { isAiShardKind, isBeaconKind, type Transaction, type TransactionKind } from "./transaction.js"

export const TransactionCheckReason = Schema.Literal(
  "WrongChain",
  "WrongShard",
  "NonceReused",
  "NonceGap",
  "NotGovernance",
  "InsufficientBalance",
  // a keyless system account as sender: only a forged signature could name one
  "SystemAccount",
  // worker.unbond of a stake the sender did not bond, or of more than it bonded (the AI ledger's bonds: `domain/ai/ledger/workers.ts`)
  "NotStakeOwner",
  "UnbondOverBond",
  // validator.* (the beacon's registry; `domain/chain/validatorRegistry.ts`)
  "NoValidatorSet",
  "BadProofOfPossession",
  "KeyTaken",
  "NoStake",
  "NotAValidator",
  "AlreadyLeaving"
)
export type TransactionCheckReason = typeof TransactionCheckReason.Type

export interface TransactionCheckFailure {
  readonly reason: TransactionCheckReason
  readonly detail: string
}

export interface ChainContext {
  readonly chainId: bigint
  readonly shard: ShardId
  /** What this shard is (`shardKindOf`): the beacon, a transfer shard or the AI shard. */
  readonly kind: ShardKind
  readonly transferShards: number
  /** Who may send governance transactions; null on a chain whose genesis named none (all are refused). */
  readonly governance: Address | null
  /** The beacon's blocks per epoch; null on transfer shards. */
  readonly epochBlocks: number | null
  /** A BFT chain's validators (blocks carry QCs of their committee); null on a single-producer chain. */
  readonly validators: ReadonlyArray<GenesisValidator> | null
  /** The beacon's seats per elected committee (genesis `committeeSize`, else the genesis validator count); null elsewhere. */
  readonly committeeSize?: number | null
  /** The AI shard's rules (economics, GPU classes, genesis supply); null on the other shards. */
  readonly ai?: AiGenesis | null
}

/**
 * The shard that executes `tx`: the beacon for the beacon kinds
 * (`validator.register`, `validator.unbond`), the AI shard for its kinds
 * (`AI_SHARD_KINDS`: models, attestations, workers, settlement, escrow
 * withdrawals, governance), else the sender's transfer shard.
 */
export const homeShardOf = (tx: Transaction, transferShards: number): ShardId =>
  homeShardOfKind(tx.body.payload.kind, tx.sender, transferShards)

export const homeShardOfKind = (kind: TransactionKind, sender: Address, transferShards: number): ShardId =>
  isBeaconKind(kind) ? (BEACON_SHARD as ShardId) : isAiShardKind(kind) ? aiShardOf(transferShards) : shardOf(sender, transferShards)

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
  if (isSystemAddress(tx.sender)) return fail("SystemAccount", `${tx.sender} is a system account: no key spends from it`)
  const home = homeShardOf(tx, ctx.transferShards)
  if (home !== ctx.shard) {
    return fail("WrongShard", `${body.payload.kind} of ${tx.sender} runs on shard ${home}, not ${ctx.shard}`)
  }
  if (body.nonce < sender.nextNonce) return fail("NonceReused", `nonce ${body.nonce} already used, next is ${sender.nextNonce}`)
  if (body.nonce > sender.nextNonce) return fail("NonceGap", `nonce ${body.nonce} leaves a gap, next is ${sender.nextNonce}`)
  if (body.payload.kind === "gov.shard-shares" && tx.sender !== ctx.governance) {
    return fail("NotGovernance", `${body.payload.kind} from ${tx.sender}; the governance address is ${ctx.governance ?? "unset"}`)
  }
  if (body.payload.kind.startsWith("validator.") && ctx.validators === null) {
    return fail("NoValidatorSet", `${body.payload.kind} on a chain without validators (a single-producer chain)`)
  }
  if (sender.spendable < tx.spend) {
    return fail("InsufficientBalance", `needs ${tx.spend} (amount + fee), spendable ${sender.spendable}`)
  }
  return Either.void
}

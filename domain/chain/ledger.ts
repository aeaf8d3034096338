/**
 * The ShardActor's rules: one shard's ledger as a decider.
 *
 * `ApplyBlock` verifies the block against the state in spec order (shard,
 * chain, height, parent, timestamp, eventsRoot, proposer signature, body
 * roots, receipts), then executes: receipts first (each credited once by
 * receipt id), then transactions in block order. A transaction that fails
 * its checks is recorded as `TransactionRejected` and changes nothing.
 *
 * Shard 0, the beacon, runs the same rules with no accounts (transactions are
 * routed by sender to transfer shards, so any in a beacon block is rejected
 * as WrongShard); every block of it whose height is a multiple of
 * epochBlocks ends an epoch (`EpochEnded`, before `BlockExecuted`).
 *
 * Transaction signatures are NOT checked here. Each is verified once, before
 * a block holds it: at admission for the local mempool, and by the consensus
 * layer for transactions in a proposal that it has not admitted itself. So
 * applying and replaying blocks costs no ECDSA per transaction.
 */
import { absurd, Either, HashSet, Schema } from "effect"
import { Block, BlockRejected, blockHash, TimestampMs, verifyBlockBody, verifyBlockHeader } from "./block.js"
import type { Decider } from "../Decider.js"
import {
  AccountFunded,
  BlockApplied,
  BlockExecuted,
  CrossShardReceived,
  CrossShardSent,
  EpochEnded,
  EscrowDeposited,
  eventsRoot,
  FeeCharged,
  GenesisApplied,
  TransactionRejected,
  Transferred,
  ValidatorLeaving,
  ValidatorLeft,
  ValidatorRegistered,
  CommitteesElected,
  type ShardEvent
} from "./events.js"
import { checkValidatorTransaction, electNext, leavingOf } from "./validatorRegistry.js"
import { isSystemAddress, SYSTEM_ESCROW, SYSTEM_FOUNDATION, SYSTEM_RESERVE, SYSTEM_STAKE_POOL } from "../economics/accounts.js"
import type { AiContext } from "../ai/ledger/context.js"
import { aiContextOf } from "./aiContext.js"
import { decideAi } from "../ai/ledger/decide.js"
import type { AiEvent, AiPayout, AiRejection } from "../ai/ledger/events.js"
import { addressBytes, Address } from "./keys.js"
import { keccakHex, type Hash32 } from "./hash.js"
import { accountOf, balanceOf, evolve, GENESIS_HEIGHT, initialLedgerState, type LedgerState } from "./ledgerState.js"
import { receiptAmountHolds, receiptIdOf, type CrossShardReceipt, type ReceiptPurpose } from "./receipt.js"
import { BEACON_SYSTEM_ADDRESS, epochEndCause } from "./epochReceipt.js"
import { encodeRlp } from "./rlp.js"
import { aiShardOf, BEACON_SHARD, EpochBlocks, isAiShard, isTransferShard, shardKindOf, shardOf, type ShardKind, TransferShardCount, type ShardId } from "./sharding.js"
import { PositiveAmount, Uint256, type Transaction } from "./transaction.js"
import { checkTransaction, type ChainContext } from "./txRules.js"
import { verifyCertifiedBlock } from "./certification.js"
import { hexToBytes, utf8 } from "./hex.js"
import { GenesisValidator } from "./validators.js"
import { AiGenesis, aiGenesisJson } from "./aiGenesis.js"

export {
  Account,
  accountOf,
  balanceOf,
  EMPTY_ACCOUNT,
  electedCommittee,
  evolve,
  GENESIS_HEIGHT,
  initialLedgerState,
  nonceOf,
  registeredValidator,
  RegisteredValidator,
  type LedgerState,
  type LedgerTotals
} from "./ledgerState.js"

// ---------------------------------------------------------------- commands and errors

export class Allocation extends Schema.Class<Allocation>("Allocation")({ address: Address, amount: PositiveAmount }) {}

/**
 * A shard's genesis. With `epochBlocks` it is the beacon's (shard 0: no
 * accounts, an `EpochEnded` every epochBlocks blocks); without, a transfer
 * shard's. `governance` is the address that may send governance transactions.
 */
export class ApplyGenesis extends Schema.TaggedClass<ApplyGenesis>()("ApplyGenesis", {
  chainId: Uint256,
  transferShards: TransferShardCount,
  timestamp: TimestampMs,
  /** This shard's allocations only. */
  allocations: Schema.Array(Allocation),
  governance: Schema.optionalWith(Address, { exact: true }),
  epochBlocks: Schema.optionalWith(EpochBlocks, { exact: true }),
  /** A BFT chain's validators, the same on every shard: its blocks carry their QCs instead of a proposer signature. */
  validators: Schema.optionalWith(Schema.Array(GenesisValidator), { exact: true }),
  /** The beacon's seats per elected committee (a BFT chain's beacon only; absent: every genesis validator). */
  committeeSize: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { exact: true }),
  /** "ai": the AI shard's genesis (shard S + 1). Absent: the beacon's or a transfer shard's. */
  kind: Schema.optionalWith(Schema.Literal("ai"), { exact: true }),
  /** The AI shard's rules (with `kind` "ai" only): economics, GPU classes, genesis supply. */
  ai: Schema.optionalWith(AiGenesis, { exact: true })
}) {}

export class ApplyBlock extends Schema.TaggedClass<ApplyBlock>()("ApplyBlock", { block: Block }) {}

export type LedgerCommand = ApplyGenesis | ApplyBlock

export class GenesisRejected extends Schema.TaggedError<GenesisRejected>()("GenesisRejected", {
  reason: Schema.Literal(
    "AlreadyApplied",
    "NotATransferShard",
    "NotTheBeacon",
    "NotTheAiShard",
    "AccountOfAnotherShard",
    "DuplicateAccount"
  ),
  detail: Schema.String
}) {
  override get message(): string {
    return `genesis rejected, ${this.reason}: ${this.detail}`
  }
}

export type LedgerError = GenesisRejected | BlockRejected

/**
 * Block 1's parent: keccak256(rlp([chainId, shard, transferShards, timestamp,
 * [[address, amount], ...], governance, epochBlocks, [[address, blsPublicKey,
 * stake], ...]])), an absent governance as empty bytes and an absent
 * epochBlocks as 0. A genesis with neither (as chains made before the
 * economics had) hashes without those two fields; one without validators (a
 * single-producer chain) without the last. A beacon genesis with a
 * `committeeSize` appends it after the validators. The AI shard's genesis
 * appends its kind ("ai") last; no other genesis has one, so their hashes are
 * as before.
 */
export const genesisHash = (shard: ShardId, cmd: ApplyGenesis): Hash32 =>
  keccakHex(
    encodeRlp([
      cmd.chainId,
      BigInt(shard),
      BigInt(cmd.transferShards),
      BigInt(cmd.timestamp),
      cmd.allocations.map((a) => [addressBytes(a.address), a.amount]),
      ...(cmd.governance === undefined && cmd.epochBlocks === undefined
        ? []
        : [cmd.governance === undefined ? new Uint8Array(0) : addressBytes(cmd.governance), BigInt(cmd.epochBlocks ?? 0)]),
      ...(cmd.validators === undefined && cmd.committeeSize === undefined
        ? []
        : [(cmd.validators ?? []).map((v) => [addressBytes(v.address), Either.getOrThrow(hexToBytes(v.blsPublicKey)), v.stake])]),
      ...(cmd.committeeSize === undefined ? [] : [BigInt(cmd.committeeSize)]),
      ...(cmd.kind === undefined ? [] : [utf8(cmd.kind)]),
      ...(cmd.ai === undefined ? [] : [utf8(aiGenesisJson(cmd.ai))])
    ])
  )

// ---------------------------------------------------------------- decide

/**
 * Events built here come from checked inputs (decoded transactions, a
 * verified block), so their constructors skip re-validation: it cost more
 * than the rest of execution. `eventJson` still encodes every event through
 * its schema for eventsRoot, which refuses anything malformed.
 */
const CHECKED = true

/** Emits events while folding them, so decide and evolve cannot disagree. */
class Emitter {
  readonly events: Array<ShardEvent> = []
  constructor(public state: LedgerState) {}
  emit(e: ShardEvent): void {
    this.events.push(e)
    this.state = evolve(this.state, e)
  }
}

const rejectGenesis = (reason: GenesisRejected["reason"], detail: string) =>
  Either.left(new GenesisRejected({ reason, detail }))

const decideGenesis = (s: LedgerState, cmd: ApplyGenesis): Either.Either<ReadonlyArray<ShardEvent>, GenesisRejected> => {
  const reject = rejectGenesis
  if (s.chain !== null) return reject("AlreadyApplied", `shard ${s.shard} is at height ${s.height}`)
  if (cmd.kind === "ai") {
    if (!isAiShard(s.shard, cmd.transferShards) || cmd.epochBlocks !== undefined) {
      return reject("NotTheAiShard", `an AI-shard genesis on shard ${s.shard}; the AI shard is ${cmd.transferShards + 1}`)
    }
    if (cmd.ai === undefined) return reject("NotTheAiShard", "an AI-shard genesis without its rules (economics, GPU classes, supply)")
    // Only the keyless system accounts live on the AI shard (the mining reserve, the foundation fund).
    const user = cmd.allocations.find((a) => !isSystemAddress(a.address))
    if (user !== undefined) {
      return reject("AccountOfAnotherShard", `the AI shard holds system accounts only; ${user.address} lives on shard ${shardOf(user.address, cmd.transferShards)}`)
    }
  } else if (cmd.ai !== undefined) {
    return reject("NotTheAiShard", `AI-shard rules in the genesis of shard ${s.shard}`)
  } else if (cmd.epochBlocks !== undefined) {
    if (s.shard !== BEACON_SHARD) return reject("NotTheBeacon", `a beacon genesis (epochBlocks ${cmd.epochBlocks}) on shard ${s.shard}`)
    const first = cmd.allocations[0]
    if (first !== undefined) {
      return reject("AccountOfAnotherShard", `the beacon holds no accounts; ${first.address} lives on shard ${shardOf(first.address, cmd.transferShards)}`)
    }
  } else if (!isTransferShard(s.shard, cmd.transferShards)) {
    return reject("NotATransferShard", `shard ${s.shard} with ${cmd.transferShards} transfer shards`)
  }
  const seen = new Set<Address>()
  for (const a of cmd.allocations) {
    if (cmd.kind !== "ai" && shardOf(a.address, cmd.transferShards) !== s.shard) {
      return reject("AccountOfAnotherShard", `${a.address} lives on shard ${shardOf(a.address, cmd.transferShards)}`)
    }
    if (seen.has(a.address)) return reject("DuplicateAccount", `${a.address} allocated twice`)
    seen.add(a.address)
  }
  const hash = genesisHash(s.shard, cmd)
  const out = new Emitter(s)
  const { chainId, transferShards, timestamp } = cmd
  out.emit(
    new GenesisApplied(
      {
        chainId,
        shard: s.shard,
        transferShards,
        timestamp,
        genesisHash: hash,
        ...(cmd.governance === undefined ? {} : { governance: cmd.governance }),
        ...(cmd.epochBlocks === undefined ? {} : { epochBlocks: cmd.epochBlocks }),
        ...(cmd.validators === undefined ? {} : { validators: cmd.validators }),
        ...(cmd.committeeSize === undefined ? {} : { committeeSize: cmd.committeeSize }),
        ...(cmd.kind === undefined ? {} : { kind: cmd.kind }),
        ...(cmd.ai === undefined ? {} : { ai: cmd.ai })
      },
      CHECKED
    )
  )
  for (const a of cmd.allocations) out.emit(new AccountFunded({ address: a.address, amount: a.amount }, CHECKED))
  const sealed = { height: GENESIS_HEIGHT, blockHash: hash, timestamp, eventsRoot: eventsRoot(out.events) }
  out.emit(new BlockExecuted(sealed, CHECKED))
  return Either.right(out.events)
}

const rejectBlock = (reason: BlockRejected["reason"], detail: string) => Either.left(new BlockRejected({ reason, detail }))

/** Checks of the block against the state, in order; the first failure wins. */
export const verifyBlock = (s: LedgerState, block: Block): Either.Either<ChainContext, BlockRejected> => {
  const h = block.header
  const chain = s.chain
  if (chain === null) return rejectBlock("GenesisMissing", `shard ${s.shard} has no genesis`)
  if (h.shard !== s.shard) return rejectBlock("WrongShard", `block for shard ${h.shard} on shard ${s.shard}`)
  if (h.chainId !== chain.chainId) return rejectBlock("WrongChain", `chain id ${h.chainId}, expected ${chain.chainId}`)
  if (h.height !== s.height + 1) return rejectBlock("WrongHeight", `height ${h.height}, expected ${s.height + 1}`)
  if (h.parentHash !== s.lastBlockHash) {
    return rejectBlock("WrongParent", `parent ${h.parentHash}, expected ${s.lastBlockHash}`)
  }
  if (h.timestamp < s.lastTimestamp) return rejectBlock("TimestampBeforeParent", `${h.timestamp} < ${s.lastTimestamp}`)
  if (h.eventsRoot !== s.lastEventsRoot) {
    return rejectBlock("WrongEventsRoot", `eventsRoot ${h.eventsRoot}, expected ${s.lastEventsRoot}`)
  }
  const header =
    s.committee === null
      ? verifyBlockHeader(block)
      : verifyCertifiedBlock(s.committee, {
          consensusHash: s.lastCertifiedHash!,
          lastTimestamp: s.lastTimestamp,
          isReceived: (id) => HashSet.has(s.receivedReceipts, id)
        }, block)
  if (Either.isLeft(header)) return Either.left(header.left)
  const body = verifyBlockBody(block)
  if (Either.isLeft(body)) return Either.left(body.left)
  for (const r of block.receipts) {
    if (r.destShard !== s.shard) {
      return rejectBlock("ReceiptNotForThisShard", `receipt ${r.receiptId} is for shard ${r.destShard}, this is shard ${s.shard}`)
    }
    const route = receiptRouteRefusal(chain, r)
    if (route !== undefined) return rejectBlock(route.reason, `receipt ${r.receiptId}: ${route.detail}`)
    if (r.receiptId !== receiptIdOf(r.txHash, r.index ?? 0)) {
      return rejectBlock("ReceiptIdMismatch", `receipt ${r.receiptId} of tx ${r.txHash} index ${r.index ?? 0}`)
    }
  }
  return Either.right(chain)
}

/**
 * Which receipts a shard takes, by the kinds of its source and of this shard:
 * - a transfer shard: plain ones from the other transfer shards, from the AI
 *   shard (payouts) and, on a chain with validators, the beacon's stake paybacks;
 * - the beacon of a chain with validators: plain ones from the transfer shards
 *   (`validator.stake`); a single-producer chain's beacon takes none;
 * - the AI shard: `escrow`/`bond` ones from the transfer shards and the
 *   beacon's `epoch` ones (no plain ones: nobody holds money there but the
 *   system accounts).
 * Amount ≥ 1, except an epoch receipt's, which is 0 and from the beacon's system address.
 */
const receiptRouteRefusal = (
  chain: ChainContext,
  r: CrossShardReceipt
): { readonly reason: BlockRejected["reason"]; readonly detail: string } | undefined => {
  const S = chain.transferShards
  const source = r.sourceShard === chain.shard ? undefined : shardKindOrUndefined(r.sourceShard, S)
  const bft = chain.validators !== null
  const purpose = r.purpose?.kind
  const from = (ok: boolean) => (ok ? undefined : { reason: "ReceiptFromUnknownShard" as const, detail: `from shard ${r.sourceShard} (${source ?? "no shard"}) with purpose ${purpose ?? "none"}` })
  if (!receiptAmountHolds(r)) return { reason: "BadReceipt", detail: `amount ${r.amount} with purpose ${purpose ?? "none"}` }
  switch (chain.kind) {
    case "transfer":
      if (purpose !== undefined) return { reason: "BadReceipt", detail: `purpose ${purpose} is for the AI shard` }
      return from(source === "transfer" || source === "ai" || (bft && source === "beacon"))
    case "beacon":
      if (!bft) return { reason: "ReceiptNotForThisShard", detail: "a single-producer chain's beacon takes no receipts" }
      if (purpose !== undefined) return { reason: "BadReceipt", detail: `purpose ${purpose} is for the AI shard` }
      return from(source === "transfer")
    case "ai":
      if (purpose === "epoch") {
        if (r.from !== BEACON_SYSTEM_ADDRESS) return { reason: "BadReceipt", detail: `an epoch receipt from ${r.from}, not the beacon's system address` }
        return from(source === "beacon")
      }
      if (purpose === undefined) return { reason: "BadReceipt", detail: "the AI shard takes no plain transfers" }
      if (r.to !== (purpose === "escrow" ? SYSTEM_ESCROW : SYSTEM_STAKE_POOL)) {
        return { reason: "BadReceipt", detail: `a ${purpose} receipt to ${r.to}, not the ${purpose === "escrow" ? "escrow" : "stake pool"} account` }
      }
      return from(source === "transfer")
  }
}

const shardKindOrUndefined = (shard: number, transferShards: number): ShardKind | undefined =>
  shard === BEACON_SHARD || isTransferShard(shard, transferShards) || isAiShard(shard, transferShards)
    ? shardKindOf(shard, transferShards)
    : undefined

const executeTransaction = (out: Emitter, chain: ChainContext, ai: AiContext | null, tx: Transaction): void => {
  const account = accountOf(out.state, tx.sender)
  const sender = { nextNonce: account.nonce, spendable: account.balance }
  const check =
    ai !== null // the AI shard: its kinds are the AI ledger's to decide (bonds and all)
      ? Either.flatMap(checkTransaction(chain, sender, tx), () => decideAi(out.state.ai!, ai, { _tag: "Tx", tx }))
      : Either.flatMap(checkTransaction(chain, sender, tx), () =>
          Either.map(checkValidatorTransaction(out.state, account.balance, tx), (): ReadonlyArray<AiEvent> => [])
        )
  const { body } = tx
  if (Either.isLeft(check)) {
    out.emit(new TransactionRejected({ txHash: tx.hash, sender: tx.sender, nonce: body.nonce, ...check.left }, CHECKED))
    return
  }
  out.emit(new FeeCharged({ txHash: tx.hash, payer: tx.sender, fee: body.fee, nonce: body.nonce }, CHECKED))
  if (ai !== null) return emitAi(out, chain, check.right)
  const [txHash, from] = [tx.hash, tx.sender]
  const p = body.payload
  switch (p.kind) {
    case "transfer":
      return move(out, chain, txHash, from, p.to, p.amount)
    case "escrow.deposit": // to the AI shard's escrow, credited there to (developer, model)
      out.emit(new EscrowDeposited({ txHash, developer: from, model: p.model, amount: p.amount }, CHECKED))
      return sendToAiShard(out, chain, txHash, from, SYSTEM_ESCROW, p.amount, { kind: "escrow", model: p.model })
    case "worker.stake": // to the AI shard's stake pool, bonded there as (owner, worker)
      return sendToAiShard(out, chain, txHash, from, SYSTEM_STAKE_POOL, p.amount, { kind: "bond", worker: p.worker })
    // The AI shard's kinds run there only (checkTransaction refused them here as WrongShard).
    case "model.register":
    case "model.price":
    case "model.deprecate":
    case "gov.shard-shares":
    case "worker.unbond":
      return
    case "validator.stake": // to the sender's own account on the beacon (checkTransaction: a chain with validators)
      return out.emit(
        new CrossShardSent(
          { receiptId: receiptIdOf(txHash), sourceShard: chain.shard, destShard: BEACON_SHARD as ShardId, from, to: from, amount: p.amount, txHash },
          CHECKED
        )
      )
    case "validator.register": // checkValidatorTransaction let it through
      return out.emit(
        new ValidatorRegistered(
          { txHash, validator: from, blsPublicKey: p.blsPublicKey, proofOfPossession: p.proofOfPossession, endpoint: p.endpoint },
          CHECKED
        )
      )
    case "validator.unbond":
      return out.emit(new ValidatorLeaving({ txHash, validator: from }, CHECKED))
    case "model.attest":
    case "worker.register":
    case "usage.settle":
    case "usage.overran":
    case "escrow.withdraw":
    case "result.challenge":
    case "worker.liveness":
    case "worker.measure":
      return
    default:
      return absurd(p)
  }
}

/** Money for the AI shard's ledger: a receipt with a purpose (escrow or bond) to one of its system accounts. */
const sendToAiShard = (
  out: Emitter,
  chain: ChainContext,
  txHash: Hash32,
  from: Address,
  to: Address,
  amount: bigint,
  purpose: ReceiptPurpose
): void =>
  out.emit(
    new CrossShardSent(
      { receiptId: receiptIdOf(txHash), sourceShard: chain.shard, destShard: aiShardOf(chain.transferShards), from, to, amount, txHash, purpose },
      CHECKED
    )
  )

/** The keyless account each payout source pays from. */
const SOURCE_ACCOUNT: Readonly<Record<AiPayout["source"], Address>> = {
  escrow: SYSTEM_ESCROW,
  reserve: SYSTEM_RESERVE,
  foundation: SYSTEM_FOUNDATION,
  stakePool: SYSTEM_STAKE_POOL
}

/**
 * The AI ledger's events, in order; each payout moves its money right after
 * it: a transfer to a system account on this shard (the treasury), else a
 * receipt to the payee's transfer shard named by (cause, index).
 */
const emitAi = (out: Emitter, chain: ChainContext, events: ReadonlyArray<AiEvent>): void => {
  for (const e of events) {
    out.emit(e)
    if (e._tag !== "AiPayout") continue
    const from = SOURCE_ACCOUNT[e.source]
    if (isSystemAddress(e.to)) {
      out.emit(new Transferred({ txHash: e.cause, from, to: e.to, amount: e.amount }, CHECKED))
      continue
    }
    const receipt = {
      receiptId: receiptIdOf(e.cause, e.index),
      sourceShard: chain.shard,
      destShard: shardOf(e.to, chain.transferShards),
      from,
      to: e.to,
      amount: e.amount,
      txHash: e.cause,
      ...(e.index === 0 ? {} : { index: e.index })
    }
    out.emit(new CrossShardSent(receipt, CHECKED))
  }
}

/** A decision of the AI ledger that cannot be refused (a receipt the block checked, a block's end). */
const mustAi = (d: Either.Either<ReadonlyArray<AiEvent>, AiRejection>, what: string): ReadonlyArray<AiEvent> => {
  if (Either.isLeft(d)) throw new Error(`invariant violated (ledger): the AI ledger refused ${what}: ${d.left.reason}: ${d.left.detail}`)
  return d.right
}

/** The escrow sub-ledger is the escrow account, unit for unit. */
const assertAiBooks = (s: LedgerState): void => {
  let escrow = 0n
  for (const [, amount] of s.ai!.escrow) escrow += amount
  if (escrow !== balanceOf(s, SYSTEM_ESCROW)) {
    throw new Error(`invariant violated (ledger): escrows sum to ${escrow}, the escrow account holds ${balanceOf(s, SYSTEM_ESCROW)}`)
  }
}

/** Moves `amount` from `from` to `to`: here, or to another shard by a receipt. */
const move = (out: Emitter, chain: ChainContext, txHash: Hash32, from: Address, to: Address, amount: bigint): void => {
  const destShard = shardOf(to, chain.transferShards)
  if (destShard === chain.shard) {
    out.emit(new Transferred({ txHash, from, to, amount }, CHECKED))
  } else {
    const receiptId = receiptIdOf(txHash)
    out.emit(new CrossShardSent({ receiptId, sourceShard: chain.shard, destShard, from, to, amount, txHash }, CHECKED))
  }
}

/**
 * The registry at the end of `epoch` (a BFT chain's beacon): the leaving
 * validators' beacon balances go back to their transfer shards and they
 * leave; then the committees of the next epoch, seeded with `seed`.
 */
const endEpochOfRegistry = (out: Emitter, chain: ChainContext, epoch: number, seed: Hash32): void => {
  for (const { validator, unbondTx, balance } of leavingOf(out.state)) {
    if (balance > 0n) {
      const destShard = shardOf(validator, chain.transferShards)
      out.emit(
        new CrossShardSent(
          { receiptId: receiptIdOf(unbondTx), sourceShard: chain.shard, destShard, from: validator, to: validator, amount: balance, txHash: unbondTx },
          CHECKED
        )
      )
    }
    out.emit(new ValidatorLeft({ txHash: unbondTx, validator, epoch, paidBack: balance }, CHECKED))
  }
  const next = epoch + 1
  const election = electNext(out.state, next, seed)
  out.emit(
    new CommitteesElected(
      {
        epoch: next,
        seed,
        kept: election.kept,
        ...(election.failure === undefined ? {} : { failure: election.failure }),
        committees: election.committees
      },
      CHECKED
    )
  )
}


const decideBlock = (s: LedgerState, block: Block): Either.Either<ReadonlyArray<ShardEvent>, BlockRejected> => {
  const verified = verifyBlock(s, block)
  if (Either.isLeft(verified)) return Either.left(verified.left)
  const chain = verified.right
  const out = new Emitter(s)
  out.emit(new BlockApplied({ block }, CHECKED))
  const ai = aiContextOf(s, block.header.height, block.header.timestamp)
  for (const r of block.receipts) {
    // Already credited (an earlier block, or earlier in this one): a re-delivery, nothing to do.
    if (HashSet.has(out.state.receivedReceipts, r.receiptId)) continue
    // The AI ledger closes epochs in order: a later epoch's receipt waits, uncredited, for a block after its predecessor's.
    if (ai !== null && r.purpose?.kind === "epoch" && r.purpose.epoch !== out.state.ai!.economy.epoch) continue
    out.emit(new CrossShardReceived({ ...r }, CHECKED))
    // On the AI shard its ledger takes it on: an escrow credit, a bond, an epoch's close.
    if (ai !== null) emitAi(out, chain, mustAi(decideAi(out.state.ai!, ai, { _tag: "Receipt", receipt: r }), `receipt ${r.receiptId}`))
  }
  for (const tx of block.transactions) executeTransaction(out, chain, ai, tx)
  if (ai !== null) {
    emitAi(out, chain, mustAi(decideAi(out.state.ai!, ai, { _tag: "BlockEnd" }), "the block's end"))
    assertAiBooks(out.state)
  }
  const h = block.header
  if (chain.epochBlocks !== null && h.height % chain.epochBlocks === 0) {
    const epoch = h.height / chain.epochBlocks - 1
    const ended = { epoch, startAt: out.state.epochStartAt, endAt: h.timestamp }
    out.emit(new EpochEnded({ epoch, height: h.height, startAt: ended.startAt, endAt: ended.endAt }, CHECKED))
    if (chain.validators !== null) endEpochOfRegistry(out, chain, epoch, h.parentHash)
    // The AI shard learns of the epoch end by a receipt its committee checks: amount 0, purpose epoch.
    const txHash = epochEndCause(epoch)
    out.emit(
      new CrossShardSent(
        {
          receiptId: receiptIdOf(txHash),
          sourceShard: chain.shard,
          destShard: aiShardOf(chain.transferShards),
          from: BEACON_SYSTEM_ADDRESS,
          to: BEACON_SYSTEM_ADDRESS,
          amount: 0n,
          txHash,
          purpose: { kind: "epoch", ...ended }
        },
        CHECKED
      )
    )
  }
  const sealed = { height: h.height, blockHash: blockHash(h), timestamp: h.timestamp, eventsRoot: eventsRoot(out.events) }
  out.emit(new BlockExecuted(sealed, CHECKED))
  return Either.right(out.events)
}

export const decide = (s: LedgerState, cmd: LedgerCommand): Either.Either<ReadonlyArray<ShardEvent>, LedgerError> => {
  switch (cmd._tag) {
    case "ApplyGenesis":
      return decideGenesis(s, cmd)
    case "ApplyBlock":
      return decideBlock(s, cmd.block)
  }
}

export const makeLedger = (shard: ShardId): Decider<LedgerState, LedgerCommand, ShardEvent, LedgerError> => ({
  initialState: initialLedgerState(shard),
  decide,
  evolve
})

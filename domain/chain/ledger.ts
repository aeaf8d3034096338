/**
 * The ShardActor's rules: one shard's ledger as a decider.
 *
 * `ApplyBlock` verifies the block against the state in spec order (shard,
 * chain, height, parent, timestamp, eventsRoot, proposer signature, body
 * roots, receipts), then executes: receipts first (each credited once by
 * receipt id), then transactions in block order. A transaction that fails
 * its checks is recorded as `TransactionRejected` and changes nothing.
 *
 * Transaction signatures are NOT checked here. Each is verified once, before
 * a block holds it: at admission for the local mempool, and by the consensus
 * layer for transactions in a proposal that it has not admitted itself. So
 * applying and replaying blocks costs no ECDSA per transaction.
 */
import { Data, Either, HashMap, HashSet, Option, Schema } from "effect"
import { Block, BlockRejected, blockHash, TimestampMs, verifyBlockBody, verifyBlockHeader } from "./block.js"
import type { Decider } from "../Decider.js"
import {
  AccountFunded,
  BlockApplied,
  BlockExecuted,
  CrossShardReceived,
  CrossShardSent,
  eventsRoot,
  FeeCharged,
  GenesisApplied,
  TransactionRejected,
  Transferred,
  type ShardEvent
} from "./events.js"
import { addressBytes, Address } from "./keys.js"
import { keccakHex, ZERO_HASH, type Hash32 } from "./hash.js"
import { EMPTY_ROOT } from "./merkle.js"
import { receiptIdOf } from "./receipt.js"
import { encodeRlp } from "./rlp.js"
import { isTransferShard, shardOf, TransferShardCount, type ShardId } from "./sharding.js"
import { PositiveAmount, Uint256, type Transaction } from "./transaction.js"
import { checkTransaction, type ChainContext } from "./txRules.js"

export const GENESIS_HEIGHT = 0

export class Account extends Data.Class<{ readonly balance: bigint; readonly nonce: bigint }> {}
export const EMPTY_ACCOUNT = new Account({ balance: 0n, nonce: 0n })

/** Running sums; conservation: balances + burned + sentOut = funded + receivedIn, always. */
export interface LedgerTotals {
  readonly funded: bigint
  readonly balances: bigint
  readonly burned: bigint
  readonly sentOut: bigint
  readonly receivedIn: bigint
}

export interface LedgerState {
  readonly shard: ShardId
  /** Null until `GenesisApplied`. */
  readonly chain: ChainContext | null
  readonly height: number
  readonly lastBlockHash: Hash32
  /** Root of the events of the last executed block: the next header's eventsRoot. */
  readonly lastEventsRoot: Hash32
  readonly lastTimestamp: number
  readonly accounts: HashMap.HashMap<Address, Account>
  readonly receivedReceipts: HashSet.HashSet<Hash32>
  readonly totals: LedgerTotals
}

export const initialLedgerState = (shard: ShardId): LedgerState => ({
  shard,
  chain: null,
  height: GENESIS_HEIGHT,
  lastBlockHash: ZERO_HASH,
  lastEventsRoot: EMPTY_ROOT,
  lastTimestamp: 0,
  accounts: HashMap.empty(),
  receivedReceipts: HashSet.empty(),
  totals: { funded: 0n, balances: 0n, burned: 0n, sentOut: 0n, receivedIn: 0n }
})

export const accountOf = (state: LedgerState, address: Address): Account =>
  Option.getOrElse(HashMap.get(state.accounts, address), () => EMPTY_ACCOUNT)

export const balanceOf = (state: LedgerState, address: Address): bigint => accountOf(state, address).balance
export const nonceOf = (state: LedgerState, address: Address): bigint => accountOf(state, address).nonce

// ---------------------------------------------------------------- commands and errors

export class Allocation extends Schema.Class<Allocation>("Allocation")({ address: Address, amount: PositiveAmount }) {}

export class ApplyGenesis extends Schema.TaggedClass<ApplyGenesis>()("ApplyGenesis", {
  chainId: Uint256,
  transferShards: TransferShardCount,
  timestamp: TimestampMs,
  /** This shard's allocations only. */
  allocations: Schema.Array(Allocation)
}) {}

export class ApplyBlock extends Schema.TaggedClass<ApplyBlock>()("ApplyBlock", { block: Block }) {}

export type LedgerCommand = ApplyGenesis | ApplyBlock

export class GenesisRejected extends Schema.TaggedError<GenesisRejected>()("GenesisRejected", {
  reason: Schema.Literal("AlreadyApplied", "NotATransferShard", "AccountOfAnotherShard", "DuplicateAccount"),
  detail: Schema.String
}) {
  override get message(): string {
    return `genesis rejected, ${this.reason}: ${this.detail}`
  }
}

export type LedgerError = GenesisRejected | BlockRejected

/** keccak256(rlp([chainId, shard, transferShards, timestamp, [[address, amount], ...]])): block 1's parent. */
export const genesisHash = (shard: ShardId, cmd: ApplyGenesis): Hash32 =>
  keccakHex(
    encodeRlp([
      cmd.chainId,
      BigInt(shard),
      BigInt(cmd.transferShards),
      BigInt(cmd.timestamp),
      cmd.allocations.map((a) => [addressBytes(a.address), a.amount])
    ])
  )

// ---------------------------------------------------------------- evolve

const assert: (condition: boolean, what: string) => asserts condition = (condition, what) => {
  if (!condition) throw new Error(`ledger invariant violated: ${what}`)
}

const withAccount = (s: LedgerState, address: Address, f: (a: Account) => Account): LedgerState => ({
  ...s,
  accounts: HashMap.set(s.accounts, address, f(accountOf(s, address)))
})

const credit = (s: LedgerState, address: Address, amount: bigint): LedgerState =>
  withAccount(s, address, (a) => new Account({ balance: a.balance + amount, nonce: a.nonce }))

const debit = (s: LedgerState, address: Address, amount: bigint): LedgerState =>
  withAccount(s, address, (a) => {
    assert(a.balance >= amount, `debit of ${amount} from ${address} holding ${a.balance}`)
    return new Account({ balance: a.balance - amount, nonce: a.nonce })
  })

const withTotals = (s: LedgerState, delta: Partial<LedgerTotals>): LedgerState => {
  const t = s.totals
  const totals: LedgerTotals = {
    funded: t.funded + (delta.funded ?? 0n),
    balances: t.balances + (delta.balances ?? 0n),
    burned: t.burned + (delta.burned ?? 0n),
    sentOut: t.sentOut + (delta.sentOut ?? 0n),
    receivedIn: t.receivedIn + (delta.receivedIn ?? 0n)
  }
  assert(totals.balances + totals.burned + totals.sentOut === totals.funded + totals.receivedIn, "conservation")
  return { ...s, totals }
}

export const evolve = (s: LedgerState, e: ShardEvent): LedgerState => {
  switch (e._tag) {
    case "GenesisApplied":
      assert(s.chain === null, "genesis applied twice")
      assert(e.shard === s.shard, `genesis of shard ${e.shard} on shard ${s.shard}`)
      return { ...s, chain: { chainId: e.chainId, shard: e.shard, transferShards: e.transferShards } }
    case "AccountFunded":
      return withTotals(credit(s, e.address, e.amount), { funded: e.amount, balances: e.amount })
    case "BlockApplied":
      assert(e.block.header.height === s.height + 1, `block ${e.block.header.height} after ${s.height}`)
      return s
    case "Transferred":
      return credit(debit(s, e.from, e.amount), e.to, e.amount)
    case "FeeCharged": {
      const payer = accountOf(s, e.payer)
      assert(payer.nonce === e.nonce, `fee for nonce ${e.nonce} of ${e.payer} at nonce ${payer.nonce}`)
      assert(payer.balance >= e.fee, `fee ${e.fee} from ${e.payer} holding ${payer.balance}`)
      const next = withAccount(s, e.payer, (a) => new Account({ balance: a.balance - e.fee, nonce: a.nonce + 1n }))
      return withTotals(next, { balances: -e.fee, burned: e.fee })
    }
    case "CrossShardSent":
      assert(e.sourceShard === s.shard && e.destShard !== s.shard, "cross-shard send between the wrong shards")
      return withTotals(debit(s, e.from, e.amount), { balances: -e.amount, sentOut: e.amount })
    case "CrossShardReceived": {
      assert(e.destShard === s.shard, `receipt for shard ${e.destShard} on shard ${s.shard}`)
      assert(!HashSet.has(s.receivedReceipts, e.receiptId), `receipt ${e.receiptId} credited twice`)
      const next = { ...credit(s, e.to, e.amount), receivedReceipts: HashSet.add(s.receivedReceipts, e.receiptId) }
      return withTotals(next, { balances: e.amount, receivedIn: e.amount })
    }
    case "TransactionRejected":
      return s
    case "BlockExecuted":
      assert(s.chain !== null, "block executed before genesis")
      if (e.height === GENESIS_HEIGHT) assert(s.lastBlockHash === ZERO_HASH, "genesis sealed twice")
      else assert(e.height === s.height + 1, `block ${e.height} sealed after ${s.height}`)
      return { ...s, height: e.height, lastBlockHash: e.blockHash, lastEventsRoot: e.eventsRoot, lastTimestamp: e.timestamp }
  }
}

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

const decideGenesis = (s: LedgerState, cmd: ApplyGenesis): Either.Either<ReadonlyArray<ShardEvent>, GenesisRejected> => {
  const reject = (reason: GenesisRejected["reason"], detail: string) => Either.left(new GenesisRejected({ reason, detail }))
  if (s.chain !== null) return reject("AlreadyApplied", `shard ${s.shard} is at height ${s.height}`)
  if (!isTransferShard(s.shard, cmd.transferShards)) {
    return reject("NotATransferShard", `shard ${s.shard} with ${cmd.transferShards} transfer shards`)
  }
  const seen = new Set<Address>()
  for (const a of cmd.allocations) {
    if (shardOf(a.address, cmd.transferShards) !== s.shard) {
      return reject("AccountOfAnotherShard", `${a.address} lives on shard ${shardOf(a.address, cmd.transferShards)}`)
    }
    if (seen.has(a.address)) return reject("DuplicateAccount", `${a.address} allocated twice`)
    seen.add(a.address)
  }
  const hash = genesisHash(s.shard, cmd)
  const out = new Emitter(s)
  out.emit(new GenesisApplied({ chainId: cmd.chainId, shard: s.shard, transferShards: cmd.transferShards, timestamp: cmd.timestamp, genesisHash: hash }, CHECKED))
  for (const a of cmd.allocations) out.emit(new AccountFunded({ address: a.address, amount: a.amount }, CHECKED))
  out.emit(new BlockExecuted({ height: GENESIS_HEIGHT, blockHash: hash, timestamp: cmd.timestamp, eventsRoot: eventsRoot(out.events) }, CHECKED))
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
  if (h.parentHash !== s.lastBlockHash) return rejectBlock("WrongParent", `parent ${h.parentHash}, expected ${s.lastBlockHash}`)
  if (h.timestamp < s.lastTimestamp) return rejectBlock("TimestampBeforeParent", `${h.timestamp} < ${s.lastTimestamp}`)
  if (h.eventsRoot !== s.lastEventsRoot) {
    return rejectBlock("WrongEventsRoot", `eventsRoot ${h.eventsRoot}, expected ${s.lastEventsRoot}`)
  }
  const header = verifyBlockHeader(block)
  if (Either.isLeft(header)) return Either.left(header.left)
  const body = verifyBlockBody(block)
  if (Either.isLeft(body)) return Either.left(body.left)
  for (const r of block.receipts) {
    if (r.destShard !== s.shard) return rejectBlock("ReceiptNotForThisShard", `receipt ${r.receiptId} is for shard ${r.destShard}`)
    if (!isTransferShard(r.sourceShard, chain.transferShards) || r.sourceShard === s.shard) {
      return rejectBlock("ReceiptFromUnknownShard", `receipt ${r.receiptId} from shard ${r.sourceShard}`)
    }
    if (r.receiptId !== receiptIdOf(r.txHash)) return rejectBlock("ReceiptIdMismatch", `receipt ${r.receiptId} of tx ${r.txHash}`)
  }
  return Either.right(chain)
}

const executeTransaction = (out: Emitter, chain: ChainContext, tx: Transaction): void => {
  const account = accountOf(out.state, tx.sender)
  const check = checkTransaction(chain, { nextNonce: account.nonce, spendable: account.balance }, tx)
  const { body } = tx
  if (Either.isLeft(check)) {
    out.emit(new TransactionRejected({ txHash: tx.hash, sender: tx.sender, nonce: body.nonce, ...check.left }, CHECKED))
    return
  }
  out.emit(new FeeCharged({ txHash: tx.hash, payer: tx.sender, fee: body.fee, nonce: body.nonce }, CHECKED))
  const { to, amount } = body.payload
  const destShard = shardOf(to, chain.transferShards)
  if (destShard === chain.shard) {
    out.emit(new Transferred({ txHash: tx.hash, from: tx.sender, to, amount }, CHECKED))
  } else {
    const receiptId = receiptIdOf(tx.hash)
    out.emit(new CrossShardSent({ receiptId, sourceShard: chain.shard, destShard, from: tx.sender, to, amount, txHash: tx.hash }, CHECKED))
  }
}

const decideBlock = (s: LedgerState, block: Block): Either.Either<ReadonlyArray<ShardEvent>, BlockRejected> => {
  const verified = verifyBlock(s, block)
  if (Either.isLeft(verified)) return Either.left(verified.left)
  const chain = verified.right
  const out = new Emitter(s)
  out.emit(new BlockApplied({ block }, CHECKED))
  for (const r of block.receipts) {
    // Already credited (an earlier block, or earlier in this one): a re-delivery, nothing to do.
    if (HashSet.has(out.state.receivedReceipts, r.receiptId)) continue
    out.emit(new CrossShardReceived({ ...r }, CHECKED))
  }
  for (const tx of block.transactions) executeTransaction(out, chain, tx)
  const h = block.header
  out.emit(new BlockExecuted({ height: h.height, blockHash: blockHash(h), timestamp: h.timestamp, eventsRoot: eventsRoot(out.events) }, CHECKED))
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

/**
 * A shard ledger's state and how each event changes it (`evolve`). Evolve
 * asserts the ledger's invariants on every event — balances never negative,
 * each nonce used once and in order, each receipt credited once, and
 * conservation: balances + burned + sentOut = funded + receivedIn — so a
 * corrupt stream stops a replay instead of yielding a wrong state.
 */
import { Data, HashMap, HashSet, Option } from "effect"
import type { ShardEvent } from "./events.js"
import { ZERO_HASH, type Hash32 } from "./hash.js"
import type { Address } from "./keys.js"
import { EMPTY_ROOT } from "./merkle.js"
import type { ShardId } from "./sharding.js"
import type { ChainContext } from "./txRules.js"
import { invariantsOf, type Assert } from "../assert.js"
import { consensusGenesisHash } from "./certification.js"

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
  /** The beacon's epoch in progress (epochs ended so far); 0 on transfer shards. */
  readonly epoch: number
  /** When the epoch in progress began: genesis time, then each `EpochEnded`'s endAt. */
  readonly epochStartAt: number
  /** A BFT chain's last certified consensus block (the consensus genesis' until block 1); null on a single-producer chain. */
  readonly lastCertifiedHash: Hash32 | null
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
  totals: { funded: 0n, balances: 0n, burned: 0n, sentOut: 0n, receivedIn: 0n },
  epoch: 0,
  epochStartAt: 0,
  lastCertifiedHash: null
})

export const accountOf = (state: LedgerState, address: Address): Account =>
  Option.getOrElse(HashMap.get(state.accounts, address), () => EMPTY_ACCOUNT)

export const balanceOf = (state: LedgerState, address: Address): bigint => accountOf(state, address).balance
export const nonceOf = (state: LedgerState, address: Address): bigint => accountOf(state, address).nonce

const assert: Assert = invariantsOf("ledger")

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
      return {
        ...s,
        chain: {
          chainId: e.chainId,
          shard: e.shard,
          transferShards: e.transferShards,
          governance: e.governance ?? null,
          epochBlocks: e.epochBlocks ?? null,
          validators: e.validators ?? null
        },
        epochStartAt: e.timestamp,
        lastCertifiedHash: e.validators === undefined ? null : consensusGenesisHash(e.shard)
      }
    case "AccountFunded":
      return withTotals(credit(s, e.address, e.amount), { funded: e.amount, balances: e.amount })
    case "BlockApplied":
      assert(e.block.header.height === s.height + 1, `block ${e.block.header.height} after ${s.height}`)
      return e.block.certificate === undefined ? s : { ...s, lastCertifiedHash: e.block.certificate.blockHash }
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
    case "EscrowDeposited": // the money moves in the Transferred/CrossShardSent beside it
    case "ModelRegistered":
    case "ModelPriceRequested":
    case "ModelDeprecationRequested":
    case "ShardSharesProposed":
    case "StakeBonded": // the money moves in the Transferred/CrossShardSent beside it
    case "UnbondRequested":
      return s
    case "EpochEnded": {
      const epochBlocks = s.chain?.epochBlocks ?? null
      assert(epochBlocks !== null, `epoch ended on shard ${s.shard}, which is not the beacon`)
      assert(e.height === s.height + 1 && e.height % epochBlocks === 0, `epoch ended at height ${e.height} after ${s.height}`)
      assert(e.epoch === s.epoch, `epoch ${e.epoch} ended, ${s.epoch} was in progress`)
      assert(e.startAt === s.epochStartAt && e.endAt >= e.startAt, `epoch ${e.epoch} from ${e.startAt} to ${e.endAt}`)
      return { ...s, epoch: s.epoch + 1, epochStartAt: e.endAt }
    }
    case "BlockExecuted":
      assert(s.chain !== null, "block executed before genesis")
      if (e.height === GENESIS_HEIGHT) assert(s.lastBlockHash === ZERO_HASH, "genesis sealed twice")
      else assert(e.height === s.height + 1, `block ${e.height} sealed after ${s.height}`)
      return {
        ...s,
        height: e.height,
        lastBlockHash: e.blockHash,
        lastEventsRoot: e.eventsRoot,
        lastTimestamp: e.timestamp
      }
  }
}


/**
 * One shard's pending transactions, as a persistent value. Invariant: each
 * sender's queue holds consecutive nonces starting at its account nonce, and
 * its total spend fits its balance (admission guarantees it on add;
 * `reconcile` restores it after a block).
 */
import { Data, HashMap, HashSet } from "effect"
import type { Hash32 } from "./hash.js"
import type { Address } from "./keys.js"
import { MAX_BLOCK_TRANSACTIONS } from "./block.js"
import { accountOf, type LedgerState } from "./ledger.js"
import type { Transaction } from "./transaction.js"

export const MEMPOOL_CAPACITY_DEFAULT = 10_000
/** A block's transactions stay well under a MiB of RLP. */
export const BATCH_BYTES_MAX_DEFAULT = 1 << 20

class SenderQueue extends Data.Class<{ readonly txs: ReadonlyArray<Transaction>; readonly spend: bigint }> {}

export interface Mempool {
  readonly capacity: number
  readonly senders: HashMap.HashMap<Address, SenderQueue>
  readonly hashes: HashSet.HashSet<Hash32>
  readonly count: number
  readonly bytes: number
}

export const emptyMempool = (capacity: number = MEMPOOL_CAPACITY_DEFAULT): Mempool => ({
  capacity,
  senders: HashMap.empty(),
  hashes: HashSet.empty(),
  count: 0,
  bytes: 0
})

/** What admission adds to the account: how many transactions are pending and what they spend. */
export interface Pending {
  readonly count: number
  readonly spend: bigint
}

export const pendingOf = (pool: Mempool, sender: Address): Pending => {
  const q = HashMap.get(pool.senders, sender)
  return q._tag === "Some" ? { count: q.value.txs.length, spend: q.value.spend } : { count: 0, spend: 0n }
}

export const hasTransaction = (pool: Mempool, hash: Hash32): boolean => HashSet.has(pool.hashes, hash)
export const isFull = (pool: Mempool): boolean => pool.count >= pool.capacity

/** Add an admitted transaction (the caller ran `admitTransaction` against this pool). */
export const addTransaction = (pool: Mempool, tx: Transaction): Mempool => {
  const q = HashMap.get(pool.senders, tx.sender)
  const txs = q._tag === "Some" ? q.value.txs : []
  const last = txs[txs.length - 1]
  if (last !== undefined && tx.body.nonce !== last.body.nonce + 1n) throw new Error("mempool: nonce not consecutive")
  if (hasTransaction(pool, tx.hash) || isFull(pool)) throw new Error("mempool: add without admission")
  const spend = (q._tag === "Some" ? q.value.spend : 0n) + tx.spend
  return {
    capacity: pool.capacity,
    senders: HashMap.set(pool.senders, tx.sender, new SenderQueue({ txs: [...txs, tx], spend })),
    hashes: HashSet.add(pool.hashes, tx.hash),
    count: pool.count + 1,
    bytes: pool.bytes + tx.size
  }
}

export interface BatchLimits {
  readonly countMax: number
  readonly bytesMax: number
}

export const BATCH_LIMITS_DEFAULT: BatchLimits = { countMax: MAX_BLOCK_TRANSACTIONS, bytesMax: BATCH_BYTES_MAX_DEFAULT }

/** Transactions for the next block: round-robin over senders, each sender's in nonce order. */
export const takeBatch = (pool: Mempool, limits: BatchLimits = BATCH_LIMITS_DEFAULT): ReadonlyArray<Transaction> => {
  const queues = Array.from(HashMap.values(pool.senders), (q) => ({ txs: q.txs, blocked: false }))
  const batch: Array<Transaction> = []
  let bytes = 0
  for (let round = 0; ; round++) {
    let took = false
    for (const q of queues) {
      const tx = q.txs[round]
      if (q.blocked || tx === undefined) continue
      if (batch.length >= limits.countMax) return batch
      // A sender whose next tx does not fit is done: its later nonces would leave a gap.
      if (bytes + tx.size > limits.bytesMax) {
        q.blocked = true
        continue
      }
      batch.push(tx)
      bytes += tx.size
      took = true
    }
    if (!took) return batch
  }
}

/**
 * After a block: drop transactions the block held (executed or rejected) and
 * any that the new state no longer admits, keeping each sender's longest
 * valid prefix (consecutive from the account nonce, total spend within the
 * balance).
 */
export const reconcile = (pool: Mempool, state: LedgerState, included: ReadonlyArray<Transaction>): Mempool => {
  const drop = HashSet.fromIterable(included.map((tx) => tx.hash))
  let next = emptyMempool(pool.capacity)
  for (const [sender, q] of pool.senders) {
    const account = accountOf(state, sender)
    let nonce = account.nonce
    let spend = 0n
    for (const tx of q.txs) {
      if (HashSet.has(drop, tx.hash) || tx.body.nonce < account.nonce) continue
      if (tx.body.nonce !== nonce || spend + tx.spend > account.balance) break
      next = addTransaction(next, tx)
      nonce += 1n
      spend += tx.spend
    }
  }
  return next
}

import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { admitTransaction } from "../../domain/chain/admission.js"
import {
  addTransaction,
  emptyMempool,
  hasTransaction,
  pendingOf,
  reconcile,
  takeBatch,
  type Mempool
} from "../../domain/chain/mempool.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import type { Transaction } from "../../domain/chain/transaction.js"
import { accountsOn, applyBlock, DEV_BALANCE, FEE, genesisState, nextBlock, transfer } from "./helpers.js"

const S1 = 1 as ShardId
const g = genesisState(S1)
const [alice, bob, carol] = accountsOn(S1)
const pay = (from: typeof alice, nonce: bigint, amount = 10n) => transfer(from!.key, { to: carol!.address, amount, nonce })
const fill = (txs: ReadonlyArray<Transaction>): Mempool => txs.reduce(addTransaction, emptyMempool())

describe("mempool", () => {
  const a = [0n, 1n, 2n].map((n) => pay(alice, n))
  const b = [0n, 1n].map((n) => pay(bob, n))
  const pool = fill([...a, ...b])

  it("tracks pending count, spend and bytes", () => {
    expect(pendingOf(pool, alice!.address)).toEqual({ count: 3, spend: 3n * (10n + FEE) })
    expect(pool.count).toBe(5)
    expect(pool.bytes).toBe([...a, ...b].reduce((n, tx) => n + tx.size, 0))
  })
  it("batches round-robin across senders, each sender in nonce order", () => {
    const batch = takeBatch(pool, { countMax: 10, bytesMax: 1 << 20 })
    expect(batch.length).toBe(5)
    for (const txs of [a, b]) {
      const positions = txs.map((tx) => batch.indexOf(tx))
      expect(positions).toEqual([...positions].sort((x, y) => x - y))
    }
    expect(new Set(batch.slice(0, 2).map((tx) => tx.sender)).size).toBe(2) // first round: one of each
  })
  it("respects the count and byte limits without leaving nonce gaps", () => {
    expect(takeBatch(pool, { countMax: 3, bytesMax: 1 << 20 }).length).toBe(3)
    const size = a[0]!.size
    const batch = takeBatch(pool, { countMax: 10, bytesMax: 2 * size + 1 })
    expect(batch.length).toBe(2)
    expect(batch.every((tx) => tx.body.nonce === 0n)).toBe(true)
  })
  it("refuses a non-consecutive add (admission is skipped: a bug)", () => {
    expect(() => addTransaction(pool, pay(alice, 5n))).toThrow()
  })
  it("after a block: drops what it included, keeps the rest, and admission sees the new nonces", () => {
    const included = takeBatch(pool, { countMax: 2, bytesMax: 1 << 20 })
    const { state } = applyBlock(g.state, nextBlock(g.state, included))
    const next = reconcile(pool, state, included)
    expect(next.count).toBe(3)
    expect(included.some((tx) => hasTransaction(next, tx.hash))).toBe(false)
    const again = admitTransaction(state, next, pay(alice, 0n, 99n), true)
    expect(Either.isLeft(again) && again.left.reason).toBe("NonceReused")
  })
  it("after a block: drops a sender's queue that no longer fits the balance", () => {
    const big = transfer(alice!.key, { to: bob!.address, amount: DEV_BALANCE - FEE, nonce: 0n })
    const mine = fill([pay(alice, 0n), pay(alice, 1n)])
    // Another proposer's block spent alice's nonce 0 on `big`: her queue is stale.
    const { state } = applyBlock(g.state, nextBlock(g.state, [big]))
    expect(reconcile(mine, state, [big]).count).toBe(0)
  })
})

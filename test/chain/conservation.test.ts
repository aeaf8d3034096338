/**
 * Conservation across shards: any sequence of valid and invalid transactions,
 * valid and corrupted blocks, and cross-shard receipts relayed late, twice
 * or not at all keeps
 *
 *   Σ balances + Σ burned + in-flight receipts = genesis supply
 *
 * and every account's nonces go 0, 1, 2, … Replaying each shard's events
 * rebuilds its state. Escrow deposits and worker stakes cross to the AI
 * shard (its system accounts hold them, its ledger's books match them). A
 * final phase relays everything and checks nothing stays in flight.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, HashSet } from "effect"
import fc from "fast-check"
import { fold } from "../../domain/Decider.js"
import { buildBlock } from "../../domain/chain/block.js"
import type { ShardEvent } from "../../domain/chain/events.js"
import { genesisSupply } from "../../domain/chain/genesis.js"
import { ZERO_HASH } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devProposerKey, type Address } from "../../domain/chain/keys.js"
import { ApplyBlock, makeLedger, nonceOf, type LedgerState } from "../../domain/chain/ledger.js"
import type { CrossShardReceipt } from "../../domain/chain/receipt.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { signTransaction, TransactionBody, type Transaction } from "../../domain/chain/transaction.js"
import { aiShardOf } from "../../domain/chain/sharding.js"
import { keccakHex, type Hash32 } from "../../domain/chain/hash.js"
import { utf8 } from "../../domain/chain/hex.js"
import { balanceOf } from "../../domain/chain/ledger.js"
import { SYSTEM_ESCROW, SYSTEM_STAKE_POOL } from "../../domain/economics/accounts.js"
import type { EconomyState } from "../../domain/economics/state.js"
import {
  applyBlock, CHAIN_ID, config, dev, DEV_BALANCE, genesisState, homeOf, nextBlock, SHARDS, snapshot, sumBalances, transfer
} from "./helpers.js"

const RECEIPTS_PER_BLOCK_MAX = 12
const AI = aiShardOf(config.transferShards)
/** The shards that hold money: the transfer shards and the AI shard (its system accounts). */
const LEDGER_SHARDS: ReadonlyArray<ShardId> = [...SHARDS, AI]
const MODEL = keccakHex(utf8("a model")) as Hash32
const BLOCK_TXS_MAX = 8

const txStep = fc.record({
  _tag: fc.constant("tx" as const),
  sender: fc.nat({ max: dev.length - 1 }),
  recipient: fc.oneof(
    { weight: 4, arbitrary: fc.nat({ max: dev.length - 1 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 20, maxLength: 20 }) }
  ),
  amount: fc.oneof(
    { weight: 4, arbitrary: fc.bigInt({ min: 1n, max: 5_000n }) },
    { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: 2n * DEV_BALANCE }) }
  ),
  fee: fc.bigInt({ min: 0n, max: 20n }),
  nonceShift: fc.constantFrom(0n, 0n, 0n, 0n, -1n, 1n),
  wrongChain: fc.nat({ max: 19 }).map((n) => n === 0),
  misroute: fc.nat({ max: 19 }).map((n) => n === 0),
  // Money for the AI shard: an escrow deposit or a worker stake is a purpose receipt to its system accounts.
  kind: fc.constantFrom("transfer", "transfer", "transfer", "escrow.deposit", "worker.stake")
})

const step = fc.oneof(
  { weight: 3, arbitrary: txStep },
  {
    weight: 2,
    arbitrary: fc.record({
      _tag: fc.constant("block" as const),
      shard: fc.constantFrom(...LEDGER_SHARDS),
      deliver: fc.nat(),
      duplicate: fc.boolean(),
      corrupt: fc.nat({ max: 9 }).map((n) => n === 0)
    })
  }
)
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never

interface Shard {
  state: LedgerState
  readonly events: Array<ShardEvent>
  pending: Array<Transaction>
}

const supply = genesisSupply(config)

/** What the AI ledger's economy holds in the stake pool: bonded plus unbonding. */
const bondedTotal = (e: EconomyState): bigint => {
  let sum = 0n
  for (const [, stake] of e.stakes) sum += stake.bonded
  for (const u of e.unbonding) sum += u.amount
  return sum
}

const check = (shards: Map<ShardId, Shard>) => {
  const sent = new Map<string, CrossShardReceipt>()
  let balances = 0n
  let burned = 0n
  for (const s of shards.values()) {
    expect(sumBalances(s.state)).toBe(s.state.totals.balances)
    balances += s.state.totals.balances
    burned += s.state.totals.burned
    for (const e of s.events) if (e._tag === "CrossShardSent") sent.set(e.receiptId, e.receipt)
  }
  let inFlight = 0n
  for (const r of sent.values()) {
    if (!HashSet.has(shards.get(r.destShard)!.state.receivedReceipts, r.receiptId)) inFlight += r.amount
  }
  expect(balances + burned + inFlight).toBe(supply)
  return { sent: [...sent.values()], inFlight }
}

const runSteps = (steps: ReadonlyArray<Step>) => {
  const shards = new Map<ShardId, Shard>(LEDGER_SHARDS.map((id) => {
    const g = genesisState(id)
    return [id, { state: g.state, events: [...g.events], pending: [] }]
  }))
  const shard = (id: ShardId) => shards.get(id)!
  for (const st of steps) {
    if (st._tag === "tx") {
      const sender = dev[st.sender]!
      const home = shard(homeOf(sender.address))
      const queued = BigInt(home.pending.filter((t) => t.sender === sender.address).length)
      const nonce = nonceOf(home.state, sender.address) + queued + st.nonceShift
      if (nonce < 0n) continue
      const to = typeof st.recipient === "number" ? dev[st.recipient]!.address : (bytesToHex(st.recipient) as Address)
      const chainId = st.wrongChain ? CHAIN_ID + 1n : CHAIN_ID
      const tx =
        st.kind === "transfer"
          ? transfer(sender.key, { to, amount: st.amount, nonce, fee: st.fee, chainId })
          : signTransaction(
              new TransactionBody({
                chainId,
                nonce,
                fee: st.fee,
                payload: st.kind === "escrow.deposit" ? { kind: "escrow.deposit", model: MODEL, amount: st.amount } : { kind: "worker.stake", worker: to, amount: st.amount }
              }),
              sender.key
            )
      const target = st.misroute ? SHARDS.find((s) => s !== homeOf(sender.address))! : homeOf(sender.address)
      shard(target).pending.push(tx)
    } else {
      const s = shard(st.shard)
      const outbox = check(shards).sent.filter((r) => r.destShard === st.shard)
      const receipts = outbox.filter((_, j) => ((st.deliver >>> (j % 31)) & 1) === 1).slice(0, RECEIPTS_PER_BLOCK_MAX)
      const relayed = st.duplicate ? [...receipts, ...receipts.slice(0, 2)] : receipts
      const txs = s.pending.slice(0, BLOCK_TXS_MAX)
      if (st.corrupt) {
        const bad = buildBlock({
          chainId: CHAIN_ID, shard: st.shard, height: s.state.height + 1, parentHash: ZERO_HASH,
          eventsRoot: s.state.lastEventsRoot, timestamp: s.state.lastTimestamp, transactions: txs, receipts: relayed,
          proposerKey: devProposerKey(st.shard)
        })
        const r = makeLedger(st.shard).decide(s.state, new ApplyBlock({ block: bad }))
        expect(Either.isLeft(r) && r.left.reason).toBe("WrongParent")
        continue
      }
      const r = applyBlock(s.state, nextBlock(s.state, txs, relayed))
      s.state = r.state
      s.events.push(...r.events)
      s.pending = s.pending.slice(txs.length)
    }
    check(shards)
  }
  return shards
}

/** A transfer, its block, then the same nonce again and its block: NonceReused for sure. */
const reusedNonce: ReadonlyArray<Step> = (() => {
  const home = homeOf(dev[0]!.address)
  const tx = (nonceShift: bigint): Step => ({
    _tag: "tx", sender: 0, recipient: 1, amount: 5n, fee: 1n, nonceShift, wrongChain: false, misroute: false, kind: "transfer"
  })
  const block: Step = { _tag: "block", shard: home, deliver: 0, duplicate: false, corrupt: false }
  return [tx(0n), block, tx(-1n), block]
})()

/** What the runs exercised: every event kind and rejection reason must show up. */
const seenKinds = new Set<string>()
const record = (events: ReadonlyArray<ShardEvent>) => {
  for (const e of events) seenKinds.add(e._tag === "TransactionRejected" ? `Rejected:${e.reason}` : e._tag)
}

describe("ledger conservation across shards", () => {
  it("holds for any mix of transactions, blocks and relayed receipts; replay rebuilds each shard", () => {
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
      const shards = runSteps(steps)
      for (const [id, s] of shards) {
        record(s.events)
        // Nonces: each payer's FeeCharged nonces are exactly 0, 1, 2, …
        const seen = new Map<string, bigint>()
        for (const e of s.events) {
          if (e._tag !== "FeeCharged") continue
          expect(e.nonce).toBe(seen.get(e.payer) ?? 0n)
          seen.set(e.payer, e.nonce + 1n)
        }
        const ledger = makeLedger(id)
        expect(snapshot(fold(ledger.evolve, ledger.initialState, s.events))).toEqual(snapshot(s.state))
      }
      // Liveness: relay every receipt; nothing stays in flight.
      const { sent } = check(shards)
      for (const id of LEDGER_SHARDS) {
        const s = shards.get(id)!
        const r = applyBlock(s.state, nextBlock(s.state, [], sent.filter((x) => x.destShard === id)))
        s.state = r.state
        s.events.push(...r.events)
      }
      expect(check(shards).inFlight).toBe(0n)
      // The AI ledger's books: every escrow and bond receipt credited to its sub-ledger, unit for unit.
      const ai = shards.get(AI)!.state
      let escrowed = 0n
      for (const [, amount] of ai.ai!.escrow) escrowed += amount
      expect(escrowed).toBe(balanceOf(ai, SYSTEM_ESCROW))
      expect(bondedTotal(ai.ai!.economy)).toBe(balanceOf(ai, SYSTEM_STAKE_POOL))
    }), { seed: 20240601, numRuns: 60, examples: [[reusedNonce]] })
    expect([...seenKinds].sort()).toEqual([
      "AccountFunded", "AiStakeBonded", "BlockApplied", "BlockExecuted", "CrossShardReceived", "CrossShardSent", "EscrowCredited",
      "EscrowDeposited", "FeeCharged", "GenesisApplied",
      "Rejected:InsufficientBalance", "Rejected:NonceGap", "Rejected:NonceReused", "Rejected:WrongChain", "Rejected:WrongShard",
      "Transferred"
    ])
  })
})

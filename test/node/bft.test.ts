/**
 * BFT validators in one process (real BLS, SQLite stores, the in-memory
 * network): transfers commit through chained HotStuff, every node executes
 * the same blocks into byte-identical shard streams, a crashed validator
 * restarts without voting twice in a view, and bad frames are dropped and
 * counted.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { devAccounts } from "../../domain/chain/genesis.js"
import { shardOf } from "../../domain/chain/sharding.js"
import { signTransaction, TransactionBody } from "../../domain/chain/transaction.js"
import type { PrivateKey, Address } from "../../domain/chain/keys.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { BFT_CHAIN_ID, makeHarness } from "./bftHarness.js"
import type { Harness, RunningValidator } from "./bftHarness.js"

const transferTx = (key: PrivateKey, to: Address, amount: bigint, nonce: bigint) =>
  signTransaction(new TransactionBody({ chainId: BFT_CHAIN_ID, nonce, fee: 10n, payload: { kind: "transfer", to, amount } }), key)

/** The shard streams of every running validator agree on their common prefix (and that prefix is not empty). */
const expectSameStreams = (h: Harness, shards: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    for (const shard of shards) {
      const all = yield* Effect.forEach([...h.running.values()], (v) => h.hashes(v, `shard-${shard}`))
      const common = Math.min(...all.map((a) => a.length))
      expect(common).toBeGreaterThan(1)
      for (const hashes of all) expect(hashes.slice(0, common)).toEqual(all[0]!.slice(0, common))
    }
  })

/** No view holds two votes (or a vote and a timeout) in a validator's consensus stream. */
const expectOneVotePerView = (h: Harness, v: RunningValidator, shard: number) =>
  Effect.gen(function* () {
    const records = yield* h.consensusRecords(v, shard)
    const voted = records.filter((r) => r.type === "Voted").map((r) => r.data.view!)
    expect(new Set(voted).size).toBe(voted.length)
    return voted.length
  })

describe("BFT validators in one process", () => {
  it.live(
    "4 validators commit same- and cross-shard transfers; every node's shard streams are identical",
    () =>
      Effect.gen(function* () {
        const h = makeHarness({ validators: 4, encode: true })
        const [v0, , v2] = yield* h.startAll
        const accounts = devAccounts(h.genesis)
        const home = (a: Address) => shardOf(a, h.genesis.transferShards)
        const alice = accounts[0]!
        const sameShard = accounts.find((a) => a.index !== 0 && home(a.address) === home(alice.address))!
        const otherShard = accounts.find((a) => home(a.address) !== home(alice.address))!
        const started = Date.now()
        const t1 = transferTx(alice.key, sameShard.address, 1_000n, 0n)
        const t2 = transferTx(alice.key, otherShard.address, 2_000n, 1n)
        // Submitted to different validators: gossip brings them to every leader.
        const r1 = yield* v0!.node.submit(bytesToHex(t1.encoded), false)
        while ((yield* v2!.node.account(alice.address)).pendingNonce !== 1n) yield* Effect.sleep("10 millis")
        const r2 = yield* v2!.node.submit(bytesToHex(t2.encoded), true)
        expect(r1.status).toBe("pending")
        expect(r2.status).not.toBe("pending") // in a block: debited here, its receipt in flight
        // The cross-shard credit lands on the other shard on every node.
        for (;;) {
          const balances = yield* Effect.forEach([...h.running.values()], (v) => v.node.account(otherShard.address))
          if (balances.every((b) => b.balance === h.genesis.devBalance + 2_000n)) break
          yield* Effect.sleep("100 millis")
        }
        const latency = Date.now() - started
        for (const v of h.running.values()) {
          const a = yield* v.node.account(alice.address)
          expect(a.nonce).toBe(2n)
          expect(a.balance).toBe(h.genesis.devBalance - 3_000n - 20n)
          expect((yield* v.node.account(sameShard.address)).balance).toBe(h.genesis.devBalance + 1_000n)
        }
        yield* h.awaitHeight(0, 2)
        yield* expectSameStreams(h, [0, 1, 2])
        for (const v of h.running.values()) for (const shard of [0, 1, 2]) yield* expectOneVotePerView(h, v, shard)
        const blocks = yield* v0!.node.block(home(alice.address), 1)
        expect(blocks.height).toBe(1)
        yield* Effect.logInfo(`two transfers committed on 4 validators in ${latency} ms`)
        yield* h.stopAll
      }),
    60_000
  )

  it.live(
    "a validator stopped and restarted catches up, never votes twice in a view, and the chain does not fork",
    () =>
      Effect.gen(function* () {
        const h = makeHarness({ validators: 4 })
        yield* h.startAll
        yield* h.awaitHeight(1, 2)
        yield* h.stop(3)
        yield* Effect.sleep("3 seconds") // views go on (timeouts, QCs) without it
        const v3 = yield* h.start(3)
        const before = yield* h.heights(1)
        yield* h.awaitHeight(1, Math.max(...before) + 2)
        yield* expectSameStreams(h, [0, 1, 2])
        for (const shard of [0, 1, 2]) expect(yield* expectOneVotePerView(h, v3, shard)).toBeGreaterThan(0)
        yield* h.stopAll
      }),
    60_000
  )
})

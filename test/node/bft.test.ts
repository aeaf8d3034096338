/**
 * BFT validators in one process (real BLS, SQLite stores, the in-memory
 * network): transfers commit through chained HotStuff, every node executes
 * the same blocks into byte-identical shard streams, a crashed validator
 * restarts without voting twice in a view, and bad frames are dropped and
 * counted.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { devAccounts } from "../../domain/chain/genesis.js"
import { shardOf } from "../../domain/chain/sharding.js"
import { signTransaction, TransactionBody } from "../../domain/chain/transaction.js"
import type { PrivateKey, Address } from "../../domain/chain/keys.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { Transaction } from "../../domain/chain/transaction.js"
import { Queue } from "effect"
import { makeBlock } from "../../domain/consensus/digests.js"
import { genesisBlock } from "../../domain/consensus/state.js"
import { consensusCommitteeOf, genesisCommittee } from "../../domain/chain/committees.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { encodeWire } from "../../infra/network/wire.js"
import type { WireMessage } from "../../infra/network/wire.js"
import { Either } from "effect"
import type { Block } from "../../domain/chain/block.js"
import { ApplyBlock, makeLedger } from "../../domain/chain/ledger.js"
import { certifiedBlock } from "../chain/certify.js"
import { BFT_CHAIN_ID, makeHarness, stopHarnesses } from "./bftHarness.js"
import type { Harness, RunningValidator } from "./bftHarness.js"
import { eventually } from "../support/waitFor.js"

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


afterAll(stopHarnesses)

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
        yield* eventually(
          "validator 2 sees alice's first transfer pending",
          Effect.map(v2!.node.account(alice.address), (a) => (a.pendingNonce === 1n ? true : undefined)),
          30_000
        )
        const r2 = yield* v2!.node.submit(bytesToHex(t2.encoded), true)
        expect(r1.status).toBe("pending")
        expect(r2.status).toBe("included") // debited here, its receipt in flight
        // The cross-shard credit lands on the other shard on every node.
        yield* eventually(
          "the cross-shard credit on every node",
          Effect.map(
            Effect.forEach([...h.running.values()], (v) => v.node.account(otherShard.address)),
            (balances) => (balances.every((b) => b.balance === h.genesis.devBalance + 2_000n) ? true : undefined)
          ),
          40_000
        )
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
        const h = makeHarness({ validators: 4, transferShards: 1 })
        yield* h.startAll
        yield* h.awaitHeight(1, 2)
        yield* h.stop(3)
        yield* Effect.sleep("3 seconds") // views go on (timeouts, QCs) without it
        const v3 = yield* h.start(3)
        const before = yield* h.heights(1)
        yield* h.awaitHeight(1, Math.max(...before) + 2)
        yield* expectSameStreams(h, [0, 1])
        for (const shard of [0, 1]) expect(yield* expectOneVotePerView(h, v3, shard)).toBeGreaterThan(0)
        yield* h.stopAll
      }),
    90_000
  )

  it.live(
    "4 validators: one stopped, the chain goes on; two stopped, it halts safely; both back, it resumes with no fork",
    () =>
      Effect.gen(function* () {
        // The 2-chain commit rule: with round-robin leaders and one seat of four down, two live leaders in a row commit.
        const h = makeHarness({ validators: 4, transferShards: 1, beaconIntervalMs: 3_000, idleIntervalMs: 600, baseTimeoutMs: 1_000 })
        yield* h.startAll
        yield* h.awaitHeight(1, 1)
        yield* h.stop(3)
        const oneDown = Math.max(...(yield* h.heights(1)))
        const downAt = Date.now()
        yield* h.awaitHeight(1, oneDown + 4, 30_000)
        const rate = (Math.max(...(yield* h.heights(1))) - oneDown) / ((Date.now() - downAt) / 1000)
        yield* Effect.logInfo(`4 validators, one down: ${rate.toFixed(2)} commits/s on the beacon shard`)
        yield* h.stop(2)
        yield* Effect.sleep("2 seconds") // blocks certified before the second stop may still commit
        const halted = yield* h.heights(1)
        yield* Effect.sleep("5 seconds")
        expect(yield* h.heights(1)).toEqual(halted) // no quorum: no commits
        yield* h.start(2)
        yield* h.start(3)
        yield* h.awaitHeight(1, Math.max(...halted) + 2, 30_000)
        yield* expectSameStreams(h, [0, 1])
        for (const v of h.running.values()) for (const shard of [0, 1]) yield* expectOneVotePerView(h, v, shard)
        yield* h.stopAll
      }),
    90_000
  )

  it.live(
    "every validator stopped at once and restarted: the chain resumes from the blocks they persisted, with no fork",
    () =>
      Effect.gen(function* () {
        // Until blocks were kept with votes, the block every lock pointed at lived only in memory: after a
        // full restart nobody could extend it, and the chain stalled for good.
        // Transactions in flight when they stop: a block voted for but not committed holds them, and after
        // the restart no memory does (their bytes are kept with the votes).
        const h = makeHarness({ validators: 4, transferShards: 1, beaconIntervalMs: 1_000 })
        const [v0] = yield* h.startAll
        yield* h.awaitHeight(0, 3)
        const accounts = devAccounts(h.genesis)
        for (const [k, a] of accounts.slice(0, 6).entries()) {
          const tx = transferTx(a.key, accounts[(k + 1) % 6]!.address, 1_000n + BigInt(k), 0n)
          yield* v0!.node.submit(bytesToHex(tx.encoded), false)
        }
        yield* Effect.sleep("300 millis")
        for (const i of [0, 1, 2, 3]) yield* h.stop(i)
        for (const i of [0, 1, 2, 3]) yield* h.start(i)
        const before = yield* h.heights(0)
        yield* h.awaitHeight(0, Math.max(...before) + 3, 30_000)
        yield* h.awaitHeight(1, Math.max(...(yield* h.heights(1))) + 2, 30_000)
        yield* expectSameStreams(h, [0, 1])
        // Every node agrees on every account (whatever of the burst committed).
        for (const a of accounts.slice(0, 6)) {
          const views = yield* Effect.forEach([...h.running.values()], (v) => v.node.account(a.address))
          expect(new Set(views.map((x) => `${x.balance}/${x.nonce}`)).size).toBe(1)
        }
        for (const v of h.running.values()) yield* expectOneVotePerView(h, v, 0)
        yield* h.stopAll
      }),
    60_000
  )

  it.live(
    "bad frames are dropped and counted: malformed, unknown sender, spoofed voter, bad QC, a badly signed transaction, a handover nobody elected",
    () =>
      Effect.gen(function* () {
        // The test plays seat 1 (the leader of view 1) itself.
        const h = makeHarness({ validators: 4, absent: [1], encode: true })
        yield* h.startAll
        const fake = yield* h.hub.join(1)
        const shard = 1 as ShardId
        const alice = devAccounts(h.genesis)[0]!
        const good = transferTx(alice.key, alice.address, 1n, 0n)
        const signature = Uint8Array.from(good.signature)
        signature[5]! ^= 1
        const forged = Transaction.make(good.body, good.publicKey, signature)
        // Seat 1 answers transaction fetches with the forged one.
        yield* Effect.forkScoped(
          Queue.take(fake.inbound).pipe(
            Effect.flatMap(({ from, message }) =>
              message._tag === "TxRequest"
                ? fake.send(from, { _tag: "TxResponse", shard: message.shard, requestId: message.requestId, raw: [forged.encoded] })
                : Effect.void
            ),
            Effect.forever
          )
        )
        const committee = consensusCommitteeOf(genesisCommittee(h.genesis.validators!, shard))
        const genesis = genesisBlock(committee)
        const block = (view: number, justify: typeof genesis.justify, payload: ReadonlyArray<string>) =>
          makeBlock({ shard, epoch: 0, view, height: 1, parentHash: justify.blockHash, justify, proposer: 1, payload })
        const genesisQc = { view: 0, blockHash: genesis.hash, signers: new Uint8Array(1), signature: new Uint8Array() }
        const frame = (message: WireMessage) => encodeWire(message)
        const toAll = (from: number, json: string) => Effect.forEach([0, 2, 3], (to) => h.hub.inject(from, to, json), { discard: true })

        yield* toAll(1, "{not json")
        yield* toAll(1, JSON.stringify({ _tag: "Consensus", shard: 1, epoch: 0, message: { _tag: "Vote", view: "x" } }))
        const vote = { _tag: "Vote" as const, view: 1, blockHash: genesis.hash as Hash32, voter: 2, signature: new Uint8Array(96) }
        yield* toAll(9, frame({ _tag: "Consensus", shard, epoch: 0, message: vote }))
        yield* toAll(1, frame({ _tag: "Consensus", shard, epoch: 0, message: vote }))
        const badQc = { view: 4, blockHash: genesis.hash as Hash32, signers: Uint8Array.of(0b1101), signature: new Uint8Array(96).fill(7) }
        yield* toAll(1, frame({ _tag: "Consensus", shard, epoch: 0, message: { _tag: "Proposal", block: block(5, badQc, [`t:${Date.now()}`]), tc: undefined } }))
        const withForged = block(1, genesisQc, [`t:${Date.now()}`, forged.hash])
        yield* toAll(1, frame({ _tag: "Consensus", shard, epoch: 0, message: { _tag: "Proposal", block: withForged, tc: undefined } }))

        // Handovers to a committee nobody elected: to a far epoch (dropped at once), and to the next one,
        // which the beacon has not elected (held for the beacon to catch up, then dropped).
        const digest = `0x${"ab".repeat(32)}`
        for (const epoch of [7, 1]) {
          const handover = block(1, genesisQc, [`t:${Date.now()}`, `c:${epoch}:${digest}`])
          yield* toAll(1, frame({ _tag: "Consensus", shard, epoch: 0, message: { _tag: "Proposal", block: handover, tc: undefined } }))
        }

        const expected = { UnknownSender: 1, SpoofedSender: 1, BadCertificate: 1, BadTransaction: 1, BadHandover: 2 }
        yield* eventually(
          `every node dropped ${JSON.stringify(expected)}`,
          Effect.map(
            Effect.forEach([...h.running.values()], (v) => v.seats.get(shard)!.stats),
            (stats) => (stats.every((s) => Object.entries(expected).every(([k, n]) => s.dropped[k as keyof typeof expected] >= n)) ? true : undefined)
          ),
          30_000
        )
        expect(h.hub.malformed()).toBe(6)
        // Nobody voted for the proposal with the forged transaction, nor for the handovers.
        for (const v of h.running.values()) {
          const records = yield* h.consensusRecords(v, shard)
          expect(records.filter((r) => r.type === "Voted" && r.data.view === 1)).toEqual([])
        }
        yield* h.stopAll
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "a forged catch-up answer from one peer is refused (BadCommitProof), nothing of it applied; answers from a peer not asked or with another id are dropped; the chain goes on and a restart works",
    () =>
      Effect.gen(function* () {
        // The test plays seat 1: it makes node 0 believe it fell an epoch behind (a frame of epoch 1), then answers
        // its catch-up request with a block certified by 3 of 4 (certified, never committed) and, as the proof of
        // its commit, a child only seat 1 signed.
        const h = makeHarness({ validators: 4, absent: [1], encode: true, transferShards: 1 })
        yield* h.startAll
        const fake = yield* h.hub.join(1)
        const shard = 1 as ShardId
        const seat0 = h.running.get(0)!.seats.get(shard)!
        yield* h.awaitHeight(shard, 2)
        const ledger = makeLedger(shard)
        const forged: Array<Block> = []
        let forgedRequestId: number | undefined
        yield* Effect.forkScoped(
          Queue.take(fake.inbound).pipe(
            Effect.flatMap(({ from, message }) =>
              Effect.gen(function* () {
                if (message._tag !== "LedgerBlocksRequest" || from !== 0) return
                const state = yield* seat0.ledger
                if (message.fromHeight !== state.height + 1) return
                const block = certifiedBlock(state, [], { signers: [0, 1, 2], proposer: 1 })
                const after = Either.getOrThrow(ledger.decide(state, new ApplyBlock({ block }))).reduce(ledger.evolve, state)
                const child = certifiedBlock(after, [], { signers: [1], proposer: 1 })
                forged.push(block)
                forgedRequestId = message.requestId
                yield* fake.send(0, { _tag: "LedgerBlocksResponse", shard, requestId: message.requestId, blocks: [block], proof: [child.certificate!] })
              })
            ),
            Effect.forever
          )
        )
        const committee = consensusCommitteeOf(genesisCommittee(h.genesis.validators!, shard))
        const vote = { _tag: "Vote" as const, view: 1, blockHash: genesisBlock(committee).hash as Hash32, voter: 1, signature: new Uint8Array(96) }
        yield* fake.send(0, { _tag: "Consensus", shard, epoch: 1, message: vote })

        for (let deadline = Date.now() + 30_000; ; ) {
          const s = yield* seat0.stats
          if (s.catchUpRefused.BadCommitProof >= 1 && forgedRequestId !== undefined) break
          if (Date.now() > deadline) return yield* Effect.dieMessage(`node 0 never refused the forged answer: ${JSON.stringify(s)}`)
          yield* Effect.sleep("50 millis")
        }
        const stats0 = yield* seat0.stats
        expect(stats0.dropped.UnprovenCatchUp).toBe(stats0.catchUpRefused.BadCommitProof + stats0.catchUpRefused.NoCommitProof + stats0.catchUpRefused.Unlinked + stats0.catchUpRefused.WrongHeight)
        expect(stats0.catchUpRefused.NoCommitProof + stats0.catchUpRefused.Unlinked + stats0.catchUpRefused.WrongHeight).toBe(0)

        // The id of node 0's request to seat 1, answered as from seat 3 (not asked with it); an id nobody sent, from seat 1.
        const answer = (requestId: number) => encodeWire({ _tag: "LedgerBlocksResponse", shard, requestId, blocks: [], proof: [] })
        yield* h.hub.inject(3, 0, answer(forgedRequestId!))
        yield* h.hub.inject(1, 0, answer(forgedRequestId! + 1))
        yield* h.hub.inject(1, 0, encodeWire({ _tag: "TxResponse", shard, requestId: 12345, raw: [] }))
        for (let deadline = Date.now() + 10_000; (yield* seat0.stats).dropped.UnsolicitedAnswer < 3; ) {
          if (Date.now() > deadline) return yield* Effect.dieMessage(`unsolicited answers not dropped: ${JSON.stringify((yield* seat0.stats).dropped)}`)
          yield* Effect.sleep("50 millis")
        }

        // The chain goes on, node 0 with it, and none of the forged blocks is in any ledger.
        const before = Math.max(...(yield* h.heights(shard)))
        yield* h.awaitHeight(shard, before + 2, 30_000)
        const forgedHashes = new Set(forged.map((b) => b.certificate!.blockHash)) // in every BlockApplied event of a ledger that applied it
        expect(forgedHashes.size).toBeGreaterThan(0)
        const applied = (v: RunningValidator) =>
          Effect.map(v.store.readStream(`shard-${shard}`).pipe(Effect.orDie), (events) => JSON.stringify(events.map((e) => e.data)))
        for (const v of h.running.values()) {
          const log = yield* applied(v)
          for (const hash of forgedHashes) expect(log.includes(hash)).toBe(false)
        }
        // A restart of node 0 works: it resumes and commits with the others.
        yield* h.stop(0)
        yield* h.start(0)
        const after = Math.max(...(yield* h.heights(shard)))
        yield* h.awaitHeight(shard, after + 2, 30_000)
        yield* expectSameStreams(h, [shard])
        yield* h.stopAll
      }).pipe(Effect.scoped),
    90_000
  )
})

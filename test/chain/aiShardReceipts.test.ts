/**
 * Receipts with an index and a purpose (issue 12): their ids and leaves (a
 * receipt without them hashes exactly as before), the amount rule, which
 * shard takes which, and the beacon's epoch receipt: sent at every epoch end,
 * credited by the AI shard exactly once however often it is relayed.
 */
import { describe, expect, it } from "vitest"
import { Either, HashSet, Schema } from "effect"
import { CrossShardSent, type ShardEvent } from "../../domain/chain/events.js"
import { GenesisConfig, genesisCommand } from "../../domain/chain/genesis.js"
import { hashBytes, keccak256, keccakHex, type Hash32 } from "../../domain/chain/hash.js"
import { addressBytes, type Address } from "../../domain/chain/keys.js"
import { ApplyBlock, makeLedger, type LedgerState } from "../../domain/chain/ledger.js"
import { CrossShardReceipt, receiptIdOf, receiptLeaf } from "../../domain/chain/receipt.js"
import { encodeRlp } from "../../domain/chain/rlp.js"
import { aiShardOf, type ShardId } from "../../domain/chain/sharding.js"
import { BEACON_SYSTEM_ADDRESS, epochEndCause } from "../../domain/chain/epochReceipt.js"
import { EconomicsConfig } from "../../domain/economics/config.js"
import { SYSTEM_ESCROW, SYSTEM_FOUNDATION, SYSTEM_RESERVE, SYSTEM_STAKE_POOL } from "../../domain/economics/accounts.js"
import { accountsOn, applyBlock, config, nextBlock, run } from "./helpers.js"

const AI = aiShardOf(config.transferShards)
const BEACON = 0 as ShardId
const EPOCH_BLOCKS = 3
const beaconConfig = new GenesisConfig({ ...config, economics: new EconomicsConfig({ ...config.economics, epochBlocks: EPOCH_BLOCKS }) })
const TX = keccakHex(new TextEncoder().encode("some transaction")) as Hash32
const A = accountsOn(1 as ShardId)[0]!.address
const B = accountsOn(2 as ShardId)[0]!.address

const genesisOf = (shard: ShardId): LedgerState => run(makeLedger(shard), makeLedger(shard).initialState, genesisCommand(beaconConfig, shard)).state

const plain = (patch: Partial<CrossShardReceipt> = {}) =>
  new CrossShardReceipt({ receiptId: receiptIdOf(TX), sourceShard: 1 as ShardId, destShard: 2 as ShardId, from: A, to: B, amount: 5n, txHash: TX, ...patch })
/** A developer's escrow deposit as the transfer shard sends it: to the AI shard's escrow account. */
const escrow = (patch: Partial<CrossShardReceipt> = {}) =>
  plain({ destShard: AI, to: SYSTEM_ESCROW, purpose: { kind: "escrow", model: TX }, ...patch })
/** An owner's worker stake as the transfer shard sends it: to the AI shard's stake pool. */
const bond = (patch: Partial<CrossShardReceipt> = {}) =>
  plain({ destShard: AI, to: SYSTEM_STAKE_POOL, purpose: { kind: "bond", worker: B as Address }, ...patch })

describe("receipt ids and leaves", () => {
  it("index 0 (or none) is keccak256(txHash) as always; index i > 0 is keccak256(txHash ‖ uint32be(i))", () => {
    expect(receiptIdOf(TX)).toBe(keccakHex(hashBytes(TX)))
    expect(receiptIdOf(TX, 0)).toBe(receiptIdOf(TX))
    const withIndex = new Uint8Array([...hashBytes(TX), 0, 0, 1, 2])
    expect(receiptIdOf(TX, 258)).toBe(keccakHex(withIndex))
    expect(new Set([0, 1, 2, 3].map((i) => receiptIdOf(TX, i))).size).toBe(4)
  })
  it("a receipt without index or purpose hashes exactly as the seven-field leaf it always had", () => {
    const r = plain()
    const old = keccak256(
      encodeRlp([hashBytes(r.receiptId), 1n, 2n, addressBytes(r.from), addressBytes(r.to), r.amount, hashBytes(r.txHash)])
    )
    expect(receiptLeaf(r)).toEqual(old)
  })
  it("index and purpose each change the leaf, and differently", () => {
    const base = receiptLeaf(plain())
    const leaves = [
      receiptLeaf(plain({ index: 1, receiptId: receiptIdOf(TX, 1) })),
      receiptLeaf(plain({ destShard: AI, purpose: { kind: "escrow", model: TX } })),
      receiptLeaf(plain({ destShard: AI, purpose: { kind: "bond", worker: B } })),
      receiptLeaf(plain({ destShard: AI, purpose: { kind: "bond", worker: B }, index: 1, receiptId: receiptIdOf(TX, 1) }))
    ].map((l) => Buffer.from(l).toString("hex"))
    expect(new Set([Buffer.from(base).toString("hex"), ...leaves]).size).toBe(5)
  })
  it("amount ≥ 1, except an epoch receipt's, which is exactly 0 (the schema refuses others)", () => {
    const decode = Schema.decodeUnknownEither(CrossShardReceipt)
    const encoded = Schema.encodeSync(CrossShardReceipt)(plain())
    const epoch = { kind: "epoch", epoch: 0, startAt: 1, endAt: 2 }
    expect(Either.isRight(decode(encoded))).toBe(true)
    expect(Either.isLeft(decode({ ...encoded, amount: "0" }))).toBe(true)
    expect(Either.isRight(decode({ ...encoded, amount: "0", purpose: epoch }))).toBe(true)
    expect(Either.isLeft(decode({ ...encoded, amount: "1", purpose: epoch }))).toBe(true)
    expect(Either.isLeft(decode({ ...encoded, index: -1 }))).toBe(true)
    // An old receipt's encoding has no index or purpose key at all.
    expect(Object.keys(encoded)).not.toContain("index")
    expect(Object.keys(encoded)).not.toContain("purpose")
  })
  it("BEACON_SYSTEM_ADDRESS is the last 20 bytes of keccak256(\"topai/system/beacon\")", () => {
    const h = keccakHex(new TextEncoder().encode("topai/system/beacon"))
    expect(BEACON_SYSTEM_ADDRESS).toBe(`0x${h.slice(-40)}`)
  })
})

/** `count` empty beacon blocks: every CrossShardSent they emitted. */
const beaconSends = (count: number) => {
  let state = genesisOf(BEACON)
  const sent: Array<CrossShardSent> = []
  const events: Array<ShardEvent> = []
  for (let i = 0; i < count; i++) {
    const r = applyBlock(state, nextBlock(state))
    state = r.state
    events.push(...r.events)
    for (const e of r.events) if (e._tag === "CrossShardSent") sent.push(e)
  }
  return { state, sent, events }
}

describe("the beacon's epoch receipt", () => {
  it("is sent once per epoch end, amount 0, from the beacon's system address to the AI shard, naming the epoch's window", () => {
    const { state, sent, events } = beaconSends(3 * EPOCH_BLOCKS)
    const ended = events.filter((e) => e._tag === "EpochEnded")
    expect(sent).toHaveLength(3)
    sent.forEach((s, epoch) => {
      const e = ended[epoch]!
      expect(s).toMatchObject({ sourceShard: BEACON, destShard: AI, from: BEACON_SYSTEM_ADDRESS, amount: 0n, txHash: epochEndCause(epoch) })
      expect(s.receiptId).toBe(receiptIdOf(epochEndCause(epoch)))
      expect(s.purpose).toEqual({ kind: "epoch", epoch, startAt: e.startAt, endAt: e.endAt })
    })
    // No money moved and no account appeared on the beacon.
    expect(state.totals.sentOut).toBe(0n)
    expect(state.accounts.pipe((m) => [...m]).length).toBe(0)
  })
  it("is credited by the AI shard exactly once, even relayed twice in one block and again in a later one", () => {
    const { sent } = beaconSends(2 * EPOCH_BLOCKS)
    const [first, second] = sent.map((s) => s.receipt) as [CrossShardReceipt, CrossShardReceipt]
    let ai = genesisOf(AI)
    const b1 = applyBlock(ai, nextBlock(ai, [], [first, first]))
    ai = b1.state
    const b2 = applyBlock(ai, nextBlock(ai, [], [first, second]))
    ai = b2.state
    const received = [...b1.events, ...b2.events].filter((e) => e._tag === "CrossShardReceived")
    expect(received.map((e) => (e as { receiptId: string }).receiptId)).toEqual([first.receiptId, second.receiptId])
    expect(received.map((e) => (e as { purpose?: { epoch: number } }).purpose?.epoch)).toEqual([0, 1])
    expect(ai.totals.receivedIn).toBe(0n)
    // The AI ledger closed each epoch once, in order; with no workers nor tasks nothing was paid out.
    const closed = [...b1.events, ...b2.events].filter((e) => e._tag === "EpochClosed")
    expect(closed.map((e) => (e as { epoch: number }).epoch)).toEqual([0, 1])
    expect([...b1.events, ...b2.events].filter((e) => e._tag === "AiPayout" || e._tag === "CrossShardSent")).toEqual([])
    // Only the genesis system accounts, as they were: an epoch receipt carries no money.
    expect([...ai.accounts].map(([a, acc]) => [a, acc.balance]).sort()).toEqual(
      [
        [SYSTEM_RESERVE, beaconConfig.economics.miningReserve],
        [SYSTEM_FOUNDATION, beaconConfig.economics.foundationFund]
      ].sort()
    )
  })
})

describe("which shard takes which receipt", () => {
  const epochReceipt = () => beaconSends(EPOCH_BLOCKS).sent[0]!.receipt
  const refusal = (state: LedgerState, receipts: ReadonlyArray<CrossShardReceipt>) => {
    const r = makeLedger(state.shard).decide(state, new ApplyBlock({ block: nextBlock(state, [], receipts) }))
    return Either.isLeft(r) ? r.left.reason : "accepted"
  }
  it.each<[string, () => [ShardId, CrossShardReceipt], string]>([
    ["a plain transfer to the AI shard", () => [AI, plain({ destShard: AI })], "BadReceipt"],
    ["an epoch receipt on a transfer shard", () => [1 as ShardId, new CrossShardReceipt({ ...epochReceipt(), destShard: 1 as ShardId })], "BadReceipt"],
    [
      "an epoch receipt from a transfer shard",
      () => [AI, new CrossShardReceipt({ ...epochReceipt(), sourceShard: 1 as ShardId })],
      "ReceiptFromUnknownShard"
    ],
    [
      "an epoch receipt not from the beacon's system address",
      () => [AI, new CrossShardReceipt({ ...epochReceipt(), from: A })],
      "BadReceipt"
    ],
    ["an escrow receipt from the beacon", () => [AI, escrow({ sourceShard: BEACON })], "ReceiptFromUnknownShard"],
    ["an escrow receipt to a transfer shard", () => [2 as ShardId, plain({ purpose: { kind: "escrow", model: TX } })], "BadReceipt"],
    ["an index the id does not match", () => [2 as ShardId, plain({ index: 1 })], "ReceiptIdMismatch"],
    ["an escrow receipt from a transfer shard to the escrow account", () => [AI, escrow()], "accepted"],
    ["an escrow receipt to a user's address on the AI shard", () => [AI, escrow({ to: B })], "BadReceipt"],
    ["an escrow receipt to the stake pool", () => [AI, escrow({ to: SYSTEM_STAKE_POOL })], "BadReceipt"],
    ["an escrow receipt to the mining reserve", () => [AI, escrow({ to: SYSTEM_RESERVE })], "BadReceipt"],
    ["a bond receipt from a transfer shard to the stake pool, index 2", () => [AI, bond({ index: 2, receiptId: receiptIdOf(TX, 2) })], "accepted"],
    ["a bond receipt to the escrow account", () => [AI, bond({ to: SYSTEM_ESCROW })], "BadReceipt"],
    ["a bond receipt to a user's address on the AI shard", () => [AI, bond({ to: B })], "BadReceipt"],
    ["a bond receipt from the beacon", () => [AI, bond({ sourceShard: BEACON })], "ReceiptFromUnknownShard"],
    ["a payout from the AI shard to a transfer shard", () => [2 as ShardId, plain({ sourceShard: AI, index: 3, receiptId: receiptIdOf(TX, 3) })], "accepted"],
    ["the beacon's epoch receipt on the AI shard", () => [AI, epochReceipt()], "accepted"]
  ])("%s: %s", (_, make, reason) => {
    const [shard, receipt] = make()
    expect(refusal(genesisOf(shard), [receipt])).toBe(reason)
  })
})

describe("epoch receipts out of order", () => {
  it("a later epoch's receipt relayed before (or without) its predecessor's waits uncredited, no crash; relayed again after it, it closes its epoch", () => {
    const { sent } = beaconSends(2 * EPOCH_BLOCKS)
    const [first, second] = sent.map((s) => s.receipt) as [CrossShardReceipt, CrossShardReceipt]
    const closedIn = (events: ReadonlyArray<ShardEvent>) => events.filter((e) => e._tag === "EpochClosed").map((e) => (e as { epoch: number }).epoch)
    const g = genesisOf(AI)
    // Epoch 1's alone: nothing credited, nothing closed; it stays creditable.
    const alone = applyBlock(g, nextBlock(g, [], [second]))
    expect(alone.events.some((e) => e._tag === "CrossShardReceived")).toBe(false)
    expect(HashSet.has(alone.state.receivedReceipts, second.receiptId)).toBe(false)
    // Epoch 1's before epoch 0's in one block: epoch 0 closes, epoch 1 waits.
    const swapped = applyBlock(alone.state, nextBlock(alone.state, [], [second, first]))
    expect(closedIn(swapped.events)).toEqual([0])
    expect(HashSet.has(swapped.state.receivedReceipts, second.receiptId)).toBe(false)
    // Relayed again: epoch 1 closes, once.
    const later = applyBlock(swapped.state, nextBlock(swapped.state, [], [second, first, second]))
    expect(closedIn(later.events)).toEqual([1])
    expect(later.state.ai!.economy.epoch).toBe(2)
    // Replay rebuilds the same ledger.
    const ledger = makeLedger(AI)
    const events = [...run(ledger, ledger.initialState, genesisCommand(beaconConfig, AI)).events, ...alone.events, ...swapped.events, ...later.events]
    expect(events.reduce(ledger.evolve, ledger.initialState).ai!.economy.epoch).toBe(2)
  })
})

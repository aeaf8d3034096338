import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { fold } from "../../domain/Decider.js"
import { Block, BlockHeader, buildBlock } from "../../domain/chain/block.js"
import {
  AccountFunded,
  CrossShardReceived,
  CrossShardSent,
  eventJson,
  eventsRoot,
  FeeCharged,
  ShardEvent,
  TransactionRejected,
  Transferred
} from "../../domain/chain/events.js"
import { genesisCommand, genesisSupply } from "../../domain/chain/genesis.js"
import { keccakHex, ZERO_HASH } from "../../domain/chain/hash.js"
import { devProposerKey } from "../../domain/chain/keys.js"
import {
  Allocation,
  ApplyBlock,
  ApplyGenesis,
  balanceOf,
  genesisHash,
  makeLedger,
  nonceOf
} from "../../domain/chain/ledger.js"
import { CrossShardReceipt, receiptIdOf } from "../../domain/chain/receipt.js"
import { aiShardOf, type ShardId } from "../../domain/chain/sharding.js"
import {
  accountsOn,
  applyBlock,
  CHAIN_ID,
  config,
  deciderSpec,
  DEV_BALANCE,
  FEE,
  genesisState,
  nextBlock,
  snapshot,
  tags,
  transfer
} from "./helpers.js"

const S1 = 1 as ShardId
const S2 = 2 as ShardId
const ledger1 = makeLedger(S1)
const spec1 = deciderSpec(ledger1)
const [alice, bob, carol] = accountsOn(S1)
const [dave] = accountsOn(S2)
const g1 = genesisState(S1)
const g2 = genesisState(S2)

describe("genesis", () => {
  it("given nothing, when ApplyGenesis, then the shard's accounts are funded and sealed", () => {
    const cmd = genesisCommand(config, S1)
    spec1.given([]).when(cmd).then((events) => {
      expect(tags(events)).toEqual(["GenesisApplied", ...cmd.allocations.map(() => "AccountFunded"), "BlockExecuted"])
      const sealed = events[events.length - 1]!
      expect(sealed._tag === "BlockExecuted" && sealed.eventsRoot).toBe(eventsRoot(events.slice(0, -1)))
      expect(sealed._tag === "BlockExecuted" && sealed.blockHash).toBe(genesisHash(S1, cmd))
    })
  })
  it("the shards' allocations add up to the genesis supply (the AI shard's system accounts included; the beacon holds none)", () => {
    const ai = genesisState(aiShardOf(config.transferShards))
    const beacon = genesisState(0 as ShardId)
    expect(beacon.state.totals.funded).toBe(0n)
    expect(ai.state.totals.funded).toBeGreaterThan(0n)
    expect(g1.state.totals.funded + g2.state.totals.funded + ai.state.totals.funded).toBe(genesisSupply(config))
    expect(balanceOf(g1.state, alice!.address)).toBe(DEV_BALANCE)
  })
  it("given a genesis, when ApplyGenesis again, then AlreadyApplied", () => {
    spec1.given(g1.events).when(genesisCommand(config, S1)).thenFails((e) => {
      expect(e.reason).toBe("AlreadyApplied")
    })
  })
  it.each<[string, ShardId, ReadonlyArray<Allocation>, string]>([
    ["an account of another shard", S1, [new Allocation({ address: dave!.address, amount: 1n })], "AccountOfAnotherShard"],
    ["the same account twice", S1, [new Allocation({ address: alice!.address, amount: 1n }), new Allocation({ address: alice!.address, amount: 2n })], "DuplicateAccount"],
    ["the beacon shard", 0 as ShardId, [], "NotATransferShard"]
  ])("refuses a genesis with %s", (_, shard, allocations, reason) => {
    const cmd = new ApplyGenesis({ chainId: CHAIN_ID, transferShards: 2, timestamp: 0, allocations })
    deciderSpec(makeLedger(shard)).given([]).when(cmd).thenFails((e) => {
      expect(e.reason).toBe(reason)
    })
  })
})

describe("blocks: execution", () => {
  it("a same-shard transfer charges the fee, moves the amount and uses the nonce", () => {
    const tx = transfer(alice!.key, { to: bob!.address, amount: 100n, nonce: 0n })
    spec1.given(g1.events).when(new ApplyBlock({ block: nextBlock(g1.state, [tx]) })).then((events) => {
      expect(tags(events)).toEqual(["BlockApplied", "FeeCharged", "Transferred", "BlockExecuted"])
      expect(events[1]).toEqual(new FeeCharged({ txHash: tx.hash, payer: alice!.address, fee: FEE, nonce: 0n }))
      expect(events[2]).toEqual(new Transferred({ txHash: tx.hash, from: alice!.address, to: bob!.address, amount: 100n }))
    })
    const { state } = applyBlock(g1.state, nextBlock(g1.state, [tx]))
    expect(balanceOf(state, alice!.address)).toBe(DEV_BALANCE - 100n - FEE)
    expect(balanceOf(state, bob!.address)).toBe(DEV_BALANCE + 100n)
    expect(nonceOf(state, alice!.address)).toBe(1n)
    expect(state.totals.burned).toBe(FEE)
    expect(state.height).toBe(1)
  })
  it("a cross-shard transfer debits here and emits the receipt for the other shard", () => {
    const tx = transfer(alice!.key, { to: dave!.address, amount: 70n, nonce: 0n })
    const { state, events } = applyBlock(g1.state, nextBlock(g1.state, [tx]))
    const sent = events.find((e): e is CrossShardSent => e._tag === "CrossShardSent")!
    expect(sent).toEqual(new CrossShardSent({
      receiptId: receiptIdOf(tx.hash), sourceShard: S1, destShard: S2, from: alice!.address, to: dave!.address, amount: 70n, txHash: tx.hash
    }))
    expect(balanceOf(state, alice!.address)).toBe(DEV_BALANCE - 70n - FEE)
    expect(state.totals.sentOut).toBe(70n)
    // The destination credits it once, however often it is relayed.
    const once = applyBlock(g2.state, nextBlock(g2.state, [], [sent.receipt, sent.receipt]))
    expect(tags(once.events)).toEqual(["BlockApplied", "CrossShardReceived", "BlockExecuted"])
    expect(once.events[1]).toEqual(new CrossShardReceived({ ...sent.receipt }))
    expect(balanceOf(once.state, dave!.address)).toBe(DEV_BALANCE + 70n)
    const again = applyBlock(once.state, nextBlock(once.state, [], [sent.receipt]))
    expect(tags(again.events)).toEqual(["BlockApplied", "BlockExecuted"])
    expect(balanceOf(again.state, dave!.address)).toBe(DEV_BALANCE + 70n)
  })
  it.each<[string, () => ReturnType<typeof transfer>, string]>([
    ["a reused nonce", () => transfer(alice!.key, { to: bob!.address, amount: 1n, nonce: 0n }), "NonceReused"],
    ["a nonce gap", () => transfer(alice!.key, { to: bob!.address, amount: 1n, nonce: 5n }), "NonceGap"],
    ["too little balance", () => transfer(alice!.key, { to: bob!.address, amount: DEV_BALANCE, nonce: 1n }), "InsufficientBalance"],
    ["another chain", () => transfer(alice!.key, { to: bob!.address, amount: 1n, nonce: 1n, chainId: CHAIN_ID + 1n }), "WrongChain"],
    ["a sender of another shard", () => transfer(dave!.key, { to: bob!.address, amount: 1n, nonce: 0n }), "WrongShard"]
  ])("a transaction with %s is recorded as rejected and changes nothing", (_, make, reason) => {
    const first = applyBlock(g1.state, nextBlock(g1.state, [transfer(alice!.key, { to: bob!.address, amount: 1n, nonce: 0n })]))
    const tx = make()
    const { state, events } = applyBlock(first.state, nextBlock(first.state, [tx]))
    expect(tags(events)).toEqual(["BlockApplied", "TransactionRejected", "BlockExecuted"])
    const rejected = events[1] as TransactionRejected
    expect(rejected.reason).toBe(reason)
    expect(rejected.txHash).toBe(tx.hash)
    expect({ ...snapshot(state), height: 0, lastBlockHash: ZERO_HASH, lastEventsRoot: ZERO_HASH, lastTimestamp: 0 })
      .toEqual({ ...snapshot(first.state), height: 0, lastBlockHash: ZERO_HASH, lastEventsRoot: ZERO_HASH, lastTimestamp: 0 })
  })
  it("executes a block's transactions in order against the running state", () => {
    const txs = [
      transfer(alice!.key, { to: carol!.address, amount: DEV_BALANCE - FEE, nonce: 0n }), // alice empties her account
      transfer(carol!.key, { to: bob!.address, amount: DEV_BALANCE + 1n, nonce: 0n }), // carol can, thanks to alice
      transfer(alice!.key, { to: bob!.address, amount: 1n, nonce: 1n }) // alice cannot anymore
    ]
    const { events } = applyBlock(g1.state, nextBlock(g1.state, txs))
    expect(tags(events)).toEqual([
      "BlockApplied", "FeeCharged", "Transferred", "FeeCharged", "Transferred", "TransactionRejected", "BlockExecuted"
    ])
  })
  it("the next header must commit to the previous block's events root (deferred execution)", () => {
    const b1 = applyBlock(g1.state, nextBlock(g1.state, [transfer(alice!.key, { to: bob!.address, amount: 1n, nonce: 0n })]))
    expect(b1.state.lastEventsRoot).toBe(eventsRoot(b1.events.slice(0, -1)))
    expect(nextBlock(b1.state).header.eventsRoot).toBe(b1.state.lastEventsRoot)
  })
  it("decide is deterministic: the same block gives byte-identical events", () => {
    const block = nextBlock(g1.state, [transfer(alice!.key, { to: dave!.address, amount: 9n, nonce: 0n })])
    const a = applyBlock(g1.state, block).events.map(eventJson)
    const b = applyBlock(g1.state, block).events.map(eventJson)
    expect(a).toEqual(b)
  })
})

describe("blocks: rejection, one corrupted field at a time", () => {
  const base = applyBlock(g1.state, nextBlock(g1.state, [transfer(alice!.key, { to: bob!.address, amount: 1n, nonce: 0n })])).state
  const good = nextBlock(base, [transfer(alice!.key, { to: bob!.address, amount: 1n, nonce: 1n })])
  const resign = (change: Partial<Parameters<typeof buildBlock>[0]>) => buildBlock({
    chainId: CHAIN_ID, shard: S1, height: base.height + 1, parentHash: base.lastBlockHash, eventsRoot: base.lastEventsRoot,
    timestamp: base.lastTimestamp + 1, transactions: good.transactions, receipts: [], proposerKey: devProposerKey(S1), ...change
  })
  const foreignReceipt = (patch: Partial<CrossShardReceipt>) => {
    const txHash = keccakHex(Uint8Array.of(1))
    return new CrossShardReceipt({
      receiptId: receiptIdOf(txHash), sourceShard: S2, destShard: S1, from: dave!.address, to: alice!.address,
      amount: 5n, txHash, ...patch
    })
  }
  const cases: ReadonlyArray<[string, () => Block]> = [
    ["WrongShard", () => resign({ shard: S2 })],
    ["WrongChain", () => resign({ chainId: CHAIN_ID + 1n })],
    ["WrongHeight", () => resign({ height: base.height + 2 })],
    ["WrongParent", () => resign({ parentHash: ZERO_HASH })],
    ["TimestampBeforeParent", () => resign({ timestamp: base.lastTimestamp - 1 })],
    ["WrongEventsRoot", () => resign({ eventsRoot: ZERO_HASH })],
    ["ProposerKeyMismatch", () => new Block({ ...good, proposerPublicKey: alice!.key.publicKey.hex })],
    ["BadProposerSignature", () => new Block({ ...good, header: new BlockHeader({ ...good.header, timestamp: good.header.timestamp + 1 }) })],
    ["WrongTxRoot", () => new Block({ ...good, transactions: [] })],
    ["WrongReceiptRoot", () => new Block({ ...good, receipts: [foreignReceipt({})] })],
    ["ReceiptNotForThisShard", () => resign({ receipts: [foreignReceipt({ destShard: S2 })] })],
    ["ReceiptFromUnknownShard", () => resign({ receipts: [foreignReceipt({ sourceShard: S1 })] })],
    ["ReceiptIdMismatch", () => resign({ receipts: [foreignReceipt({ receiptId: ZERO_HASH })] })]
  ]
  it("the uncorrupted block applies", () => {
    expect(Either.isRight(ledger1.decide(base, new ApplyBlock({ block: good })))).toBe(true)
    expect(Either.isRight(ledger1.decide(base, new ApplyBlock({ block: resign({}) })))).toBe(true)
  })
  it.each(cases)("%s", (reason, make) => {
    const r = ledger1.decide(base, new ApplyBlock({ block: make() }))
    expect(Either.isLeft(r) && r.left._tag).toBe("BlockRejected")
    expect(Either.isLeft(r) && r.left.reason).toBe(reason)
  })
  it("GenesisMissing", () => {
    const r = ledger1.decide(ledger1.initialState, new ApplyBlock({ block: good }))
    expect(Either.isLeft(r) && r.left.reason).toBe("GenesisMissing")
  })
})

describe("replay", () => {
  it("folding the emitted events rebuilds the decided state", () => {
    let state = g1.state
    const all: Array<ShardEvent> = [...g1.events]
    for (let i = 0n; i < 3n; i++) {
      const r = applyBlock(state, nextBlock(state, [
        transfer(alice!.key, { to: bob!.address, amount: 10n, nonce: i }),
        transfer(bob!.key, { to: dave!.address, amount: 3n, nonce: i })
      ]))
      state = r.state
      all.push(...r.events)
    }
    expect(snapshot(fold(ledger1.evolve, ledger1.initialState, all))).toEqual(snapshot(state))
    expect(all.filter((e): e is AccountFunded => e._tag === "AccountFunded").length).toBe(accountsOn(S1).length)
  })
  it("an auditor rebuilds the state from the events' JSON alone, and re-derives every events root", () => {
    let state = g1.state
    const all: Array<ShardEvent> = [...g1.events]
    for (let i = 0n; i < 2n; i++) {
      const r = applyBlock(state, nextBlock(state, [transfer(alice!.key, { to: dave!.address, amount: 4n, nonce: i })]))
      state = r.state
      all.push(...r.events)
    }
    const lines = all.map(eventJson)
    for (const [i, line] of lines.entries()) expect(line).toBe(JSON.stringify(Schema.encodeSync(ShardEvent)(all[i]!)))
    const decoded = lines.map((line) => Schema.decodeUnknownSync(Schema.parseJson(ShardEvent))(line))
    expect(snapshot(fold(ledger1.evolve, ledger1.initialState, decoded))).toEqual(snapshot(state))
    // Each BlockExecuted's root is the root of the events before it, back to the block's start.
    let start = 0
    decoded.forEach((e, i) => {
      if (e._tag !== "BlockExecuted") return
      expect(e.eventsRoot).toBe(eventsRoot(decoded.slice(start, i)))
      start = i + 1
    })
    // Re-executing the recorded blocks on a fresh ledger gives the same events, byte for byte.
    let replayed = genesisState(S1).state
    const again: Array<string> = [...g1.events.map(eventJson)]
    for (const e of decoded) {
      if (e._tag !== "BlockApplied") continue
      const r = applyBlock(replayed, e.block)
      replayed = r.state
      again.push(...r.events.map(eventJson))
    }
    expect(again).toEqual(lines)
  })
})

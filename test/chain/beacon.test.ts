/**
 * The beacon (shard 0): its genesis, its epoch clock in the ledger
 * (`EpochEnded` every epochBlocks blocks, numbered from 0, each epoch
 * starting where the last ended), its producer making blocks when idle
 * (TestClock), and the node serving its height and epoch.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, TestClock } from "effect"
import { fold } from "../../domain/Decider.js"
import { EpochEnded, eventsRoot, type ShardEvent } from "../../domain/chain/events.js"
import { allShardIds, GenesisConfig, genesisCommand } from "../../domain/chain/genesis.js"
import { devProposerKey } from "../../domain/chain/keys.js"
import { Allocation, ApplyBlock, ApplyGenesis, makeLedger, type LedgerState } from "../../domain/chain/ledger.js"
import { CrossShardReceipt, receiptIdOf } from "../../domain/chain/receipt.js"
import { BEACON_SHARD, type ShardId } from "../../domain/chain/sharding.js"
import { EconomicsConfig } from "../../domain/economics/config.js"
import { makeSingleProducer } from "../../actors/ConsensusActor.js"
import { makeShardActor, shardStream } from "../../actors/ShardActor.js"
import { SignatureVerifierInThread } from "../../infra/crypto/SignatureVerifier.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { makeChainNode } from "../../src/node/ChainNodeLive.js"
import { keccakHex } from "../../domain/chain/hash.js"
import { accountsOn, applyBlock, BLOCK_INTERVAL_MS, CHAIN_ID, config, GENESIS_TIME, nextBlock, run, snapshot, tags, transfer } from "./helpers.js"

const BEACON = BEACON_SHARD as ShardId
const EPOCH_BLOCKS = 3

const withEconomics = (base: GenesisConfig, patch: Partial<EconomicsConfig>) =>
  new GenesisConfig({ ...base, economics: new EconomicsConfig({ ...base.economics, ...patch }) })

const beaconConfig = withEconomics(config, { epochBlocks: EPOCH_BLOCKS })
const beaconLedger = makeLedger(BEACON)

const beaconGenesis = () => run(beaconLedger, beaconLedger.initialState, genesisCommand(beaconConfig, BEACON))

/** `count` empty beacon blocks on top of genesis: every state and event. */
const beaconChain = (count: number) => {
  const g = beaconGenesis()
  let state: LedgerState = g.state
  const blocks: Array<ReadonlyArray<ShardEvent>> = []
  for (let i = 0; i < count; i++) {
    const r = applyBlock(state, nextBlock(state))
    state = r.state
    blocks.push(r.events)
  }
  return { genesis: g, state, blocks }
}

describe("beacon genesis", () => {
  it("has no accounts, carries the epoch length and governance, and is sealed", () => {
    const cmd = genesisCommand(beaconConfig, BEACON)
    expect(cmd.allocations).toEqual([])
    expect(cmd.epochBlocks).toBe(EPOCH_BLOCKS)
    const { state, events } = beaconGenesis()
    expect(tags(events)).toEqual(["GenesisApplied", "BlockExecuted"])
    expect(events[0]).toMatchObject({ shard: 0, epochBlocks: EPOCH_BLOCKS, governance: config.economics.governance })
    expect(state.chain).toMatchObject({ shard: 0, epochBlocks: EPOCH_BLOCKS })
    expect(state.totals.funded).toBe(0n)
    expect([state.epoch, state.epochStartAt]).toEqual([0, GENESIS_TIME])
  })
  it("the chain's shards are the beacon, the transfer shards and the AI shard; transfer shards' genesis carries no epoch length", () => {
    expect(allShardIds(config)).toEqual([0, 1, 2, 3])
    expect(genesisCommand(config, 1 as ShardId).epochBlocks).toBeUndefined()
  })
  it.each<[string, ShardId, ApplyGenesis, string]>([
    ["a beacon genesis on a transfer shard", 1 as ShardId, genesisCommand(beaconConfig, BEACON), "NotTheBeacon"],
    [
      "a beacon genesis with accounts",
      BEACON,
      new ApplyGenesis({ ...genesisCommand(beaconConfig, BEACON), allocations: [new Allocation({ address: accountsOn(1 as ShardId)[0]!.address, amount: 1n })] }),
      "AccountOfAnotherShard"
    ],
    ["a transfer-shard genesis on the beacon", BEACON, genesisCommand(beaconConfig, 1 as ShardId), "NotATransferShard"]
  ])("refuses %s", (_, shard, cmd, reason) => {
    const r = makeLedger(shard).decide(makeLedger(shard).initialState, cmd)
    expect(Either.isLeft(r) && r.left.reason).toBe(reason)
  })
})

describe("beacon blocks: the epoch clock", () => {
  it("an EpochEnded (and the AI shard's epoch receipt) in every block whose height is a multiple of epochBlocks, before BlockExecuted, under the events root", () => {
    const { blocks } = beaconChain(7)
    blocks.forEach((events, i) => {
      const height = i + 1
      expect(tags(events)).toEqual(
        height % EPOCH_BLOCKS === 0
          ? ["BlockApplied", "EpochEnded", "CrossShardSent", "BlockExecuted"]
          : ["BlockApplied", "BlockExecuted"]
      )
      const sealed = events[events.length - 1]!
      expect(sealed._tag === "BlockExecuted" && sealed.eventsRoot).toBe(eventsRoot(events.slice(0, -1)))
    })
  })
  it("epochs are numbered height / epochBlocks − 1; epoch 0 starts at genesis, each next one where the last ended", () => {
    const { blocks, state } = beaconChain(9)
    const ended = blocks.flat().filter((e): e is EpochEnded => e._tag === "EpochEnded")
    const timestampOf = (height: number) => GENESIS_TIME + height * BLOCK_INTERVAL_MS
    expect(ended).toEqual([
      new EpochEnded({ epoch: 0, height: 3, startAt: GENESIS_TIME, endAt: timestampOf(3) }),
      new EpochEnded({ epoch: 1, height: 6, startAt: timestampOf(3), endAt: timestampOf(6) }),
      new EpochEnded({ epoch: 2, height: 9, startAt: timestampOf(6), endAt: timestampOf(9) })
    ])
    expect([state.epoch, state.epochStartAt]).toEqual([3, timestampOf(9)])
  })
  it("with epochBlocks 1 every block ends an epoch", () => {
    const one = withEconomics(config, { epochBlocks: 1 })
    const g = run(beaconLedger, beaconLedger.initialState, genesisCommand(one, BEACON))
    const b1 = applyBlock(g.state, nextBlock(g.state))
    const b2 = applyBlock(b1.state, nextBlock(b1.state))
    expect([...b1.events, ...b2.events].filter((e) => e._tag === "EpochEnded").map((e) => e._tag === "EpochEnded" && e.epoch)).toEqual([0, 1])
  })
  it("replay rebuilds the beacon's state, epoch included", () => {
    const { genesis, blocks, state } = beaconChain(7)
    const replayed = fold(beaconLedger.evolve, beaconLedger.initialState, [...genesis.events, ...blocks.flat()])
    expect(snapshot(replayed)).toEqual(snapshot(state))
    expect([replayed.epoch, replayed.epochStartAt]).toEqual([state.epoch, state.epochStartAt])
  })
  it("transfer shards never end epochs", () => {
    const g = run(makeLedger(1 as ShardId), makeLedger(1 as ShardId).initialState, genesisCommand(beaconConfig, 1 as ShardId))
    let state = g.state
    for (let i = 0; i < EPOCH_BLOCKS * 2; i++) {
      const r = applyBlock(state, nextBlock(state))
      expect(r.events.some((e) => e._tag === "EpochEnded")).toBe(false)
      state = r.state
    }
    expect(state.epoch).toBe(0)
  })
  it("a transaction in a beacon block is rejected (WrongShard); a receipt makes the block invalid", () => {
    const g = beaconGenesis()
    const sender = accountsOn(1 as ShardId)[0]!
    const tx = transfer(sender.key, { to: sender.address, amount: 1n, nonce: 0n })
    const { events } = applyBlock(g.state, nextBlock(g.state, [tx]))
    expect(events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "WrongShard" })
    const txHash = keccakHex(Uint8Array.of(9))
    const receipt = new CrossShardReceipt({
      receiptId: receiptIdOf(txHash), sourceShard: 1 as ShardId, destShard: BEACON, from: sender.address, to: sender.address, amount: 1n, txHash
    })
    const r = beaconLedger.decide(g.state, new ApplyBlock({ block: nextBlock(g.state, [], [receipt]) }))
    expect(Either.isLeft(r) && r.left.reason).toBe("ReceiptNotForThisShard")
  })
})

/** Let the forked fibers run until `check` holds (TestClock time does not move). */
const eventually = <A>(what: string, probe: Effect.Effect<A>, check: (a: A) => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 10_000; i++) {
      const a = yield* probe
      if (check(a)) return a
      yield* Effect.yieldNow()
    }
    return yield* Effect.die(new Error(`never: ${what}`))
  })

const INTERVAL = 1_000
const clockConfig = withEconomics(new GenesisConfig({ chainId: CHAIN_ID, timestamp: 0, devAccountCount: 4 }), {
  epochBlocks: 2,
  beaconIntervalMs: INTERVAL
})
const services = Layer.merge(MemoryEventStore.layer, SignatureVerifierInThread)

describe("the beacon producer (TestClock)", () => {
  it.scoped("makes a block every interval while idle; the stream holds the epoch ends", () =>
    Effect.gen(function* () {
      const actor = yield* makeShardActor(BEACON)
      yield* actor.ask(genesisCommand(clockConfig, BEACON))
      const seat = yield* makeSingleProducer({
        shard: BEACON,
        shardActor: actor,
        proposerKey: devProposerKey(BEACON),
        heartbeat: INTERVAL
      })
      const height = seat.ledger.pipe(Effect.map((l) => l.height))
      yield* TestClock.adjust(INTERVAL - 1)
      yield* Effect.repeatN(Effect.yieldNow(), 50)
      expect(yield* height).toBe(0)
      for (let h = 1; h <= 5; h++) {
        yield* TestClock.adjust(h === 1 ? 1 : INTERVAL)
        yield* eventually(`beacon height ${h}`, height, (x) => x === h)
      }
      const ledger = yield* seat.ledger
      expect([ledger.height, ledger.lastTimestamp, ledger.epoch, ledger.epochStartAt]).toEqual([5, 5 * INTERVAL, 2, 4 * INTERVAL])
      const stored = yield* (yield* EventStore).readStream(shardStream(BEACON))
      expect(stored.filter((e) => e.type === "EpochEnded").map((e) => e.data)).toEqual([
        { epoch: 0, height: 2, startAt: 0, endAt: 2 * INTERVAL },
        { epoch: 1, height: 4, startAt: 2 * INTERVAL, endAt: 4 * INTERVAL }
      ])
    }).pipe(Effect.provide(services))
  )

  it.scoped("a node serves the beacon's height and epoch in its status, and its blocks by height", () =>
    Effect.gen(function* () {
      const node = yield* makeChainNode({ genesis: clockConfig })
      const beaconStatus = node.status.pipe(Effect.map((s) => s.shards.find((x) => x.shard === 0)!))
      expect(yield* beaconStatus).toMatchObject({ kind: "beacon", height: 0, epoch: 0 })
      for (let h = 1; h <= 3; h++) {
        yield* TestClock.adjust(INTERVAL)
        yield* eventually(`beacon height ${h}`, beaconStatus, (s) => s.height === h)
      }
      // Epoch 0 ended at beacon height 3: its receipt reaches the AI shard, which makes a block for it.
      yield* eventually("the AI shard's block 1 (epoch 0's receipt)", node.status, (s) => s.shards[3]?.height === 1)
      const status = yield* node.status
      expect(status.shards.map((s) => [s.shard, s.kind, s.height, s.epoch])).toEqual([
        [0, "beacon", 3, 1],
        [1, "transfer", 0, undefined],
        [2, "transfer", 0, undefined],
        [3, "ai", 1, undefined]
      ])
      const block = yield* eventually("beacon block 3 indexed", node.block(0, 3).pipe(Effect.either), Either.isRight)
      expect(Either.isRight(block) && [block.right.shard, block.right.height, block.right.transactions]).toEqual([0, 3, []])
      expect(Either.isRight(block) && block.right.hash).toBe((yield* beaconStatus).lastBlockHash)
    }).pipe(Effect.provide(services))
  )
})

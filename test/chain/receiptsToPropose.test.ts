/**
 * Proposers take the AI shard's epoch receipts in epoch order (item 12 of
 * issue 12): whatever order they wait in, a block credits every epoch
 * receipt it carries, and a receipt whose predecessor is missing is not
 * proposed (it would fill a block that credits nothing); the single
 * producer makes no block for it.
 */
import { describe, expect, it } from "@effect/vitest"
import { it as vit } from "vitest"
import fc from "fast-check"
import { Effect, Either, HashMap, Layer, TestClock } from "effect"
import { makeSingleProducer } from "../../actors/ConsensusActor.js"
import { makeShardActor, shardStream } from "../../actors/ShardActor.js"
import type { CrossShardSent, ShardEvent } from "../../domain/chain/events.js"
import { GenesisConfig, genesisCommand } from "../../domain/chain/genesis.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { keccakHex } from "../../domain/chain/hash.js"
import { devProposerKey } from "../../domain/chain/keys.js"
import { makeLedger, type LedgerState } from "../../domain/chain/ledger.js"
import { CrossShardReceipt, receiptIdOf } from "../../domain/chain/receipt.js"
import { receiptsToPropose } from "../../domain/chain/receiptsToPropose.js"
import { aiShardOf, type ShardId } from "../../domain/chain/sharding.js"
import { SYSTEM_ESCROW } from "../../domain/economics/accounts.js"
import { EconomicsConfig } from "../../domain/economics/config.js"
import { decodeEventOf } from "../../domain/streamEvents.js"
import { SignatureVerifierInThread } from "../../infra/crypto/SignatureVerifier.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { accountsOn, applyBlock, config, nextBlock, run } from "./helpers.js"

const AI = aiShardOf(config.transferShards)
const BEACON = 0 as ShardId
const EPOCHS = 5
const beaconConfig = new GenesisConfig({ ...config, economics: new EconomicsConfig({ ...config.economics, epochBlocks: 2 }) })
const genesisOf = (shard: ShardId): LedgerState => run(makeLedger(shard), makeLedger(shard).initialState, genesisCommand(beaconConfig, shard)).state

/** The beacon's epoch receipts for epochs 0 … EPOCHS − 1, as its blocks sent them. */
const epochReceipts: ReadonlyArray<CrossShardReceipt> = (() => {
  let state = genesisOf(BEACON)
  const sent: Array<CrossShardSent> = []
  while (sent.length < EPOCHS) {
    const r = applyBlock(state, nextBlock(state))
    state = r.state
    for (const e of r.events) if (e._tag === "CrossShardSent") sent.push(e)
  }
  return sent.map((s) => s.receipt)
})()

/** A developer's escrow deposit on its way to the AI shard. */
const TX = keccakHex(new TextEncoder().encode("an escrow.deposit")) as Hash32
const deposit = new CrossShardReceipt({
  receiptId: receiptIdOf(TX),
  sourceShard: 1 as ShardId,
  destShard: AI,
  from: accountsOn(1 as ShardId)[0]!.address,
  to: SYSTEM_ESCROW,
  amount: 7n,
  txHash: TX,
  purpose: { kind: "escrow", model: TX }
})

const waiting = (receipts: ReadonlyArray<CrossShardReceipt>) => HashMap.fromIterable(receipts.map((r) => [r.receiptId, r] as const))
const epochOf = (r: CrossShardReceipt) => (r.purpose?.kind === "epoch" ? r.purpose.epoch : undefined)
const closedIn = (events: ReadonlyArray<ShardEvent>) => events.flatMap((e) => (e._tag === "EpochClosed" ? [e.epoch] : []))
const receivedIn = (events: ReadonlyArray<ShardEvent>) => events.flatMap((e) => (e._tag === "CrossShardReceived" ? [e.receiptId] : []))

describe("receiptsToPropose", () => {
  vit("epoch receipts first, in epoch order from the open epoch, then the others; one block credits them all and closes each epoch once", () => {
    const g = genesisOf(AI)
    const [e0, e1, e2] = epochReceipts as [CrossShardReceipt, CrossShardReceipt, CrossShardReceipt]
    const proposed = receiptsToPropose(g, waiting([e2, deposit, e1, e0]))
    expect(proposed.map((r) => epochOf(r) ?? "deposit")).toEqual([0, 1, 2, "deposit"])
    const block = applyBlock(g, nextBlock(g, [], proposed))
    expect(closedIn(block.events)).toEqual([0, 1, 2])
    expect(receivedIn(block.events)).toEqual(proposed.map((r) => r.receiptId))
    // Capped: the epochs' close comes first.
    expect(receiptsToPropose(g, waiting([deposit, e1, e0]), 2).map(epochOf)).toEqual([0, 1])
  })

  vit("a receipt whose predecessor is missing is not proposed (nor any after it); epochs already closed are never proposed", () => {
    const g = genesisOf(AI)
    const [e0, e1, e2] = epochReceipts as [CrossShardReceipt, CrossShardReceipt, CrossShardReceipt]
    expect(receiptsToPropose(g, waiting([e1, e2]))).toEqual([])
    expect(receiptsToPropose(g, waiting([e2, deposit, e1]))).toEqual([deposit])
    const after0 = applyBlock(g, nextBlock(g, [], [e0])).state
    expect(after0.ai!.economy.epoch).toBe(1)
    // Another receipt naming the closed epoch 0 (not credited: another id) can never be credited.
    const stale = new CrossShardReceipt({ ...e0, receiptId: receiptIdOf(TX, 9) })
    expect(receiptsToPropose(after0, waiting([stale, e2, e1])).map(epochOf)).toEqual([1, 2])
  })

  vit("property: whatever epoch receipts wait, in whatever order, the block credits every one proposed and closes exactly the epochs before the first missing one", () => {
    const g = genesisOf(AI)
    fc.assert(
      fc.property(fc.shuffledSubarray([...epochReceipts]), fc.boolean(), (subset, withDeposit) => {
        const proposed = receiptsToPropose(g, waiting(withDeposit ? [...subset, deposit] : subset))
        const present = new Set(subset.map(epochOf))
        let run = 0
        while (present.has(run)) run += 1
        const block = applyBlock(g, nextBlock(g, [], proposed))
        expect(receivedIn(block.events)).toEqual(proposed.map((r) => r.receiptId))
        expect(closedIn(block.events)).toEqual(Array.from({ length: run }, (_, i) => i))
        expect(proposed.filter((r) => epochOf(r) !== undefined)).toHaveLength(run)
      }),
      { numRuns: 60 }
    )
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

describe("the AI shard's single producer (TestClock)", () => {
  it.scoped("makes no block while only an epoch receipt whose predecessor is missing waits; once the predecessor comes, one block credits both in order", () =>
    Effect.gen(function* () {
      const [e0, e1] = epochReceipts as [CrossShardReceipt, CrossShardReceipt]
      const actor = yield* makeShardActor(AI)
      yield* actor.ask(genesisCommand(beaconConfig, AI))
      const producer = yield* makeSingleProducer({ shard: AI, shardActor: actor, proposerKey: devProposerKey(AI) })
      yield* producer.deliverReceipt(e1)
      for (let i = 0; i < 20; i++) {
        yield* TestClock.adjust("1 second")
        yield* Effect.repeatN(Effect.yieldNow(), 50)
      }
      expect((yield* producer.ledger).height).toBe(0)
      yield* producer.deliverReceipt(e0)
      const ledger = yield* eventually("a block", producer.ledger, (l) => l.height >= 1)
      expect(ledger.height).toBe(1)
      expect(ledger.ai!.economy.epoch).toBe(2)
      const stored = yield* (yield* EventStore).readStream(shardStream(AI))
      const events = stored.map((e) => Either.getOrThrow(decodeEventOf("shard", e.type, e.data)))
      expect(receivedIn(events)).toEqual([e0.receiptId, e1.receiptId])
      expect(closedIn(events)).toEqual([0, 1])
    }).pipe(Effect.provide(Layer.merge(MemoryEventStore.layer, SignatureVerifierInThread)))
  )
})

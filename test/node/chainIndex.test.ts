/** The chain index over real ledger events: where each transaction is, receipts relayed, bad stored events skipped. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Schema } from "effect"
import { shardStream } from "../../actors/ShardActor.js"
import { ShardEvent } from "../../domain/chain/events.js"
import type { CrossShardReceipt } from "../../domain/chain/receipt.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import type { NewEvent } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { makeChainIndex } from "../../src/node/ChainIndex.js"
import { accountsOn, applyBlock, genesisState, nextBlock, SHARDS, transfer } from "../chain/helpers.js"

const encode = Schema.encodeSync(ShardEvent)

/** Events as the ShardActor stores them: type + encoding without `_tag`. */
const asStored = (events: ReadonlyArray<ShardEvent>, prefix: string): ReadonlyArray<NewEvent> =>
  events.map((e, i) => {
    const { _tag, ...data } = encode(e) as { readonly _tag: string }
    return { id: `${prefix}:${i}`, type: _tag, data: JSON.parse(JSON.stringify(data)) as unknown }
  })

describe("ChainIndex", () => {
  it.scoped("places each transaction at its block's height (included / rejected), relays its receipt once, and skips a stored event that does not decode", () =>
    Effect.gen(function* () {
      const [a, b] = SHARDS
      const sender = accountsOn(a!)[0]!
      const payee = accountsOn(b!)[0]!
      const g = genesisState(a!)
      const cross = transfer(sender.key, { to: payee.address, amount: 5n, nonce: 0n })
      const stale = transfer(sender.key, { to: payee.address, amount: 5n, nonce: 0n, fee: 11n }) // nonce used: rejected
      const b1 = applyBlock(g.state, nextBlock(g.state, [cross, stale]))
      const b2 = applyBlock(b1.state, nextBlock(b1.state))
      const store = yield* EventStore
      const stream = shardStream(a!)
      yield* store.append(stream, asStored(g.events, "g"), "any")
      // A stored event nobody could have written (not its schema): logged and skipped, the index goes on.
      yield* store.append("shard-99", [{ id: "bad", type: "FeeCharged", data: { txHash: "nope" } }], "any")
      yield* store.append(stream, asStored(b1.events, "b1"), "any")
      yield* store.append(stream, asStored(b2.events, "b2"), "any")

      const relayed: Array<CrossShardReceipt> = []
      const index = yield* makeChainIndex((r) => Effect.sync(() => void relayed.push(r)))
      const included = yield* index.awaitTransaction(cross.hash).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "not indexed" }))
      const heads = yield* store.readStream(stream)
      const blockApplied = heads.filter((e) => e.type === "BlockApplied").map((e) => e.revision)
      expect(included).toMatchObject({ shard: a, height: 1, blockRevision: blockApplied[0], status: "included", receiptDelivered: false })
      expect(included.receiptId).toBe(relayed[0]?.receiptId)
      const rejected = yield* index.transaction(stale.hash)
      expect(Option.getOrThrow(rejected)).toMatchObject({ shard: a, height: 1, status: "rejected" })
      expect(Option.getOrThrow(rejected).reason).toMatch(/^Nonce/)
      expect(relayed.map((r) => [r.to, r.amount])).toEqual([[payee.address, 5n]])
      expect(Option.getOrThrow(yield* index.block(a!, 2))).toBe(blockApplied[1])
      expect(Option.isNone(yield* index.block(a!, 3))).toBe(true)
    }).pipe(Effect.provide(MemoryEventStore.layer)))
})

/**
 * `usage.receipts` on a member (SharedReceipts.ts) against a real in-process
 * chain: a hostile batch — a forged grant or result signature, a grant of
 * another chain, too many receipts, garbage, one bad receipt among good ones,
 * more than the member holds — is refused whole with its typed reason and
 * leaves nothing held or written; a good one is held, recorded in the
 * `shared-receipts` stream, not submitted before the grace period, survives
 * a restart of the member (replayed from the stream) and then settles once.
 */
import { createServer } from "node:http"
import { describe, expect, it } from "@effect/vitest"
import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { RpcServer } from "@effect/rpc"
import { Effect, Either, HashSet, Layer, Schema } from "effect"
import { AiRpcs } from "../../src/api/AiRpcs.js"
import { AiRpcHandlers } from "../../src/api/aiHandlers.js"
import { RefusedRpcHandlers, RefusedRpcs, requestLimitsLayer } from "../../src/api/requestLimits.js"
import { WS_PATH, wsServerSerialization } from "../../src/api/transport.js"
import { makeClient } from "../../src/client/index.js"
import { AiNode, type AiNodeShape } from "../../src/node/ai/AiNode.js"
import { freePort } from "../support/freePort.js"
import { escrowOf } from "../../domain/ai/ledger/state.js"
import { sessionGrantDigest, resultDigest, signMessage } from "../../domain/ai/signedMessages.js"
import { SHARED_RECEIPTS_STREAM } from "../../domain/ai/shared/events.js"
import { devKey, devProposerKey } from "../../domain/chain/keys.js"
import { UsageReceipt } from "../../domain/chain/transaction.js"
import { decodeEventOf } from "../../domain/streamEvents.js"
import { SignatureVerifierInThread } from "../../infra/crypto/SignatureVerifier.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { makeSettler } from "../../src/node/ai/Settler.js"
import { makeSharedReceipts, SHARE_BATCH_MAX } from "../../src/node/ai/SharedReceipts.js"
import { CHAIN_ID, PRICE, eventually, receiptOf, setupChain } from "./support/settlerChain.js"

const services = Layer.merge(MemoryEventStore.layer, SignatureVerifierInThread)
const wire = Schema.encodeSync(UsageReceipt)

describe("usage receipts shared with a member", () => {
  it.live("a hostile batch gets a typed refusal and changes nothing; a good receipt is held once and recorded", () =>
    Effect.gen(function* () {
      const { node, ai, developer, worker, model } = yield* setupChain
      const store = yield* EventStore
      const settler = yield* makeSettler({ settlerKey: devProposerKey(ai), shareGraceMs: 60_000, foreignHeldMax: 2 }, CHAIN_ID, node)
      const shared = yield* makeSharedReceipts(settler, node, { peers: [] })
      const refusal = (batch: ReadonlyArray<unknown>) =>
        Effect.map(Effect.flip(shared.accept(batch)), (e) => ({ reason: e.reason, index: e.index, ledgerReason: e.ledgerReason }))

      const good = receiptOf(developer, worker, model)
      const intruder = devKey(3)
      const g = good.grant
      const forgedGrant = {
        ...good,
        grant: { ...g, signature: signMessage(sessionGrantDigest({ chainId: g.chainId, model: g.model, issuedAt: g.issuedAt, expiresAt: g.expiresAt, spendMax: g.spendMax, nonce: g.nonce }), intruder) }
      }
      const r0 = good.results[0]!
      const forgedResult = { ...good, results: [{ ...r0, signature: signMessage(resultDigest(good.taskId, r0.fingerprint, r0.execMs), intruder) }] }
      const otherChain = receiptOf(developer, worker, model, developer, CHAIN_ID + 1n)

      expect(yield* refusal([wire(forgedGrant)])).toEqual({ reason: "BadReceipt", index: 0, ledgerReason: "BadGrantSignature" })
      expect(yield* refusal([wire(forgedResult)])).toEqual({ reason: "BadReceipt", index: 0, ledgerReason: "BadResultSignature" })
      expect(yield* refusal([wire(otherChain)])).toEqual({ reason: "BadReceipt", index: 0, ledgerReason: "WrongChain" })
      expect(yield* refusal(Array.from({ length: SHARE_BATCH_MAX + 1 }, () => wire(good)))).toMatchObject({ reason: "TooMany" })
      for (const garbage of [null, "x", 7, { grant: 1 }, { ...wire(good), price: "-1" }]) {
        expect(yield* refusal([garbage]), JSON.stringify(garbage)).toEqual({ reason: "NotAReceipt", index: 0, ledgerReason: undefined })
      }
      // One bad receipt after a good one: the whole batch refused, the good one not held either.
      expect(yield* refusal([wire(good), wire(otherChain)])).toEqual({ reason: "BadReceipt", index: 1, ledgerReason: "WrongChain" })
      expect(yield* settler.foreignHeld).toBe(0)
      expect(yield* settler.pending).toEqual([])
      expect(yield* store.readStream(SHARED_RECEIPTS_STREAM)).toEqual([])

      // The good one: held and recorded once; again, known.
      expect(yield* shared.accept([wire(good)])).toEqual({ held: 1, known: 0 })
      expect(yield* shared.accept([wire(good), wire(good)])).toEqual({ held: 0, known: 2 })
      const recorded = yield* store.readStream(SHARED_RECEIPTS_STREAM)
      expect(recorded.map((e) => e.type)).toEqual(["ReceiptShared"])
      const event = decodeEventOf("shared", recorded[0]!.type, recorded[0]!.data)
      expect(Either.isRight(event) && event.right.receipt.taskId).toBe(good.taskId)

      // Held at most `foreignHeldMax` (2 here): a batch past the room is refused whole.
      const more = [receiptOf(developer, worker, model), receiptOf(developer, worker, model)]
      expect(yield* refusal(more.map((r) => wire(r)))).toMatchObject({ reason: "Full" })
      expect(yield* shared.accept([wire(more[0]!)])).toEqual({ held: 1, known: 0 })
      expect(yield* refusal([wire(more[1]!)])).toMatchObject({ reason: "Full" })
      expect(yield* settler.foreignHeld).toBe(2)
      expect((yield* settler.pending).sort()).toEqual([good.taskId, more[0]!.taskId].sort())

      // The node lives: it still answers.
      expect((yield* node.status).shards.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(services), Effect.scoped)
  , 90_000)

  it.live("a held receipt waits out the grace period, survives the member's restart (replayed from its stream) and settles once", () =>
    Effect.gen(function* () {
      const { node, ai, aiLedger, developer, worker, model } = yield* setupChain
      const store = yield* EventStore
      const key = devProposerKey(ai)
      const receipt = receiptOf(developer, worker, model)
      const first = yield* makeSettler({ settlerKey: key, shareGraceMs: 60_000 }, CHAIN_ID, node)
      const shared = yield* makeSharedReceipts(first, node, { peers: [] })
      expect(yield* shared.accept([wire(receipt)])).toEqual({ held: 1, known: 0 })
      // Within the grace period the member does not submit it (its own gateway normally does).
      const nonce = (yield* node.account(key.publicKey.address, ai)).pendingNonce
      yield* first.round
      expect((yield* node.account(key.publicKey.address, ai)).pendingNonce).toBe(nonce)

      // The member restarts: a new Settler, fed from the stream as the AI projection does on start.
      const again = yield* makeSettler({ settlerKey: key, shareGraceMs: 500 }, CHAIN_ID, node)
      const sharedAgain = yield* makeSharedReceipts(again, node, { peers: [] })
      for (const e of yield* store.readStream(SHARED_RECEIPTS_STREAM)) {
        const decoded = decodeEventOf("shared", e.type, e.data)
        if (Either.isRight(decoded)) yield* sharedAgain.replayed(decoded.right)
      }
      expect(yield* again.pending).toEqual([receipt.taskId])
      yield* eventually(
        "the replayed receipt submitted after its grace and settled",
        Effect.zipRight(again.round, aiLedger),
        (s) => HashSet.has(s.settled, receipt.taskId)
      )
      expect(escrowOf(yield* aiLedger, developer.publicKey.address, model)).toBe(4n * PRICE)
      // Settled once: one UsageSettled, no refusal of a second submission.
      const verdicts = (yield* store.readStream(`shard-${ai}`)).filter((e) => e.type === "UsageSettled" || e.type === "UsageRefused")
      expect(verdicts.map((e) => e.type)).toEqual(["UsageSettled"])
      // Now settled on the ledger: the same receipt shared again is known, not held.
      const third = yield* makeSettler({ settlerKey: key }, CHAIN_ID, node)
      expect(yield* (yield* makeSharedReceipts(third, node, { peers: [] })).accept([wire(receipt)])).toEqual({ held: 0, known: 1 })
    }).pipe(Effect.provide(services), Effect.scoped)
  , 90_000)

  it.live("over the RPC transport: hostile batches get the typed ReceiptsRefused, a good one is held, the server keeps answering", () =>
    Effect.gen(function* () {
      const { node, ai, developer, worker, model } = yield* setupChain
      const settler = yield* makeSettler({ settlerKey: devProposerKey(ai), shareGraceMs: 60_000 }, CHAIN_ID, node)
      const shared = yield* makeSharedReceipts(settler, node, { peers: [] })
      // The AI calls served by the node's handlers and request limits; of the AiNode only the door under test.
      const port = yield* Effect.promise(freePort)
      const served = HttpLayerRouter.serve(
        RpcServer.layerHttpRouter({ group: AiRpcs.merge(RefusedRpcs), path: WS_PATH, protocol: "websocket" }).pipe(Layer.provide([wsServerSerialization, requestLimitsLayer()])),
        { disableLogger: true }
      ).pipe(
        Layer.provide([AiRpcHandlers, RefusedRpcHandlers]),
        Layer.provide(Layer.succeed(AiNode, { shareReceipts: shared.accept } as unknown as AiNodeShape)),
        Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
      )
      yield* Layer.build(served)
      const client = yield* makeClient(`ws://127.0.0.1:${port}${WS_PATH}`)
      const refusal = (receipts: ReadonlyArray<unknown>) =>
        client.usage.receipts({ receipts }).pipe(
          Effect.flip,
          Effect.map((e) => (e._tag === "ReceiptsRefused" ? { reason: e.reason, ledgerReason: e.ledgerReason } : { other: e._tag }))
        )
      const good = receiptOf(developer, worker, model)
      const otherChain = receiptOf(developer, worker, model, developer, CHAIN_ID + 1n)
      expect(yield* refusal([wire(otherChain)])).toEqual({ reason: "BadReceipt", ledgerReason: "WrongChain" })
      expect(yield* refusal([{ grant: "x" }, 1, null])).toEqual({ reason: "NotAReceipt", ledgerReason: undefined })
      expect(yield* refusal(Array.from({ length: SHARE_BATCH_MAX + 1 }, () => wire(good)))).toEqual({ reason: "TooMany", ledgerReason: undefined })
      // A frame over the method's 512 KiB is refused by the transport's request limits, unread.
      expect(yield* refusal(["x".repeat(600 * 1024)])).toEqual({ other: "RequestRefused" })
      expect(yield* client.usage.receipts({ receipts: [wire(good)] })).toEqual({ held: 1, known: 0 })
      expect(yield* settler.pending).toEqual([good.taskId])
    }).pipe(Effect.provide(services), Effect.scoped)
  , 90_000)
})

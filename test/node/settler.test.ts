/**
 * The Settler against a real in-process chain (single producers, the AI
 * ledger hook): a model registered and attested, a worker registered on
 * chain, escrow deposited by receipt; a usage receipt signed by the
 * developer and the worker, given to the Settler, settles on the AI ledger
 * in a `usage.settle` of the node's key; the provider and the worker are
 * paid by receipt exactly the fees of `taskFees`; the same receipt given
 * again is not sent again. A receipt the ledger refuses leaves the pending
 * list and its capture goes back to the gateway's escrow book, once. A
 * confirmed overrun's receipt (two workers' signed claims) goes in its own
 * `usage.overran` in the same round.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, HashSet, Layer, Schema } from "effect"
import { escrowOf, workerOf } from "../../domain/ai/ledger/state.js"
import { overrunDigest, signMessage } from "../../domain/ai/signedMessages.js"
import { sha256, type Hash32 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devKey, devKeyFromSeed, devProposerKey, type PrivateKey } from "../../domain/chain/keys.js"
import type { OverranReceipt } from "../../domain/chain/transaction.js"
import { taskFees } from "../../domain/economics/fees.js"
import { SignatureVerifierInThread } from "../../infra/crypto/SignatureVerifier.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { makeSettler } from "../../src/node/ai/Settler.js"
import { onUsageRefused } from "../../src/node/ai/refusedReceipt.js"
import { Capture, Deposit, Reserve } from "../../domain/ai/escrow/commands.js"
import { UsageRefused } from "../../domain/ai/ledger/events.js"
import { escrowStream, makeEscrowActors } from "../../actors/EscrowActor.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { CHAIN_ID, PRICE, eventually, receiptOf, setupChain, submit } from "./support/settlerChain.js"

const services = Layer.merge(MemoryEventStore.layer, SignatureVerifierInThread)
const decodeRefused = Schema.decodeUnknownSync(UsageRefused)

/** A confirmed overrun of one task under a fresh grant: the developer's request and two workers' signed claims (300 and 450 ms). */
const overranOf = (developer: PrivateKey, workers: readonly [PrivateKey, PrivateKey], model: Hash32): OverranReceipt => {
  const { grant, taskId, request } = receiptOf(developer, workers[0], model)
  const claim = (w: PrivateKey, millis: number) => ({
    worker: w.publicKey.address,
    kind: "Deadline" as const,
    millis,
    limit: 250,
    signature: signMessage(overrunDigest(taskId, "Deadline", millis, 250), w)
  })
  return { grant, taskId, model, price: PRICE, claims: [claim(workers[0], 300), claim(workers[1], 450)], request }
}

describe("the Settler", () => {
  it.live("a confirmed overrun's receipt goes in usage.overran beside a validated one's usage.settle, in one round: both charged once, both workers paid their burned ms", () =>
    Effect.gen(function* () {
      const { genesis, node, ai, aiLedger, developer, worker, model } = yield* setupChain
      const confirmer = devKeyFromSeed("settler-test/confirmer")
      yield* submit(node, confirmer, { kind: "worker.register", gpuClass: "CPU", devices: 1, endpoint: "ws://127.0.0.1:2" }, ai)
      const validated = receiptOf(developer, worker, model)
      const overran = overranOf(developer, [worker, confirmer], model)
      const settlerKey = devProposerKey(ai)
      const settler = yield* makeSettler({ settlerKey }, CHAIN_ID, node)
      const before = [(yield* node.account(worker.publicKey.address)).balance, (yield* node.account(confirmer.publicKey.address)).balance]
      yield* settler.add(validated, developer.publicKey.address)
      yield* settler.add(overran, developer.publicKey.address)
      expect(settler.unsettled(developer.publicKey.address, model)).toBe(2n * PRICE)
      const nonce = (yield* node.account(settlerKey.publicKey.address, ai)).pendingNonce
      yield* settler.round
      // Two transactions, one of each kind.
      expect((yield* node.account(settlerKey.publicKey.address, ai)).pendingNonce).toBe(nonce + 2n)
      yield* eventually("both charged on the AI ledger", aiLedger, (s) => HashSet.has(s.settled, validated.taskId) && HashSet.has(s.settled, overran.taskId))
      const after = yield* aiLedger
      expect(escrowOf(after, developer.publicKey.address, model)).toBe(3n * PRICE)
      const units = (w: PrivateKey) => workerOf(after, w.publicKey.address)!.gpuUnitsMilli
      const fees = taskFees(genesis.economics, PRICE, [
        { worker: worker.publicKey.address, execMs: 300, gpuUnitsMilli: units(worker) },
        { worker: confirmer.publicKey.address, execMs: 450, gpuUnitsMilli: units(confirmer) }
      ])
      const validatedFees = taskFees(genesis.economics, PRICE, [{ worker: worker.publicKey.address, execMs: 250, gpuUnitsMilli: units(worker) }])
      yield* eventually("the confirmer paid its 450 ms", node.account(confirmer.publicKey.address), (a) => a.balance === before[1]! + fees.computeFees[1]!.amount)
      yield* eventually("the claimant paid its 300 ms and its validated task's 250 ms", node.account(worker.publicKey.address), (a) =>
        a.balance === before[0]! + fees.computeFees[0]!.amount + validatedFees.computeFees[0]!.amount
      )
      // Settled: nothing pending, nothing sent again.
      yield* settler.round
      expect(yield* settler.pending).toEqual([])
      yield* settler.add(overran, developer.publicKey.address)
      yield* settler.round
      expect(yield* settler.pending).toEqual([])
      expect((yield* node.account(settlerKey.publicKey.address, ai)).pendingNonce).toBe(nonce + 2n)
    }).pipe(Effect.provide(services), Effect.scoped)
  , 90_000)

  it.live("settles a signed usage receipt on the AI ledger once; provider and worker are paid its fees by receipt", () =>
    Effect.gen(function* () {
      const { genesis, node, ai, aiLedger, provider, developer, worker, model } = yield* setupChain
      const receipt = receiptOf(developer, worker, model)
      const taskId = receipt.taskId

      const settlerKey = devProposerKey(ai)
      const settler = yield* makeSettler({ settlerKey }, CHAIN_ID, node)
      const providerBefore = (yield* node.account(provider.publicKey.address)).balance
      const workerBefore = (yield* node.account(worker.publicKey.address)).balance
      yield* settler.add(receipt, developer.publicKey.address)
      expect(settler.unsettled(developer.publicKey.address, model)).toBe(PRICE)
      yield* settler.round
      yield* eventually("the receipt settled on the AI ledger", aiLedger, (s) => HashSet.has(s.settled, taskId))
      const settled = yield* aiLedger
      expect(escrowOf(settled, developer.publicKey.address, model)).toBe(4n * PRICE)

      // Paid by the ledger's rules, delivered by receipt to each payee's transfer shard.
      const units = workerOf(settled, worker.publicKey.address)!.gpuUnitsMilli
      const fees = taskFees(genesis.economics, PRICE, [{ worker: worker.publicKey.address, execMs: 250, gpuUnitsMilli: units }])
      yield* eventually("the provider paid", node.account(provider.publicKey.address), (a) => a.balance === providerBefore + fees.providerNet)
      yield* eventually("the worker paid", node.account(worker.publicKey.address), (a) => a.balance === workerBefore + fees.computeFees[0]!.amount)

      // Settled: not pending, and the same receipt again is not sent again (the settler's AI-shard nonce stays).
      yield* settler.round
      expect(yield* settler.pending).toEqual([])
      const nonce = (yield* node.account(settlerKey.publicKey.address, ai)).pendingNonce
      yield* settler.add(receipt, developer.publicKey.address)
      yield* settler.round
      expect(yield* settler.pending).toEqual([])
      expect((yield* node.account(settlerKey.publicKey.address, ai)).pendingNonce).toBe(nonce)
      expect(settler.unsettled(developer.publicKey.address, model)).toBe(0n)
    }).pipe(Effect.provide(services), Effect.scoped)
  , 90_000)

  it.live("a receipt the ledger refuses leaves the pending list and returns its capture to the gateway's escrow book, once (gap 5); the settled one stays captured", () =>
    Effect.gen(function* () {
      const { node, ai, aiLedger, developer, worker, model } = yield* setupChain
      const dev = developer.publicKey.address
      const store = yield* EventStore
      const escrows = yield* makeEscrowActors()
      const book = yield* escrows.get(escrowStream(dev, model))
      // The gateway's book: the ledger's 5 prices credited, two tasks captured as TaskRunner captures them.
      yield* book.ask(new Deposit({ developer: dev, modelId: model, amount: 5n * PRICE, txHash: bytesToHex(sha256("credit")) as Hash32, at: Date.now() }))
      const good = receiptOf(developer, worker, model)
      // Its request signed by another key: the ledger refuses it BadRequestSignature and takes nothing.
      const bad = receiptOf(developer, worker, model, devKey(3))
      for (const r of [good, bad]) {
        yield* book.ask(new Reserve({ taskId: r.taskId, price: PRICE }))
        yield* book.ask(new Capture({ taskId: r.taskId, receiptBatchId: bytesToHex(sha256("batch")) as Hash32 }))
      }
      expect((yield* book.state).totals).toEqual({ deposited: 5n * PRICE, available: 3n * PRICE, reserved: 0n, captured: 2n * PRICE })

      const settler = yield* makeSettler({ settlerKey: devProposerKey(ai) }, CHAIN_ID, node)
      yield* settler.add(good, dev)
      yield* settler.add(bad, dev)
      yield* settler.round
      yield* eventually("the good receipt settled", aiLedger, (s) => HashSet.has(s.settled, good.taskId))
      expect(escrowOf(yield* aiLedger, dev, model)).toBe(4n * PRICE)

      // What the AI projection does with the AI shard's events (AiProjection.ts): settled leaves pending, refused returns the capture.
      const verdicts = Effect.gen(function* () {
        const events = yield* store.readStream(`shard-${ai}`)
        return events.filter((e) => e.type === "UsageRefused" || e.type === "UsageSettled")
      })
      const refusal = (yield* verdicts).find((e) => e.type === "UsageRefused")
      expect(refusal, "the ledger's UsageRefused").toBeDefined()
      const refused = decodeRefused({ ...(refusal!.data as object), _tag: "UsageRefused" })
      expect([refused.taskId, refused.reason]).toEqual([bad.taskId, "BadRequestSignature"])
      const apply = onUsageRefused(settler, escrows)
      yield* settler.settled(good.taskId)
      yield* apply(refused)
      expect(yield* settler.pending).toEqual([])
      expect(settler.unsettled(dev, model)).toBe(0n)
      // The book again says what the ledger holds: 5 prices less the one settled.
      expect((yield* book.state).totals).toEqual({ deposited: 5n * PRICE, available: 4n * PRICE, reserved: 0n, captured: PRICE })
      expect((yield* book.state).totals.available).toBe(escrowOf(yield* aiLedger, dev, model))

      // A replay of the log (every start) re-adds the receipt, then the refusal: nothing returned twice.
      const revision = (yield* store.head(escrowStream(dev, model)))!.revision
      const again = yield* makeSettler({ settlerKey: devProposerKey(ai) }, CHAIN_ID, node)
      yield* again.add(bad, dev)
      yield* onUsageRefused(again, escrows)(refused)
      expect((yield* book.state).totals.available).toBe(4n * PRICE)
      expect((yield* store.head(escrowStream(dev, model)))!.revision).toBe(revision)
    }).pipe(Effect.provide(services), Effect.scoped)
  , 90_000)
})

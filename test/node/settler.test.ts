/**
 * The Settler against a real in-process chain (single producers, the AI
 * ledger hook): a model registered and attested, a worker registered on
 * chain, escrow deposited by receipt; a usage receipt signed by the
 * developer and the worker, given to the Settler, settles on the AI ledger
 * in a `usage.settle` of the node's key; the provider and the worker are
 * paid by receipt exactly the fees of `taskFees`; the same receipt given
 * again is not sent again.
 */
import { describe, expect, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { Effect, HashSet, Layer, Schedule } from "effect"
import { escrowOf, workerOf } from "../../domain/ai/ledger/state.js"
import { resultDigest, sessionGrantDigest, signMessage, taskIdOf, taskRequestDigest } from "../../domain/ai/signedMessages.js"
import { GenesisConfig } from "../../domain/chain/genesis.js"
import { sha256, type Hash32 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devKey, devKeyFromSeed, devProposerKey, type PrivateKey } from "../../domain/chain/keys.js"
import { aiShardOf } from "../../domain/chain/sharding.js"
import { signTransaction, TransactionBody, type TransactionPayload, type UsageReceipt } from "../../domain/chain/transaction.js"
import { taskFees } from "../../domain/economics/fees.js"
import { SignatureVerifierInThread } from "../../infra/crypto/SignatureVerifier.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { makeChainNode } from "../../src/node/ChainNodeLive.js"
import type { ChainNodeShape } from "../../src/node/ChainNode.js"
import { makeSettler } from "../../src/node/ai/Settler.js"

const CHAIN_ID = 9_191n
const PRICE = 10n ** 18n
const FINGERPRINT = bytesToHex(sha256("the fingerprint")) as Hash32
const MANIFEST = JSON.stringify({ name: "m", version: "1", pricePerCall: PRICE.toString(), minGpuClass: "CPU", license: "MIT", description: "settler test" })

const services = Layer.merge(MemoryEventStore.layer, SignatureVerifierInThread)

const eventually = <A, E>(what: string, read: Effect.Effect<A, E>, ok: (a: A) => boolean) =>
  read.pipe(
    Effect.repeat({ until: ok, schedule: Schedule.spaced("50 millis") }),
    Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) })
  )

const submit = (node: ChainNodeShape, key: PrivateKey, payload: TransactionPayload, shard?: number) =>
  Effect.gen(function* () {
    const account = yield* node.account(key.publicKey.address, shard)
    const tx = signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce: account.pendingNonce, fee: 0n, payload }), key)
    const r = yield* node.submit(bytesToHex(tx.encoded), true)
    expect(r.status, `${payload.kind} ${tx.hash}`).toBe("included")
    return tx
  })

describe("the Settler", () => {
  it.live("settles a signed usage receipt on the AI ledger once; provider and worker are paid its fees by receipt", () =>
    Effect.gen(function* () {
      const genesis = new GenesisConfig({ chainId: CHAIN_ID, timestamp: Date.now() - 1_000, devAccountCount: 4 })
      const node = yield* makeChainNode({ genesis, inclusionWait: "20 seconds" })
      const ai = aiShardOf(genesis.transferShards)
      const aiLedger = node.ledger(ai).pipe(Effect.map((l) => l.ai!))
      const provider = devKey(1)
      const developer = devKey(2)
      const worker = devKeyFromSeed("settler-test/worker")
      const attestor = devProposerKey(ai)

      const registered = yield* submit(node, provider, { kind: "model.register", weightsHash: FINGERPRINT, sizeBytes: 10n, manifest: MANIFEST }, ai)
      const model = registered.hash as Hash32
      yield* submit(node, attestor, { kind: "model.attest", model, verdict: "verified", fingerprint: FINGERPRINT }, ai)
      yield* submit(node, worker, { kind: "worker.register", gpuClass: "CPU", devices: 1, endpoint: "ws://127.0.0.1:1" }, ai)
      yield* submit(node, developer, { kind: "escrow.deposit", model, amount: 5n * PRICE })
      yield* eventually("the escrow credited on the AI ledger", aiLedger, (s) => escrowOf(s, developer.publicKey.address, model) === 5n * PRICE)
      expect((yield* aiLedger).models.pipe((m) => [...m].find(([id]) => id === model)?.[1].status)).toBe("Verified")

      const now = Date.now()
      const grant = { chainId: CHAIN_ID, model, issuedAt: now - 10, expiresAt: now + 60_000, spendMax: 3n * PRICE, nonce: `0x${randomBytes(16).toString("hex")}` }
      const request = { chainId: CHAIN_ID, model, grantNonce: grant.nonce, inputHash: bytesToHex(sha256(`inputs ${now}`)) as Hash32, nonce: `0x${randomBytes(16).toString("hex")}` }
      const taskId = taskIdOf(request)
      const receipt: UsageReceipt = {
        grant: { ...grant, publicKey: developer.publicKey.hex, signature: signMessage(sessionGrantDigest(grant), developer) },
        taskId,
        model,
        price: PRICE,
        results: [{ worker: worker.publicKey.address, fingerprint: FINGERPRINT, execMs: 250, signature: signMessage(resultDigest(taskId, FINGERPRINT, 250), worker) }],
        request: { inputHash: request.inputHash, nonce: request.nonce, signature: signMessage(taskRequestDigest(request), developer) }
      }

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
})

/**
 * A real in-process chain (single producers, the AI ledger hook) with a
 * Verified model, a registered worker and a developer's escrow on the AI
 * ledger; and usage receipts signed by their parties, as a gateway makes
 * them. For the Settler's and the shared receipts' tests.
 */
import { randomBytes } from "node:crypto"
import { Effect, Schedule } from "effect"
import { expect } from "@effect/vitest"
import { escrowOf } from "../../../domain/ai/ledger/state.js"
import { resultDigest, sessionGrantDigest, signMessage, taskIdOf, taskRequestDigest } from "../../../domain/ai/signedMessages.js"
import { GenesisConfig } from "../../../domain/chain/genesis.js"
import { sha256, type Hash32 } from "../../../domain/chain/hash.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { devKey, devKeyFromSeed, devProposerKey, type PrivateKey } from "../../../domain/chain/keys.js"
import { aiShardOf } from "../../../domain/chain/sharding.js"
import { signTransaction, TransactionBody, type TransactionPayload, type UsageReceipt } from "../../../domain/chain/transaction.js"
import { makeChainNode } from "../../../src/node/ChainNodeLive.js"
import type { ChainNodeShape } from "../../../src/node/ChainNode.js"

export const CHAIN_ID = 9_191n
export const PRICE = 10n ** 18n
export const FINGERPRINT = bytesToHex(sha256("the fingerprint")) as Hash32
export const MANIFEST = JSON.stringify({ name: "m", version: "1", pricePerCall: PRICE.toString(), minGpuClass: "CPU", license: "MIT", description: "settler test" })


export const eventually = <A, E>(what: string, read: Effect.Effect<A, E>, ok: (a: A) => boolean) =>
  read.pipe(
    Effect.repeat({ until: ok, schedule: Schedule.spaced("50 millis") }),
    Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) })
  )

export const submit = (node: ChainNodeShape, key: PrivateKey, payload: TransactionPayload, shard?: number) =>
  Effect.gen(function* () {
    const account = yield* node.account(key.publicKey.address, shard)
    const tx = signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce: account.pendingNonce, fee: 0n, payload }), key)
    const r = yield* node.submit(bytesToHex(tx.encoded), true)
    expect(r.status, `${payload.kind} ${tx.hash}`).toBe("included")
    return tx
  })

/** A chain with a Verified model, a registered worker and 5 prices of the developer's escrow on the AI ledger. */
export const setupChain = Effect.gen(function* () {
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
  return { genesis, node, ai, aiLedger, provider, developer, worker, model }
})

/** A receipt of one task under a fresh grant: the developer's request (signed by `requester`, the developer unless told) and the worker's result. */
export const receiptOf = (developer: PrivateKey, worker: PrivateKey, model: Hash32, requester: PrivateKey = developer, chainId = CHAIN_ID): UsageReceipt => {
  const now = Date.now()
  const grant = { chainId, model, issuedAt: now - 10, expiresAt: now + 60_000, spendMax: 3n * PRICE, nonce: `0x${randomBytes(16).toString("hex")}` }
  const request = { chainId, model, grantNonce: grant.nonce, inputHash: bytesToHex(sha256(`inputs ${now}`)) as Hash32, nonce: `0x${randomBytes(16).toString("hex")}` }
  const taskId = taskIdOf(request)
  return {
    grant: { ...grant, publicKey: developer.publicKey.hex, signature: signMessage(sessionGrantDigest(grant), developer) },
    taskId,
    model,
    price: PRICE,
    results: [{ worker: worker.publicKey.address, fingerprint: FINGERPRINT, execMs: 250, signature: signMessage(resultDigest(taskId, FINGERPRINT, 250), worker) }],
    request: { inputHash: request.inputHash, nonce: request.nonce, signature: signMessage(taskRequestDigest(request), requester) }
  }
}


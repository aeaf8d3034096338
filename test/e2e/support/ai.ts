/**
 * The AI shard's doors as a provider, a developer and a compute node use
 * them through the typed client: a transaction signed and included, a model
 * registered on chain and its weights uploaded in chunks its provider
 * signed (then its verdict), a signed session grant, a signed worker
 * registration.
 */
import { createHash, randomBytes } from "node:crypto"
import { Effect, Either } from "effect"
import ort from "onnxruntime-node"
import { expect } from "vitest"
import type { ModelManifestEncoded } from "../../../domain/ai/manifest.js"
import { decodeTensorMapJson, type TensorMap } from "../../../domain/ai/tensor.js"
import { toOrtFeeds } from "../../../infra/inference/ortTensor.js"
import { sessionGrantDigest, signMessage, signTaskRequest, signWeightsChunk, workerRegistrationDigest } from "../../../domain/ai/signedMessages.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import type { PrivateKey } from "../../../domain/chain/keys.js"
import { defaultFeeOf } from "../../../domain/chain/genesis.js"
import { isAiShardKind, signTransaction, TransactionBody, type TransactionPayload } from "../../../domain/chain/transaction.js"
import { BLOB_CHUNK_BYTES } from "../../../src/api/AiRpcs.js"
import { signInferRequest, type GrantOfSession, type ModelView } from "../../../src/client/index.js"
import { waitFor } from "./chain.js"
import type { TestClient } from "./client.js"

export const sha256 = (bytes: Uint8Array): string => `0x${createHash("sha256").update(bytes).digest("hex")}`
/** A fresh 16-byte nonce, as grants and registrations carry. */
export const freshNonce = (): string => `0x${randomBytes(16).toString("hex")}`

/**
 * The account that counts `kind`'s nonce: the sender's on the AI shard for
 * the AI shard's kinds (model.*), on its transfer shard otherwise.
 */
export const senderAccount = async (c: TestClient, address: string, kind: TransactionPayload["kind"]) => {
  const status = await c.run(c.client.node.status())
  const ai = status.shards.find((s) => s.kind === "ai")!.shard
  return c.run(c.client.account.get({ address, ...(isAiShardKind(kind) ? { shard: ai } : {}) }))
}

/** Signs `payload` with the sender's next nonce (on the shard that runs it; fee `defaultFeeOf`), submits it and waits until a block includes it; its hash. */
export const submitIncluded = async (c: TestClient, key: PrivateKey, payload: TransactionPayload, timeoutMs?: number): Promise<string> => {
  const { chainId } = await c.run(c.client.node.status())
  const account = await senderAccount(c, key.publicKey.address, payload.kind)
  const tx = signTransaction(new TransactionBody({ chainId, nonce: account.pendingNonce, fee: defaultFeeOf(payload.kind), payload }), key)
  const r = await c.run(c.client.tx.submit({ raw: bytesToHex(tx.encoded), wait: true }), timeoutMs)
  expect(r.status).toBe("included")
  return tx.hash
}

/** Registers `bytes` on chain under `manifest` (signed by `provider`); the model's id. */
export const registerModel = (c: TestClient, provider: PrivateKey, bytes: Uint8Array, manifest: ModelManifestEncoded, timeoutMs?: number): Promise<string> =>
  submitIncluded(c, provider, { kind: "model.register", weightsHash: sha256(bytes) as never, sizeBytes: BigInt(bytes.length), manifest: JSON.stringify(manifest) }, timeoutMs)

/** Uploads `bytes` of a registered model in chunks `provider` signed (retried while the node has not seen the registration yet). */
export const uploadWeights = async (c: TestClient, provider: PrivateKey, bytes: Uint8Array): Promise<void> => {
  const { chainId } = await c.run(c.client.node.status())
  const hash = sha256(bytes)
  for (let offset = 0; offset < bytes.length; offset += BLOB_CHUNK_BYTES) {
    const chunk = signWeightsChunk(provider, chainId, hash, bytes.length, offset, bytes.subarray(offset, offset + BLOB_CHUNK_BYTES))
    await waitFor(`the node to take ${hash} at ${offset}`, async () => {
      const r = await Effect.runPromise(Effect.either(c.client.model.upload(chunk)))
      if (Either.isRight(r)) return r.right
      if (r.left._tag === "UploadRejected" && r.left.reason === "UnknownModel") return undefined
      throw new Error(`upload refused: ${r.left.message}`)
    })
  }
}

/** The model once it is no longer Pending. */
export const verdictOf = (c: TestClient, id: string, timeoutMs = 45_000): Promise<ModelView> =>
  waitFor(
    `the verdict on model ${id}`,
    async () => {
      const m = await Effect.runPromise(Effect.either(c.client.model.get({ model: id })))
      return Either.isRight(m) && m.right.status !== "Pending" ? m.right : undefined
    },
    { timeoutMs, intervalMs: 100 }
  )

/** The real upload path: registered on chain first, then the weights in signed chunks, then the verdict. */
export const uploadModel = async (c: TestClient, provider: PrivateKey, bytes: Uint8Array, manifest: ModelManifestEncoded, timeoutMs?: number): Promise<ModelView> => {
  const id = await registerModel(c, provider, bytes, manifest)
  await uploadWeights(c, provider, bytes)
  return verdictOf(c, id, timeoutMs)
}

export interface GrantOptions {
  readonly issuedAt?: number
  readonly expiresAt?: number
  readonly spendMax?: bigint
  readonly nonce?: string
}

/** A session grant for `model` signed by `developer` (now, a minute long, a fresh nonce unless told). */
export const signGrant = (chainId: bigint, developer: PrivateKey, model: string, o: GrantOptions = {}) => {
  const g = { model, issuedAt: o.issuedAt ?? Date.now(), expiresAt: o.expiresAt ?? Date.now() + 60_000, spendMax: o.spendMax ?? 100n, nonce: o.nonce ?? freshNonce() }
  return { publicKey: developer.publicKey.hex, ...g, signature: signMessage(sessionGrantDigest({ chainId, ...g }), developer) }
}

/** A session the test opened, with what its calls' requests name: the developer's key, the chain and the grant's model and nonce. */
export interface TestSession {
  readonly session: string
  readonly key: PrivateKey
  readonly grant: GrantOfSession
}

/** Opens a session with `grant` (as `signGrant` made it) for `developer`. */
export const openTestSession = async (c: TestClient, chainId: bigint, developer: PrivateKey, grant: ReturnType<typeof signGrant>): Promise<TestSession> => {
  const { session } = await c.run(c.client.session.open(grant))
  return { session, key: developer, grant: { chainId, model: grant.model, nonce: grant.nonce } }
}

/**
 * `infer`'s payload: the session, the inputs and the developer's request for
 * them, signed with the grant's key. Inputs that are not tensors cannot be
 * hashed: their request names no inputs (the node refuses the inputs first).
 */
export const inferArgs = (s: TestSession, inputs: unknown, nonce: string = freshNonce()) => {
  const signed = signInferRequest(s.key, s.grant, inputs, nonce)
  const request = Either.isRight(signed)
    ? signed.right
    : signTaskRequest(s.key, { chainId: s.grant.chainId, model: s.grant.model as Hash32, grantNonce: s.grant.nonce, inputHash: `0x${"00".repeat(32)}` as Hash32, nonce })
  return { session: s.session, inputs, ...request }
}

export interface RegistrationOptions {
  readonly gpuClass?: string
  readonly at?: number
  readonly nonce?: string
  readonly endpoint?: string
}

/** A compute node's registration signed by `worker` (now, a fresh nonce unless told). */
export const signRegistration = (chainId: bigint, worker: PrivateKey, o: RegistrationOptions = {}) => {
  const offer = { gpuClass: o.gpuClass ?? "CPU", devices: 1, stake: 0n, endpoint: o.endpoint ?? "http://worker.example", at: o.at ?? Date.now(), nonce: o.nonce ?? freshNonce() }
  return { publicKey: worker.publicKey.hex, ...offer, signature: signMessage(workerRegistrationDigest({ chainId, ...offer }), worker) }
}

/**
 * `worker` registered on the AI shard by its own signed `worker.register`
 * (fee 0), as the node requires before it takes the worker's connection;
 * waits until the node's view of the ledger shows it.
 */
export const registerWorkerOnChain = async (c: TestClient, worker: PrivateKey, o: { readonly gpuClass?: string; readonly devices?: number; readonly endpoint?: string } = {}): Promise<void> => {
  const address = worker.publicKey.address
  await submitIncluded(c, worker, { kind: "worker.register", gpuClass: o.gpuClass ?? "CPU", devices: o.devices ?? 1, endpoint: o.endpoint ?? "http://worker.example" })
  await waitFor(`worker ${address} on chain`, async () => (Either.isRight(await Effect.runPromise(Effect.either(c.client.worker.onChain({ address })))) ? true : undefined))
}

/** A hostile model's manifest at `price` a call: CPU, one worker, no sampled re-execution. */
export const servingManifest = (name: string, price: bigint): ModelManifestEncoded => ({
  name,
  version: "1",
  pricePerCall: String(price),
  minGpuClass: "CPU",
  license: "MIT",
  description: "a serving-time hostile model",
  validation: { kind: "single", sampleRatePerMillion: 0 }
})

/** `bytes` run on `inputs` (the request's JSON tensors) by onnxruntime here, nothing between: what the network must return. */
export const bareRun = async (bytes: Uint8Array, inputs: unknown): Promise<TensorMap> => {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 })
  try {
    const out = await session.run(toOrtFeeds(Either.getOrThrow(decodeTensorMapJson(inputs))))
    const map: Record<string, TensorMap[string]> = {}
    for (const name of Object.keys(out)) map[name] = { type: out[name]!.type, dims: out[name]!.dims, data: out[name]!.data } as TensorMap[string]
    return map
  } finally {
    await session.release()
  }
}

/** A tensor as plain arrays, to compare node outputs with a bare onnxruntime run element by element. */
export const plain = (t: { readonly type: string; readonly dims: ReadonlyArray<number>; readonly data: unknown }) => ({
  type: t.type,
  dims: [...t.dims],
  data: Array.from(t.data as ArrayLike<number | bigint>)
})

/** The node's outputs (tensor JSON) equal a bare run's, name by name, bit for bit. */
export const expectSameOutputs = (outputs: unknown, bare: TensorMap) => {
  const got = Either.getOrThrow(decodeTensorMapJson(outputs))
  expect(Object.keys(got).sort()).toEqual(Object.keys(bare).sort())
  for (const name of Object.keys(bare)) expect(plain(got[name]!)).toEqual(plain(bare[name]!))
}

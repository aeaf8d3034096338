/**
 * The node's non-consensus doors under hostile input, against a real node
 * process: RPC frames at and over every size limit (WebSocket and HTTP), too
 * many streams on one connection, a replayed or stale worker registration, a
 * replayed session grant, weights uploads that are not the registering
 * provider's, and reads of ids nobody made. Each gets its exact typed
 * refusal, nothing is appended, and the node keeps answering.
 */
import { randomBytes } from "node:crypto"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Either } from "effect"
import { signWeightsChunk } from "../../domain/ai/signedMessages.js"
import type { PrivateKey } from "../../domain/chain/keys.js"
import { devKey } from "../../domain/chain/keys.js"
import type { TransactionPayload } from "../../domain/chain/transaction.js"
import { BLOB_CHUNK_BYTES } from "../../src/api/AiRpcs.js"
import { FRAME_BYTES_MAX, REQUEST_BYTES_DEFAULT, REQUEST_BYTES_MAX, SUBSCRIPTIONS_PER_CONNECTION_MAX } from "../../src/api/requestLimits.js"
import { SESSION_GRANT_WINDOW_MS, SESSION_LIFETIME_MAX_MS, SESSIONS_PER_DEVELOPER_MAX } from "../../src/node/ai/TaskRunner.js"
import { ENDPOINT_CHARS_MAX, REGISTRATION_WINDOW_MS } from "../../src/node/ai/WorkerHub.js"
import { UPLOADS_PER_PROVIDER_MAX } from "../../src/node/ai/AiNode.js"
import { SILERO_MANIFEST } from "../ai/support/models.js"
import { DEV, QUIET_BEACON, waitFor } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { freshNonce, registerModel as registerOnChain, registerWorkerOnChain, sha256, signGrant, signRegistration, submitIncluded, type GrantOptions } from "./support/ai.js"
import { failureOf, frameOf, rawSocket as openRawSocket, subscribeFrame } from "./support/frames.js"
import { cleanup, makeTempDir, spawnNode } from "./support/processes.js"
import type { NodeProcess } from "./support/processes.js"

let node: NodeProcess
let c: TestClient
let chainId: bigint

const PROVIDER = DEV[1]!
const OTHER_PROVIDER = DEV[2]!
const nonce = freshNonce

const lastPosition = async () => (await c.run(c.client.node.status())).eventsPosition

/** `effect` is refused with `tag` (and `reason`), and no event is appended. */
const expectRefused = async <A, E>(effect: Effect.Effect<A, E>, tag: string, reason?: string) => {
  const before = await lastPosition()
  const error = (await c.fail(effect)) as { readonly _tag: string; readonly reason?: string; readonly message: string }
  expect({ tag: error._tag, reason: error.reason }).toEqual({ tag, reason })
  expect(error.message).not.toMatch(/\n\s+at /) // no stack trace
  expect(await lastPosition()).toBe(before)
  return error
}

const submit = (key: PrivateKey, payload: TransactionPayload) => submitIncluded(c, key, payload)

/** Registers a model on chain for `bytes` and waits until the node shows it. */
const registerModel = async (key: PrivateKey, bytes: Uint8Array, name: string) => {
  const id = await registerOnChain(c, key, bytes, { ...SILERO_MANIFEST, name })
  await waitFor(`model ${id} shown`, async () => (Either.isRight(await Effect.runPromise(Effect.either(c.client.model.get({ model: id })))) ? true : undefined))
  return id
}

/** Blobs stored (files named by their hash, under a directory of their hash's first byte). */
const blobFiles = () => readdirSync(join(node.dataDir, "blobs"), { recursive: true }).filter((f) => /(^|\/)0x[0-9a-f]{64}$/.test(String(f))).length

// ---------------------------------------------------------------- raw frames

const rawSocket = () => openRawSocket(node.url)

const HASH = `0x${"ab".repeat(32)}`
/** Per method: a payload with room for padding, and the typed answer a frame at the limit gets (never RequestRefused). */
const METHODS: ReadonlyArray<{ readonly method: string; readonly limit: number; readonly payload: (pad: string) => unknown; readonly atLimit: string }> = [
  { method: "tx.submit", limit: REQUEST_BYTES_MAX["tx.submit"]!, payload: (pad) => ({ raw: `0x${pad}`, wait: false }), atLimit: "TransactionRejected:Oversized" },
  {
    method: "model.upload",
    limit: REQUEST_BYTES_MAX["model.upload"]!,
    payload: (pad) => ({ weightsHash: HASH, sizeBytes: 10, offset: 0, data: pad, publicKey: "0x", signature: "0x" }),
    atLimit: "UploadRejected:BadChunk"
  },
  { method: "infer", limit: REQUEST_BYTES_MAX.infer!, payload: (pad) => ({ session: "nope", inputs: { pad }, nonce: "0x", signature: "0x" }), atLimit: "InferenceRejected:BadSession" },
  {
    method: "infer.stream",
    limit: REQUEST_BYTES_MAX["infer.stream"]!,
    payload: (pad) => ({ session: "nope", inputs: { pad }, nonce: "0x", signature: "0x" }),
    atLimit: "InferenceRejected:BadSession"
  },
  {
    method: "worker.result",
    limit: REQUEST_BYTES_MAX["worker.result"]!,
    payload: (pad) => ({ session: "nope", task: HASH, outputs: { pad }, fingerprint: HASH, millis: 1, signature: "0x" }),
    atLimit: "WorkerRejected:UnknownWorker"
  },
  { method: "escrow.get", limit: REQUEST_BYTES_DEFAULT, payload: (pad) => ({ developer: `0x${pad}`, model: HASH }), atLimit: "InvalidRequest:" }
]

beforeAll(async () => {
  node = await spawnNode({ dataDir: makeTempDir("doors"), extraArgs: [...QUIET_BEACON, "--workers", "0"] })
  c = await openClient(node.url)
  chainId = (await c.run(c.client.node.status())).chainId
})

afterAll(async () => {
  await c?.close()
  await cleanup()
})

describe("RPC frames at and over every size limit", () => {
  it.each(METHODS)("$method: at $limit bytes its own typed answer; one byte over, RequestRefused TooLarge; nothing appended", async ({ method, limit, payload, atLimit }) => {
    const s = await rawSocket()
    const before = await lastPosition()
    s.send(frameOf("1", method, payload, limit))
    expect(failureOf(await s.exitOf("1"))).toBe(atLimit)
    s.send(frameOf("2", method, payload, limit + 1))
    const exit = await s.exitOf("2")
    expect(failureOf(exit)).toBe("RequestRefused:TooLarge")
    expect(JSON.stringify(exit)).toContain(`a ${method} request is at most ${limit} bytes, this one is ${limit + 1}`)
    expect(await lastPosition()).toBe(before)
    // The same connection goes on serving.
    s.send(JSON.stringify({ _tag: "Request", id: "3", tag: "node.status", payload: {}, headers: [] }))
    expect(failureOf(await s.exitOf("3"))).toBe("Success")
    s.ws.close()
  })

  it(`a frame over ${FRAME_BYTES_MAX} bytes is not parsed: the WebSocket is closed with 1009; the node serves the next connection`, async () => {
    const s = await rawSocket()
    s.send(frameOf("1", "infer", (pad) => ({ session: "nope", inputs: { pad }, nonce: "0x", signature: "0x" }), FRAME_BYTES_MAX + 1))
    expect(await s.closed).toBe(1009)
    expect((await c.run(c.client.node.status())).chainId).toBe(chainId)
  })

  it("over HTTP: at the limit its own answer, one byte over RequestRefused TooLarge", async () => {
    const post = async (frame: string) => {
      const r = await fetch(`http://127.0.0.1:${node.port}/rpc`, { method: "POST", headers: { "content-type": "application/ndjson" }, body: `${frame}\n` })
      const lines = (await r.text()).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { _tag: string; exit?: unknown })
      return failureOf(lines.find((m) => m._tag === "Exit")?.exit)
    }
    for (const { method, limit, payload, atLimit } of METHODS.filter((m) => m.method === "tx.submit" || m.method === "escrow.get")) {
      expect(await post(frameOf("1", method, payload, limit))).toBe(atLimit)
      expect(await post(frameOf("1", method, payload, limit + 1))).toBe("RequestRefused:TooLarge")
    }
    // Through the typed client, the refusal is a value of the method's error type.
    const http = await openClient(`http://127.0.0.1:${node.port}/rpc`)
    try {
      const e = await http.fail(http.client.tx.submit({ raw: `0x${"00".repeat(REQUEST_BYTES_MAX["tx.submit"]!)}` }))
      expect(e).toMatchObject({ _tag: "RequestRefused", reason: "TooLarge", method: "tx.submit" })
    } finally {
      await http.close()
    }
  })

  it(`at most ${SUBSCRIPTIONS_PER_CONNECTION_MAX} streams per connection: the next is RequestRefused TooManySubscriptions; ending one frees a slot`, async () => {
    const s = await rawSocket()
    const subscribe = (id: number) => s.send(subscribeFrame(id))
    for (let id = 1; id <= SUBSCRIPTIONS_PER_CONNECTION_MAX; id++) subscribe(id)
    await waitFor("a chunk on every stream", async () =>
      new Set(s.messages.filter((m) => m._tag === "Chunk").map((m) => m.requestId)).size === SUBSCRIPTIONS_PER_CONNECTION_MAX ? true : undefined
    )
    subscribe(100)
    expect(failureOf(await s.exitOf("100"))).toBe("RequestRefused:TooManySubscriptions")
    s.send(JSON.stringify({ _tag: "Interrupt", requestId: "1" }))
    await s.exitOf("1")
    subscribe(101)
    await waitFor("a chunk on the stream that took the freed slot", async () => (s.messages.some((m) => m._tag === "Chunk" && m.requestId === "101") ? true : undefined))
    // Another connection has its own streams.
    const other = await rawSocket()
    other.send(subscribeFrame(1))
    await waitFor("a chunk on another connection", async () => (other.messages.some((m) => m._tag === "Chunk") ? true : undefined))
    s.ws.close()
    other.ws.close()
  })
})

describe("worker registration: signed, fresh, once", () => {
  const key = devKey(60)
  const signed = (o: { readonly at: number; readonly nonce: string; readonly endpoint?: string }) => signRegistration(chainId, key, o)
  const workerEvents = async () => (await c.run(c.client.events.read({ stream: `worker-${key.publicKey.address}`, limit: 1_000 }))).length

  it("a replayed registration is ReplayedRegistration; a stale one StaleRegistration; a long endpoint BadRegistration; nothing changes", async () => {
    await registerWorkerOnChain(c, key)
    const request = signed({ at: Date.now(), nonce: nonce() })
    const first = await c.run(c.client.worker.register(request))
    expect(first.worker).toBe(key.publicKey.address)
    const events = await workerEvents()
    const workers = await c.run(c.client.worker.list())

    await expectRefused(c.client.worker.register(request), "WorkerRejected", "ReplayedRegistration")
    await expectRefused(c.client.worker.register(signed({ at: Date.now() - 2 * REGISTRATION_WINDOW_MS, nonce: nonce() })), "WorkerRejected", "StaleRegistration")
    await expectRefused(c.client.worker.register(signed({ at: Date.now() + 2 * REGISTRATION_WINDOW_MS, nonce: nonce() })), "WorkerRejected", "StaleRegistration")
    await expectRefused(
      c.client.worker.register(signed({ at: Date.now(), nonce: nonce(), endpoint: `http://${"x".repeat(ENDPOINT_CHARS_MAX)}` })),
      "WorkerRejected",
      "BadRegistration"
    )
    await expectRefused(c.client.worker.register(signed({ at: Date.now(), nonce: "0x1234" })), "WorkerRejected", "BadRegistration")
    // A replay with its nonce changed no longer matches its signature.
    await expectRefused(c.client.worker.register({ ...request, nonce: nonce() }), "WorkerRejected", "BadSignature")

    expect(await workerEvents()).toBe(events)
    expect(await c.run(c.client.worker.list())).toEqual(workers)
    // The first session still stands; a fresh registration is taken.
    expect((await c.run(c.client.worker.heartbeat({ session: first.session }))).online).toBe(true)
    expect((await c.run(c.client.worker.register(signed({ at: Date.now(), nonce: nonce() })))).worker).toBe(key.publicKey.address)
  })
})

describe("session grants: a nonce, a lifetime cap, a spending cap, an escrow", () => {
  const developer = DEV[3]!.key
  const grant = (model: string, o: GrantOptions = {}) => signGrant(chainId, developer, model, o)

  it("a replayed grant is ReplayedGrant; past the lifetime cap, with no spending cap, or one too many BadSession; no escrow InsufficientEscrow; nothing changes", async () => {
    const model = await registerModel(PROVIDER.key, Uint8Array.from({ length: 64 }, (_, i) => i), "doors-session")
    await expectRefused(c.client.session.open(grant(model)), "InferenceRejected", "InsufficientEscrow")
    await submit(developer, { kind: "escrow.deposit", model: model as never, amount: 1_000n })
    await waitFor("the deposit", async () => ((await c.run(c.client.escrow.get({ developer: developer.publicKey.address, model }))).deposited > 0n ? true : undefined))

    const g = grant(model)
    const opened = await c.run(c.client.session.open(g))
    expect(opened.developer).toBe(developer.publicKey.address)
    await expectRefused(c.client.session.open(g), "InferenceRejected", "ReplayedGrant")
    await expectRefused(c.client.session.open(grant(model, { expiresAt: Date.now() + SESSION_LIFETIME_MAX_MS + 60_000 })), "InferenceRejected", "BadSession")
    await expectRefused(c.client.session.open(grant(model, { spendMax: 0n })), "InferenceRejected", "BadSession")
    // A grant signed outside the window around the node's clock (or before the node started) is stale.
    await expectRefused(c.client.session.open(grant(model, { issuedAt: Date.now() - 2 * SESSION_GRANT_WINDOW_MS })), "InferenceRejected", "StaleGrant")
    await expectRefused(c.client.session.open(grant(model, { issuedAt: Date.now() + 2 * SESSION_GRANT_WINDOW_MS })), "InferenceRejected", "StaleGrant")
    await expectRefused(c.client.session.open(grant(model, { expiresAt: Date.now() - 1 })), "InferenceRejected", "BadSession")
    await expectRefused(c.client.session.open({ ...g, spendMax: 10n ** 30n, nonce: nonce() }), "InferenceRejected", "BadSession") // cap and nonce are signed
    // At most SESSIONS_PER_DEVELOPER_MAX open at once.
    for (let i = 1; i < SESSIONS_PER_DEVELOPER_MAX; i++) await c.run(c.client.session.open(grant(model)))
    await expectRefused(c.client.session.open(grant(model)), "InferenceRejected", "BadSession")
    // Another developer is not held up.
    const other = DEV[4]!.key
    await submit(other, { kind: "escrow.deposit", model: model as never, amount: 1_000n })
    await waitFor("the other deposit", async () => ((await c.run(c.client.escrow.get({ developer: other.publicKey.address, model }))).deposited > 0n ? true : undefined))
    const os = await c.run(c.client.session.open(signGrant(chainId, other, model, { spendMax: 1n })))
    expect(os.developer).toBe(other.publicKey.address)
  })
})

describe("reads of ids nobody made create nothing", () => {
  it("escrow.get of an unknown pair is zeros; task.get of an unknown id NotFound; bad ids InvalidRequest; nothing appended", async () => {
    const before = await lastPosition()
    const e = await c.run(c.client.escrow.get({ developer: DEV[9]!.address, model: `0x${randomBytes(32).toString("hex")}` }))
    expect([e.deposited, e.available, e.reserved, e.captured]).toEqual([0n, 0n, 0n, 0n])
    expect((await c.fail(c.client.task.get({ task: `0x${randomBytes(32).toString("hex")}` })))._tag).toBe("NotFound")
    expect((await c.fail(c.client.escrow.get({ developer: "nope", model: HASH })))._tag).toBe("InvalidRequest")
    expect((await c.fail(c.client.escrow.get({ developer: DEV[9]!.address, model: "nope" })))._tag).toBe("InvalidRequest")
    expect(await lastPosition()).toBe(before)
  })
})

describe("weights upload: a registered model's, by its provider, kept only when the hash matches", () => {
  const weights = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)
  const upload = (key: PrivateKey, hash: string, size: number, offset: number, chunk: Uint8Array) =>
    c.client.model.upload(signWeightsChunk(key, chainId, hash, size, offset, chunk))

  it("unregistered weights: UnknownModel; a bad signature: BadSignature; another key: NotProvider; other bytes: HashMismatch and nothing kept", async () => {
    const bytes = weights(300, 1)
    const hash = sha256(bytes)
    await expectRefused(upload(PROVIDER.key, hash, bytes.length, 0, bytes), "UploadRejected", "UnknownModel")
    const id = await registerModel(PROVIDER.key, bytes, "doors-a")
    const files = blobFiles()
    const forged = { ...signWeightsChunk(PROVIDER.key, chainId, hash, bytes.length, 0, bytes), data: Buffer.from(weights(300, 2)).toString("base64") }
    await expectRefused(c.client.model.upload(forged), "UploadRejected", "BadSignature")
    await expectRefused(upload(OTHER_PROVIDER.key, hash, bytes.length, 0, bytes), "UploadRejected", "NotProvider")
    await expectRefused(upload(PROVIDER.key, hash, bytes.length, 0, weights(300, 3)), "UploadRejected", "HashMismatch")
    expect(blobFiles()).toBe(files)
    expect((await c.run(c.client.model.get({ model: id }))).weightsUploaded).toBe(false)
    // blob.get serves weights only, and a chunk at most a call.
    expect((await c.fail(c.client.blob.get({ hash: sha256(weights(300, 3)), offset: 0, length: 10 })))._tag).toBe("NotFound")
    expect((await c.fail(c.client.blob.get({ hash, offset: 0, length: BLOB_CHUNK_BYTES + 1 })))._tag).toBe("InvalidRequest")
    await expectRefused(upload(PROVIDER.key, hash, bytes.length, 100, bytes.subarray(100)), "UploadRejected", "BadChunk") // not started at 0
    // The provider's own bytes are taken.
    expect(await c.run(upload(PROVIDER.key, hash, bytes.length, 0, bytes))).toEqual({ received: bytes.length, complete: true })
    expect(blobFiles()).toBe(files + 1)
    const served = await c.run(c.client.blob.get({ hash, offset: 0, length: BLOB_CHUNK_BYTES }))
    expect(Buffer.from(served.data, "base64")).toEqual(Buffer.from(bytes))
  })

  it(`at most ${UPLOADS_PER_PROVIDER_MAX} uploads in progress per provider: the next is TooManyUploads; finishing one frees a slot`, async () => {
    const models = Array.from({ length: UPLOADS_PER_PROVIDER_MAX + 1 }, (_, i) => weights(200, 10 + i))
    for (const [i, bytes] of models.entries()) await registerModel(OTHER_PROVIDER.key, bytes, `doors-many-${i}`)
    const empty = new Uint8Array(0)
    for (const bytes of models.slice(0, UPLOADS_PER_PROVIDER_MAX)) {
      expect(await c.run(upload(OTHER_PROVIDER.key, sha256(bytes), bytes.length, 0, empty))).toEqual({ received: 0, complete: false })
    }
    const last = models[UPLOADS_PER_PROVIDER_MAX]!
    await expectRefused(upload(OTHER_PROVIDER.key, sha256(last), last.length, 0, empty), "UploadRejected", "TooManyUploads")
    // Another provider is not held up by this one.
    const mine = weights(200, 99)
    await registerModel(PROVIDER.key, mine, "doors-mine")
    expect((await c.run(upload(PROVIDER.key, sha256(mine), mine.length, 0, mine))).complete).toBe(true)
    const first = models[0]!
    expect((await c.run(upload(OTHER_PROVIDER.key, sha256(first), first.length, 0, first))).complete).toBe(true)
    expect((await c.run(upload(OTHER_PROVIDER.key, sha256(last), last.length, 0, last))).complete).toBe(true)
  })
})

describe("after all that", () => {
  it("the node still includes a good transaction", async () => {
    await submit(DEV[4]!.key, { kind: "transfer", to: DEV[5]!.address as never, amount: 1n } as TransactionPayload)
  })

  it("a registration and a grant accepted before a restart are refused after it (StaleRegistration, StaleGrant), though the node forgot their nonces", async () => {
    const worker = devKey(61)
    await registerWorkerOnChain(c, worker)
    const registration = signRegistration(chainId, worker)
    await c.run(c.client.worker.register(registration))
    const developer = DEV[4]!.key // has an escrow for doors-session, and one session open
    const escrowed = (await c.run(c.client.model.list({}))).find((m) => m.name === "doors-session")!
    const grant = signGrant(chainId, developer, escrowed.id, { spendMax: 1n })
    await c.run(c.client.session.open(grant))

    await c.close()
    expect((await node.stop("SIGINT")).code).toBe(0)
    node = await spawnNode({ dataDir: node.dataDir, extraArgs: [...QUIET_BEACON, "--workers", "0"] })
    c = await openClient(node.url)

    await expectRefused(c.client.worker.register(registration), "WorkerRejected", "StaleRegistration")
    await expectRefused(c.client.session.open(grant), "InferenceRejected", "StaleGrant")
    // Freshly signed, both are taken.
    expect((await c.run(c.client.worker.register(signRegistration(chainId, worker)))).worker).toBe(worker.publicKey.address)
    const opened = await c.run(c.client.session.open(signGrant(chainId, developer, escrowed.id, { spendMax: 1n })))
    expect(opened.developer).toBe(developer.publicKey.address)
  })
})

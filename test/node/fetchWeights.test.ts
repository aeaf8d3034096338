/**
 * Weights reach a node that did not get the upload: `fetchWeightsFrom`
 * against real nodes serving `blob.get` (two `topai node start` processes,
 * A and C, on one genesis, so one signed `model.register` is valid on both
 * and names the same model), and the model registry configured with those
 * peers.
 *
 *   - fetched in chunks from a peer, sha256 checked, stored; held weights
 *     are not fetched again
 *   - a dead peer and a peer serving other bytes (A, whose blob file was
 *     corrupted on disk: blob.get serves the file as it is) are skipped with
 *     their reasons, the next peer serves; nothing wrong is ever stored
 *   - none serves: WeightsUnavailable with every peer's reason; the size
 *     bound and the hash form are checked before anyone is asked
 *   - a registry with peers, told of a model before its provider uploaded
 *     anywhere, asks again with back-off, fetches once C has them, and
 *     verifies them as an upload
 */
import { createHash } from "node:crypto"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Either, Exit, Logger, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Hash32 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devKey } from "../../domain/chain/keys.js"
import { signTransaction, TransactionBody, type Transaction } from "../../domain/chain/transaction.js"
import { BlobStore } from "../../infra/blobstore/BlobStore.js"
import { makeFsBlobStore } from "../../infra/blobstore/FsBlobStore.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { makeSandboxedSmokeRun, SandboxedSmokeRun } from "../../infra/inference/SandboxedSmokeRun.js"
import { BLOB_CHUNK_BYTES } from "../../src/api/AiRpcs.js"
import { DEFAULT_AI_SETTINGS, type AiConfig } from "../../src/node/ai/AiConfig.js"
import { fetchWeightsFrom, WeightsUnavailable, type FetchWeightsOptions } from "../../src/node/ai/fetchWeights.js"
import { makeModelAttestor } from "../../src/node/ai/ModelAttestor.js"
import { makeModelRegistry } from "../../src/node/ai/ModelRegistry.js"
import { ATTESTOR, registerOnChain, registeredEvent, startChain } from "../ai/support/registryOnChain.js"
import { manifest, matMulChainModel } from "../ai/support/models.js"
import { uploadWeights, verdictOf } from "../e2e/support/ai.js"
import { DEV } from "../e2e/support/chain.js"
import { openClient, type TestClient } from "../e2e/support/client.js"
import { cleanup, freePort, makeTempDir, spawnNode, type NodeProcess } from "../e2e/support/processes.js"
import { waitFor } from "../support/waitFor.js"

const sha256 = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`

/** Just over a chunk: fetched in two. */
const M = matMulChainModel(512, 2)
const M_HASH = sha256(M)
const M_MANIFEST = manifest({ name: "peer-fetched" })
/** Registered before any upload, for the registry. */
const LATE = matMulChainModel(64, 3)
const LATE_HASH = sha256(LATE)
const LATE_MANIFEST = manifest({ name: "uploaded-late" })

const PROVIDER = DEV[1]!.key
const OPTIONS: FetchWeightsOptions = { sizeMax: 16 * 1024 * 1024, callTimeout: Duration.seconds(10) }

let a: NodeProcess
let c: NodeProcess
let ca: TestClient
let cc: TestClient
let dead: string
let lateTx: Transaction

const dirs: Array<string> = []
const storeDir = (name: string) => {
  const dir = mkdtempSync(join(tmpdir(), `topai-fetch-${name}-`))
  dirs.push(dir)
  return dir
}

/** `provider`'s model.register with `nonce`, signed for the node's chain (on the AI shard: its nonce there, fee 0). */
const signedFor = async (client: TestClient, nonce: bigint, bytes: Uint8Array, m: object): Promise<Transaction> => {
  const { chainId } = await client.run(client.client.node.status())
  const payload = { kind: "model.register", weightsHash: sha256(bytes) as never, sizeBytes: BigInt(bytes.length), manifest: JSON.stringify(m) } as const
  return signTransaction(new TransactionBody({ chainId, nonce, fee: 0n, payload }), PROVIDER)
}

const submit = async (client: TestClient, tx: Transaction) => {
  const r = await client.run(client.client.tx.submit({ raw: bytesToHex(tx.encoded), wait: true }))
  expect(r.status).toBe("included")
}

const fetchInto = (dir: string, peers: ReadonlyArray<string>, hash: string, size: number, options: FetchWeightsOptions = OPTIONS) =>
  Effect.runPromise(Effect.either(fetchWeightsFrom(peers, hash, size, options).pipe(Effect.provideService(BlobStore, makeFsBlobStore(dir)))))

const filesUnder = (dir: string): Array<string> => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)

beforeAll(async () => {
  ;[a, c] = await Promise.all([spawnNode({ dataDir: makeTempDir("peer-a"), readyTimeoutMs: 60_000 }), spawnNode({ dataDir: makeTempDir("peer-c"), readyTimeoutMs: 60_000 })])
  ca = await openClient(a.url)
  cc = await openClient(c.url)
  dead = `ws://127.0.0.1:${await freePort()}/ws`
  // One signed registration, valid on both chains (same chain id, same dev accounts): the same model id on A and C.
  const mTx = await signedFor(ca, 0n, M, M_MANIFEST)
  lateTx = await signedFor(ca, 1n, LATE, LATE_MANIFEST)
  for (const client of [ca, cc]) {
    await submit(client, mTx)
    await uploadWeights(client, PROVIDER, M)
  }
  await Promise.all([verdictOf(ca, mTx.hash), verdictOf(cc, mTx.hash)])
  // A's copy is corrupted on disk, same size: its blob.get serves the file as it is.
  const file = join(a.dataDir, "blobs", M_HASH.slice(2, 4), M_HASH)
  const bytes = readFileSync(file)
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff
  writeFileSync(file, bytes)
}, 120_000)

afterAll(async () => {
  await ca?.close()
  await cc?.close()
  await cleanup()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe("fetchWeightsFrom against real nodes", () => {
  it("fetches in chunks from a peer, checks the sha256 and stores them; weights already held are not fetched again", async () => {
    expect(M.length).toBeGreaterThan(BLOB_CHUNK_BYTES)
    const dir = storeDir("one")
    const r = Either.getOrThrow(await fetchInto(dir, [c.url], M_HASH, M.length))
    expect(r).toEqual({ weightsHash: M_HASH, sizeBytes: M.length, peer: c.url, skipped: [] })
    expect(Buffer.compare(readFileSync(join(dir, M_HASH.slice(2, 4), M_HASH)), Buffer.from(M))).toBe(0)
    // Held: answered from the store, no peer asked (a dead one would fail).
    const again = Either.getOrThrow(await fetchInto(dir, [dead], M_HASH, M.length))
    expect(again.peer).toBeNull()
  })

  it("skips a dead peer and a peer serving other bytes (the reason for each), and takes them from the next", async () => {
    const dir = storeDir("skip")
    const r = Either.getOrThrow(await fetchInto(dir, [dead, a.url, c.url], M_HASH, M.length))
    expect(r.peer).toBe(c.url)
    expect(r.skipped.map((s) => [s.peer, s.reason])).toEqual([
      [dead, "Unreachable"],
      [a.url, "HashMismatch"]
    ])
    expect(r.skipped[1]!.detail).toMatch(/^the bytes hash to 0x[0-9a-f]{64}$/)
    expect(sha256(readFileSync(join(dir, M_HASH.slice(2, 4), M_HASH)))).toBe(M_HASH)
    expect(filesUnder(dir)).toEqual([M_HASH])
  })

  it("none serves them: WeightsUnavailable with each peer's reason, and nothing stored", async () => {
    const dir = storeDir("none")
    const r = await fetchInto(dir, [dead, a.url], M_HASH, M.length)
    expect(Either.isLeft(r)).toBe(true)
    const e = Either.getLeft(r).pipe((o) => (o._tag === "Some" ? o.value : undefined))!
    expect(e).toBeInstanceOf(WeightsUnavailable)
    expect(e.reason).toBe("NoPeerServed")
    expect(e.attempts.map((x) => [x.peer, x.reason])).toEqual([
      [dead, "Unreachable"],
      [a.url, "HashMismatch"]
    ])
    expect(filesUnder(dir)).toEqual([])

    const failureOf = async (peers: ReadonlyArray<string>, hash: string, size: number, options?: FetchWeightsOptions) => {
      const out = await fetchInto(dir, peers, hash, size, options)
      if (Either.isRight(out)) throw new Error(`fetched ${hash} unexpectedly`)
      return out.left
    }
    // A hash no registered model declares: the peer does not serve it.
    const unknown = await failureOf([c.url], `0x${"ab".repeat(32)}`, 10)
    expect([unknown.reason, unknown.attempts.map((x) => x.reason)]).toEqual(["NoPeerServed", ["NotFound"]])
    // The registration's size is not what the peer holds.
    const size = await failureOf([c.url], M_HASH, M.length - 1)
    expect([size.reason, size.attempts.map((x) => x.reason)]).toEqual(["NoPeerServed", ["SizeMismatch"]])
    expect(size.attempts[0]!.detail).toBe(`the peer holds ${M.length} bytes, the registration declares ${M.length - 1}`)
    // Over the node's bound, or not a hash: nobody is asked (a dead peer would show as Unreachable).
    const big = await failureOf([dead], M_HASH, M.length, { ...OPTIONS, sizeMax: M.length - 1 })
    expect([big.reason, big.attempts]).toEqual(["TooLarge", []])
    const bad = await failureOf([dead], "0xnothex", 10)
    expect([bad.reason, bad.attempts]).toEqual(["BadHash", []])
    const none = await failureOf([], M_HASH, M.length)
    expect(none.reason).toBe("NoPeers")
    expect(filesUnder(dir)).toEqual([])
  })
})

describe("ModelRegistry with peers", () => {
  it("a model registered on chain whose weights went to another node: asked for with back-off until uploaded there, fetched, then verified", async () => {
    const dir = storeDir("registry")
    const blobs = makeFsBlobStore(join(dir, "blobs"))
    mkdirSync(join(dir, "verify"))
    const config: AiConfig = {
      ...DEFAULT_AI_SETTINGS,
      validatorKey: devKey(0),
      attestorKey: ATTESTOR,
      settlerKey: ATTESTOR,
      verify: { tmpDir: join(dir, "verify") },
      peers: [a.url, c.url],
      peerFetch: { retryInitial: Duration.millis(100), retryMax: Duration.millis(300) }
    }
    // The registration is on chain (C executes it), but no node holds the weights yet.
    await submit(cc, lateTx)
    const scope = await Effect.runPromise(Scope.make())
    try {
      // The registry's own chain (in this process) registers the same weights; it attests there.
      const { chain, store } = await Effect.runPromise(startChain(MemoryEventStore.makeStorage()).pipe(Scope.extend(scope)))
      const id = await Effect.runPromise(registerOnChain(chain, LATE, LATE_MANIFEST))
      const registered = await Effect.runPromise(registeredEvent(chain, id).pipe(Effect.provideService(EventStore, store)))
      const attestor = await Effect.runPromise(makeModelAttestor(chain, ATTESTOR))
      const registry = await Effect.runPromise(
        makeModelRegistry(config, attestor).pipe(
          Effect.provideService(EventStore, store),
          Effect.provideService(BlobStore, blobs),
          Effect.provideService(SandboxedSmokeRun, makeSandboxedSmokeRun()),
          Scope.extend(scope)
        )
      )
      // The registry's background fetch logs through the logger of the fiber that learned of the model.
      const logLines: Array<string> = []
      const captureLogs = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logLines.push(Array.isArray(message) ? message.join(" ") : String(message))))
      await Effect.runPromise(registry.onRegistered(registered, Date.now()).pipe(Effect.provide(captureLogs)))
      expect((await Effect.runPromise(registry.state(id))).status).toBe("Pending")
      expect(await Effect.runPromise(blobs.has(LATE_HASH))).toBe(false)
      // A round over the peers found them nowhere: the registry says so once and asks again with back-off.
      const asked = `model ${id}: no peer serves weights ${LATE_HASH} yet; asking again with back-off`
      await waitFor("a first round over the peers without the weights", async () => (logLines.some((l) => l.startsWith(asked)) ? true : undefined), { timeoutMs: 30_000 })
      expect(await Effect.runPromise(blobs.has(LATE_HASH))).toBe(false)
      // The provider uploads to C only; the registry gets them from there and verifies.
      await uploadWeights(cc, PROVIDER, LATE)
      const s = await waitFor(
        "the registry's verdict",
        async () => {
          const s = await Effect.runPromise(registry.state(id))
          return s.status === "Pending" ? undefined : s
        },
        { timeoutMs: 60_000, intervalMs: 100 }
      )
      expect(s.status).toBe("Verified")
      expect(s.attestations.map((x) => x.validator)).toEqual([ATTESTOR.publicKey.address])
      expect(await Effect.runPromise(blobs.has(LATE_HASH))).toBe(true)
      expect(sha256(await Effect.runPromise(blobs.get(LATE_HASH)))).toBe(LATE_HASH)
      // Fetched from C (A never had them), in a later round.
      expect(logLines).toContain(`weights ${LATE_HASH} of model ${id}: fetched ${LATE.length} bytes from ${c.url}, sha256 checked`)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 120_000)
})

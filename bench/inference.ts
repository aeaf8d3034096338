/**
 * Paid inference through the whole system against a bare onnxruntime
 * `session.run` of the same model on the same inputs, in the same run.
 *
 * The system is the one-process devnet: the real node assembly (SQLite event
 * store in a temp dir, chain, AI node, RPC server on a free port) and one
 * in-process compute node (`devices: 1`, one inference thread, the node's
 * blob dir, calling the node's handlers in memory), as `topai node start`
 * runs them. Requests go through the typed client over WebSocket (binary
 * frames): client → node (session, escrow reserve, task
 * events, scheduling) → compute node (`worker.tasks`) → onnxruntime on the
 * engine thread → signed, fingerprinted result → node (signature check,
 * validation, capture, settlement) → client. The baseline is one session
 * made with the compute node's own session options, one run at a time —
 * what one device does — in this process.
 *
 *   inference-heavy-throughput   requests/s on a generated GEMM chain
 *                                (≥ 10 ms per run), 4 requests in flight,
 *                                vs bare runs back to back; target ≥ 0.9×
 *   inference-silero-latency     one request at a time on silero (~0.1 ms a
 *                                run): p50/p99 of a whole `infer` minus the
 *                                bare `session.run`'s; target added p50 ≤ 2
 *                                ms; requests/s sequential and 8 in flight
 *                                beside bare
 *
 * The node logs at Warning (a line per task would time the terminal); the
 * models are `single` with no sampling, so one worker runs each task.
 */
import { createHash, randomBytes } from "node:crypto"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { Effect, Either, Exit, Layer, Logger, LogLevel, ManagedRuntime, Scope } from "effect"
import ort from "onnxruntime-node"
import type { ModelManifestEncoded } from "../domain/ai/manifest.js"
import { sessionGrantDigest, signMessage, signWeightsChunk } from "../domain/ai/signedMessages.js"
import { decodeTensorMapJson } from "../domain/ai/tensor.js"
import { GenesisConfig, genesisSupply } from "../domain/chain/genesis.js"
import { bytesToHex } from "../domain/chain/hex.js"
import { devKey, devProposerKey } from "../domain/chain/keys.js"
import type { PrivateKey } from "../domain/chain/keys.js"
import { aiShardOf, BEACON_SHARD, TRANSFER_SHARDS_DEFAULT } from "../domain/chain/sharding.js"
import { isAiShardKind, signTransaction, TransactionBody } from "../domain/chain/transaction.js"
import type { TransactionPayload } from "../domain/chain/transaction.js"
import { FsBlobStore } from "../infra/blobstore/FsBlobStore.js"
import { SignatureVerifier, SignatureVerifierLive } from "../infra/crypto/SignatureVerifier.js"
import { SqliteEventStore } from "../infra/eventstore/SqliteEventStore.js"
import { sessionOptions } from "../infra/inference/OnnxSessionPool.js"
import { toOrtFeeds } from "../infra/inference/ortTensor.js"
import { SandboxedSmokeRunLive } from "../infra/inference/SandboxedSmokeRun.js"
import { BLOB_CHUNK_BYTES } from "../src/api/AiRpcs.js"
import { RpcServerLive } from "../src/api/server.js"
import { WS_PATH } from "../src/api/transport.js"
import { makeClient, signInferRequest } from "../src/client/index.js"
import type { NodeClient } from "../src/client/index.js"
import { DEFAULT_AI_SETTINGS } from "../src/node/ai/AiConfig.js"
import type { AiConfig } from "../src/node/ai/AiConfig.js"
import { AiNodeLive } from "../src/node/ai/AiNode.js"
import { EconomyLive } from "../src/node/economy/Economy.js"
import { ChainNodeLive } from "../src/node/ChainNodeLive.js"
import { startComputeNode } from "../src/worker/ComputeNode.js"
import { inProcessComputeNodeClient } from "../src/worker/inProcessClient.js"
import { gemmChainModel, sileroBytes } from "../test/ai/support/models.js"
import type { BenchModule, BenchResult } from "./lib.js"
import { compare, median, percentile, report, RESULTS_DIR } from "./lib.js"
import { freePort } from "../test/support/freePort.js"

const CHAIN_ID = 7_700n
const HOST = "127.0.0.1"
const FEE = 1_000n

/** The heavy model: x [1, n] → xᵀx [n, n] → k GEMMs by the n×n mean filter → x · h [1, n]. */
const HEAVY_N = 256
const HEAVY_K = 80
const HEAVY_REQUESTS = 40
const HEAVY_IN_FLIGHT = 4
const HEAVY_REPEATS = 5

const SILERO_SEQUENTIAL = 200
const SILERO_CONCURRENT = 400
const SILERO_IN_FLIGHT = 8
const SILERO_REPEATS = 5
const ADDED_P50_MS_MAX = 2



const NO_SAMPLING = { kind: "single", sampleRatePerMillion: 0 } as const
/** Covers the computing fee of a run of seconds: a price under it pauses the model at its first task. */
const PRICE = 10n ** 15n
const FUNDS = PRICE * 10_000n

export const sileroInputs = {
  input: { type: "float32", dims: [1, 576], data: Array.from({ length: 576 }, (_, i) => Math.fround(0.4 * Math.sin(i / 9))) },
  state: { type: "float32", dims: [2, 1, 128], data: new Array<number>(256).fill(0) },
  sr: { type: "int64", dims: [], data: [16000] }
}
export const heavyInputs = { x: { type: "float32", dims: [1, HEAVY_N], data: Array.from({ length: HEAVY_N }, (_, i) => Math.fround(Math.cos(i / 5))) } }


/** Runs `count` calls of `call`, `inFlight` at a time; returns calls per second. */
const rate = async (count: number, inFlight: number, call: () => Promise<unknown>): Promise<number> => {
  let next = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        next++
        await call()
      }
    })
  )
  return (count * 1_000) / (performance.now() - start)
}

// ---------------------------------------------------------------- the devnet in this process

/** Exported for profiling scripts. */
export const startDevnet = async (dir: string) => {
  const port = await freePort()
  const genesis = new GenesisConfig({ chainId: CHAIN_ID, timestamp: 0 })
  const ai: AiConfig = {
    ...DEFAULT_AI_SETTINGS,
    validatorKey: devProposerKey(BEACON_SHARD),
    attestorKey: devProposerKey(aiShardOf(genesis.transferShards)),
    settlerKey: devProposerKey(aiShardOf(genesis.transferShards)),
    // A machine shared by other jobs stalls a run past the default 1 s floor now and then: a bench measures, it does not police.
    runDeadline: { factor: 20, floorMillis: 10_000, capMillis: 30_000 }
  }
  const layer = RpcServerLive({ host: HOST, port }).pipe(
    Layer.provideMerge(AiNodeLive(ai)),
    Layer.provideMerge(EconomyLive({ economics: genesis.economics, totalSupply: genesisSupply(genesis), aiShard: aiShardOf(genesis.transferShards) })),
    Layer.provideMerge(Layer.mergeAll(FsBlobStore.layer(join(dir, "blobs")), SandboxedSmokeRunLive())),
    Layer.provideMerge(ChainNodeLive({ genesis })),
    Layer.provideMerge(SignatureVerifierLive),
    Layer.provideMerge(SqliteEventStore.layer({ filename: join(dir, "events.db") })),
    Layer.provideMerge(Logger.minimumLogLevel(LogLevel.Warning))
  )
  const runtime = ManagedRuntime.make(layer)
  const url = `ws://${HOST}:${port}${WS_PATH}`
  const scope = await Effect.runPromise(Scope.make())
  const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
    runtime.runPromise(Scope.extend(effect, scope).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)))
  await runtime.runPromise(Effect.void)
  // In process, as `topai node start` runs its workers: calls go to the node's handlers in memory.
  const rpc = await runtime.runPromise(Scope.extend(inProcessComputeNodeClient, scope))
  const verifier = await runtime.runPromise(SignatureVerifier)
  const worker = await run(
    startComputeNode({ rpc, key: devKey(40), gpuClass: "CPU", devices: 1, stake: 0n, endpoint: "in-process", verifier, dataDir: join(dir, "worker"), blobDir: join(dir, "blobs") })
  )
  await run(worker.registered())
  const client = await run(makeClient(url))
  return {
    client,
    call: <A, E>(effect: Effect.Effect<A, E>) => runtime.runPromise(effect),
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await runtime.dispose()
    }
  }
}

export type Devnet = Awaited<ReturnType<typeof startDevnet>>

const submit = async (d: Devnet, key: PrivateKey, payload: TransactionPayload) => {
  // model.* run on the AI shard: the sender's nonce there, fee 0 (it holds nothing there).
  const ai = isAiShardKind(payload.kind)
  const account = await d.call(
    d.client.account.get({ address: key.publicKey.address, ...(ai ? { shard: aiShardOf(TRANSFER_SHARDS_DEFAULT) } : {}) })
  )
  const tx = signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce: account.pendingNonce, fee: ai ? 0n : FEE, payload }), key)
  const r = await d.call(d.client.tx.submit({ raw: bytesToHex(tx.encoded), wait: true }))
  if (r.status !== "included") throw new Error(`${payload.kind}: ${r.status}`)
  return tx.hash
}

const until = async <A>(what: string, probe: () => Promise<A | undefined>): Promise<A> => {
  const deadline = performance.now() + 60_000
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Upload, register, wait for Verified, deposit, open a session: what a provider and a developer do. */
export const serve = async (d: Devnet, bytes: Uint8Array, manifest: ModelManifestEncoded, provider: PrivateKey, developer: PrivateKey, funds = 10n ** 12n) => {
  const hash = `0x${createHash("sha256").update(bytes).digest("hex")}`
  // Registered first: the node takes weights only for a model on chain, in chunks its provider signed.
  const id = await submit(d, provider, { kind: "model.register", weightsHash: hash as never, sizeBytes: BigInt(bytes.length), manifest: JSON.stringify(manifest) })
  for (let offset = 0; offset < bytes.length; offset += BLOB_CHUNK_BYTES) {
    const chunk = signWeightsChunk(provider, CHAIN_ID, hash, bytes.length, offset, bytes.subarray(offset, offset + BLOB_CHUNK_BYTES))
    await until(`the node to take ${manifest.name} at ${offset}`, async () => {
      const r = await d.call(Effect.either(d.client.model.upload(chunk)))
      if (Either.isRight(r)) return r.right
      if (r.left._tag === "UploadRejected" && r.left.reason === "UnknownModel") return undefined
      throw new Error(`upload refused: ${r.left.message}`)
    })
  }
  const m = await until(`the verdict on ${manifest.name}`, async () => {
    const v = await d.call(Effect.either(d.client.model.get({ model: id })))
    return Either.isRight(v) && v.right.status !== "Pending" ? v.right : undefined
  })
  if (m.status !== "Verified") throw new Error(`${manifest.name} ${m.status}: ${m.reason}`)
  await submit(d, developer, { kind: "escrow.deposit", model: id as never, amount: funds })
  await until(`the deposit for ${manifest.name}`, async () => {
    const e = await d.call(d.client.escrow.get({ developer: developer.publicKey.address, model: id }))
    return e.deposited > 0n ? e : undefined
  })
  const grant = { model: id, issuedAt: Date.now(), expiresAt: Date.now() + 3_600_000, spendMax: funds, nonce: `0x${randomBytes(16).toString("hex")}` }
  const signature = signMessage(sessionGrantDigest({ chainId: CHAIN_ID, ...grant }), developer)
  const { session } = await d.call(d.client.session.open({ publicKey: developer.publicKey.hex, ...grant, signature }))
  return { session, key: developer, grant: { chainId: CHAIN_ID, model: id, nonce: grant.nonce } }
}

export type ServedSession = Awaited<ReturnType<typeof serve>>

/** A call's payload: the developer signs each request (the client's work, so it is in the measured time). */
export const inferArgs = (s: ServedSession, inputs: unknown) => ({
  session: s.session,
  inputs,
  ...Either.getOrThrow(signInferRequest(s.key, s.grant, inputs))
})

/** A bare session with the compute node's session options, fed the same inputs, decoded once. */
const bareSession = async (bytes: Uint8Array, inputs: unknown) => {
  const session = await ort.InferenceSession.create(bytes, sessionOptions({ executionProvider: "cpu", intraOpNumThreads: 1 }))
  const feeds = toOrtFeeds(Either.getOrThrow(decodeTensorMapJson(inputs)))
  return { run: () => session.run(feeds), release: () => session.release() }
}

/** Both sides must compute the same thing, or the comparison means nothing. */
const checkSame = async (d: Devnet, client: NodeClient, session: ServedSession, inputs: unknown, bare: { readonly run: () => Promise<ort.InferenceSession.ReturnType> }) => {
  const r = await d.call(client.infer(inferArgs(session, inputs)))
  const got = Either.getOrThrow(decodeTensorMapJson(r.outputs))
  const want = await bare.run()
  for (const name of Object.keys(want)) {
    const a = Array.from(got[name]!.data as ArrayLike<number>)
    const b = Array.from(want[name]!.data as ArrayLike<number>)
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) throw new Error(`output ${name} differs from the bare run`)
  }
}

// ---------------------------------------------------------------- the benches

export const run: BenchModule["run"] = async () => {
  const dir = mkdtempSync(join(tmpdir(), "topai-bench-inference-"))
  const d = await startDevnet(dir)
  const heavyBytes = gemmChainModel(HEAVY_N, HEAVY_K)
  const sileroModel = sileroBytes()
  const heavyBare = await bareSession(heavyBytes, heavyInputs)
  const sileroBare = await bareSession(sileroModel, sileroInputs)
  try {
    const manifest = { version: "1", minGpuClass: "CPU", license: "MIT", description: "bench", validation: NO_SAMPLING }
    const [heavySession, sileroSession] = [
      await serve(d, heavyBytes, { ...manifest, name: "gemm-chain", pricePerCall: PRICE.toString() }, devKey(1), devKey(2), FUNDS),
      await serve(
        d,
        sileroModel,
        { ...manifest, name: "silero-vad", pricePerCall: PRICE.toString(), shapes: { input: [1, 576], state: [2, 1, 128] }, fixedInputs: { sr: [16000] } },
        devKey(1),
        devKey(3),
        FUNDS
      )
    ]
    await checkSame(d, d.client, heavySession, heavyInputs, heavyBare)
    await checkSame(d, d.client, sileroSession, sileroInputs, sileroBare)
    const inferHeavy = () => d.call(d.client.infer(inferArgs(heavySession, heavyInputs)))
    const inferSilero = () => d.call(d.client.infer(inferArgs(sileroSession, sileroInputs)))

    // (a) throughput on the heavy model
    const bareRunMs: Array<number> = []
    const heavy = await compare(
      HEAVY_REPEATS,
      () => rate(HEAVY_REQUESTS, HEAVY_IN_FLIGHT, inferHeavy),
      () =>
        rate(HEAVY_REQUESTS, 1, async () => {
          const t = performance.now()
          await heavyBare.run()
          bareRunMs.push(performance.now() - t)
        }),
      { warmups: 1 }
    )
    const results: Array<BenchResult> = [
      report({
        name: "inference-heavy-throughput",
        unit: "req",
        ...heavy,
        target: { ratio: 0.9 },
        details: {
          model: `GEMM chain ${HEAVY_K} × ${HEAVY_N}²`,
          bareRunMsMedian: median(bareRunMs),
          requestsPerRound: HEAVY_REQUESTS,
          inFlight: HEAVY_IN_FLIGHT,
          repeats: HEAVY_REPEATS
        }
      })
    ]

    // (b) latency on silero, one request at a time; then throughput with requests in flight
    const inferMs: Array<number> = []
    const bareMs: Array<number> = []
    const timed = (into: Array<number>, call: () => Promise<unknown>) => async (repeat: number) => {
      const samples: Array<number> = []
      const perSecond = await rate(SILERO_SEQUENTIAL, 1, async () => {
        const t = performance.now()
        await call()
        samples.push(performance.now() - t)
      })
      if (repeat >= 0) into.push(...samples)
      return perSecond
    }
    const sequential = await compare(SILERO_REPEATS, timed(inferMs, inferSilero), timed(bareMs, sileroBare.run), { warmups: 1 })
    const concurrent = await compare(
      3,
      () => rate(SILERO_CONCURRENT, SILERO_IN_FLIGHT, inferSilero),
      () => rate(SILERO_CONCURRENT, 1, sileroBare.run)
    )
    const p = (xs: ReadonlyArray<number>, q: number) => Math.round(percentile(xs, q) * 1_000) / 1_000
    const latency = {
      inferP50Ms: p(inferMs, 50),
      inferP99Ms: p(inferMs, 99),
      bareP50Ms: p(bareMs, 50),
      bareP99Ms: p(bareMs, 99),
      addedP50Ms: Math.round((percentile(inferMs, 50) - percentile(bareMs, 50)) * 1_000) / 1_000,
      addedP99Ms: Math.round((percentile(inferMs, 99) - percentile(bareMs, 99)) * 1_000) / 1_000
    }
    const seqRatio = sequential.subject.median / sequential.baseline.median
    const silero: BenchResult = {
      name: "inference-silero-latency",
      unit: "req",
      opsPerSecond: sequential.subject.median,
      baselineOpsPerSecond: sequential.baseline.median,
      ratio: seqRatio,
      target: {},
      pass: latency.addedP50Ms <= ADDED_P50_MS_MAX,
      samples: sequential.subject.samples,
      baselineSamples: sequential.baseline.samples,
      details: {
        ...latency,
        addedP50MsMax: ADDED_P50_MS_MAX,
        calls: inferMs.length,
        inFlight: SILERO_IN_FLIGHT,
        concurrentPerSecond: concurrent.subject.median,
        bareConcurrentPerSecond: concurrent.baseline.median
      },
      measuredAt: new Date().toISOString()
    }
    const f = (n: number) => Math.round(n).toLocaleString("en-US")
    console.log(
      `inference-silero-latency: infer p50 ${latency.inferP50Ms} ms p99 ${latency.inferP99Ms} ms vs bare p50 ${latency.bareP50Ms} ms p99 ${latency.bareP99Ms} ms` +
        ` = added p50 ${latency.addedP50Ms} ms, p99 ${latency.addedP99Ms} ms (target added p50 ≤ ${ADDED_P50_MS_MAX} ms) ${silero.pass ? "PASS" : "MISS"}`
    )
    console.log(
      `  requests/s: ${f(sequential.subject.median)} one at a time vs bare ${f(sequential.baseline.median)} (ratio ${seqRatio.toFixed(3)}); ` +
        `${f(concurrent.subject.median)} with ${SILERO_IN_FLIGHT} in flight vs bare ${f(concurrent.baseline.median)}` +
        ` (ratio ${(concurrent.subject.median / concurrent.baseline.median).toFixed(3)})`
    )
    mkdirSync(RESULTS_DIR, { recursive: true })
    writeFileSync(join(RESULTS_DIR, `${silero.name}.json`), `${JSON.stringify(silero, null, 2)}\n`)
    results.push(silero)
    return results
  } finally {
    await heavyBare.release()
    await sileroBare.release()
    await d.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * The compute node against a stand-in node (support/fakeNode.ts): a real
 * WebSocket RPC server on a free localhost port. The worker registers with a
 * valid signature and heartbeats; fetches the weights it lacks in chunks and
 * checks their hash; runs assignments and returns outputs equal to a bare
 * onnxruntime run, with the right fingerprint and a valid signature; reports
 * what it cannot run; survives the node restarting; lies when told to (for
 * the node's quorum tests); and stops on a refused registration.
 */
import { SignatureVerifier, SignatureVerifierInThreadWith } from "../../infra/crypto/SignatureVerifier.js"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Logger, LogLevel, Queue, Scope } from "effect"
import { outputFingerprint } from "../../domain/ai/fingerprint.js"
import { execMsOf, resultDigest, verifyMessage } from "../../domain/ai/signedMessages.js"
import { decodeTensorMapJson, tensorMapToJson, type TensorMap } from "../../domain/ai/tensor.js"
import { devKey, type PrivateKey } from "../../domain/chain/keys.js"
import { makeFsBlobStore } from "../../infra/blobstore/FsBlobStore.js"
import { BLOB_CHUNK_BYTES, WorkerRejected } from "../../src/api/AiRpcs.js"
import type { NodeClient } from "../../src/client/index.js"
import { ChainRegistrationRefused, runComputeNode, startComputeNode, type ComputeNodeClient, type ComputeNodeHandle, type ComputeNodeOptions } from "../../src/worker/ComputeNode.js"
import { matMulChainModel } from "../ai/support/models.js"
import { SILERO, SILERO_HASH, sha256, sileroInputs } from "./support/silero.js"
import { bareRun, plain } from "./support/bare.js"
import { makeFakeNodeState, startFakeNode, type FakeNode, type ResultRecord } from "./support/fakeNode.js"
import { requestedAssignment } from "./support/request.js"
import { TaskAssignment } from "../../src/api/AiRpcs.js"
import { freePort } from "../support/freePort.js"
import { waitFor } from "../support/waitFor.js"

// ---------------------------------------------------------------- fixtures


/** Just over BLOB_CHUNK_BYTES (a 512×512 float initializer and the graph around it): two chunks. */
const MM_N = 512
const MM = matMulChainModel(MM_N, 2)
const MM_HASH = sha256(MM)
const mmInputs = (fill: number): TensorMap => ({
  x: { type: "float32", dims: [MM_N, MM_N], data: Float32Array.from({ length: MM_N * MM_N }, (_, i) => ((i % 11) - 5) * fill) }
})

const TOLERANCE = 1e-4
const RESULT_WAIT = Duration.seconds(30)

const assignment = (model: "mm" | "silero", inputs: unknown, over: Partial<Omit<TaskAssignment, "task" | "request">> = {}): TaskAssignment =>
  requestedAssignment({
    model: model === "mm" ? "model-mm" : "model-silero",
    weightsHash: model === "mm" ? MM_HASH : SILERO_HASH,
    sizeBytes: model === "mm" ? MM.length : SILERO.length,
    outputTolerance: TOLERANCE,
    inputs,
    deadlineMs: 30_000,
    ...over
  })


const dirs: Array<string> = []
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), `topai-worker-${prefix}-`))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  if (process.env["TOPAI_TEST_LOGS"] !== undefined) console.log(logLines.join("\n"))
})

/** Log lines, captured (and not printed) so the tests can read what an operator would see. */
const logLines: Array<string> = []
const captureLogs = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ logLevel, message }) => {
    logLines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
  })
)

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect.pipe(Effect.provide(captureLogs), Logger.withMinimumLogLevel(LogLevel.Info)))


const nextResult = (node: FakeNode): Promise<ResultRecord> => run(Queue.take(node.state.results).pipe(Effect.timeoutFail({ duration: RESULT_WAIT, onTimeout: () => new Error("no result in time") })))
const nextFailure = (node: FakeNode) => run(Queue.take(node.state.failures).pipe(Effect.timeoutFail({ duration: RESULT_WAIT, onTimeout: () => new Error("no failure report in time") })))
const offer = (node: FakeNode, a: TaskAssignment) => run(Queue.offer(node.state.tasks, a))

/** Offers every task at once, then each must come back as a failure report whose detail matches its pattern. */
const expectEachFails = async (node: FakeNode, cases: ReadonlyArray<readonly [TaskAssignment, RegExp]>) => {
  for (const [task] of cases) await offer(node, task)
  const reports = new Map<string, string>()
  for (let i = 0; i < cases.length; i++) {
    const f = await nextFailure(node)
    reports.set(f.task, f.detail)
  }
  for (const [task, pattern] of cases) expect(reports.get(task.task)).toMatch(pattern)
}

/** Checks a result the way the node will: outputs decode, fingerprint recomputes, signature verifies. */
const checkResult = (r: ResultRecord, task: TaskAssignment, key: PrivateKey): TensorMap => {
  expect(r.task).toBe(task.task)
  const outputs = Either.getOrThrow(decodeTensorMapJson(r.outputs))
  expect(r.fingerprint).toBe(outputFingerprint(outputs, task.outputTolerance))
  const signer = verifyMessage(resultDigest(task.task, r.fingerprint, execMsOf(r.millis)), key.publicKey.hex, r.signature)
  expect(Either.isRight(signer)).toBe(true)
  expect(r.millis).toBeGreaterThan(0)
  return outputs
}

const baseOptions = (url: string, key: PrivateKey, dataDir: string): ComputeNodeOptions => ({
  rpc: url,
  key,
  gpuClass: "CPU",
  devices: 2,
  stake: 1_000n,
  endpoint: "test-worker",
  dataDir,
  engine: { threads: 1 },
  heartbeatInterval: Duration.millis(100),
  reconnectInitial: Duration.millis(100),
  reconnectMax: Duration.millis(400),
  callTimeout: Duration.seconds(5)
})

// ---------------------------------------------------------------- one worker, one node, several tests

describe("ComputeNode against a stand-in node", () => {
  const key = devKey(3)
  let scope: Scope.CloseableScope
  let node: FakeNode
  let worker: ComputeNodeHandle
  let workerDir: string

  beforeAll(async () => {
    const nodeBlobs = makeFsBlobStore(join(tempDir("node"), "blobs"))
    await run(nodeBlobs.put(SILERO))
    await run(nodeBlobs.put(MM))
    workerDir = tempDir("data")
    const port = await freePort()
    scope = await run(Scope.make())
    node = await run(Effect.flatMap(makeFakeNodeState(nodeBlobs), (state) => startFakeNode(state, port)).pipe(Scope.extend(scope)))
    // Requests checked through a SignatureVerifier (as devnet's in-process workers do); the other files' workers check in the thread.
    const verifier = await run(SignatureVerifier.pipe(Effect.provide(SignatureVerifierInThreadWith({ cache: "own" }))))
    worker = await run(startComputeNode({ ...baseOptions(node.url, key, workerDir), verifier }).pipe(Scope.extend(scope)))
  })

  afterAll(async () => {
    if (scope !== undefined) await run(Scope.close(scope, Exit.void))
  })

  it("registers with a valid signature and keeps heartbeating", async () => {
    const reg = await run(worker.registered())
    expect(reg.worker).toBe(key.publicKey.address)
    expect(node.state.registrations[0]).toMatchObject({
      publicKey: key.publicKey.hex,
      address: key.publicKey.address,
      gpuClass: "CPU",
      devices: 2,
      stake: 1_000n,
      endpoint: "test-worker",
      session: reg.session
    })
    const beats = node.state.heartbeats
    await waitFor("two more heartbeats", async () => (node.state.heartbeats >= beats + 2 ? true : undefined), { timeoutMs: 10_000 })
    expect(logLines.some((l) => l.startsWith(`INFO registered with ${node.url} as worker ${key.publicKey.address}`))).toBe(true)
  })

  it("fetches missing weights in chunks (hash checked), runs, and returns outputs equal to bare onnxruntime, fingerprinted and signed", async () => {
    await run(worker.registered())
    const mm1 = mmInputs(0.01)
    const sil = sileroInputs("task")
    const mm2 = mmInputs(0.02)
    const tasks = [assignment("mm", tensorMapToJson(mm1)), assignment("silero", tensorMapToJson(sil)), assignment("mm", tensorMapToJson(mm2))]
    for (const t of tasks) await offer(node, t)
    const results = new Map<string, ResultRecord>()
    for (let i = 0; i < tasks.length; i++) {
      const r = await nextResult(node)
      results.set(r.task, r)
    }
    const expected = [await bareRun(MM, mm1), await bareRun(SILERO, sil), await bareRun(MM, mm2)]
    tasks.forEach((t, i) => {
      const outputs = checkResult(results.get(t.task)!, t, key)
      expect(plain(outputs)).toEqual(plain(expected[i]!))
    })
    // Two chunks of the MatMul model, one of silero; the second MatMul task used the cache.
    expect(MM.length).toBeGreaterThan(BLOB_CHUNK_BYTES)
    expect(node.state.blobGets).toBe(Math.ceil(MM.length / BLOB_CHUNK_BYTES) + Math.ceil(SILERO.length / BLOB_CHUNK_BYTES))
    const cache = makeFsBlobStore(join(workerDir, "blobs"))
    expect(await run(cache.has(MM_HASH))).toBe(true)
    expect(await run(cache.has(SILERO_HASH))).toBe(true)
    expect((await run(worker.stats)).weightsFetched).toBe(2)
    expect(logLines.some((l) => /^INFO task 0x\S+ \(model model-mm\): done in \d+ ms \(run \d+\.\d ms\)/.test(l))).toBe(true)
  })

  it("reports what it cannot run with worker.failed: weights served wrong (nothing cached), unknown weights, bad inputs, a run error, a bad tolerance", async () => {
    const other = matMulChainModel(8, 1)
    const lied = matMulChainModel(8, 2)
    const otherHash = sha256(other)
    node.state.tamperedBlobs.set(otherHash, lied)
    const cases: Array<[TaskAssignment, RegExp]> = [
      [assignment("mm", {}, { weightsHash: otherHash, sizeBytes: lied.length }), /^WeightsMismatch: blob 0x[0-9a-f]{64}: HashMismatch: the bytes hash to 0x/],
      [assignment("mm", {}, { weightsHash: `0x${"ab".repeat(32)}`, sizeBytes: 10 }), /^WeightsUnavailable: blob.get 0xababab…abab at 0: blob 0x(ab){32} not found/],
      [assignment("mm", { x: { type: "float32", dims: [2], data: [1] } }), /^BadInputs: input "x": dims \[2\] need 2 values, "data" has 1/],
      [assignment("silero", tensorMapToJson({ input: sileroInputs("half")["input"]! })), /^InferenceFailed: RunFailed \(model 0x[0-9a-f]{64}\): /],
      [assignment("silero", tensorMapToJson(sileroInputs("tol")), { outputTolerance: 0 }), /^BadAssignment: output tolerance must be a finite number > 0, got 0/]
    ]
    const failedBefore = (await run(worker.stats)).tasksFailed
    await expectEachFails(node, cases)
    // Bytes that did not hash right were never stored.
    expect(existsSync(join(workerDir, "blobs", otherHash.slice(2, 4), otherHash))).toBe(false)
    expect((await run(worker.stats)).tasksFailed).toBe(failedBefore + cases.length)
    expect(await run(Queue.size(node.state.results))).toBe(0)
  })

  it("refuses a task the developer did not request (NotRequested), before any weights or run, its signature checked through the verifier: inputs changed under a signed request, another task id, another model, a request signed by another key", async () => {
    const asked = assignment("silero", tensorMapToJson(sileroInputs("asked")), { weightsHash: `0x${"cd".repeat(32)}`, sizeBytes: 10 })
    const other = assignment("silero", tensorMapToJson(sileroInputs("other")), { weightsHash: `0x${"cd".repeat(32)}`, sizeBytes: 10 })
    const mallory = devKey(77)
    const forged = requestedAssignment({ ...other, inputs: other.inputs }, mallory)
    const cases: Array<[TaskAssignment, RegExp]> = [
      // A gateway runs other inputs under the developer's request: the id (which the result would sign) is not their digest.
      [new TaskAssignment({ ...asked, inputs: tensorMapToJson(sileroInputs("tampered")) }), /^NotRequested: TaskIdMismatch: task 0x[0-9a-f]{64} is not the digest of the request/],
      [new TaskAssignment({ ...other, task: `0x${"77".repeat(32)}` }), /^NotRequested: TaskIdMismatch: /],
      [new TaskAssignment({ ...other, model: "model-mm", task: `0x${"78".repeat(32)}` }), /^NotRequested: TaskIdMismatch: /],
      // Signed by a key that is not the grant's (the developer's).
      [new TaskAssignment({ ...forged, request: { ...forged.request, publicKey: asked.request.publicKey } }), /^NotRequested: BadRequestSignature: .*the signature does not verify/]
    ]
    const before = await run(worker.stats)
    await expectEachFails(node, cases)
    const after = await run(worker.stats)
    expect(after.tasksFailed).toBe(before.tasksFailed + cases.length)
    expect(after.tasksDone).toBe(before.tasksDone)
    expect(after.weightsFetched).toBe(before.weightsFetched)
    expect(await run(Queue.size(node.state.results))).toBe(0)
  })

  it("survives the node going away: reconnects with back-off, registers again, and runs tasks on the new session", async () => {
    const first = await run(worker.registered())
    await run(node.stop)
    await waitFor("the worker to see the node gone", async () => ((await run(worker.stats)).connected ? undefined : true), { timeoutMs: 10_000 })
    await run(node.restart) // sessions forgotten, as by a restart
    const second = await run(worker.registered(first.count + 1).pipe(Effect.timeout(RESULT_WAIT)))
    expect(second.session).not.toBe(first.session)
    expect(node.state.registrations.at(-1)!.session).toBe(second.session)
    const inputs = sileroInputs("after-restart")
    const task = assignment("silero", tensorMapToJson(inputs))
    await offer(node, task)
    const r = await nextResult(node)
    expect(r.session).toBe(second.session)
    expect(plain(checkResult(r, task, key))).toEqual(plain(await bareRun(SILERO, inputs)))
    expect(logLines.some((l) => /^WARN lost ws:\/\/127\.0\.0\.1:\d+\/ws \(.+\); reconnecting in \d+ms/.test(l))).toBe(true)
  })
})

// ---------------------------------------------------------------- a lying worker, a refused one

describe("ComputeNode, other workers", () => {
  it("--fault-lie (tests only): perturbed outputs, so the fingerprint differs from an honest run's, still validly signed; a shared blob dir needs no download", async () => {
    const key = devKey(4)
    const nodeBlobDir = join(tempDir("node-lie"), "blobs")
    const nodeBlobs = makeFsBlobStore(nodeBlobDir)
    await run(nodeBlobs.put(SILERO))
    const port = await freePort()
    await run(
      Effect.scoped(
        Effect.gen(function* () {
          const node = yield* startFakeNode(yield* makeFakeNodeState(nodeBlobs), port)
          // It also shares the node's blob directory (as an in-process worker may): nothing to download.
          const worker = yield* startComputeNode({ ...baseOptions(node.url, key, tempDir("data-lie")), blobDir: nodeBlobDir, faultLie: true })
          yield* worker.registered()
          const inputs = sileroInputs("lie")
          const task = assignment("silero", tensorMapToJson(inputs))
          yield* Queue.offer(node.state.tasks, task)
          const r = yield* Queue.take(node.state.results).pipe(Effect.timeoutFail({ duration: RESULT_WAIT, onTimeout: () => new Error("no result") }))
          const outputs = checkResult(r, task, key)
          const honest = yield* Effect.promise(() => bareRun(SILERO, inputs))
          expect(r.fingerprint).not.toBe(outputFingerprint(honest as TensorMap, TOLERANCE))
          expect(plain(outputs)).not.toEqual(plain(honest))
          expect(logLines.some((l) => l.includes("FAULT-LIE"))).toBe(true)
          expect(node.state.blobGets).toBe(0)
        })
      )
    )
  })

  it("a registration the node refuses stops runComputeNode with the typed error", async () => {
    const nodeBlobs = makeFsBlobStore(join(tempDir("node-refuse"), "blobs"))
    const port = await freePort()
    const exit = await run(
      Effect.scoped(
        Effect.gen(function* () {
          const node = yield* startFakeNode(yield* makeFakeNodeState(nodeBlobs), port)
          return yield* Effect.exit(runComputeNode({ ...baseOptions(node.url, devKey(5), tempDir("data-refuse")), gpuClass: "NOPE" }).pipe(Effect.timeout(RESULT_WAIT)))
        })
      )
    )
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
    expect(error).toBeInstanceOf(WorkerRejected)
    expect((error as WorkerRejected).reason).toBe("BadRegistration")
  })
})

describe("ComputeNode on chain (a stand-in AI shard)", () => {
  it("submits worker.register once, signed by its key with fee 0 and its AI-shard nonce, before it connects; a restart with the same key does not register again", async () => {
    const nodeBlobs = makeFsBlobStore(join(tempDir("node-chain"), "blobs"))
    const port = await freePort()
    const key = devKey(6)
    const dataDir = tempDir("data-chain")
    await run(
      Effect.scoped(
        Effect.gen(function* () {
          const state = yield* makeFakeNodeState(nodeBlobs)
          state.aiShard = 3
          const node = yield* startFakeNode(state, port)
          const first = yield* Effect.scoped(
            Effect.gen(function* () {
              const w = yield* startComputeNode(baseOptions(node.url, key, dataDir))
              yield* w.registered()
              return yield* w.stats
            })
          )
          expect(first.chainRegistrations).toBe(1)
          expect(state.chainTxs).toHaveLength(1)
          expect(state.chainTxs[0]).toMatchObject({ sender: key.publicKey.address, nonce: 0n, fee: 0n, status: "included" })
          expect(state.onChain.get(key.publicKey.address)).toMatchObject({ publicKey: key.publicKey.hex, gpuClass: "CPU", devices: 2, endpoint: "test-worker" })
          // The node saw the on-chain registration before the connection's.
          expect(state.registrations).toHaveLength(1)
          // A restart (a new process with the same key): the chain already has it, so no second worker.register.
          const second = yield* Effect.scoped(
            Effect.gen(function* () {
              const w = yield* startComputeNode(baseOptions(node.url, key, dataDir))
              yield* w.registered()
              return yield* w.stats
            })
          )
          expect(second.chainRegistrations).toBe(0)
          expect(state.chainTxs).toHaveLength(1)
          expect(state.registrations).toHaveLength(2)
          // Another class than the chain's: registered on chain again (the ledger updates it), nonce 1.
          const third = yield* Effect.scoped(
            Effect.gen(function* () {
              const w = yield* startComputeNode({ ...baseOptions(node.url, key, dataDir), gpuClass: "RTX4090" })
              yield* w.registered()
              return yield* w.stats
            })
          )
          expect(third.chainRegistrations).toBe(1)
          expect(state.chainTxs.map((t) => t.nonce)).toEqual([0n, 1n])
          expect(state.onChain.get(key.publicKey.address)?.gpuClass).toBe("RTX4090")
        }).pipe(Effect.timeout(RESULT_WAIT))
      )
    )
    expect(logLines.some((l) => l.startsWith("INFO registered on chain: worker.register 0x"))).toBe(true)
  })

  it("two nodes of one chain (the same genesis hash), one 6 s behind the other (past the old 5 s window): one worker.register, the lagging node only waited to see it; a node of another chain gets its own", async () => {
    const blobs = makeFsBlobStore(join(tempDir("node-chain-lag"), "blobs"))
    const key = devKey(8)
    await run(
      Effect.scoped(
        Effect.gen(function* () {
          const [a, b, other] = [yield* makeFakeNodeState(blobs), yield* makeFakeNodeState(blobs), yield* makeFakeNodeState(blobs)]
          for (const s of [a, b, other]) s.aiShard = 3
          b.genesisHash = a.genesisHash // b is a's chain, its view lagging
          const [na, nb, no] = [yield* startFakeNode(a, yield* Effect.promise(freePort)), yield* startFakeNode(b, yield* Effect.promise(freePort)), yield* startFakeNode(other, yield* Effect.promise(freePort))]
          // One chain seen through two nodes: the one that did not take the worker.register shows its block 6 s later.
          const w0 = key.publicKey.address
          yield* Effect.gen(function* () {
            while (!a.onChain.has(w0) && !b.onChain.has(w0)) yield* Effect.sleep("50 millis")
            yield* Effect.sleep("6 seconds")
            const [from, to] = a.onChain.has(w0) ? [a, b] : [b, a]
            to.onChain.set(w0, from.onChain.get(w0)!)
          }).pipe(Effect.forkScoped)
          const w = yield* startComputeNode({ ...baseOptions(na.url, key, tempDir("data-chain-lag")), rpc: [na.url, nb.url, no.url] })
          yield* w.registered(1, 0)
          yield* w.registered(1, 1)
          yield* w.registered(1, 2)
          expect(a.chainTxs.length + b.chainTxs.length).toBe(1) // no second worker.register on one chain
          expect(other.chainTxs).toHaveLength(1) // another chain: its own
          expect((yield* w.stats).chainRegistrations).toBe(2)
          expect([a, b, other].map((s) => s.registrations.length)).toEqual([1, 1, 1])
        }).pipe(Effect.timeout(RESULT_WAIT))
      )
    )
  })

  it("a worker.register the chain refuses stops runComputeNode with ChainRegistrationRefused and the ledger's reason", async () => {
    const nodeBlobs = makeFsBlobStore(join(tempDir("node-chain-refuse"), "blobs"))
    const port = await freePort()
    const exit = await run(
      Effect.scoped(
        Effect.gen(function* () {
          const state = yield* makeFakeNodeState(nodeBlobs)
          state.aiShard = 3
          state.refuseRegister = "UnknownGpuClass: no such class"
          const node = yield* startFakeNode(state, port)
          const exit = yield* Effect.exit(runComputeNode(baseOptions(node.url, devKey(7), tempDir("data-chain-refuse"))).pipe(Effect.timeout(RESULT_WAIT)))
          expect(state.registrations).toHaveLength(0)
          return exit
        })
      )
    )
    const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
    expect(error).toBeInstanceOf(ChainRegistrationRefused)
    expect((error as ChainRegistrationRefused).message).toMatch(/UnknownGpuClass: no such class/)
  })
})

// A client of the node's whole group is a ComputeNodeClient (checked by the compiler).
export const nodeClientIsComputeNodeClient = (c: NodeClient): ComputeNodeClient => c

/**
 * One compute node serving two nodes (stand-ins, support/fakeNode.ts: real
 * WebSocket RPC servers on localhost): it registers with each (its own
 * signed offer, a fresh nonce per node), heartbeats each, runs each node's
 * assignments on its one engine and answers on that node's session; a node
 * that goes away is dialled again with back-off while the other keeps being
 * served; a node that floods it does not starve the other; a node list with
 * a URL twice is refused; one node refusing the worker leaves the other.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Logger, LogLevel, Queue, Scope } from "effect"
import { outputFingerprint } from "../../domain/ai/fingerprint.js"
import { execMsOf, resultDigest, verifyMessage } from "../../domain/ai/signedMessages.js"
import { decodeTensorMapJson, tensorMapToJson, type TensorMap } from "../../domain/ai/tensor.js"
import { devKey } from "../../domain/chain/keys.js"
import { makeFsBlobStore } from "../../infra/blobstore/FsBlobStore.js"
import type { TaskAssignment } from "../../src/api/AiRpcs.js"
import { BadNodeList, startComputeNode, type ComputeNodeHandle, type ComputeNodeOptions } from "../../src/worker/ComputeNode.js"
import { matMulChainModel } from "../ai/support/models.js"
import { SILERO, SILERO_HASH, sha256, sileroInputs } from "./support/silero.js"
import { bareRun, plain } from "./support/bare.js"
import { makeFakeNodeState, startFakeNode, type FakeNode, type ResultRecord } from "./support/fakeNode.js"
import { requestedAssignment } from "./support/request.js"
import { freePort } from "../support/freePort.js"
import { waitFor } from "../support/waitFor.js"


/** A model that takes a while per run (a chain of 256×256 MatMuls), so a flood of its tasks keeps the engine busy. */
const SLOW_N = 256
const SLOW = matMulChainModel(SLOW_N, 8)
const SLOW_HASH = sha256(SLOW)
const slowInputs = (fill: number): TensorMap => ({
  x: { type: "float32", dims: [SLOW_N, SLOW_N], data: Float32Array.from({ length: SLOW_N * SLOW_N }, (_, i) => ((i % 7) - 3) * fill) }
})

const TOLERANCE = 1e-4
const RESULT_WAIT = Duration.seconds(60)

const assignment = (model: "silero" | "slow", inputs: TensorMap): TaskAssignment =>
  requestedAssignment({
    model: model === "silero" ? "model-silero" : "model-slow",
    weightsHash: model === "silero" ? SILERO_HASH : SLOW_HASH,
    sizeBytes: model === "silero" ? SILERO.length : SLOW.length,
    outputTolerance: TOLERANCE,
    inputs: tensorMapToJson(inputs),
    deadlineMs: 60_000
  })

const dirs: Array<string> = []
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), `topai-multi-${prefix}-`))
  dirs.push(dir)
  return dir
}

const logLines: Array<string> = []
const captureLogs = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ logLevel, message }) => {
    logLines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
  })
)
const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect.pipe(Effect.provide(captureLogs), Logger.withMinimumLogLevel(LogLevel.Info)))


const nextResult = (node: FakeNode): Promise<ResultRecord> =>
  run(Queue.take(node.state.results).pipe(Effect.timeoutFail({ duration: RESULT_WAIT, onTimeout: () => new Error(`no result from ${node.url} in time`) })))

const options = (rpc: ComputeNodeOptions["rpc"], dataDir: string, key = devKey(6)): ComputeNodeOptions => ({
  rpc,
  key,
  gpuClass: "CPU",
  devices: 1,
  stake: 0n,
  endpoint: "multi-worker",
  dataDir,
  engine: { threads: 1 },
  heartbeatInterval: Duration.millis(100),
  reconnectInitial: Duration.millis(100),
  reconnectMax: Duration.millis(400),
  callTimeout: Duration.seconds(5)
})

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  if (process.env["TOPAI_TEST_LOGS"] !== undefined) console.log(logLines.join("\n"))
})

describe("ComputeNode serving two nodes", () => {
  const key = devKey(6)
  let scope: Scope.CloseableScope
  let a: FakeNode
  let b: FakeNode
  let worker: ComputeNodeHandle

  beforeAll(async () => {
    const blobsA = makeFsBlobStore(join(tempDir("node-a"), "blobs"))
    const blobsB = makeFsBlobStore(join(tempDir("node-b"), "blobs"))
    for (const blobs of [blobsA, blobsB]) {
      await run(blobs.put(SILERO))
      await run(blobs.put(SLOW))
    }
    scope = await run(Scope.make())
    a = await run(startFakeNode(await run(makeFakeNodeState(blobsA)), await freePort()).pipe(Scope.extend(scope)))
    b = await run(startFakeNode(await run(makeFakeNodeState(blobsB)), await freePort()).pipe(Scope.extend(scope)))
    worker = await run(startComputeNode(options([a.url, b.url], tempDir("worker"), key)).pipe(Scope.extend(scope)))
  })

  afterAll(async () => {
    if (scope !== undefined) await run(Scope.close(scope, Exit.void))
  })

  it("registers with each node (a signed offer with its own fresh nonce) and heartbeats each", async () => {
    const [ra, rb] = await run(Effect.all([worker.registered(1, 0), worker.registered(1, 1)]))
    expect(ra.where).toBe(a.url)
    expect(rb.where).toBe(b.url)
    expect(a.state.registrations.map((r) => r.address)).toEqual([key.publicKey.address])
    expect(b.state.registrations.map((r) => r.address)).toEqual([key.publicKey.address])
    expect(a.state.registrations[0]!.session).toBe(ra.session)
    expect(b.state.registrations[0]!.session).toBe(rb.session)
    expect(a.state.registrations[0]!.nonce).not.toBe(b.state.registrations[0]!.nonce)
    const [beatsA, beatsB] = [a.state.heartbeats, b.state.heartbeats]
    await waitFor("two more heartbeats at each node", async () => (a.state.heartbeats >= beatsA + 2 && b.state.heartbeats >= beatsB + 2 ? true : undefined), { timeoutMs: 10_000 })
    const stats = await run(worker.stats)
    expect(stats.nodes.map((n) => [n.where, n.connected, n.registrations])).toEqual([
      [a.url, true, 1],
      [b.url, true, 1]
    ])
  })

  it("runs each node's assignments on the one engine and answers each on its own session: outputs equal a bare onnxruntime run", async () => {
    const [ra, rb] = await run(Effect.all([worker.registered(1, 0), worker.registered(1, 1)]))
    const inA = sileroInputs("node-a")
    const inB = sileroInputs("node-b")
    const taskA = assignment("silero", inA)
    const taskB = assignment("silero", inB)
    await run(Queue.offer(a.state.tasks, taskA))
    await run(Queue.offer(b.state.tasks, taskB))
    const [resA, resB] = await Promise.all([nextResult(a), nextResult(b)])
    for (const [r, task, session, inputs] of [
      [resA, taskA, ra.session, inA],
      [resB, taskB, rb.session, inB]
    ] as const) {
      expect(r.task).toBe(task.task)
      expect(r.session).toBe(session)
      const outputs = Either.getOrThrow(decodeTensorMapJson(r.outputs))
      expect(r.fingerprint).toBe(outputFingerprint(outputs, TOLERANCE))
      expect(Either.isRight(verifyMessage(resultDigest(task.task, r.fingerprint, execMsOf(r.millis)), key.publicKey.hex, r.signature))).toBe(true)
      expect(plain(outputs)).toEqual(plain(await bareRun(SILERO, inputs)))
    }
    expect(worker.engine.config.threads).toBe(1)
  })

  it("a node flooding the worker does not starve the other: the other's task is done before the flood is", async () => {
    const FLOOD = 12
    const flood = Array.from({ length: FLOOD }, (_, i) => assignment("slow", slowInputs(0.001 * (i + 1))))
    for (const t of flood) await run(Queue.offer(a.state.tasks, t))
    // The flood holds every slot before the other node's task arrives.
    await waitFor("the flood to fill the worker's slots", async () => ((await run(worker.stats)).inFlight >= 2 ? true : undefined), { timeoutMs: 30_000, intervalMs: 5 })
    const inB = sileroInputs("between")
    const taskB = assignment("silero", inB)
    await run(Queue.offer(b.state.tasks, taskB))
    const resB = await nextResult(b)
    const doneA = await run(Queue.size(a.state.results))
    expect(resB.task).toBe(taskB.task)
    expect(doneA).toBeLessThan(FLOOD / 2)
    for (let i = 0; i < FLOOD; i++) await nextResult(a)
    expect(plain(Either.getOrThrow(decodeTensorMapJson(resB.outputs)))).toEqual(plain(await bareRun(SILERO, inB)))
  })

  it("a node that goes away is dialled again with back-off while the other is still served; back, it gets a new registration", async () => {
    const first = await run(worker.registered(1, 0))
    const beforeB = await run(worker.registered(1, 1))
    await run(a.stop)
    await waitFor("the worker to see node A gone", async () => ((await run(worker.stats)).nodes[0]!.connected ? undefined : true), { timeoutMs: 10_000 })
    const stats = await run(worker.stats)
    expect(stats.connected).toBe(true)
    expect(stats.nodes[1]!.connected).toBe(true)
    // Node B is served while A is down, on the same session as before.
    const inB = sileroInputs("while-a-down")
    const taskB = assignment("silero", inB)
    await run(Queue.offer(b.state.tasks, taskB))
    const resB = await nextResult(b)
    expect(resB.session).toBe(beforeB.session)
    expect(plain(Either.getOrThrow(decodeTensorMapJson(resB.outputs)))).toEqual(plain(await bareRun(SILERO, inB)))
    expect(logLines.some((l) => l.startsWith(`WARN lost ${a.url}`) || l.startsWith(`WARN cannot reach ${a.url}`))).toBe(true)
    expect(logLines.some((l) => l.startsWith(`WARN lost ${b.url}`))).toBe(false)
    // A comes back (its sessions forgotten): the worker registers again, with a fresh nonce.
    await run(a.restart)
    const second = await run(worker.registered(first.count + 1, 0).pipe(Effect.timeout(RESULT_WAIT)))
    expect(second.session).not.toBe(first.session)
    expect(new Set(a.state.registrations.map((r) => r.nonce)).size).toBe(a.state.registrations.length)
    const inA = sileroInputs("a-back")
    const taskA = assignment("silero", inA)
    await run(Queue.offer(a.state.tasks, taskA))
    const resA = await nextResult(a)
    expect(resA.session).toBe(second.session)
    expect(plain(Either.getOrThrow(decodeTensorMapJson(resA.outputs)))).toEqual(plain(await bareRun(SILERO, inA)))
    expect((await run(worker.stats)).nodes[1]!.registrations).toBe(1)
  })
})

describe("ComputeNode, node lists", () => {
  it("a URL given twice is refused before any connection (BadNodeList Duplicate)", async () => {
    const exit = await run(Effect.exit(Effect.scoped(startComputeNode(options(["ws://127.0.0.1:1/ws", "ws://127.0.0.1:1/ws"], tempDir("dup"))))))
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
    expect(error).toBeInstanceOf(BadNodeList)
    expect((error as BadNodeList).reason).toBe("Duplicate")
  })

  it("one node refusing the worker ends only that connection; the other serves on", async () => {
    const blobs = makeFsBlobStore(join(tempDir("refuse-blobs"), "blobs"))
    await run(blobs.put(SILERO))
    await run(
      Effect.scoped(
        Effect.gen(function* () {
          const refusing = yield* makeFakeNodeState(blobs)
          ;(refusing.gpuClasses as Set<string>).delete("CPU")
          const no = yield* startFakeNode(refusing, yield* Effect.promise(() => freePort()))
          const yes = yield* startFakeNode(yield* makeFakeNodeState(blobs), yield* Effect.promise(() => freePort()))
          const worker = yield* startComputeNode(options([no.url, yes.url], tempDir("refuse"), devKey(7)))
          yield* worker.registered(1, 1)
          const refused = yield* Effect.promise(() =>
            waitFor("node 0's refusal", async () => (await run(worker.stats)).nodes[0]!.refused ?? undefined, { timeoutMs: 10_000 })
          )
          expect(refused).toMatch(/BadRegistration.*unknown GPU class CPU/)
          const inputs = sileroInputs("after-refusal")
          const task = assignment("silero", inputs)
          yield* Queue.offer(yes.state.tasks, task)
          const r = yield* Queue.take(yes.state.results).pipe(Effect.timeoutFail({ duration: RESULT_WAIT, onTimeout: () => new Error("no result") }))
          expect(r.task).toBe(task.task)
          // The program still runs: one node serves it.
          expect(worker.fiber.unsafePoll()).toBeNull()
        })
      )
    )
  })
})

/**
 * A compute node given runs that pass on smoke-sized inputs but not on the
 * values a request sends (support/servingModels.ts): a Loop whose count is an
 * input, killed at the assignment's run deadline, and a ConstantOfShape whose
 * size is an input, stopped by the child's memory limit. Each is reported
 * with `worker.failed` and its `overrun` (what the node charges by), and the
 * compute node goes on serving the next task.
 */
import { createHash } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Queue, Scope } from "effect"
import { overrunDigest, verifyMessage } from "../../domain/ai/signedMessages.js"
import { decodeTensorMapJson, tensorMapToJson, type TensorMap } from "../../domain/ai/tensor.js"
import { devKey } from "../../domain/chain/keys.js"
import { makeFsBlobStore } from "../../infra/blobstore/FsBlobStore.js"
import { findPrlimit } from "../../infra/inference/InferenceThread.js"
import type { TaskAssignment } from "../../src/api/AiRpcs.js"
import { startComputeNode, type ComputeNodeHandle } from "../../src/worker/ComputeNode.js"
import { valueBombModel, valueLoopModel } from "../ai/support/servingModels.js"
import { freePort } from "../support/freePort.js"
import { makeFakeNodeState, startFakeNode, type FakeNode } from "./support/fakeNode.js"
import { requestedAssignment } from "./support/request.js"

const sha256 = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`
const LOOP = valueLoopModel()
const BOMB = valueBombModel()
const MIB = 1024 * 1024
const WAIT = Duration.seconds(30)

const loopInputs = (turns: bigint): TensorMap => ({
  m: { type: "int64", dims: [], data: BigInt64Array.of(turns) },
  x: { type: "float32", dims: [1], data: Float32Array.of(0) }
})
const bombInputs = (elements: bigint): TensorMap => ({ n: { type: "int64", dims: [1], data: BigInt64Array.of(elements) } })

const assignment = (bytes: Uint8Array, inputs: TensorMap, runDeadlineMs: number) =>
  requestedAssignment({
    model: "model-under-test",
    weightsHash: sha256(bytes),
    sizeBytes: bytes.length,
    outputTolerance: 1e-4,
    inputs: tensorMapToJson(inputs),
    deadlineMs: 30_000,
    runDeadlineMs
  })

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

describe("ComputeNode: runs stopped at their limits", () => {
  const dir = mkdtempSync(join(tmpdir(), "topai-overrun-"))
  let scope: Scope.CloseableScope
  let node: FakeNode
  let worker: ComputeNodeHandle

  beforeAll(async () => {
    const blobs = makeFsBlobStore(join(dir, "node-blobs"))
    await run(blobs.put(LOOP))
    await run(blobs.put(BOMB))
    scope = await run(Scope.make())
    const port = await freePort()
    node = await run(Effect.flatMap(makeFakeNodeState(blobs), (state) => startFakeNode(state, port)).pipe(Scope.extend(scope)))
    worker = await run(
      startComputeNode({
        rpc: node.url,
        key: devKey(5),
        gpuClass: "CPU",
        devices: 1,
        stake: 1_000n,
        endpoint: "overrun-worker",
        dataDir: join(dir, "worker"),
        engine: { threads: 1, memoryBytesMax: 512 * MIB },
        heartbeatInterval: Duration.millis(200),
        callTimeout: Duration.seconds(5)
      }).pipe(Scope.extend(scope))
    )
    await run(worker.registered())
  }, 60_000)

  afterAll(async () => {
    if (scope !== undefined) await run(Scope.close(scope, Exit.void))
    rmSync(dir, { recursive: true, force: true })
  })

  const nextFailure = () => run(Queue.take(node.state.failures).pipe(Effect.timeoutFail({ duration: WAIT, onTimeout: () => new Error("no failure report in time") })))
  const nextResult = () => run(Queue.take(node.state.results).pipe(Effect.timeoutFail({ duration: WAIT, onTimeout: () => new Error("no result in time") })))
  const offer = (a: TaskAssignment) => run(Queue.offer(node.state.tasks, a))
  /** The claim is signed by the worker's key over what it says (a confirmed overrun is charged on chain by it: `usage.overran`). */
  const signedByWorker = (task: string, o: { readonly kind: string; readonly millis: number; readonly limit: number; readonly signature: string }) =>
    Either.isRight(verifyMessage(overrunDigest(task, o.kind, o.millis, o.limit), devKey(5).publicKey.hex, o.signature)) &&
    Either.isLeft(verifyMessage(overrunDigest(task, o.kind, o.millis + 1, o.limit), devKey(5).publicKey.hex, o.signature))

  it("a loop count from the input: killed at the 400 ms run deadline, reported as a Deadline overrun; the next task is served", async () => {
    const hog = assignment(LOOP, loopInputs(10n ** 15n), 400)
    await offer(hog)
    const f = await nextFailure()
    expect(f.task).toBe(hog.task)
    expect(f.detail).toMatch(/^Overran: Deadline \(model 0x[0-9a-f]{64}\): the run was stopped after \d+ ms, past its deadline of 400 ms$/)
    expect(f.overrun?.kind).toBe("Deadline")
    expect(f.overrun?.limit).toBe(400)
    expect(f.overrun?.millis).toBeGreaterThanOrEqual(400)
    expect(signedByWorker(f.task, f.overrun!)).toBe(true)
    const ok = assignment(LOOP, loopInputs(5n), 5_000)
    await offer(ok)
    const r = await nextResult()
    expect(r.task).toBe(ok.task)
    const y = decodeTensorMapJson(r.outputs)
    expect(y._tag === "Right" ? Array.from(y.right["y"]!.data as Float32Array) : undefined).toEqual([5])
    const [child] = await run(worker.engine.stats)
    expect(child!.killed).toBeGreaterThanOrEqual(1)
  })

  it.skipIf(findPrlimit() === undefined)("an allocation sized by the input (1 GiB under 512 MiB): reported as a Memory overrun; the next task is served", async () => {
    const bomb = assignment(BOMB, bombInputs(256n * 1024n * 1024n), 10_000)
    await offer(bomb)
    const f = await nextFailure()
    expect(f.task).toBe(bomb.task)
    expect(f.detail).toMatch(/^Overran: Memory \(model 0x[0-9a-f]{64}\): an allocation failed under the 512 MiB limit/)
    expect(f.overrun?.kind).toBe("Memory")
    expect(f.overrun?.limit).toBe(512 * MIB)
    expect(signedByWorker(f.task, f.overrun!)).toBe(true)
    const ok = assignment(BOMB, bombInputs(9n), 5_000)
    await offer(ok)
    const r = await nextResult()
    expect(r.task).toBe(ok.task)
    expect((await run(worker.stats)).connected).toBe(true)
  })
})

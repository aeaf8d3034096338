/**
 * Hostile models at serving time, end to end: a node (`topai node start`,
 * one in-process compute node) and the typed client. The models pass
 * verification — their smoke inputs are small — and misbehave on what a
 * request sends:
 *
 *   - a Loop whose trip count is constant (2^62) but whose condition, v < n,
 *     takes n from the input: each call is killed at its run
 *     deadline (from the verified smoke time) on one compute node, confirmed
 *     on the other, refused to the developer as `Overran` and charged its
 *     price once (TaskOverran, TaskSettled); the third overrun suspends the
 *     model (`ModelNotServable`, nothing charged)
 *   - a ConstantOfShape whose size is an input (4 GB asked, 2 GiB allowed):
 *     `Overran` (Memory), confirmed, charged
 *   - a lying compute node (a stand-in speaking the protocol) that claims an
 *     overrun on a model that runs fine: alone, the claim fails the task
 *     uncharged; with an honest node to confirm, the claim is refuted — the
 *     developer gets the honest result at the normal price, the liar is
 *     marked wrong, and three such claims do not suspend the model
 *   - inputs over the manifest (silero's sequence past its smoke shape with no
 *     maxShapes; its fixed sample rate changed): `InputsOutOfBounds`, before
 *     any work, nothing charged
 *
 * and after all of it the node and its compute node still serve silero, and
 * `topai audit replay` rebuilds every task (overran ones included) and finds
 * each charge in its escrow.
 */
import { Effect, Either, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ModelManifestEncoded } from "../../domain/ai/manifest.js"
import { OVERRUNS_TO_SUSPEND } from "../../domain/ai/model/overruns.js"
import { outputFingerprint } from "../../domain/ai/fingerprint.js"
import { overrunDigest, resultDigest, signMessage } from "../../domain/ai/signedMessages.js"
import { decodeTensorMapJson, tensorMapToJson } from "../../domain/ai/tensor.js"
import { devKey, type PrivateKey } from "../../domain/chain/keys.js"
import type { InferenceRejected, InferResult, ModelView, TaskAssignment } from "../../src/client/index.js"
import { SILERO_MANIFEST, sileroBytes } from "../ai/support/models.js"
import { valueBombModel, valueLoopModel } from "../ai/support/servingModels.js"
import { bareRun, inferArgs, openTestSession, registerWorkerOnChain, servingManifest, signGrant, signRegistration, submitIncluded, uploadModel, type TestSession } from "./support/ai.js"
import { DEV, waitFor } from "./support/chain.js"
import { openClient, type TestClient } from "./support/client.js"
import { auditAi, cleanup, makeTempDir, spawnNode, type NodeProcess } from "./support/processes.js"

const MILLI = 10n ** 15n
const PRICE = 5n * MILLI
const PROVIDER = DEV[1]!
const DEVELOPER = DEV[2]!

let node: NodeProcess
let c: TestClient
let loop: ModelView
let bomb: ModelView
let silero: ModelView
/** silero needing an H100: only the test's stand-in compute nodes can take it. */
let sileroH100: ModelView

const register = (bytes: Uint8Array, manifest: ModelManifestEncoded): Promise<ModelView> => uploadModel(c, PROVIDER.key, bytes, manifest)

const sessionFor = async (modelId: string) => {
  await submitIncluded(c, DEVELOPER.key, { kind: "escrow.deposit", model: modelId as never, amount: 10n * PRICE })
  await waitFor(`the deposit for ${modelId}`, async () => {
    const e = await escrowOf(modelId)
    return e.deposited >= 10n * PRICE ? e : undefined
  })
  const { chainId } = await c.run(c.client.node.status())
  return openTestSession(c, chainId, DEVELOPER.key, signGrant(chainId, DEVELOPER.key, modelId, { expiresAt: Date.now() + 3_600_000, spendMax: 10n * PRICE }))
}

const escrowOf = (modelId: string) => c.run(c.client.escrow.get({ developer: DEVELOPER.address, model: modelId }))
/** Waits until the AI ledger's escrow for the model is `amount` and nothing captured here is left unsettled. */
const onLedger = (modelId: string, amount: bigint) =>
  waitFor(`the AI ledger's escrow for ${modelId} at ${amount}`, async () => {
    const e = await escrowOf(modelId)
    return e.onLedger === amount && e.unsettled === 0n ? e : undefined
  }, { timeoutMs: 60_000, intervalMs: 250 })
const refusal = async (session: TestSession, inputs: unknown) => (await c.fail(c.client.infer(inferArgs(session, inputs)), 60_000)) as InferenceRejected
const manifest = (name: string): ModelManifestEncoded => servingManifest(name, PRICE)
const sileroInput = (sequence: number, sr = 16000) => ({
  input: { type: "float32", dims: [1, sequence], data: Array.from({ length: sequence }, (_, i) => Math.fround(0.4 * Math.sin(i / 9))) },
  state: { type: "float32", dims: [2, 1, 128], data: Array.from({ length: 256 }, () => 0) },
  sr: { type: "int64", dims: [], data: [sr] }
})

// ---------------------------------------------------------------- stand-in compute nodes

let nextStandInKey = 60

/**
 * A compute node played by the test over its own connection: registers
 * (signed) as an H100, takes its task stream, and does `onTask` with each
 * assignment.
 */
const standIn = async (onTask: (a: TaskAssignment, session: string, key: PrivateKey, client: TestClient) => Promise<unknown>) => {
  const client = await openClient(node.url)
  const key = devKey(nextStandInKey++)
  const status = await client.run(client.client.node.status())
  await registerWorkerOnChain(client, key, { gpuClass: "H100", endpoint: "stand-in" })
  const { session } = await client.run(client.client.worker.register(signRegistration(status.chainId, key, { gpuClass: "H100", endpoint: "stand-in" })))
  void Effect.runPromiseExit(
    client.client.worker.tasks({ session }).pipe(Stream.runForEach((a) => Effect.promise(() => onTask(a, session, key, client).catch(() => undefined))))
  )
  const address = key.publicKey.address
  await waitFor(`stand-in ${address} online`, async () => ((await c.run(c.client.worker.list())).some((w) => w.id === address && w.online) ? true : undefined), {
    timeoutMs: 30_000,
    intervalMs: 100
  })
  return { address, close: () => client.close() }
}

/** Claims a deadline overrun on every task, once `release` is called. */
const liarStandIn = async () => {
  let release!: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  let assigned!: () => void
  const gotTask = new Promise<void>((resolve) => (assigned = resolve))
  const w = await standIn(async (a, session, key, client) => {
    const at = Date.now()
    assigned()
    await released
    const limit = a.runDeadlineMs ?? a.deadlineMs
    // No more ms than passed since it got the task (the node refuses a claim of more, as for a result).
    const millis = Math.min(limit + 1, Date.now() - at)
    // Signed by its own key: the lie is in what it claims, not in who claims it.
    const overrun = { kind: "Deadline" as const, millis, limit, signature: signMessage(overrunDigest(a.task, "Deadline", millis, limit), key) }
    return client.run(client.client.worker.failed({ session, task: a.task, detail: `stopped at the deadline of ${limit} ms`, overrun }))
  })
  return { ...w, release, assigned: gotTask }
}

/** Runs silero with onnxruntime here and sends the signed result. */
const honestStandIn = () =>
  standIn(async (a, session, key, client) => {
    const outputs = await bareRun(sileroBytes(), a.inputs)
    const fingerprint = outputFingerprint(outputs, a.outputTolerance)
    const signature = signMessage(resultDigest(a.task, fingerprint, 1), key)
    return client.run(client.client.worker.result({ session, task: a.task, outputs: tensorMapToJson(outputs), fingerprint, millis: 1, signature }))
  })

const offline = (addresses: ReadonlyArray<string>) =>
  waitFor(`${addresses.join(", ")} offline`, async () => {
    const list = await c.run(c.client.worker.list())
    return addresses.every((a) => !list.some((w) => w.id === a && w.online)) ? true : undefined
  })

beforeAll(async () => {
  node = await spawnNode({ dataDir: makeTempDir("serving-limits"), extraArgs: ["--workers", "2"] })
  c = await openClient(node.url)
  loop = await register(valueLoopModel(), manifest("loop-by-input"))
  bomb = await register(valueBombModel(), manifest("alloc-by-input"))
  silero = await register(sileroBytes(), { ...SILERO_MANIFEST, pricePerCall: String(PRICE), validation: { kind: "single", sampleRatePerMillion: 0 } })
  sileroH100 = await register(sileroBytes(), {
    ...SILERO_MANIFEST,
    name: "silero-h100",
    pricePerCall: String(PRICE),
    minGpuClass: "H100",
    validation: { kind: "single", sampleRatePerMillion: 0 }
  })
  await waitFor("the in-process compute nodes online", async () => ((await c.run(c.client.worker.list())).filter((w) => w.online).length >= 2 ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 200
  })
}, 150_000)

afterAll(async () => {
  await c?.close()
  await cleanup()
})

describe("serving limits through a node", () => {
  it("the hostile models pass verification on their small smoke inputs", () => {
    expect([loop.status, bomb.status, silero.status, sileroH100.status], `${loop.reason} / ${bomb.reason}`).toEqual(["Verified", "Verified", "Verified", "Verified"])
  })

  it(`a loop condition from the input: killed at its deadline, Overran, charged once per call; suspended at the ${OVERRUNS_TO_SUSPEND}rd overrun`, async () => {
    const session = await sessionFor(loop.id)
    const huge = { m: { type: "int64", dims: [], data: ["1000000000000000"] }, x: { type: "float32", dims: [1], data: [0] } }
    for (let i = 1; i <= OVERRUNS_TO_SUSPEND; i++) {
      const r = await refusal(session, huge)
      expect(r.reason).toBe("Overran")
      expect(r.detail).toMatch(new RegExp(`^the run went past its deadline of \\d+ ms \\(stopped after \\d+ ms\\) on 0x[0-9a-f]{40}, confirmed on 0x[0-9a-f]{40}; charged ${PRICE}$`))
      expect(await escrowOf(loop.id)).toMatchObject({ captured: BigInt(i) * PRICE, reserved: 0n })
    }
    const events = await c.run(c.client.events.read({ stream: `model-${loop.id}`, from: 0, limit: 100 }))
    expect(events.map((e) => e.type).filter((t) => t === "ModelOverran" || t === "ModelSuspended")).toEqual([
      ...Array.from({ length: OVERRUNS_TO_SUSPEND }, () => "ModelOverran"),
      "ModelSuspended"
    ])
    const small = { m: { type: "int64", dims: [], data: [3] }, x: { type: "float32", dims: [1], data: [0] } }
    const suspended = await refusal(session, small)
    expect(suspended.reason).toBe("ModelNotServable")
    expect(suspended.detail).toBe(`model ${loop.id} is suspended: ${OVERRUNS_TO_SUSPEND} calls overran their limits (deadline or memory)`)
    expect((await escrowOf(loop.id)).captured).toBe(BigInt(OVERRUNS_TO_SUSPEND) * PRICE)
    // Charged on chain too: the Settler sent the two workers' signed claims in usage.overran, and the AI ledger took the price.
    await onLedger(loop.id, 10n * PRICE - BigInt(OVERRUNS_TO_SUSPEND) * PRICE)
  }, 120_000)

  it("an allocation sized by the input (4 GB under the worker's 2 GiB): Overran (memory), charged once", async () => {
    const session = await sessionFor(bomb.id)
    const r = await refusal(session, { n: { type: "int64", dims: [1], data: [1_000_000_000] } })
    expect(r.reason).toBe("Overran")
    expect(r.detail).toMatch(new RegExp(`^the run needed more than the 2048 MiB the worker allows \\(stopped after \\d+ ms\\) on 0x[0-9a-f]{40}, confirmed on 0x[0-9a-f]{40}; charged ${PRICE}$`))
    expect(await escrowOf(bomb.id)).toMatchObject({ captured: PRICE, reserved: 0n })
    await onLedger(bomb.id, 9n * PRICE)
    const ok = await c.run(c.client.infer(inferArgs(session, { n: { type: "int64", dims: [1], data: [12] } })), 60_000)
    expect(ok.charged).toBe(PRICE)
  }, 120_000)

  it("inputs over the manifest: InputsOutOfBounds before any work, nothing charged; silero still served after everything", async () => {
    const session = await sessionFor(silero.id)
    const before = await escrowOf(silero.id)
    const long = await refusal(session, sileroInput(577))
    expect([long.reason, long.detail]).toEqual([
      "InputsOutOfBounds",
      `input "input": dims [1, 577] exceed 576 elements (the model's max shapes allow at most 576 elements in one input)`
    ])
    const sr = await refusal(session, sileroInput(576, 8000))
    expect([sr.reason, sr.detail]).toEqual(["InputsOutOfBounds", `input "sr": element 0 is 8000, the manifest fixes it to 16000`])
    expect(await escrowOf(silero.id)).toEqual(before)
    const ok = await c.run(c.client.infer(inferArgs(session, sileroInput(576))), 60_000)
    expect(ok.charged).toBe(PRICE)
    expect((await c.run(c.client.node.status())).chainId).toBeGreaterThan(0n)
  }, 120_000)

  it("a compute node that claims overruns on a model that runs fine: never charged as an overrun, marked a liar, the model not suspended", async () => {
    const session = await sessionFor(sileroH100.id)
    const inputs = sileroInput(576)
    // Alone: nobody can confirm the claim, so the task fails and nothing is charged.
    const lonely = await liarStandIn()
    lonely.release()
    const alone = await refusal(session, inputs)
    expect(alone.reason).toBe("TaskFailed")
    expect(alone.detail).toMatch(/claimed an overrun and no other worker can confirm it: an unconfirmed claim is not charged/)
    expect(await escrowOf(sileroH100.id)).toMatchObject({ captured: 0n, reserved: 0n })
    await lonely.close()
    await offline([lonely.address])
    const bare = await bareRun(sileroBytes(), inputs)
    for (let i = 1; i <= OVERRUNS_TO_SUSPEND; i++) {
      // The liar is the only H100 when the task is scheduled; an honest one comes online before it claims.
      const liar = await liarStandIn()
      const pending = Effect.runPromise(Effect.either(c.client.infer(inferArgs(session, inputs))))
      await liar.assigned
      const honest = await honestStandIn()
      liar.release()
      const r = await pending
      if (Either.isLeft(r)) throw new Error(`call ${i} refused: ${r.left.message}`)
      const result: InferResult = r.right
      expect([result.charged, result.workers]).toEqual([PRICE, [honest.address]])
      expect(tensorMapToJson(Either.getOrThrow(decodeTensorMapJson(result.outputs)))).toEqual(tensorMapToJson(bare))
      expect(await escrowOf(sileroH100.id)).toMatchObject({ captured: BigInt(i) * PRICE, reserved: 0n })
      const taskEvents = (await c.run(c.client.events.read({ stream: `task-${result.task}`, from: 0, limit: 100 }))).map((e) => e.type)
      expect(taskEvents).toEqual(["TaskRequested", "TaskAssigned", "OverrunClaimed", "TaskResultSubmitted", "OverrunClaimRefuted", "TaskValidated", "TaskSettled"])
      // The liar's stream says it was wrong on this task.
      const marks = await waitFor(`${liar.address} marked`, async () => {
        const es = await c.run(c.client.events.read({ stream: `worker-${liar.address}`, from: 0, limit: 100 }))
        const m = es.filter((e) => e.type === "TaskResultRecorded" && (e.data as { outcome: string }).outcome === "wrong")
        return m.length > 0 ? m : undefined
      })
      expect(marks.map((e) => (e.data as { taskId: string }).taskId)).toEqual([result.task])
      await Promise.all([liar.close(), honest.close()])
      await offline([liar.address, honest.address])
    }
    const modelEvents = await c.run(c.client.events.read({ stream: `model-${sileroH100.id}`, from: 0, limit: 100 }))
    expect(modelEvents.map((e) => e.type).filter((t) => t === "ModelOverran" || t === "ModelSuspended")).toEqual([])
    // Still served: an honest node alone answers.
    const honest = await honestStandIn()
    const ok = await c.run(c.client.infer(inferArgs(session, inputs)), 60_000)
    expect([ok.charged, ok.workers]).toEqual([PRICE, [honest.address]])
    await honest.close()
  }, 180_000)

  it("an overrun claim not signed by the worker's key is refused (BadSignature): never charged; the worker's signed result then serves the call", async () => {
    const session = await sessionFor(sileroH100.id)
    const inputs = sileroInput(576)
    const refusals: Array<string> = []
    const forger = await standIn(async (a, session, key, client) => {
      const limit = a.runDeadlineMs ?? a.deadlineMs
      const claim = (signature: string) => client.fail(client.client.worker.failed({ session, task: a.task, detail: "stopped", overrun: { kind: "Deadline", millis: 0, limit, signature } }))
      const unsigned = (await claim("0x" + "00".repeat(64))) as { reason: string }
      const byAnother = (await claim(signMessage(overrunDigest(a.task, "Deadline", 0, limit), devKey(99)))) as { reason: string }
      const garbled = (await claim("0xnothex")) as { reason: string }
      refusals.push(unsigned.reason, byAnother.reason, garbled.reason)
      const outputs = await bareRun(sileroBytes(), a.inputs)
      const fingerprint = outputFingerprint(outputs, a.outputTolerance)
      const signature = signMessage(resultDigest(a.task, fingerprint, 1), key)
      return client.run(client.client.worker.result({ session, task: a.task, outputs: tensorMapToJson(outputs), fingerprint, millis: 1, signature }))
    })
    const before = (await escrowOf(sileroH100.id)).captured
    const ok = await c.run(c.client.infer(inferArgs(session, inputs)), 60_000)
    expect(refusals).toEqual(["BadSignature", "BadSignature", "BadSignature"])
    expect([ok.charged, ok.workers]).toEqual([PRICE, [forger.address]])
    const taskEvents = (await c.run(c.client.events.read({ stream: `task-${ok.task}`, from: 0, limit: 100 }))).map((e) => e.type)
    expect(taskEvents).toEqual(["TaskRequested", "TaskAssigned", "TaskResultSubmitted", "TaskValidated", "TaskSettled"])
    expect((await escrowOf(sileroH100.id)).captured).toBe(before + PRICE)
    await forger.close()
    await offline([forger.address])
  }, 120_000)

  it("audit replay: the overran tasks replay, settled and charged, and every charge is in its escrow", async () => {
    await c.close()
    expect((await node.stop("SIGINT")).code).toBe(0)
    const report = await auditAi(node.dataDir)
    // 3 loop overruns, 1 allocation overrun, 1 small allocation, 1 silero call, 3 refuted claims, 1 more
    // call on silero-h100 and 1 after forged claims: all settled at the price (the unconfirmed claim failed, uncharged).
    const settled = OVERRUNS_TO_SUSPEND + 3 + OVERRUNS_TO_SUSPEND + 1 + 1
    expect(report.ai.tasks).toMatchObject({ total: settled + 1, charged: String(BigInt(settled) * PRICE) })
    expect(report.ai.tasks.byStatus).toMatchObject({ Settled: settled, Failed: 1 })
    expect(report.ai.escrows.captured).toBe(String(BigInt(settled) * PRICE))
  }, 60_000)
})

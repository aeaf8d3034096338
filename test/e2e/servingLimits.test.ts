/**
 * Hostile models at serving time, end to end: a node (`topai node start`,
 * one in-process compute node) and the typed client. The models pass
 * verification — their smoke inputs are small — and misbehave on what a
 * request sends:
 *
 *   - a Loop whose count is an input: each call is killed at its run
 *     deadline (from the verified smoke time), refused to the developer as
 *     `Overran` and charged its price once (TaskOverran, TaskSettled); the
 *     third overrun suspends the model (`ModelNotServable`, nothing charged)
 *   - a ConstantOfShape whose size is an input (4 GB asked, 2 GiB allowed):
 *     `Overran` (Memory), charged
 *   - inputs over the manifest (silero's sequence past its smoke shape with no
 *     maxShapes; its fixed sample rate changed): `InputsOutOfBounds`, before
 *     any work, nothing charged
 *
 * and after all of it the node and its compute node still serve silero, and
 * `topai audit replay` rebuilds every task (overran ones included) and finds
 * each charge in its escrow.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ModelManifestEncoded } from "../../domain/ai/manifest.js"
import { OVERRUNS_TO_SUSPEND } from "../../domain/ai/model/overruns.js"
import type { InferenceRejected, ModelView } from "../../src/client/index.js"
import { SILERO_MANIFEST, sileroBytes } from "../ai/support/models.js"
import { squareMatMulChainModel, valueBombModel } from "../ai/support/servingModels.js"
import { signGrant, submitIncluded, uploadModel } from "./support/ai.js"
import { DEV, waitFor } from "./support/chain.js"
import { openClient, type TestClient } from "./support/client.js"
import { auditArgs, cleanup, makeTempDir, runCli, spawnNode, type NodeProcess } from "./support/processes.js"

const MILLI = 10n ** 15n
/** The node's cap on one run: the square model at SLOW_N (200 products of 1024² matrices, ~430 GFLOP: about 2 s on one AVX-512 core, measured) takes several times longer. */
const RUN_DEADLINE_MAX_MS = 300
const SLOW_N = 1024
const SLOW_PRODUCTS = 200
/** An [n, n] float input of small values, as base64 (1024² floats as JSON numbers would pass infer's request limit). */
const squareInput = (n: number) => ({
  type: "float32",
  dims: [n, n],
  dataBase64: Buffer.from(Float32Array.from({ length: n * n }, (_, i) => ((i % 7) - 3) / 64).buffer).toString("base64")
})
const PRICE = 5n * MILLI
const PROVIDER = DEV[1]!
const DEVELOPER = DEV[2]!

let node: NodeProcess
let c: TestClient
let loop: ModelView
let bomb: ModelView
let silero: ModelView

const sessionFor = async (modelId: string) => {
  await submitIncluded(c, DEVELOPER.key, { kind: "escrow.deposit", model: modelId as never, amount: 10n * PRICE })
  await waitFor(`the deposit for ${modelId}`, async () => {
    const e = await escrowOf(modelId)
    return e.deposited >= 10n * PRICE ? e : undefined
  })
  const { chainId } = await c.run(c.client.node.status())
  const grant = signGrant(chainId, DEVELOPER.key, modelId, { expiresAt: Date.now() + 3_600_000, spendMax: 10n * PRICE })
  return (await c.run(c.client.session.open(grant))).session
}

const escrowOf = (modelId: string) => c.run(c.client.escrow.get({ developer: DEVELOPER.address, model: modelId }))
const refusal = async (session: string, inputs: unknown) => (await c.fail(c.client.infer({ session, inputs }), 60_000)) as InferenceRejected
const manifest = (name: string): ModelManifestEncoded => ({
  name,
  version: "1",
  pricePerCall: String(PRICE),
  minGpuClass: "CPU",
  license: "MIT",
  description: "a serving-time hostile model",
  validation: { kind: "single", sampleRatePerMillion: 0 }
})
const sileroInput = (sequence: number, sr = 16000) => ({
  input: { type: "float32", dims: [1, sequence], data: Array.from({ length: sequence }, (_, i) => Math.fround(0.4 * Math.sin(i / 9))) },
  state: { type: "float32", dims: [2, 1, 128], data: Array.from({ length: 256 }, () => 0) },
  sr: { type: "int64", dims: [], data: [sr] }
})

beforeAll(async () => {
  node = await spawnNode({ dataDir: makeTempDir("serving-limits"), extraArgs: ["--workers", "1", "--run-deadline-max-ms", String(RUN_DEADLINE_MAX_MS)] })
  c = await openClient(node.url)
  // Registered on chain first: the node takes weights only for a registered model, in chunks its provider signed.
  const register = (bytes: Uint8Array, m: ModelManifestEncoded) => uploadModel(c, PROVIDER.key, bytes, m)
  loop = await register(squareMatMulChainModel(SLOW_PRODUCTS), { ...manifest("slow-at-its-max-shape"), shapes: { x: [8, 8] }, maxShapes: { x: [SLOW_N, SLOW_N] } })
  bomb = await register(valueBombModel(), manifest("alloc-by-input"))
  silero = await register(sileroBytes(), { ...SILERO_MANIFEST, pricePerCall: String(PRICE), validation: { kind: "single", sampleRatePerMillion: 0 } })
  await waitFor("the in-process compute node online", async () => ((await c.run(c.client.worker.list())).some((w) => w.online) ? true : undefined), {
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
    expect([loop.status, bomb.status, silero.status]).toEqual(["Verified", "Verified", "Verified"])
  })

  it(`work that grows faster than the input (n³ for n² bytes): killed at its deadline, Overran, charged once per call; suspended at the ${OVERRUNS_TO_SUSPEND}rd overrun`, async () => {
    const session = await sessionFor(loop.id)
    const huge = { x: squareInput(SLOW_N) }
    for (let i = 1; i <= OVERRUNS_TO_SUSPEND; i++) {
      const r = await refusal(session, huge)
      expect(r.reason).toBe("Overran")
      expect(r.detail).toMatch(new RegExp(`^the run went past its deadline of \\d+ ms \\(stopped after \\d+ ms\\) on 0x[0-9a-f]{40}; charged ${PRICE}$`))
      expect(await escrowOf(loop.id)).toMatchObject({ captured: BigInt(i) * PRICE, reserved: 0n })
    }
    const events = await c.run(c.client.events.read({ stream: `model-${loop.id}`, from: 0, limit: 100 }))
    expect(events.map((e) => e.type).filter((t) => t === "ModelOverran" || t === "ModelSuspended")).toEqual([
      ...Array.from({ length: OVERRUNS_TO_SUSPEND }, () => "ModelOverran"),
      "ModelSuspended"
    ])
    const small = { x: squareInput(8) }
    const suspended = await refusal(session, small)
    expect(suspended.reason).toBe("ModelNotServable")
    expect(suspended.detail).toBe(`model ${loop.id} is suspended: ${OVERRUNS_TO_SUSPEND} calls overran their limits (deadline or memory)`)
    expect((await escrowOf(loop.id)).captured).toBe(BigInt(OVERRUNS_TO_SUSPEND) * PRICE)
  }, 120_000)

  it("an allocation sized by the input (4 GB under the worker's 2 GiB): Overran (memory), charged once", async () => {
    const session = await sessionFor(bomb.id)
    const r = await refusal(session, { n: { type: "int64", dims: [1], data: [1_000_000_000] } })
    expect(r.reason).toBe("Overran")
    expect(r.detail).toMatch(new RegExp(`^the run needed more than the 2048 MiB the worker allows \\(stopped after \\d+ ms\\) on 0x[0-9a-f]{40}; charged ${PRICE}$`))
    expect(await escrowOf(bomb.id)).toMatchObject({ captured: PRICE, reserved: 0n })
    const ok = await c.run(c.client.infer({ session, inputs: { n: { type: "int64", dims: [1], data: [12] } } }), 60_000)
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
    const ok = await c.run(c.client.infer({ session, inputs: sileroInput(576) }), 60_000)
    expect(ok.charged).toBe(PRICE)
    expect((await c.run(c.client.node.status())).chainId).toBeGreaterThan(0n)
  }, 120_000)

  it("audit replay: the overran tasks replay, settled and charged, and every charge is in its escrow", async () => {
    await c.close()
    expect((await node.stop("SIGINT")).code).toBe(0)
    const audit = await runCli([...auditArgs(node.dataDir), "--json"])
    expect(audit.code, audit.stderr + audit.stdout).toBe(0)
    const report = JSON.parse(audit.stdout) as {
      ok: boolean
      ai: { tasks: { total: number; byStatus: Record<string, number>; charged: string }; escrows: { captured: string } }
    }
    expect(report.ok).toBe(true)
    // 3 loop overruns, 1 allocation overrun, 1 small allocation, 1 silero call: all settled at the price.
    const settled = OVERRUNS_TO_SUSPEND + 3
    expect(report.ai.tasks).toMatchObject({ total: settled, charged: String(BigInt(settled) * PRICE) })
    expect(report.ai.tasks.byStatus).toMatchObject({ Settled: settled })
    expect(report.ai.escrows.captured).toBe(String(BigInt(settled) * PRICE))
  }, 60_000)
})

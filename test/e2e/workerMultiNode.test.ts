/**
 * One compute node process serving two nodes, with real processes: two
 * `topai node start --workers 0` on their own data dirs and ports (one
 * genesis each, the same chain id, so one signed `model.register` names the
 * same model on both), and `topai worker start --node A --node B`.
 *
 *   - the worker registers with both (each node lists it online)
 *   - an inference through each node is done by that worker and equals a
 *     bare onnxruntime run
 *   - node A killed (SIGKILL): node B still serves through the same worker
 */
import { spawn } from "node:child_process"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devKey } from "../../domain/chain/keys.js"
import { signTransaction, TransactionBody } from "../../domain/chain/transaction.js"
import { SILERO_MANIFEST, sileroBytes } from "../ai/support/models.js"
import { bareRun, expectSameOutputs, inferArgs, openTestSession, sha256, signGrant, submitIncluded, uploadWeights, verdictOf } from "./support/ai.js"
import { DEV, waitFor } from "./support/chain.js"
import { openClient, type TestClient } from "./support/client.js"
import { CLI_MAIN, cleanup, makeTempDir, REPO_ROOT, spawnNode, type NodeProcess } from "./support/processes.js"

const MILLI = 10n ** 15n
const PRICE = 10n * MILLI
const PROVIDER = DEV[1]!.key
const DEVELOPER = DEV[3]!.key
const WORKER = devKey(60)
const SILERO = sileroBytes()
const MANIFEST = { ...SILERO_MANIFEST, pricePerCall: String(PRICE), validation: { kind: "single" as const, sampleRatePerMillion: 0 } }

const sileroInput = {
  input: { type: "float32", dims: [1, 576], data: Array.from({ length: 576 }, (_, i) => Math.fround(0.3 * Math.cos(i / 7))) },
  state: { type: "float32", dims: [2, 1, 128], data: Array.from({ length: 256 }, (_, i) => Math.fround((i % 13) / 60 - 0.1)) },
  sr: { type: "int64", dims: [], data: [16000] }
}


let a: NodeProcess
let b: NodeProcess
let ca: TestClient
let cb: TestClient
let modelId: string
let worker: { readonly output: () => string; readonly kill: () => Promise<void> }

const online = async (c: TestClient) => (await c.run(c.client.worker.list())).some((w) => w.id === WORKER.publicKey.address && w.online)

/** A session on `c` for the model, after a deposit there. */
const sessionOn = async (c: TestClient) => {
  await submitIncluded(c, DEVELOPER, { kind: "escrow.deposit", model: modelId as never, amount: 100n * PRICE })
  await waitFor("the deposit", async () => ((await c.run(c.client.escrow.get({ developer: DEVELOPER.publicKey.address, model: modelId }))).deposited > 0n ? true : undefined))
  const { chainId } = await c.run(c.client.node.status())
  return openTestSession(c, chainId, DEVELOPER, signGrant(chainId, DEVELOPER, modelId, { spendMax: 100n * PRICE }))
}

beforeAll(async () => {
  ;[a, b] = await Promise.all([spawnNode({ dataDir: makeTempDir("multi-a"), readyTimeoutMs: 60_000 }), spawnNode({ dataDir: makeTempDir("multi-b"), readyTimeoutMs: 60_000 })])
  ca = await openClient(a.url)
  cb = await openClient(b.url)
  const args = ["--import", "tsx", CLI_MAIN, "worker", "start", "--gpu-class", "CPU", "--data-dir", makeTempDir("multi-worker"), "--key", bytesToHex(WORKER.exportBytes())]
  const child = spawn(process.execPath, [...args, "--node", a.url, "--node", b.url], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  worker = {
    output: () => output,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      await exited
    }
  }
  // One signed registration, valid on both chains: the same model id on A and B.
  const { chainId } = await ca.run(ca.client.node.status())
  const tx = signTransaction(
    new TransactionBody({
      chainId,
      nonce: 0n,
      fee: 0n, // model.register runs on the AI shard: the provider's nonce there, no balance there
      payload: { kind: "model.register", weightsHash: sha256(SILERO) as never, sizeBytes: BigInt(SILERO.length), manifest: JSON.stringify(MANIFEST) }
    }),
    PROVIDER
  )
  modelId = tx.hash
  for (const c of [ca, cb]) {
    expect((await c.run(c.client.tx.submit({ raw: bytesToHex(tx.encoded), wait: true }))).status).toBe("included")
    await uploadWeights(c, PROVIDER, SILERO)
  }
  const verdicts = await Promise.all([verdictOf(ca, modelId), verdictOf(cb, modelId)])
  expect(verdicts.map((v) => v.status)).toEqual(["Verified", "Verified"])
}, 120_000)

afterAll(async () => {
  await ca?.close()
  await cb?.close()
  await worker?.kill()
  await cleanup()
})

describe("a compute node process serving two node processes", () => {
  it("registers with both; an inference through each node is run by it and equals a bare onnxruntime run", async () => {
    await waitFor("the worker online at both nodes", async () => ((await online(ca)) && (await online(cb)) ? true : undefined), { timeoutMs: 30_000 })
    const bare = await bareRun(SILERO, sileroInput)
    for (const c of [ca, cb]) {
      const session = await sessionOn(c)
      const r = await c.run(c.client.infer(inferArgs(session, sileroInput)), 30_000)
      expect(r.workers).toEqual([WORKER.publicKey.address])
      expect(r.charged).toBe(PRICE)
      expectSameOutputs(r.outputs, bare)
    }
    expect(worker.output()).toContain(`registered with ${a.url}`)
    expect(worker.output()).toContain(`registered with ${b.url}`)
  }, 90_000)

  it("node A killed: node B still serves through the same worker", async () => {
    await a.stop("SIGKILL")
    await waitFor("the worker to see node A gone", async () => (worker.output().includes(`lost ${a.url}`) ? true : undefined), { timeoutMs: 30_000 })
    const session = await sessionOn(cb)
    const r = await cb.run(cb.client.infer(inferArgs(session, sileroInput)), 30_000)
    expect(r.workers).toEqual([WORKER.publicKey.address])
    expectSameOutputs(r.outputs, await bareRun(SILERO, sileroInput))
    expect(await online(cb)).toBe(true)
  }, 90_000)
})

/**
 * Paid inference end to end, with real processes: a node (`topai node start
 * --workers 0`), compute nodes as their own processes (`topai worker
 * start`), and the typed client. What the TaskActor promises, checked from
 * outside:
 *
 *   - silero uploaded, registered, verified; escrow deposited; `infer` gives
 *     what a bare `session.run` gives here; the escrow captured the price,
 *     once; settlement pays the provider exactly that on chain
 *   - a worker killed (SIGKILL) mid-task: the task completes on the other
 *     worker (TaskReassigned), charged once, the failure recorded
 *   - a lying worker (`--fault-lie`) under quorum 2-of-3: the honest
 *     fingerprint wins and the liar is marked
 *   - refusals: not enough escrow, wrong dims, a task request signed by
 *     another key, inputs other than the signed ones, a replayed request,
 *     an unknown or deprecated model
 *     — typed, and nothing charged
 *   - a result that does not hold up (a malformed fingerprint; the honest
 *     fingerprint signed over other numbers), from a stand-in worker speaking
 *     the protocol: refused, never delivered, nothing charged
 *   - single policy sampled: the pair disagrees, a referee re-executes, the
 *     liar loses the dispute in its stream
 *   - every wrong result of those liars proven on chain (`result.challenge`
 *     by the node), and the bonded liar slashed at the epoch close: the
 *     developer paid its share by receipt
 *   - the node killed (SIGKILL) mid-task and restarted on its data dir: the
 *     task ends unsettled, its reservation released; `topai audit replay`
 *     passes over everything the file did
 *
 * One node for the whole file; the tests run in order and build on each
 * other. Workers start only when a test needs them (each costs ~2 s of CPU).
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { Effect, Either, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { outputFingerprint } from "../../domain/ai/fingerprint.js"
import { DEFAULT_OUTPUT_TOLERANCE } from "../../domain/ai/manifest.js"
import type { ModelManifestEncoded } from "../../domain/ai/manifest.js"
import { resultDigest, sessionGrantDigest, signMessage, signWeightsChunk, workerRegistrationDigest } from "../../domain/ai/signedMessages.js"
import { tensorMapToJson, type TensorMap } from "../../domain/ai/tensor.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devKey } from "../../domain/chain/keys.js"
import { BURN_ADDRESS } from "../../domain/economics/accounts.js"
import { defaultEconomics, PPM } from "../../domain/economics/config.js"
import { taskFees } from "../../domain/economics/fees.js"
import type { PrivateKey } from "../../domain/chain/keys.js"
import { signTransaction, TransactionBody } from "../../domain/chain/transaction.js"
import type { TransactionPayload } from "../../domain/chain/transaction.js"
import { BLOB_CHUNK_BYTES } from "../../src/api/AiRpcs.js"
import { perturbOutputs } from "../../src/worker/ComputeNode.js"
import type { InferenceRejected, ModelView, TaskAssignment } from "../../src/client/index.js"
import { gemmChainModel, SILERO_MANIFEST, sileroBytes } from "../ai/support/models.js"
import { bareRun, expectSameOutputs, inferArgs, registerWorkerOnChain, senderAccount, type TestSession } from "./support/ai.js"
import { DEV, waitFor } from "./support/chain.js"
import { defaultFeeOf } from "../../domain/chain/genesis.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { auditAi, CLI_MAIN, cleanup, makeTempDir, REPO_ROOT, spawnNode, hexKey } from "./support/processes.js"
import type { NodeProcess } from "./support/processes.js"

// ---------------------------------------------------------------- models


const SLOW_N = 512
const SLOW_K = 300
/** Prices in thousandths of a token: enough to cover the devnet's computing fee, so no model is paused. */
const MILLI = 10n ** 15n
const SILERO_PRICE = 10n * MILLI
const SLOW_PRICE = 7n * MILLI
const QUORUM_PRICE = 3n * MILLI
const H100_PRICE = 5n * MILLI
const SAMPLED_PRICE = 4n * MILLI

const sileroInput = {
  input: { type: "float32", dims: [1, 576], data: Array.from({ length: 576 }, (_, i) => Math.fround(0.4 * Math.sin(i / 9))) },
  state: { type: "float32", dims: [2, 1, 128], data: Array.from({ length: 256 }, (_, i) => Math.fround((i % 11) / 50 - 0.1)) },
  sr: { type: "int64", dims: [], data: [16000] }
}
const slowInput = { x: { type: "float32", dims: [1, SLOW_N], data: Array.from({ length: SLOW_N }, (_, i) => Math.fround(Math.cos(i / 5))) } }

// ---------------------------------------------------------------- accounts

const SILERO_PROVIDER = DEV[1]!
const PROVIDER = DEV[2]! // the slow and the quorum models
const DEVELOPER = DEV[3]!
const SLOW_DEVELOPER = DEV[4]!
const QUORUM_DEVELOPER = DEV[5]!
const POOR = DEV[6]! // deposits less than a call costs
const H100_DEVELOPER = DEV[7]!
const SAMPLED_DEVELOPER = DEV[8]!
const LIAR_OWNER = DEV[9]! // bonds the quorum liar, so its wrong results cost it
const LIAR_STAKE = 1_000n * MILLI

// ---------------------------------------------------------------- worker processes

interface WorkerProcess {
  readonly address: string
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<void>
}

const workers: Array<WorkerProcess> = []
let nextWorkerKey = 40


/** `topai worker start` as its own process (killed by afterAll if still running). */
const spawnWorker = (url: string, options: { readonly faultLie?: boolean; readonly gpuClass?: string } = {}): WorkerProcess => {
  const key = devKey(nextWorkerKey++)
  const gpu = options.gpuClass ?? "CPU"
  const args = ["--import", "tsx", CLI_MAIN, "worker", "start", "--gpu-class", gpu, "--data-dir", makeTempDir("worker"), "--rpc", url, "--key", hexKey(key)]
  const child = spawn(process.execPath, [...args, ...(options.faultLie === true ? ["--fault-lie"] : [])], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const w = { address: key.publicKey.address, child, output: () => output, exited }
  workers.push(w)
  return w
}

const killWorkers = async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL")
  await Promise.all(workers.map((w) => w.exited))
}

// ---------------------------------------------------------------- the node and its client

let node: NodeProcess
let c: TestClient

const onlineWorkers = async (): Promise<ReadonlyArray<string>> =>
  (await c.run(c.client.worker.list())).filter((w) => w.online).map((w) => w.id)

const waitOnline = (ws: ReadonlyArray<{ readonly address: string }>) =>
  waitFor(
    `workers ${ws.map((w) => w.address).join(", ")} online`,
    async () => {
      const online = await onlineWorkers()
      return ws.every((w) => online.includes(w.address)) ? true : undefined
    },
    { timeoutMs: 30_000, intervalMs: 100 }
  )

/** Signs and submits a transaction from `key`, waiting for its block. */
const submit = async (key: PrivateKey, payload: TransactionPayload, nonceOffset = 0n) => {
  const status = await c.run(c.client.node.status())
  const account = await senderAccount(c, key.publicKey.address, payload.kind)
  const tx = signTransaction(
    new TransactionBody({ chainId: status.chainId, nonce: account.pendingNonce + nonceOffset, fee: defaultFeeOf(payload.kind), payload }),
    key
  )
  const r = await c.run(c.client.tx.submit({ raw: bytesToHex(tx.encoded), wait: true }))
  expect(r.status).toBe("included")
  return tx.hash
}

const sha256 = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`

/** Uploads a registered model's weights in chunks signed by its provider (asks again until the node has applied the registration). */
const upload = async (key: PrivateKey, bytes: Uint8Array) => {
  const hash = sha256(bytes)
  const status = await c.run(c.client.node.status())
  for (let offset = 0; offset < bytes.length; offset += BLOB_CHUNK_BYTES) {
    const chunk = signWeightsChunk(key, status.chainId, hash, bytes.length, offset, bytes.subarray(offset, offset + BLOB_CHUNK_BYTES))
    await waitFor(`the node to take ${hash} at ${offset}`, async () => {
      const r = await Effect.runPromise(Effect.either(c.client.model.upload(chunk)))
      if (Either.isRight(r)) return r.right
      if (r.left._tag === "UploadRejected" && r.left.reason === "UnknownModel") return undefined
      throw new Error(`upload refused: ${r.left.message}`)
    })
  }
  return hash
}

/** Registers weights under a manifest (one tx per model, nonces in order), uploads them, and waits for every verdict. */
const register = async (key: PrivateKey, models: ReadonlyArray<{ readonly bytes: Uint8Array; readonly manifest: ModelManifestEncoded }>) => {
  const hashes = models.map((m) => sha256(m.bytes))
  const status = await c.run(c.client.node.status())
  // model.register runs on the AI shard: its nonce is the provider's there, its fee 0 (no balance there).
  const account = await senderAccount(c, key.publicKey.address, "model.register")
  const txs = models.map((m, i) =>
    signTransaction(
      new TransactionBody({
        chainId: status.chainId,
        nonce: account.pendingNonce + BigInt(i),
        fee: defaultFeeOf("model.register"),
        payload: { kind: "model.register", weightsHash: hashes[i]! as never, sizeBytes: BigInt(m.bytes.length), manifest: JSON.stringify(m.manifest) }
      }),
      key
    )
  )
  for (const [i, tx] of txs.entries()) await c.run(c.client.tx.submit({ raw: bytesToHex(tx.encoded), wait: i === txs.length - 1 }))
  for (const m of models) await upload(key, m.bytes)
  return Promise.all(
    txs.map((tx) =>
      waitFor(
        `the verdict on model ${tx.hash}`,
        async () => {
          const m = await Effect.runPromise(Effect.either(c.client.model.get({ model: tx.hash })))
          return Either.isRight(m) && m.right.status !== "Pending" ? m.right : undefined
        },
        { timeoutMs: 45_000, intervalMs: 100 }
      )
    )
  )
}

const deposit = async (developer: PrivateKey, modelId: string, amount: bigint) => {
  await submit(developer, { kind: "escrow.deposit", model: modelId as never, amount })
  return waitFor(`the deposit of ${developer.publicKey.address} for ${modelId}`, async () => {
    const e = await c.run(c.client.escrow.get({ developer: developer.publicKey.address, model: modelId }))
    return e.deposited >= amount ? e : undefined
  })
}

/** A signed session grant: an hour, a fresh nonce, `spendMax` (ample unless a test caps it). */
const grantFor = async (developer: PrivateKey, modelId: string, spendMax = 10n ** 24n) => {
  const status = await c.run(c.client.node.status())
  const grant = { model: modelId, issuedAt: Date.now(), expiresAt: Date.now() + 3_600_000, spendMax, nonce: `0x${randomBytes(16).toString("hex")}` }
  return { publicKey: developer.publicKey.hex, ...grant, signature: signMessage(sessionGrantDigest({ chainId: status.chainId, ...grant }), developer) }
}

const openSession = async (developer: PrivateKey, modelId: string, spendMax?: bigint): Promise<TestSession> => {
  const grant = await grantFor(developer, modelId, spendMax)
  const { chainId } = await c.run(c.client.node.status())
  const { session } = await c.run(c.client.session.open(grant))
  return { session, key: developer, grant: { chainId, model: grant.model, nonce: grant.nonce } }
}

const escrowOf = (developer: PrivateKey, modelId: string) =>
  c.run(c.client.escrow.get({ developer: developer.publicKey.address, model: modelId }))

const events = (stream: string) => c.run(c.client.events.read({ stream, from: 0, limit: 1_000 }))

/**
 * A compute node played by the test over its own connection: registers (signed), takes its task
 * stream, and answers each assignment with whatever `answer` says, signing the fingerprint it is given.
 */
const standInWorker = async (
  url: string,
  gpuClass: string,
  answer: (a: TaskAssignment) => Promise<{ readonly fingerprint: string; readonly outputs: unknown; readonly millis?: number }>
) => {
  const client = await openClient(url)
  const key = devKey(nextWorkerKey++)
  const status = await client.run(client.client.node.status())
  await registerWorkerOnChain(client, key, { gpuClass, endpoint: "stand-in" })
  const offer = { gpuClass, devices: 1, stake: 0n, endpoint: "stand-in", at: Date.now(), nonce: `0x${randomBytes(16).toString("hex")}` }
  const signature = signMessage(workerRegistrationDigest({ chainId: status.chainId, ...offer }), key)
  const { session } = await client.run(client.client.worker.register({ publicKey: key.publicKey.hex, ...offer, signature }))
  const replies: Array<unknown> = []
  void Effect.runPromiseExit(
    client.client.worker.tasks({ session }).pipe(
      Stream.runForEach((a) =>
        Effect.promise(() => answer(a)).pipe(
          Effect.flatMap(({ fingerprint, outputs, millis = 1 }) =>
            client.client.worker.result({ session, task: a.task, outputs, fingerprint, millis, signature: signMessage(resultDigest(a.task, fingerprint, millis), key) })
          ),
          Effect.either,
          Effect.map((r) => replies.push(Either.isLeft(r) ? r.left : r.right))
        )
      )
    )
  )
  await waitOnline([{ address: key.publicKey.address }])
  return { address: key.publicKey.address, replies, close: () => client.close() }
}

// ---------------------------------------------------------------- comparing with a bare onnxruntime run



// ---------------------------------------------------------------- the file

const slowBytes = gemmChainModel(SLOW_N, SLOW_K)
let silero: ModelView
let slow: ModelView
let quorum: ModelView
/** silero needing an H100: only the test's stand-in worker (the one H100) can take it. */
let h100: ModelView
/** silero, every call re-executed on a second worker (single, sampled at 10⁶ per million), needing an A100. */
let sampled: ModelView
const only = <A>(xs: ReadonlyArray<A>, i: number): A => xs[i]!
let honest: ReadonlyArray<WorkerProcess>
/** The liars and the tasks they lied on, for the test of their slashes. */
const lies: Array<{ readonly task: string; readonly liar: string; readonly developer: string }> = []
let bondedLiar: string | undefined
let quorumDeveloperBefore = 0n

beforeAll(async () => {
  node = await spawnNode({ dataDir: makeTempDir("ai-inference"), extraArgs: ["--workers", "0"] })
  honest = [spawnWorker(node.url), spawnWorker(node.url)]
  c = await openClient(node.url)
  // Verification runs while the workers start.
  const [a, b] = await Promise.all([
    // One worker per call (no sampled re-execution): the first test's payout counts one worker.
    register(SILERO_PROVIDER.key, [
      { bytes: sileroBytes(), manifest: { ...SILERO_MANIFEST, pricePerCall: String(SILERO_PRICE), validation: { kind: "single", sampleRatePerMillion: 0 } } }
    ]),
    register(PROVIDER.key, [
      {
        bytes: slowBytes,
        manifest: { name: "slow", version: "1", pricePerCall: String(SLOW_PRICE), minGpuClass: "CPU", license: "MIT", description: "GEMM chain", validation: { kind: "single", sampleRatePerMillion: 0 } }
      },
      {
        bytes: sileroBytes(),
        manifest: { ...SILERO_MANIFEST, name: "silero-quorum", pricePerCall: String(QUORUM_PRICE), validation: { kind: "quorum", k: 2, n: 3 } }
      },
      {
        bytes: sileroBytes(),
        manifest: { ...SILERO_MANIFEST, name: "silero-h100", pricePerCall: String(H100_PRICE), minGpuClass: "H100", validation: { kind: "single", sampleRatePerMillion: 0 } }
      },
      {
        bytes: sileroBytes(),
        manifest: { ...SILERO_MANIFEST, name: "silero-sampled", pricePerCall: String(SAMPLED_PRICE), minGpuClass: "A100", validation: { kind: "single", sampleRatePerMillion: 1_000_000 } }
      }
    ])
  ])
  ;[silero, slow, quorum, h100, sampled] = [only(a, 0), only(b, 0), only(b, 1), only(b, 2), only(b, 3)]
  await waitOnline(honest)
}, 180_000) // five verifications and two worker processes on a shared, loaded machine

afterAll(async () => {
  await c?.close()
  await killWorkers()
  await cleanup()
})

describe("paid inference through a node and worker processes", () => {
  it("silero: verified; infer equals a bare session.run; the price captured once; the price paid out on chain exactly: provider, worker, protocol", async () => {
    expect(silero).toMatchObject({ status: "Verified", provider: SILERO_PROVIDER.address, price: SILERO_PRICE })
    const balance = async (address: string) => (await c.run(c.client.account.get({ address }))).balance
    const providerBefore = await balance(SILERO_PROVIDER.address)
    const burnedBefore = await balance(BURN_ADDRESS)
    await deposit(DEVELOPER.key, silero.id, 1_000n * MILLI)
    const session = await openSession(DEVELOPER.key, silero.id)

    const result = await c.run(c.client.infer(inferArgs(session, sileroInput)))
    expect(result.charged).toBe(SILERO_PRICE)
    expect(result.workers).toHaveLength(1)
    expect(honest.some((h) => h.address === result.workers[0])).toBe(true)
    const workerBefore = 0n // a fresh key: whatever it holds was paid to it
    const bare = await bareRun(sileroBytes(), sileroInput)
    expectSameOutputs(result.outputs, bare)
    expect(result.fingerprint).toBe(outputFingerprint(bare, DEFAULT_OUTPUT_TOLERANCE))

    expect(await escrowOf(DEVELOPER.key, silero.id)).toMatchObject({ deposited: 1_000n * MILLI, available: 1_000n * MILLI - SILERO_PRICE, reserved: 0n, captured: SILERO_PRICE })
    // Payouts (every 2 s) split what the escrow took: the protocol's share burned, the worker's
    // computing fee, the provider the rest; once each, to the last base unit.
    const economics = defaultEconomics(BURN_ADDRESS)
    const protocolFee = (SILERO_PRICE * economics.protocolFeePpm) / PPM
    // The worker's computing fee, from what the log says it did: its GPU units × the execMs it signed in its
    // result (the usage receipt the task settled with, the one the ledger pays by).
    const taskSettled = await waitFor("the task's TaskSettled", async () => (await events(`task-${result.task}`)).find((e) => e.type === "TaskSettled"), {
      timeoutMs: 15_000,
      intervalMs: 100
    })
    const settledReceipt = (taskSettled.data as { receipt: { results: Array<{ worker: string; execMs: number }> } }).receipt
    expect(settledReceipt.results.map((r) => r.worker)).toEqual([result.workers[0]])
    const registered = (await events(`worker-${result.workers[0]}`)).find((e) => e.type === "WorkerRegistered")!
    const fees = taskFees(economics, SILERO_PRICE, [
      {
        worker: result.workers[0]! as never,
        gpuUnitsMilli: BigInt((registered.data as { gpuUnitsMilli: string }).gpuUnitsMilli),
        execMs: settledReceipt.results[0]!.execMs
      }
    ])
    expect(fees.protocolFee).toBe(protocolFee)
    const providerPaid = await waitFor(
      "the provider's payout",
      async () => {
        const b = await balance(SILERO_PROVIDER.address)
        return b !== providerBefore && (await balance(BURN_ADDRESS)) === burnedBefore + protocolFee ? b - providerBefore : undefined
      },
      { timeoutMs: 15_000, intervalMs: 200 }
    )
    const workerPaid = await waitFor(
      "the worker's computing fee",
      async () => {
        const w = (await balance(result.workers[0]!)) - workerBefore
        return w + providerPaid === SILERO_PRICE - protocolFee ? w : undefined
      },
      { timeoutMs: 15_000, intervalMs: 200 }
    )
    expect(workerPaid).toBe(fees.computeFeesTotal)
    expect(providerPaid).toBe(fees.providerNet)
    const task = await c.run(c.client.task.get({ task: result.task }))
    expect(task).toMatchObject({ status: "Settled", charged: true, price: SILERO_PRICE, fingerprint: result.fingerprint, retries: 0 })
    expect(task.events.map((e) => e.type)).toEqual(["TaskRequested", "TaskAssigned", "TaskResultSubmitted", "TaskValidated", "TaskSettled"])
  })

  it("a worker killed (SIGKILL) mid-task: the other worker completes it, TaskReassigned names the dead one, charged once", async () => {
    expect(slow).toMatchObject({ status: "Verified", price: SLOW_PRICE })
    await deposit(SLOW_DEVELOPER.key, slow.id, 100n * MILLI)
    const session = await openSession(SLOW_DEVELOPER.key, slow.id)

    const pending = Effect.runPromise(Effect.either(c.client.infer(inferArgs(session, slowInput))))
    const running = await waitFor(
      "a worker running the slow task",
      async () => (await c.run(c.client.worker.list())).find((w) => w.inFlight > 0),
      { timeoutMs: 10_000, intervalMs: 20 }
    )
    const victim = honest.find((w) => w.address === running.id)!
    const survivor = honest.find((w) => w !== victim)!
    // Into the run: the weights fetch, the session load and the GEMMs take ~1 s.
    await new Promise((resolve) => setTimeout(resolve, 250))
    victim.child.kill("SIGKILL")
    await victim.exited

    const result = Either.getOrThrow(await pending)
    expect(result.workers).toEqual([survivor.address])
    expect(result.charged).toBe(SLOW_PRICE)
    expectSameOutputs(result.outputs, await bareRun(slowBytes, slowInput))

    const task = await c.run(c.client.task.get({ task: result.task }))
    expect(task).toMatchObject({ status: "Settled", charged: true, retries: 1, workers: [survivor.address] })
    expect(task.events.map((e) => e.type)).toEqual(["TaskRequested", "TaskAssigned", "TaskReassigned", "TaskResultSubmitted", "TaskValidated", "TaskSettled"])
    const reassigned = (await events(`task-${result.task}`)).find((e) => e.type === "TaskReassigned")!
    expect(reassigned.data).toMatchObject({ failed: victim.address, reason: "died", replacement: survivor.address, retry: 1 })
    expect(await escrowOf(SLOW_DEVELOPER.key, slow.id)).toMatchObject({ deposited: 100n * MILLI, available: 100n * MILLI - SLOW_PRICE, reserved: 0n, captured: SLOW_PRICE })
    const listed = (await c.run(c.client.worker.list())).find((w) => w.id === victim.address)!
    expect(listed).toMatchObject({ online: false, inFlight: 0 })
  })

  it("a lying worker under quorum 2-of-3: the honest fingerprint is validated, the outputs equal bare, the liar is marked wrong", async () => {
    expect(quorum).toMatchObject({ status: "Verified", price: QUORUM_PRICE })
    const fresh = spawnWorker(node.url)
    const liar = spawnWorker(node.url, { faultLie: true })
    // A session opens against an escrow: the deposit first.
    const [, session] = await Promise.all([
      waitOnline([fresh, liar]),
      deposit(QUORUM_DEVELOPER.key, quorum.id, 100n * MILLI).then(() => openSession(QUORUM_DEVELOPER.key, quorum.id))
    ])
    const honestNow = [honest[0]!, honest[1]!, fresh].filter((w) => w.child.exitCode === null && w.child.signalCode === null).map((w) => w.address)
    expect(honestNow).toHaveLength(2)
    // Bonded before it lies: a wrong result proven on chain is slashed from this bond.
    await submit(LIAR_OWNER.key, { kind: "worker.stake", worker: liar.address as never, amount: LIAR_STAKE })
    await waitFor("the liar's bond on the AI ledger", async () => ((await c.run(c.client.worker.onChain({ address: liar.address }))).bonded === LIAR_STAKE ? true : undefined))
    bondedLiar = liar.address
    quorumDeveloperBefore = (await c.run(c.client.account.get({ address: QUORUM_DEVELOPER.address }))).balance
    const bare = await bareRun(sileroBytes(), sileroInput)
    const truth = outputFingerprint(bare, DEFAULT_OUTPUT_TOLERANCE)

    // A few calls: the liar's result arrives sometimes before the honest ones, sometimes after.
    const CALLS = 3
    const tasks: Array<string> = []
    for (let i = 0; i < CALLS; i++) {
      const r = await c.run(c.client.infer(inferArgs(session, sileroInput)))
      expect(r.fingerprint).toBe(truth)
      expect([...r.workers].sort()).toEqual([...honestNow].sort())
      expectSameOutputs(r.outputs, bare)
      const validated = (await events(`task-${r.task}`)).find((e) => e.type === "TaskValidated")!
      const v = validated.data as { correct: Array<string>; wrong: Array<string>; fingerprint: string }
      expect(v.fingerprint).toBe(truth)
      expect(v.correct.sort()).toEqual([...honestNow].sort())
      expect(v.wrong.every((w) => w === liar.address)).toBe(true)
      tasks.push(r.task)
      lies.push({ task: r.task, liar: liar.address, developer: QUORUM_DEVELOPER.address })
    }
    // Whether its result came before the validation (in `wrong`) or after: its stream marks every task.
    const marks = await waitFor(
      "the liar's marks",
      async () => {
        const es = (await events(`worker-${liar.address}`)).filter(
          (e) => e.type === "TaskResultRecorded" || e.type === "DisputeRecorded"
        )
        return es.length >= CALLS ? es : undefined
      },
      { timeoutMs: 10_000, intervalMs: 100 }
    )
    expect(marks.map((e) => (e.data as { taskId: string }).taskId).sort()).toEqual([...tasks].sort())
    expect(marks.every((e) => (e.data as { outcome: string }).outcome === "wrong")).toBe(true)
    const listed = await c.run(c.client.worker.list())
    const liarView = listed.find((w) => w.id === liar.address)!
    for (const h of honestNow) expect(listed.find((w) => w.id === h)!.reputation).toBeGreaterThan(liarView.reputation)
    expect(await escrowOf(QUORUM_DEVELOPER.key, quorum.id)).toMatchObject({ reserved: 0n, captured: BigInt(CALLS) * QUORUM_PRICE })
    liar.child.kill("SIGKILL") // the rest of the file runs on honest workers
    await liar.exited
  })

  it("refused before any work, nothing charged: not enough escrow, past the session's spending cap, wrong dims, a forged / swapped / replayed task request, an unknown model, a deprecated model", async () => {
    const reason = (e: unknown) => (e as InferenceRejected).reason

    await deposit(POOR.key, silero.id, SILERO_PRICE - 1n)
    const poor = await openSession(POOR.key, silero.id)
    const broke = await c.fail(c.client.infer(inferArgs(poor, sileroInput)))
    expect(reason(broke)).toBe("InsufficientEscrow")
    expect(await escrowOf(POOR.key, silero.id)).toMatchObject({ deposited: SILERO_PRICE - 1n, available: SILERO_PRICE - 1n, reserved: 0n, captured: 0n })
    // A refused call gives its share of the session's spending cap back: the next is refused for the escrow again, not the cap.
    const poorCapped = await openSession(POOR.key, silero.id, SILERO_PRICE)
    for (let i = 0; i < 2; i++) expect(reason(await c.fail(c.client.infer(inferArgs(poorCapped, sileroInput))))).toBe("InsufficientEscrow")

    // A session capped at one call's price: one call, then SessionSpendExceeded, nothing more reserved or charged.
    const capped = await openSession(DEVELOPER.key, silero.id, SILERO_PRICE)
    expect((await c.run(c.client.infer(inferArgs(capped, sileroInput)))).charged).toBe(SILERO_PRICE)
    const afterOne = await escrowOf(DEVELOPER.key, silero.id)
    expect(reason(await c.fail(c.client.infer(inferArgs(capped, sileroInput))))).toBe("SessionSpendExceeded")
    expect(await escrowOf(DEVELOPER.key, silero.id)).toEqual(afterOne)

    const before = await escrowOf(DEVELOPER.key, silero.id)
    const session = await openSession(DEVELOPER.key, silero.id)
    // silero's input is [batch, sequence]: rank 1 does not fit, whatever the sequence.
    const wrongDims = { ...sileroInput, input: { type: "float32", dims: [576], data: sileroInput.input.data } }
    const bad = await c.fail(c.client.infer(inferArgs(session, wrongDims)))
    expect(reason(bad)).toBe("BadInputs")
    expect((bad as InferenceRejected).detail).toMatch(/input/)
    expect(await escrowOf(DEVELOPER.key, silero.id)).toEqual(before)

    // Each call is the developer's request signed with the grant's key, its task id the request's digest, used once:
    // a request signed by another key, inputs other than the signed ones, and a replayed request are refused, typed,
    // before anything is reserved.
    const door = await openSession(DEVELOPER.key, silero.id)
    const doorBefore = await escrowOf(DEVELOPER.key, silero.id)
    const forged = await c.fail(c.client.infer(inferArgs({ ...door, key: devKey(90) }, sileroInput)))
    expect(reason(forged)).toBe("BadRequestSignature")
    expect((forged as InferenceRejected).detail).toMatch(/not signed by the session grant's key/)
    const signed = inferArgs(door, sileroInput)
    const otherInputs = { ...sileroInput, input: { ...sileroInput.input, data: sileroInput.input.data.map((x) => Math.fround(x + 0.25)) } }
    const swapped = await c.fail(c.client.infer({ ...signed, inputs: otherInputs }))
    expect(reason(swapped)).toBe("TaskIdMismatch")
    expect((swapped as InferenceRejected).detail).toContain(`the request names task ${signed.task}`)
    // Without naming the task, the same swap is a signature over another request.
    const { task: _named, ...unnamed } = signed
    expect(reason(await c.fail(c.client.infer({ ...unnamed, inputs: otherInputs })))).toBe("BadRequestSignature")
    expect(await escrowOf(DEVELOPER.key, silero.id)).toEqual(doorBefore)
    const once = await c.run(c.client.infer(signed))
    expect([once.task, once.charged]).toEqual([signed.task, SILERO_PRICE])
    const replayed = await c.fail(c.client.infer(signed))
    expect(reason(replayed)).toBe("ReplayedTask")
    expect(await escrowOf(DEVELOPER.key, silero.id)).toMatchObject({
      available: doorBefore.available - SILERO_PRICE,
      reserved: 0n,
      captured: doorBefore.captured + SILERO_PRICE
    })

    // No session without an escrow for the model (an unknown model has none).
    expect(reason(await c.fail(c.client.session.open(await grantFor(DEVELOPER.key, `0x${"ab".repeat(32)}`))))).toBe("InsufficientEscrow")

    const quorumSession = await openSession(QUORUM_DEVELOPER.key, quorum.id)
    const quorumBefore = await escrowOf(QUORUM_DEVELOPER.key, quorum.id)
    await submit(PROVIDER.key, { kind: "model.deprecate", model: quorum.id as never })
    await waitFor("the deprecation", async () => ((await c.run(c.client.model.get({ model: quorum.id }))).deprecated ? true : undefined))
    const deprecated = await c.fail(c.client.infer(inferArgs(quorumSession, sileroInput)))
    expect(reason(deprecated)).toBe("ModelNotServable")
    expect((deprecated as InferenceRejected).detail).toMatch(/deprecated/)
    // Nothing reserved or charged by the refusal (the ledger's figures may move meanwhile: earlier calls' receipts settle).
    const book = ({ deposited, available, reserved, captured }: typeof quorumBefore) => ({ deposited, available, reserved, captured })
    expect(book(await escrowOf(QUORUM_DEVELOPER.key, quorum.id))).toEqual(book(quorumBefore))
  })


  it("a worker whose result does not hold up (malformed fingerprint; outputs that are not what its signed fingerprint says; more execution time than passed): refused, never delivered, nothing charged", async () => {
    expect(h100).toMatchObject({ status: "Verified", minGpuClass: "H100" })
    const bare = await bareRun(sileroBytes(), sileroInput)
    const honestFingerprint = outputFingerprint(bare, DEFAULT_OUTPUT_TOLERANCE)
    const tampered = tensorMapToJson({ ...bare, output: { ...bare["output"]!, data: Float32Array.of(0.999) } as TensorMap[string] })
    const lies = [
      { fingerprint: "not-a-fingerprint", outputs: tensorMapToJson(bare), why: /its result was refused: the fingerprint must be 0x \+ 64 lowercase hex/ },
      // the honest fingerprint, signed, over other numbers
      { fingerprint: honestFingerprint, outputs: tampered, why: /its result was refused: the outputs' fingerprint is 0x[0-9a-f]{64}, not the signed/ },
      // honest outputs, signed, billing an hour of computing for a run the node saw take moments: the provider would pay it
      { fingerprint: honestFingerprint, outputs: tensorMapToJson(bare), millis: 3_600_000, why: /its result was refused: it claims 3600000 ms of computing; \d+ ms passed since the node assigned the task/ }
    ]
    // The only H100 (the model needs one), so it gets every task.
    let told = 0
    const fake = await standInWorker(node.url, "H100", async () => lies[told++]!)
    const replies = fake.replies
    try {
      await deposit(H100_DEVELOPER.key, h100.id, 100n * MILLI)
      const session = await openSession(H100_DEVELOPER.key, h100.id)
      for (let i = 0; i < lies.length; i++) {
        const refused = (await c.fail(c.client.infer(inferArgs(session, sileroInput)))) as InferenceRejected
        expect(refused.reason).toBe("TaskFailed")
        expect(refused.detail).toMatch(/nothing was charged/)
        expect(refused.detail).toMatch(lies[i]!.why) // the worker's side of the story reaches the developer
        expect(await waitFor("the stand-in's reply", async () => replies[i])).toMatchObject({ _tag: "WorkerRejected", reason: "BadResult" })
      }
      expect(await escrowOf(H100_DEVELOPER.key, h100.id)).toMatchObject({ deposited: 100n * MILLI, available: 100n * MILLI, reserved: 0n, captured: 0n })
    } finally {
      await fake.close()
    }
  })


  it("single policy, sampled: the two workers disagree, a referee re-executes, its fingerprint wins; the liar is marked, the developer gets the honest numbers, charged once", async () => {
    expect(sampled).toMatchObject({ status: "Verified", minGpuClass: "A100" })
    const bare = await bareRun(sileroBytes(), sileroInput)
    const truth = outputFingerprint(bare, DEFAULT_OUTPUT_TOLERANCE)
    // The two A100s: an honest worker process and a stand-in that lies consistently (its outputs match its
    // fingerprint), holding its answer until the referee is up, so the referee cannot be one of the pair.
    let assigned!: () => void
    const gotTask = new Promise<void>((resolve) => (assigned = resolve))
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    const lie = perturbOutputs(bare, DEFAULT_OUTPUT_TOLERANCE)
    const honestA100 = spawnWorker(node.url, { gpuClass: "A100" })
    const [liar] = await Promise.all([
      standInWorker(node.url, "A100", async () => {
        assigned()
        await released
        return { fingerprint: outputFingerprint(lie, DEFAULT_OUTPUT_TOLERANCE), outputs: tensorMapToJson(lie) }
      }),
      waitOnline([honestA100]),
      deposit(SAMPLED_DEVELOPER.key, sampled.id, 100n * MILLI)
    ])
    try {
      const session = await openSession(SAMPLED_DEVELOPER.key, sampled.id)
      const pending = Effect.runPromise(Effect.either(c.client.infer(inferArgs(session, sileroInput))))
      await gotTask
      const referee = spawnWorker(node.url, { gpuClass: "A100" })
      await waitOnline([referee])
      release()
      const result = Either.getOrThrow(await pending)
      expect(result).toMatchObject({ fingerprint: truth, workers: [honestA100.address], charged: SAMPLED_PRICE })
      expectSameOutputs(result.outputs, bare)

      const es = await events(`task-${result.task}`)
      expect(es.map((e) => e.type)).toEqual([
        "TaskRequested", "TaskAssigned", "TaskResultSubmitted", "TaskResultSubmitted", "DisputeOpened", "DisputeResolved", "TaskValidated", "TaskSettled"
      ])
      expect(es.find((e) => e.type === "TaskAssigned")!.data).toMatchObject({ sampled: true })
      expect(es.find((e) => e.type === "DisputeResolved")!.data).toMatchObject({ referee: referee.address, fingerprint: truth, correct: [honestA100.address], wrong: [liar.address] })
      expect(es.find((e) => e.type === "TaskValidated")!.data).toMatchObject({ fingerprint: truth, disputed: true, correct: [honestA100.address], wrong: [liar.address] })
      const outcomeOf = async (worker: string) =>
        (await events(`worker-${worker}`)).find((e) => e.type === "DisputeRecorded" && (e.data as { taskId: string }).taskId === result.task)?.data
      expect(await waitFor("the liar's mark", () => outcomeOf(liar.address))).toMatchObject({ outcome: "wrong" })
      expect(await waitFor("the honest worker's record", () => outcomeOf(honestA100.address))).toMatchObject({ outcome: "correct" })
      expect(await escrowOf(SAMPLED_DEVELOPER.key, sampled.id)).toMatchObject({ reserved: 0n, captured: SAMPLED_PRICE })
      lies.push({ task: result.task, liar: liar.address, developer: SAMPLED_DEVELOPER.address })
    } finally {
      release()
      await liar.close()
    }
  })

  it(
    "every wrong result above is proven on chain by the node (result.challenge), once; the bonded liar is slashed at the epoch close, the developer paid its share by receipt",
    async () => {
      expect(lies).toHaveLength(4)
      const status = await c.run(c.client.node.status())
      const aiStream = `shard-${status.shards.find((s) => s.kind === "ai")!.shard}`
      const aiEvents = async (type: string) =>
        (await c.run(c.client.events.read({ stream: aiStream, from: 0, limit: 10_000 }))).filter((e) => e.type === type).map((e) => e.data as Record<string, unknown>)
      const proven = await waitFor(
        "every lie proven on the AI ledger",
        async () => {
          const es = await aiEvents("AiResultProvenWrong")
          return lies.every((l) => es.some((e) => e["taskId"] === l.task && e["worker"] === l.liar)) ? es : undefined
        },
        { timeoutMs: 30_000, intervalMs: 250 }
      )
      for (const l of lies) {
        const mine = proven.filter((e) => e["taskId"] === l.task && e["worker"] === l.liar)
        expect(mine).toHaveLength(1)
        expect(mine[0]).toMatchObject({ developer: l.developer })
      }
      // Slashed at the close of the epoch the proofs fell in (epochs are a minute on this node): 10 % of the
      // bond left free by the earlier proofs, each — half to the developer, a fifth to the node, the rest burned.
      const liar = bondedLiar!
      const slashes = await waitFor(
        "the bonded liar slashed at an epoch close",
        async () => {
          const es = (await aiEvents("Slashed")).filter((e) => e["worker"] === liar)
          return es.length >= 3 ? es : undefined
        },
        { timeoutMs: 150_000, intervalMs: 500 }
      )
      expect(slashes).toHaveLength(3)
      let free = LIAR_STAKE
      let toDeveloper = 0n
      for (const x of slashes) {
        const amount = free / 10n
        expect(x).toMatchObject({ reason: "WrongResult", user: QUORUM_DEVELOPER.address, amount: String(amount), toUser: String(amount / 2n), toReporter: String(amount / 5n) })
        expect(lies.some((l) => l.task === x["taskId"] && l.liar === liar)).toBe(true)
        free -= amount
        toDeveloper += amount / 2n
      }
      expect((await c.run(c.client.worker.onChain({ address: liar }))).bonded).toBe(free)
      await waitFor("the developer's shares credited", async () =>
        (await c.run(c.client.account.get({ address: QUORUM_DEVELOPER.address }))).balance === quorumDeveloperBefore + toDeveloper ? true : undefined
      )
    },
    200_000
  )

  it(
    "the node killed (SIGKILL) mid-task and restarted: the task ends unsettled, its reservation released, nothing charged; audit replay passes",
    async () => {
      const session = await openSession(SLOW_DEVELOPER.key, slow.id)
      const before = await escrowOf(SLOW_DEVELOPER.key, slow.id)
      // infer.stream names the task at once; the stream stays open (closing it would end the task) until the node dies.
      let taskId: string | undefined
      void Effect.runPromiseExit(
        c.client.infer.stream(inferArgs(session, slowInput)).pipe(Stream.runForEach((p) => Effect.sync(() => p.stage === "assigned" && (taskId = p.task))))
      )
      await waitFor("the slow task's assignment", async () => taskId, { timeoutMs: 10_000, intervalMs: 20 })
      await new Promise((resolve) => setTimeout(resolve, 250)) // into the run
      expect(await escrowOf(SLOW_DEVELOPER.key, slow.id)).toMatchObject({ reserved: SLOW_PRICE })
      await c.close()
      expect((await node.stop("SIGKILL")).signal).toBe("SIGKILL")

      node = await spawnNode({ dataDir: node.dataDir, extraArgs: ["--workers", "0"] })
      c = await openClient(node.url)
      const task = await waitFor(
        "the interrupted task to end",
        async () => {
          const t = await c.run(c.client.task.get({ task: taskId! }))
          return t.status === "Failed" ? t : undefined
        },
        { timeoutMs: 15_000, intervalMs: 100 }
      )
      expect(task).toMatchObject({ status: "Failed", charged: false })
      expect(task.events.map((e) => e.type)).toEqual(["TaskRequested", "TaskAssigned", "TaskFailed"])
      const escrow = await waitFor("the reservation's release", async () => {
        const e = await escrowOf(SLOW_DEVELOPER.key, slow.id)
        return e.reserved === 0n ? e : undefined
      })
      expect(escrow).toEqual(before)

      await c.close()
      await killWorkers()
      expect((await node.stop("SIGINT")).code).toBe(0)
      const report = await auditAi(node.dataDir)
      // Silero three times: the first call, the one call of the session capped at one price, and the signed request
      // run once (its replay refused, never recorded). Failed: the three refused results of the H100 stand-in and the
      // task the kill interrupted.
      expect(report.ai.tasks.byStatus).toMatchObject({ Failed: 4, Settled: 8 })
      const charged = 3n * SILERO_PRICE + SLOW_PRICE + 3n * QUORUM_PRICE + SAMPLED_PRICE
      expect(report.ai.tasks).toMatchObject({ total: 12, charged: String(charged) })
      expect(report.ai.escrows.captured).toBe(String(charged))
    },
    60_000
  )
})

/**
 * The hostile corpus (RELIABILITY.md 16) thrown at the devnet as `npm start`
 * runs it — `topai devnet --validators 4 --shards 2`, validator 0 with its
 * in-process compute node — in one run:
 *
 *   - hostile models through the real upload path (registered on chain, the
 *     weights in chunks the provider signed): each ends Rejected with its check;
 *   - models that pass verification and misbehave at serving time: Overran,
 *     and inputs over the manifest InputsOutOfBounds;
 *   - RPC frames at and one byte over a method's limit on validators 0 and 2,
 *     a frame over every limit, too many streams on one connection;
 *   - a replayed worker registration, a replayed session grant, weights
 *     signed by a key that is not the provider's;
 *   - an unbond of someone else's stake; a transfer of the reserve's money:
 *     the reserve is a keyless system address on the AI shard (no public key
 *     hashes to it, so no transaction can name it as sender), and the key
 *     the old design derived for it from a public seed holds nothing.
 *
 * Each gets its typed refusal, and after each group the devnet keeps
 * committing: the beacon and a transfer shard grow on validators 1 and 3,
 * and a transfer commits and shows on all 4 validators. At the end Ctrl-C,
 * a restart on the same data dir resumes (heights grow past where they were,
 * the models keep their verdicts, a transfer commits), and `topai audit
 * replay` with the operator's genesis passes on validators 0 and 1.
 */
import { randomBytes } from "node:crypto"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { signWeightsChunk } from "../../domain/ai/signedMessages.js"
import { DEFAULT_STATIC_LIMITS } from "../../domain/ai/legitimacy.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devKeyFromSeed } from "../../domain/chain/keys.js"
import { signingDigest, signTransaction, Transaction, TransactionBody } from "../../domain/chain/transaction.js"
import { aiShardOf } from "../../domain/chain/sharding.js"
import { isSystemAddress, SYSTEM_RESERVE } from "../../domain/economics/accounts.js"
import { DEFAULT_SMOKE_LIMITS } from "../../infra/inference/SandboxedSmokeRun.js"
import { FRAME_BYTES_MAX, REQUEST_BYTES_DEFAULT, REQUEST_BYTES_MAX, SUBSCRIPTIONS_PER_CONNECTION_MAX } from "../../src/api/requestLimits.js"
import type { InferenceRejected, ModelView } from "../../src/client/index.js"
import {
  hugeInputModel,
  hugeOutputModel,
  inputTripCountLoopModel,
  manifest,
  randomModel,
  repeatedGraphModel,
  trainingDropoutModel
} from "../ai/support/models.js"
import { valueBombModel, valueLoopModel } from "../ai/support/servingModels.js"
import { inferArgs, openTestSession, registerModel, registerWorkerOnChain, sha256, signGrant, signRegistration, submitIncluded, uploadModel, servingManifest, type TestSession } from "./support/ai.js"
import { DEFAULT_FEE, DEV, signTransfer, waitFor } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { failureOf, frameOf, rawSocket, subscribeFrame } from "./support/frames.js"
import { auditArgs, cleanup, makeTempDir, runCli, spawnNode, wsUrl } from "./support/processes.js"
import type { NodeProcess } from "./support/processes.js"

const VALIDATORS = 4
const MIB = 2 ** 20
const PRICE = 5n * 10n ** 15n
const PROVIDER = DEV[1]!
const OTHER_PROVIDER = DEV[2]!
const DEVELOPER = DEV[3]!
/** The transfers that show the devnet still commits. */
const SENDER = DEV[4]!
const RECEIVER = DEV[5]!
const BONDER = DEV[6]!
const STAKED_WORKER = DEV[7]!
const THIEF = DEV[9]!

let devnet: NodeProcess
let clients: Array<TestClient> = []
let chainId: bigint
const v = (i: number): TestClient => clients[i]!
/** A key nobody was given: from a random seed. */
const randomKey = () => devKeyFromSeed(randomBytes(16).toString("hex"))

const openClients = async (port: number) => {
  clients = []
  for (let i = 0; i < VALIDATORS; i++) clients.push(await openClient(wsUrl(port + i)))
  chainId = (await v(0).run(v(0).client.node.status())).chainId
}
const closeClients = async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined)
}
const startDevnet = (dataDir: string) =>
  // As `npm start` runs it (its in-process compute node on validator 0 included).
  spawnNode({ dataDir, command: ["devnet", "--validators", String(VALIDATORS), "--shards", "2"], extraArgs: ["--workers", "2"], readyTimeoutMs: 60_000 })

/** Heights of the beacon (shard 0) and the sender's transfer shard (where the transfers below land) on validator `i`. */
const heightsOn = async (i: number) => {
  const shards = (await v(i).run(v(i).client.node.status())).shards
  return [shards.find((s) => s.shard === 0)!.height, shards.find((s) => s.shard === SENDER.shard)!.height] as const
}
const balanceOn = async (i: number, address: string) => (await v(i).run(v(i).client.account.get({ address }))).balance

/**
 * The devnet keeps committing: a transfer sent to validator `via` is
 * included and shows on all 4 validators, and the beacon and a transfer
 * shard grow on validators 1 and 3 past where they were.
 */
const keepsCommitting = async (after: string, via = 0) => {
  const before = await Promise.all([1, 3].map(heightsOn))
  const [account, received] = await Promise.all([
    v(via).run(v(via).client.account.get({ address: SENDER.address })),
    balanceOn(via, RECEIVER.address)
  ])
  const t = signTransfer({ key: SENDER.key, to: RECEIVER.address, amount: 1n, nonce: account.pendingNonce, chainId })
  const r = await v(via).run(v(via).client.tx.submit({ raw: t.raw, wait: true }), 60_000)
  expect({ after, status: r.status }).toEqual({ after, status: "included" })
  for (let i = 0; i < VALIDATORS; i++) {
    await waitFor(`after ${after}: the transfer on validator ${i}`, async () => ((await balanceOn(i, RECEIVER.address)) === received + 1n ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 200
    })
  }
  for (const [k, i] of [1, 3].entries()) {
    await waitFor(
      `after ${after}: the beacon and shard ${SENDER.shard} grow on validator ${i} past ${before[k]!.join(", ")}`,
      async () => {
        const [beacon, transfers] = await heightsOn(i)
        return beacon > before[k]![0] && transfers > before[k]![1] ? true : undefined
      },
      { timeoutMs: 30_000, intervalMs: 200 }
    )
  }
}

/** The model's check and reason, out of its reason in words (`... CHECK: reason`). */
const rejectionOf = (m: ModelView, check: string) => {
  expect({ id: m.id, status: m.status }).toEqual({ id: m.id, status: "Rejected" })
  const at = m.reason!.indexOf(`: ${check}: `)
  expect({ check, reason: m.reason }).toEqual({ check, reason: expect.stringContaining(`: ${check}: `) })
  return m.reason!.slice(at + check.length + 4)
}


const verdicts = new Map<string, ModelView>()
let bomb: ModelView

beforeAll(async () => {
  devnet = await startDevnet(makeTempDir("hostile-devnet"))
  await openClients(devnet.port)
}, 90_000)

afterAll(async () => {
  await closeClients()
  await cleanup()
})

describe("the hostile corpus against the `npm start` devnet, in one run", () => {
  it("hostile models through the real upload path: each Rejected with its check; the devnet keeps committing", async () => {
    const c = v(0)
    const corpus: ReadonlyArray<{ readonly name: string; readonly bytes: Uint8Array; readonly check: string; readonly reason: string | RegExp }> = [
      {
        name: "huge-input",
        bytes: hugeInputModel(),
        check: "TensorTooLarge",
        reason: `the inputs at their shapes take 2048.0 MiB, over the ${(DEFAULT_STATIC_LIMITS.inputBytesMax / MIB).toFixed(1)} MiB limit`
      },
      {
        name: "huge-output",
        bytes: hugeOutputModel(2 ** 26),
        check: "OutputTooLarge",
        reason: `smoke run: output: outputs are ${2 ** 28} bytes, over the ${DEFAULT_SMOKE_LIMITS.outputBytesMax} limit`
      },
      {
        name: "repeated-graph",
        bytes: repeatedGraphModel(),
        check: "NotOnnx",
        reason: /^the file is not an ONNX model \(a field that holds one value holds several: RepeatedField at byte \d+: singular field 7 of ModelProto appears more than once\)$/
      },
      {
        name: "random-op",
        bytes: randomModel(),
        check: "OperatorNotAllowed",
        reason: `a RandomNormal node uses operator "RandomNormal", which is not allowed: random outputs cannot be cross-checked`
      },
      {
        name: "input-trip-count",
        bytes: inputTripCountLoopModel(),
        check: "UnboundedLoop",
        reason: `node "loop" (Loop) takes its trip count from "M", which is not a constant; make it an initializer or a Constant, or fix the input in the manifest (--fixed M=N)`
      },
      {
        name: "training-dropout",
        bytes: trainingDropoutModel(),
        check: "OperatorNotAllowed",
        reason: `a Dropout node has a training_mode input ("training"); Dropout in training mode drops values at random, so its outputs cannot be cross-checked`
      },
      { name: "random-bytes", bytes: new Uint8Array(randomBytes(4096)), check: "NotOnnx", reason: /^the file is not an ONNX model \(/ }
    ]
    for (const m of corpus) {
      const view = await uploadModel(c, PROVIDER.key, m.bytes, manifest({ name: m.name }), 90_000)
      verdicts.set(view.id, view)
      const reason = rejectionOf(view, m.check)
      if (typeof m.reason === "string") expect({ name: m.name, reason }).toEqual({ name: m.name, reason: m.reason })
      else expect({ name: m.name, reason }).toEqual({ name: m.name, reason: expect.stringMatching(m.reason) })
    }
    await keepsCommitting("the hostile uploads")
  }, 240_000)

  it("serving-time hostile models that passed verification: a loop and an allocation by input value Overran; inputs over the manifest InputsOutOfBounds", async () => {
    const c = v(0)
    const loop = await uploadModel(c, PROVIDER.key, valueLoopModel(), servingManifest("loop-by-input", PRICE), 90_000)
    bomb = await uploadModel(c, PROVIDER.key, valueBombModel(), servingManifest("alloc-by-input", PRICE), 90_000)
    expect([loop.status, bomb.status]).toEqual(["Verified", "Verified"])
    verdicts.set(loop.id, loop)
    verdicts.set(bomb.id, bomb)
    await waitFor("both in-process compute nodes online", async () => ((await c.run(c.client.worker.list())).filter((w) => w.online).length >= 2 ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 200
    })
    const session = async (model: string) => {
      await submitIncluded(c, DEVELOPER.key, { kind: "escrow.deposit", model: model as never, amount: 10n * PRICE }, 60_000)
      await waitFor(`the deposit for ${model}`, async () =>
        (await c.run(c.client.escrow.get({ developer: DEVELOPER.address, model }))).deposited >= 10n * PRICE ? true : undefined
      )
      return openTestSession(c, chainId, DEVELOPER.key, signGrant(chainId, DEVELOPER.key, model, { spendMax: 10n * PRICE, expiresAt: Date.now() + 3_600_000 }))
    }
    const refusal = async (s: TestSession, inputs: unknown) => (await c.fail(c.client.infer(inferArgs(s, inputs)), 90_000)) as InferenceRejected

    const loopSession = await session(loop.id)
    const spin = await refusal(loopSession, { m: { type: "int64", dims: [], data: ["1000000000000000"] }, x: { type: "float32", dims: [1], data: [0] } })
    // An overrun is charged only once a second compute node confirms it (the devnet runs two).
    expect({ tag: spin._tag, reason: spin.reason }, spin.detail).toEqual({ tag: "InferenceRejected", reason: "Overran" })

    const bombSession = await session(bomb.id)
    const alloc = await refusal(bombSession, { n: { type: "int64", dims: [1], data: [1_000_000_000] } })
    expect({ tag: alloc._tag, reason: alloc.reason }, alloc.detail).toEqual({ tag: "InferenceRejected", reason: "Overran" })

    // The overran call is charged on chain too (usage.overran): once settled there, nothing below may move the escrow.
    const escrow = await waitFor("the overran charge settled on the AI ledger", async () => {
      const e = await c.run(c.client.escrow.get({ developer: DEVELOPER.address, model: bomb.id }))
      return (e.unsettled ?? 0n) === 0n ? e : undefined
    }, { timeoutMs: 60_000, intervalMs: 250 })
    const over = await refusal(bombSession, { n: { type: "int64", dims: [2], data: [1, 1] } })
    expect({ tag: over._tag, reason: over.reason }).toEqual({ tag: "InferenceRejected", reason: "InputsOutOfBounds" })
    expect(over.detail).toMatch(/^input "n"/)
    expect(await c.run(c.client.escrow.get({ developer: DEVELOPER.address, model: bomb.id }))).toEqual(escrow)
    // The compute node serves on.
    expect((await c.run(c.client.infer(inferArgs(bombSession, { n: { type: "int64", dims: [1], data: [12] } })), 90_000)).charged).toBe(PRICE)
    await keepsCommitting("the serving-time overruns", 2)
  }, 240_000)

  it("RPC frames at and one byte over a method's limit on validators 0 and 2; a frame over every limit; frames that are not requests; too many streams", async () => {
    const HASH = `0x${"ab".repeat(32)}`
    const methods = [
      { method: "tx.submit", limit: REQUEST_BYTES_MAX["tx.submit"]!, payload: (pad: string) => ({ raw: `0x${pad}`, wait: false }), atLimit: "TransactionRejected:Oversized" },
      { method: "account.get", limit: REQUEST_BYTES_DEFAULT, payload: (pad: string) => ({ address: `0x${pad}` }), atLimit: "InvalidRequest:" }
    ]
    // Request ids are numbers on the wire.
    let id = 0
    for (const i of [0, 2]) {
      const s = await rawSocket(wsUrl(devnet.port + i))
      for (const { method, limit, payload, atLimit } of methods) {
        const at = String(++id)
        s.send(frameOf(at, method, payload, limit))
        expect({ i, method, exit: failureOf(await s.exitOf(at)) }).toEqual({ i, method, exit: atLimit })
        const over = String(++id)
        s.send(frameOf(over, method, payload, limit + 1))
        const exit = await s.exitOf(over)
        expect({ i, method, exit: failureOf(exit) }).toEqual({ i, method, exit: "RequestRefused:TooLarge" })
        expect(JSON.stringify(exit)).toContain(`a ${method} request is at most ${limit} bytes, this one is ${limit + 1}`)
      }
      s.ws.close()
    }
    // Validator 0 serves the AI shard's methods, with their own limits.
    const s0 = await rawSocket(wsUrl(devnet.port))
    const upload = (pad: string) => ({ weightsHash: HASH, sizeBytes: 10, offset: 0, data: pad, publicKey: "0x", signature: "0x" })
    s0.send(frameOf("1", "model.upload", upload, REQUEST_BYTES_MAX["model.upload"]!))
    expect(failureOf(await s0.exitOf("1"))).toBe("UploadRejected:BadChunk")
    s0.send(frameOf("2", "model.upload", upload, REQUEST_BYTES_MAX["model.upload"]! + 1))
    expect(failureOf(await s0.exitOf("2"))).toBe("RequestRefused:TooLarge")
    s0.ws.close()

    for (const i of [0, 2]) {
      const big = await rawSocket(wsUrl(devnet.port + i))
      big.send(frameOf("1", "infer", (pad) => ({ session: "nope", inputs: { pad }, nonce: "0x", signature: "0x" }), FRAME_BYTES_MAX + 1))
      expect({ i, code: await big.closed }).toEqual({ i, code: 1009 })
    }

    // Frames that are not requests: text that is not JSON is answered with a Defect and the connection
    // serves on; a request whose id is not a number drops the connection. Never the node.
    const notJson = await rawSocket(wsUrl(devnet.port + 2))
    notJson.send("{{{ not json")
    const defect = await waitFor("the answer to a frame that is not JSON", async () => notJson.messages.find((m) => m._tag === "Defect"), { timeoutMs: 30_000 })
    expect(JSON.stringify(defect)).toContain("SyntaxError")
    notJson.send(JSON.stringify({ _tag: "Request", id: "1", tag: "node.status", payload: {}, headers: [] }))
    expect(failureOf(await notJson.exitOf("1"))).toBe("Success")
    notJson.ws.close()
    const badId = await rawSocket(wsUrl(devnet.port + 2))
    badId.send(JSON.stringify({ _tag: "Request", id: "not-a-number", tag: "node.status", payload: {}, headers: [] }))
    await waitFor("the connection dropped after a request id that is not a number", async () => (badId.ws.readyState === badId.ws.CLOSED ? true : undefined), {
      timeoutMs: 30_000
    })

    const streams = await rawSocket(wsUrl(devnet.port + 2))
    for (let id = 1; id <= SUBSCRIPTIONS_PER_CONNECTION_MAX; id++) streams.send(subscribeFrame(id))
    await waitFor("a chunk on every stream", async () =>
      new Set(streams.messages.filter((m) => m._tag === "Chunk").map((m) => m.requestId)).size === SUBSCRIPTIONS_PER_CONNECTION_MAX ? true : undefined
    , { timeoutMs: 30_000 })
    streams.send(subscribeFrame(100))
    expect(failureOf(await streams.exitOf("100"))).toBe("RequestRefused:TooManySubscriptions")
    streams.ws.close()
    await keepsCommitting("the oversized frames and streams", 1)
  }, 120_000)

  it("a replayed worker registration, a replayed session grant, weights signed by another key: each refused, nothing taken", async () => {
    const c = v(0)
    const workerKey = randomKey()
    await registerWorkerOnChain(c, workerKey)
    const registration = signRegistration(chainId, workerKey)
    expect((await c.run(c.client.worker.register(registration))).worker).toBe(workerKey.publicKey.address)
    const replayed = (await c.fail(c.client.worker.register(registration))) as { _tag: string; reason: string }
    expect({ tag: replayed._tag, reason: replayed.reason }).toEqual({ tag: "WorkerRejected", reason: "ReplayedRegistration" })

    const grant = signGrant(chainId, DEVELOPER.key, bomb.id, { spendMax: PRICE })
    await c.run(c.client.session.open(grant))
    const again = (await c.fail(c.client.session.open(grant))) as { _tag: string; reason: string }
    expect({ tag: again._tag, reason: again.reason }).toEqual({ tag: "InferenceRejected", reason: "ReplayedGrant" })

    const weights = Uint8Array.from({ length: 300 }, (_, i) => (i * 31 + 7) & 0xff)
    const id = await registerModel(c, PROVIDER.key, weights, manifest({ name: "not-yours" }), 60_000)
    await waitFor(`model ${id} shown`, async () => ((await c.run(c.client.model.list({}))).some((m) => m.id === id) ? true : undefined))
    const forged = (await c.fail(c.client.model.upload(signWeightsChunk(OTHER_PROVIDER.key, chainId, sha256(weights), weights.length, 0, weights)))) as {
      _tag: string
      reason: string
    }
    expect({ tag: forged._tag, reason: forged.reason }).toEqual({ tag: "UploadRejected", reason: "NotProvider" })
    expect((await c.run(c.client.model.get({ model: id }))).weightsUploaded).toBe(false)
    await keepsCommitting("the replays", 3)
  }, 120_000)

  it("money the sender does not own: an unbond of someone else's stake NotStakeOwner; the keyless reserve cannot be spent — the old reserve seed's key is an empty account (InsufficientBalance) and the reserve on the AI shard stays whole", async () => {
    const c = v(0)
    await submitIncluded(c, BONDER.key, { kind: "worker.stake", worker: STAKED_WORKER.address as never, amount: 1_000_000n }, 60_000)
    const staked = await waitFor("the stake bonded", async () => {
      const s = await c.run(c.client.stake.get({ worker: STAKED_WORKER.address }))
      return s.bonded >= 1_000_000n ? s : undefined
    }, { timeoutMs: 30_000, intervalMs: 200 })
    const thiefBefore = await balanceOn(0, THIEF.address)
    for (const i of [0, 2]) {
      // worker.unbond runs on the AI shard: the thief's nonce there, fee 0 (it holds nothing there).
      const account = await v(i).run(v(i).client.account.get({ address: THIEF.address, shard: aiShardOf(2) }))
      const body = new TransactionBody({ chainId, nonce: account.pendingNonce, fee: 0n, payload: { kind: "worker.unbond", worker: STAKED_WORKER.address as never, amount: 1n } })
      const theft = signTransaction(body, THIEF.key)
      const e = (await v(i).fail(v(i).client.tx.submit({ raw: bytesToHex(theft.encoded), wait: true }))) as { _tag: string; reason: string }
      expect({ i, tag: e._tag, reason: e.reason }).toEqual({ i, tag: "TransactionRejected", reason: "NotStakeOwner" })
    }

    // The reserve is keyless: SYSTEM_RESERVE on the AI shard. A transaction's sender is the address
    // of the public key it carries, and a system address is a hash no known public key hits, so no
    // transaction can even name it as sender (execution and admission would refuse SystemAccount).
    // What a thief can try is the key the old design derived for the reserve from a public seed:
    // that is now an ordinary, empty account — its transfer is refused and the reserve is untouched.
    const AI_SHARD = aiShardOf(2)
    const reserveOn = async (i: number) => (await v(i).run(v(i).client.account.get({ address: SYSTEM_RESERVE, shard: AI_SHARD }))).balance
    const reserveBefore = await reserveOn(1)
    expect(reserveBefore).toBeGreaterThan(0n)
    const oldReserveKey = devKeyFromSeed("topai-mining-reserve")
    expect(isSystemAddress(oldReserveKey.publicKey.address)).toBe(false)
    const account = await v(1).run(v(1).client.account.get({ address: oldReserveKey.publicKey.address }))
    expect(account.balance).toBe(0n)
    const body = new TransactionBody({ chainId, nonce: account.pendingNonce, fee: DEFAULT_FEE, payload: { kind: "transfer", to: THIEF.address as never, amount: 10n ** 18n } })
    const signed = signTransaction(body, oldReserveKey)
    // And the same transfer with a signature of a key nobody gave out over that public key.
    const forged = Transaction.make(body, oldReserveKey.publicKey, randomKey().signDigest(signingDigest(body, oldReserveKey.publicKey)))
    for (const i of [1, 3]) {
      for (const tx of [signed, forged]) {
        const e = (await v(i).fail(v(i).client.tx.submit({ raw: bytesToHex(tx.encoded), wait: true }))) as { _tag: string; reason: string }
        expect({ i, tag: e._tag, reason: e.reason }).toEqual({ i, tag: "TransactionRejected", reason: "InsufficientBalance" })
      }
    }
    await keepsCommitting("the thefts", 1)
    expect((await c.run(c.client.stake.get({ worker: STAKED_WORKER.address }))).bonded).toBe(staked.bonded)
    for (const i of [1, 3]) expect({ i, reserve: await reserveOn(i) }).toEqual({ i, reserve: reserveBefore })
    // Refused at admission: not even a fee moved.
    for (let i = 0; i < VALIDATORS; i++) expect({ i, thief: await balanceOn(i, THIEF.address) }).toEqual({ i, thief: thiefBefore })
  }, 120_000)

  it("Ctrl-C, then a restart on the same data dir resumes: heights grow, the models keep their verdicts, a transfer commits; audit replay passes on validators 0 and 1", async () => {
    const heights = await Promise.all([1, 3].map(heightsOn))
    await closeClients()
    // A run the serving test's overruns left in a compute node's child can take its whole deadline (up to 30 s) to stop.
    const stopped = await devnet.stop("SIGINT", 60_000)
    expect(stopped, `the devnet's last output:\n${devnet.output().slice(-4_000)}`).toMatchObject({ code: 0, forced: false })

    devnet = await startDevnet(devnet.dataDir)
    await openClients(devnet.port)
    for (const [k, i] of [1, 3].entries()) {
      await waitFor(
        `after the restart: the beacon and shard ${SENDER.shard} grow on validator ${i} past ${heights[k]!.join(", ")}`,
        async () => {
          const [beacon, transfers] = await heightsOn(i)
          return beacon > heights[k]![0] && transfers > heights[k]![1] ? true : undefined
        },
        { timeoutMs: 60_000, intervalMs: 250 }
      )
    }
    for (const [id, before] of verdicts) {
      const after = await v(0).run(v(0).client.model.get({ model: id }))
      expect({ id, status: after.status, reason: after.reason }).toEqual({ id, status: before.status, reason: before.reason })
    }
    await keepsCommitting("the restart", 2)

    await closeClients()
    expect(await devnet.stop("SIGINT", 30_000)).toMatchObject({ code: 0, forced: false })
    const audits = await Promise.all([0, 1].map((i) => runCli([...auditArgs(join(devnet.dataDir, `validator-${i}`)), "--json"], { timeoutMs: 120_000 })))
    for (const [i, a] of audits.entries()) {
      expect({ i, code: a.code }, a.stdout + a.stderr).toEqual({ i, code: 0 })
      expect((JSON.parse(a.stdout) as { ok: boolean }).ok).toBe(true)
    }
  }, 240_000)
})

/**
 * The AI shard through the real `topai` CLI process against a real node
 * process, as a provider and a developer meet it: upload the silero VAD
 * (chunked, progress on stderr) and see it verified; upload random bytes
 * and see them rejected with a reason (exit 1); list and show models;
 * deposit into escrow and show it; run an inference on a compute node and
 * get exactly what a bare onnxruntime run gives; then `topai audit replay`
 * rebuilds the models, tasks, workers and escrows — and names the stream
 * of a model event someone tampered with.
 *
 * One node for the whole file; the tests run in order and build on each
 * other. Each CLI process costs ~2 s of CPU to start, so there are only as
 * many as the checks need, at most two at a time.
 */
import { randomBytes } from "node:crypto"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Either, Exit, Scope } from "effect"
import ort from "onnxruntime-node"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { decodeTensorMapJson } from "../../domain/ai/tensor.js"
import { devKey } from "../../domain/chain/keys.js"
import { startComputeNode } from "../../src/worker/ComputeNode.js"
import { toOrtFeeds } from "../../infra/inference/ortTensor.js"
import { DEV } from "./support/chain.js"
import { forgeEvent } from "./support/forge.js"
import { auditArgs, cleanup, expectUserError, makeTempDir, runCli, runCliAll, spawnNode, hexKey, expectJson } from "./support/processes.js"
import type { NodeProcess } from "./support/processes.js"
import { copyDataDir } from "./support/tamper.js"
import { SILERO_CLI_FLAGS, SILERO_PATH } from "../ai/support/models.js"

/** 0.025 token a call: enough to cover the devnet's computing fee, so the model is never paused. */
const PRICE = 25n * 10n ** 15n
/** One token. */
const DEPOSIT = 10n ** 18n
/** Verification of silero in the sandbox, with the CLI's start: well under this. */
const UPLOAD_TIMEOUT_MS = 60_000

const PROVIDER = DEV[3]!
const DEVELOPER = DEV[4]!
const BROKE = DEV[5]! // never deposits

interface ModelJson {
  id: string
  provider: string
  status: "Pending" | "Verified" | "Rejected"
  name: string
  version: string
  price: string
  weightsHash: string
  sizeBytes: number
  weightsUploaded: boolean
  reason?: string
  referenceFingerprint?: string
  inputs: Array<{ name: string; type: string; dims: Array<number | string> }>
  outputs: Array<{ name: string; type: string; dims: Array<number | string> }>
}

let node: NodeProcess
let rpc: ReadonlyArray<string>
let silero: ModelJson
let junk: ModelJson


beforeAll(async () => {
  // No in-process worker: the infer test brings its own compute node, so it knows which worker ran the task.
  node = await spawnNode({ dataDir: makeTempDir("ai-cli"), extraArgs: ["--workers", "0"] })
  rpc = ["--rpc", node.url]
})

afterAll(cleanup)

describe("topai model / escrow / infer / task / audit against a node", () => {
  it(
    "model upload of silero: chunked with progress, registered, verified with its fingerprint, inputs and outputs; again: upload skipped",
    async () => {
      const first = await runCli(
        ["model", "upload", SILERO_PATH, "--name", "silero-vad", "--price", String(PRICE), "--license", "MIT", ...SILERO_CLI_FLAGS, "--key", hexKey(PROVIDER.key), ...rpc, "--json"],
        { timeoutMs: UPLOAD_TIMEOUT_MS }
      )
      silero = expectJson<ModelJson>(first)
      expect(silero).toMatchObject({
        status: "Verified",
        provider: PROVIDER.address,
        name: "silero-vad",
        version: "1",
        price: String(PRICE),
        weightsUploaded: true,
        sizeBytes: readFileSync(SILERO_PATH).length
      })
      expect(silero.id).toMatch(/^0x[0-9a-f]{64}$/)
      expect(silero.referenceFingerprint).toMatch(/^0x[0-9a-f]{64}$/)
      expect(silero.inputs.map((i) => [i.name, i.type])).toEqual([
        ["input", "float32"],
        ["state", "float32"],
        ["sr", "int64"]
      ])
      expect(silero.outputs.map((o) => o.name)).toEqual(["output", "stateN"])
      // Progress on stderr: 2.2 MiB in 1 MiB chunks.
      expect(first.stderr).toMatch(/uploading\s+45%\s+1048576 \/ 2327524 bytes/)
      expect(first.stderr).toMatch(/uploading 100%\s+2327524 \/ 2327524 bytes/)
      // Registered on chain first: the node takes weights only for a model registered by their provider.
      expect(first.stderr).toMatch(new RegExp(`model\\.register ${silero.id} included in block \\d+/\\d+\n(.*\n)*  uploading 100%(.*\n)*  waiting for the verdict`))

      // The same weights under another manifest: the node has them, nothing is sent again; a new model all the same.
      const again = await runCli(
        ["model", "upload", SILERO_PATH, "--name", "silero-quorum", "--version", "5", "--price", "7", ...SILERO_CLI_FLAGS,
          "--validation", "quorum:1/1", "--tolerance", "0.001", "--key", hexKey(PROVIDER.key), ...rpc],
        { timeoutMs: UPLOAD_TIMEOUT_MS }
      )
      expect(again.code, again.stderr).toBe(0)
      expect(again.stderr).toContain("the node stores these weights already: upload skipped")
      expect(again.stderr).not.toContain("uploading")
      expect(again.stdout).toMatch(/^model 0x[0-9a-f]{64} verified\n {2}name {9}silero-quorum 5\n {2}fingerprint {2}0x[0-9a-f]{64}\n {2}inputs {7}input float32/)
    },
    2 * UPLOAD_TIMEOUT_MS
  )

  it(
    "model upload of random bytes: rejected by the validators with a reason, printed, exit 1",
    async () => {
      const file = join(makeTempDir("junk"), "junk.onnx")
      writeFileSync(file, randomBytes(3000))
      const r = await runCli(["model", "upload", file, "--name", "junk", "--price", "1", "--key", hexKey(PROVIDER.key), ...rpc, "--json"], {
        timeoutMs: UPLOAD_TIMEOUT_MS
      })
      expect(r.code).toBe(1)
      junk = JSON.parse(r.stdout) as ModelJson
      expect(junk).toMatchObject({ status: "Rejected", name: "junk", provider: PROVIDER.address })
      expect(junk.reason).toMatch(/NotOnnx: the file is not an ONNX model/)
      const lines = r.stderr.trimEnd().split("\n")
      expect(lines[lines.length - 1]).toBe(`error: model ${junk.id} was rejected: ${junk.reason}`)
      expect(r.stderr).not.toMatch(/^\s+at /m)
    },
    UPLOAD_TIMEOUT_MS
  )

  it("model list and show --json agree with each other and with the upload; --provider filters", async () => {
    const [all, mine, none, shown] = await runCliAll([
      ["model", "list", ...rpc, "--json"],
      ["model", "list", "--provider", PROVIDER.address.toUpperCase().replace("0X", "0x"), ...rpc, "--json"],
      ["model", "list", "--provider", DEVELOPER.address, ...rpc, "--json"],
      ["model", "show", silero.id, ...rpc, "--json"]
    ])
    const list = expectJson<Array<ModelJson>>(all!)
    expect(list).toHaveLength(3)
    expect(list.map((m) => m.status).sort()).toEqual(["Rejected", "Verified", "Verified"])
    expect(list.find((m) => m.id === silero.id)).toEqual(silero)
    expect(list.find((m) => m.id === junk.id)).toEqual(junk)
    expect(expectJson<Array<ModelJson>>(mine!)).toEqual(list)
    expect(expectJson<Array<ModelJson>>(none!)).toEqual([])
    expect(expectJson<ModelJson>(shown!)).toEqual(silero)
  })

  it("bad input: one `error: ...` line, exit 1, nothing sent", async () => {
    const dir = makeTempDir("bad-input")
    const notJson = join(dir, "not.json")
    writeFileSync(notJson, "{ input: ")
    const notTensors = join(dir, "scalar.json")
    writeFileSync(notTensors, JSON.stringify({ input: 3 }))
    const key = hexKey(PROVIDER.key)
    const unknown = `0x${"ab".repeat(32)}`
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["model", "upload", join(dir, "missing.onnx"), "--name", "x", "--price", "1", "--key", key, ...rpc], /^error: no such file: .*missing\.onnx$/],
      [["model", "upload", SILERO_PATH, "--name", "x", "--price", "1", "--shape", "input=1,x", "--key", key, ...rpc], /^error: --shape takes NAME=D1,D2,\.\.\. with dims ≥ 1 .*got "input=1,x"$/],
      [["model", "upload", SILERO_PATH, "--name", "x", "--price", "1", "--key", key, ...rpc], /^error: input "input" has a symbolic dim 0 .*give its whole shape, e\.g\. --shape input=1,1 \(checked locally, nothing was sent\)$/],
      [["model", "upload", SILERO_PATH, "--name", "x", "--price", "1", ...SILERO_CLI_FLAGS, "--validation", "quorum:3/2", "--key", key, ...rpc], /^error: --validation quorum:K\/N needs 1 ≤ K ≤ N/],
      [["model", "upload", SILERO_PATH, "--name", "x", "--price", "1", "--min-gpu", "TPU", "--key", key, ...rpc], /^error: --min-gpu must be one of H100, A100, RTX4090, CPU, got "TPU"$/],
      [["model", "show", unknown, ...rpc], /^error: unknown model 0x(ab){32} \(`topai model list` shows the node's models\)$/],
      [["escrow", "deposit", unknown, "100", "--key", key, ...rpc], /^error: unknown model 0x(ab){32}/],
      [["escrow", "deposit", junk.id, "100", "--key", key, ...rpc], /^error: model 0x[0-9a-f]{64} was rejected \(.*NotOnnx.*\): it serves no calls$/],
      [["escrow", "show", silero.id, ...rpc], /^error: give the developer: --developer ADDRESS, or its key \(--key-file PATH, TOPAI_KEY or --key HEX\)$/],
      [["infer", silero.id, "--input", notJson, "--key", key, ...rpc], /^error: .*not\.json is not JSON: /],
      [["infer", silero.id, "--input", notTensors, "--key", key, ...rpc], /^error: .*scalar\.json: input "input": expected \{"type", "dims", "data" \| "dataBase64"\}, got number$/],
      [["model", "price", silero.id, "5", "--key", hexKey(DEVELOPER.key), ...rpc], /^error: only the provider 0x[0-9a-f]{40} can reprice model/],
      [["task", "show", `0x${"cd".repeat(32)}`, ...rpc], /^error: unknown task 0x(cd){32}$/]
    ]
    const results = await runCliAll(cases.map(([args]) => args))
    cases.forEach(([args, message], i) => expectUserError(args, results[i]!, message))
  })

  it("escrow deposit waits for the block and shows the escrow; escrow show by --developer and by --key agree", async () => {
    const deposit = expectJson<{ tx: string; block: string; escrow: Record<string, string> }>(
      await runCli(["escrow", "deposit", silero.id, String(DEPOSIT), "--key", hexKey(DEVELOPER.key), ...rpc, "--json"])
    )
    expect(deposit.tx).toMatch(/^0x[0-9a-f]{64}$/)
    expect(deposit.escrow).toEqual({ developer: DEVELOPER.address, model: silero.id, deposited: String(DEPOSIT), available: String(DEPOSIT), reserved: "0", captured: "0", onLedger: String(DEPOSIT), unsettled: "0" })
    const [byAddress, byKey] = await runCliAll([
      ["escrow", "show", silero.id, "--developer", DEVELOPER.address, ...rpc, "--json"],
      ["escrow", "show", silero.id, "--key", hexKey(DEVELOPER.key), ...rpc]
    ])
    expect(expectJson(byAddress!)).toEqual(deposit.escrow)
    expect(byKey!.code).toBe(0)
    expect(byKey!.stdout).toBe(
      [`escrow of ${DEVELOPER.address} for model ${silero.id}`, `  deposited  ${DEPOSIT}`, `  available  ${DEPOSIT}`, "  reserved   0", "  captured   0", `  on ledger  ${DEPOSIT} (the AI shard's figure; 0 captured here awaits settlement)`, ""].join("\n")
    )
  })

  it(
    "infer on a compute node: the outputs equal a bare onnxruntime session.run of the same input; charged once; task show; insufficient escrow is refused",
    async () => {
      // A compute node in this process (the worker's runs happen on its own threads).
      const scope = await Effect.runPromise(Scope.make())
      try {
        const worker = await Effect.runPromise(
          Scope.extend(
            startComputeNode({ rpc: node.url, key: devKey(8), gpuClass: "CPU", devices: 1, stake: 0n, endpoint: "in-test", dataDir: makeTempDir("worker") }),
            scope
          )
        )
        await Effect.runPromise(worker.registered())

        const dir = makeTempDir("infer")
        const input = {
          input: { type: "float32", dims: [1, 576], data: Array.from({ length: 576 }, (_, i) => Math.fround(0.3 * Math.sin(i / 7))) },
          state: { type: "float32", dims: [2, 1, 128], data: Array.from({ length: 256 }, (_, i) => Math.fround((i % 13) / 100 - 0.05)) },
          sr: { type: "int64", dims: [], data: [16000] }
        }
        const inputFile = join(dir, "input.json")
        writeFileSync(inputFile, JSON.stringify(input))
        const outputFile = join(dir, "output.json")
        const [plain, streamed, broke] = await runCliAll([
          ["infer", silero.id, "--input", inputFile, "--key", hexKey(DEVELOPER.key), ...rpc, "--json"],
          ["infer", silero.id, "--input", inputFile, "--output", outputFile, "--stream", "--key", hexKey(DEVELOPER.key), ...rpc],
          ["infer", silero.id, "--input", inputFile, "--key", hexKey(BROKE.key), ...rpc]
        ])
        const result = expectJson<{ task: string; fingerprint: string; workers: Array<string>; charged: string; millis: number; outputs: unknown }>(plain!)
        expect(result).toMatchObject({ workers: [worker.address], charged: String(PRICE) })
        expect(result.task).toMatch(/^0x[0-9a-f]{64}$/)
        expect(result.fingerprint).toMatch(/^0x[0-9a-f]{64}$/)

        // The same numbers as a bare onnxruntime run, here, on the same input.
        const session = await ort.InferenceSession.create(SILERO_PATH)
        const bare = await session.run(toOrtFeeds(Either.getOrThrow(decodeTensorMapJson(input))))
        await session.release()
        const fromCli = Either.getOrThrow(decodeTensorMapJson(result.outputs))
        const asPlain = (t: { readonly type: string; readonly dims: ReadonlyArray<number>; readonly data: unknown }) => ({
          type: t.type,
          dims: [...t.dims],
          data: Array.from(t.data as ArrayLike<number | bigint>)
        })
        expect(Object.keys(fromCli).sort()).toEqual(Object.keys(bare).sort())
        for (const name of Object.keys(bare)) expect(asPlain(fromCli[name]!)).toEqual(asPlain(bare[name]!))

        // --stream: each stage on stderr; --output: the same outputs in the file, the summary on stdout.
        expect(streamed!.code, streamed!.stderr).toBe(0)
        expect(streamed!.stderr).toMatch(/^ {2}requested .*\n {2}assigned .*\n {2}result .*\n {2}validated 0x[0-9a-f]{64}\n$/)
        expect(streamed!.stdout).toContain(`  fingerprint  ${result.fingerprint}`)
        expect(streamed!.stdout).toContain(`  outputs      written to ${outputFile}`)
        expect(JSON.parse(readFileSync(outputFile, "utf8"))).toEqual(result.outputs)

        expectUserError(["infer (no escrow)"], broke!, new RegExp(`^error: insufficient escrow: 0 available for model 0x[0-9a-f]{64}, a call costs ${PRICE}; deposit with \`topai escrow deposit`))

        const [task, escrow] = await runCliAll([
          ["task", "show", result.task, ...rpc, "--json"],
          ["escrow", "show", silero.id, "--developer", DEVELOPER.address, ...rpc, "--json"]
        ])
        expect(expectJson(task!)).toMatchObject({ id: result.task, model: silero.id, developer: DEVELOPER.address, status: "Settled", charged: true, price: String(PRICE), workers: [worker.address], fingerprint: result.fingerprint })
        // Two calls, each charged once.
        expect(expectJson(escrow!)).toMatchObject({ deposited: String(DEPOSIT), available: String(DEPOSIT - 2n * PRICE), reserved: "0", captured: String(2n * PRICE) })
      } finally {
        await Effect.runPromise(Scope.close(scope, Exit.void))
      }
    },
    90_000
  )

  it(
    "audit replay: passes and counts models, tasks, workers and escrows; a tampered model event fails it, naming the stream and revision",
    async () => {
      expect((await node.stop("SIGINT")).code).toBe(0)
      const report = expectJson<{
        ok: boolean
        ai: {
          models: { total: number; byStatus: Record<string, number> }
          tasks: { total: number; byStatus: Record<string, number>; charged: string }
          workers: { total: number }
          escrows: { total: number; deposited: string; captured: string }
        }
      }>(await runCli([...auditArgs(node.dataDir), "--json"]))
      expect(report.ok).toBe(true)
      expect(report.ai.models).toMatchObject({ total: 3, byStatus: { Verified: 2, Rejected: 1 } })
      expect(report.ai.tasks).toMatchObject({ total: 2, byStatus: { Settled: 2 }, charged: String(2n * PRICE) })
      expect(report.ai.workers.total).toBe(1)
      expect(report.ai.escrows).toMatchObject({ total: 1, deposited: String(DEPOSIT), captured: String(2n * PRICE) })

      const [forged, changed] = ["forged", "changed"].map((name) => {
        const dir = makeTempDir(`ai-tamper-${name}`)
        copyDataDir(node.dataDir, dir)
        return dir
      }) as [string, string]
      // The upload's weights hash changed and the stream's hash chain re-forged: only the chain's ModelRegistered tells.
      const forgery = forgeEvent(forged, "model-", "ModelUploaded", (d) => ({ ...d, weightsHash: `0x${"11".repeat(32)}` }))
      // The verdict's fingerprint changed in place, hashes left alone: the hash chain breaks at that event.
      const byte = forgeEvent(changed, "model-", "ModelVerified", (d) => ({ ...d, referenceFingerprint: `0x${"22".repeat(32)}` }), { rehash: false })
      const [r1, r2] = await runCliAll([
        [...auditArgs(forged, node.dataDir), "--json"],
        auditArgs(changed, node.dataDir)
      ])
      expect(r1!.code).toBe(1)
      const failed = JSON.parse(r1!.stdout) as { ok: boolean; failure: { stream: string; revision: number; reason: string; detail: string } }
      expect(failed.ok).toBe(false)
      expect(failed.failure).toMatchObject({ stream: forgery.stream, revision: forgery.revision, reason: "ChainMismatch" })
      expect(failed.failure.detail).toContain(`weights 0x${"11".repeat(32)}, the chain's ${silero.weightsHash}`)
      expect(r2!.code).toBe(1)
      expect(r2!.stdout).toContain("AUDIT FAILED")
      expect(r2!.stdout).toContain(`stream ${byte.stream} revision ${byte.revision} `)
    },
    60_000
  )
})

import { afterAll, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Either, Fiber, Schema } from "effect"
import fc from "fast-check"
import { outputFingerprint } from "../../domain/ai/fingerprint.js"
import { checkModelStatic, referenceInputs } from "../../domain/ai/legitimacy.js"
import { ModelManifest, type ModelManifestEncoded } from "../../domain/ai/manifest.js"
import type { ModelVerdict, RejectionCheck } from "../../domain/ai/verdict.js"
import { makeOnnxSessionPool, DEFAULT_POOL_CONFIG } from "../../infra/inference/OnnxSessionPool.js"
import { makeSandboxedSmokeRun, SandboxedSmokeRun, SandboxedSmokeRunLive, SMOKE_WORKER_PATH, type SmokeLimits } from "../../infra/inference/SandboxedSmokeRun.js"
import { DEFAULT_VERIFY_CONFIG, modelHashOf, verifyModel, type VerifyConfig } from "../../infra/inference/verifyModel.js"
import {
  addModel,
  customDomainModel,
  externalDataModel,
  hugeTensorModel,
  loopForeverModel,
  manifest,
  memoryHogModel,
  nanModel,
  SILERO_MANIFEST,
  sileroBytes,
  symbolicModel,
  TEXT_FILE,
  typeErrorModel
} from "./support/models.js"

const SILERO = sileroBytes()
const decodeManifest = (m: ModelManifestEncoded) => Schema.decodeUnknownSync(ModelManifest)(m)

const verify = (bytes: Uint8Array, m: ModelManifestEncoded = manifest(), config: Partial<VerifyConfig> = {}, declaredHash: string = modelHashOf(bytes)) =>
  verifyModel(bytes, decodeManifest(m), declaredHash, { ...DEFAULT_VERIFY_CONFIG, ...config }).pipe(Effect.provide(SandboxedSmokeRunLive()))

const rejection = (v: ModelVerdict): { check: RejectionCheck; reason: string } => {
  if (v._tag !== "ModelRejected") throw new Error(`expected a rejection, got ${v._tag}`)
  return { check: v.check, reason: v.reason }
}

/** Pids of this process's children (Linux). */
const childPids = (): ReadonlyArray<number> =>
  readdirSync(`/proc/${process.pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${process.pid}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter((s) => s !== "").map(Number)
  )
const isSmokeChild = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("smokeWorker.mjs")
  } catch {
    return false
  }
}

describe("verifyModel", () => {
  it.live("accepts silero; its reference fingerprint is what a worker's pool computes on the seeded inputs", () =>
    Effect.gen(function* () {
      const hash = modelHashOf(SILERO)
      const verdict = yield* verify(SILERO, SILERO_MANIFEST)
      if (verdict._tag !== "ModelAccepted") throw new Error(`silero rejected: ${verdict.check}: ${verdict.reason}`)
      expect(verdict.modelHash).toBe(hash)
      expect(verdict.sizeBytes).toBe(SILERO.length)
      expect(verdict.signature.inputs.map((i) => i.name)).toEqual(["input", "state", "sr"])
      expect(verdict.smoke.outputs.map((o) => [o.name, o.dims])).toEqual([["output", [1, 1]], ["stateN", [2, 1, 128]]])
      expect(verdict.smoke.peakRssBytes).toBeGreaterThan(10 * 1024 * 1024)
      console.log(
        `silero smoke run: ${verdict.smoke.totalMillis.toFixed(0)} ms in all (session ${verdict.smoke.loadMillis.toFixed(0)} ms, ` +
          `run ${verdict.smoke.runMillis.toFixed(2)} ms, the rest process start), peak RSS ${(verdict.smoke.peakRssBytes / 2 ** 20).toFixed(0)} MiB`
      )
      // A worker re-derives the inputs from the hash and must land on the same fingerprint.
      const m = decodeManifest(SILERO_MANIFEST)
      const inputs = referenceInputs(Either.getOrThrow(checkModelStatic(SILERO, m)), m, hash)
      const outputs = yield* Effect.scoped(
        Effect.flatMap(makeOnnxSessionPool(DEFAULT_POOL_CONFIG), (pool) => Effect.zipRight(pool.warm(hash, { bytes: SILERO }), pool.run(hash, inputs)))
      )
      expect(outputFingerprint(outputs, m.outputTolerance)).toBe(verdict.referenceFingerprint)
    })
  )

  it.live("accepts a small generated model with a manifest shape and a fixed input", () =>
    Effect.gen(function* () {
      const v = yield* verify(symbolicModel(), manifest({ shapes: { x: [2, 4] }, fixedInputs: { k: [3] } }))
      expect(v._tag).toBe("ModelAccepted")
      if (v._tag === "ModelAccepted") expect(v.smoke.outputs[0]!.min).toBeGreaterThanOrEqual(3) // relu(x) + 3
    })
  )

  describe("rejects the bad corpus, each with its reason", () => {
    it.live("a truncated file", () =>
      Effect.gen(function* () {
        const r = rejection(yield* verify(SILERO.subarray(0, 1_000_000), SILERO_MANIFEST))
        expect(r.check).toBe("NotOnnx")
        expect(r.reason).toMatch(/^the file is not an ONNX model \(not a valid protobuf message: Truncated/)
      })
    )

    it.live("random bytes", () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2000 }), async (bytes) => {
            expect(rejection(await Effect.runPromise(verify(bytes))).check).toBe("NotOnnx")
          }),
          { seed: 12, numRuns: 50 }
        )
      )
    )

    it.live("a text file", () =>
      Effect.gen(function* () {
        expect(rejection(yield* verify(TEXT_FILE)).check).toBe("NotOnnx")
      })
    )

    it.live("a custom-op domain", () =>
      Effect.gen(function* () {
        expect(rejection(yield* verify(customDomainModel())).check).toBe("CustomDomain")
      })
    )

    it.live("an external-data reference", () =>
      Effect.gen(function* () {
        expect(rejection(yield* verify(externalDataModel())).check).toBe("ExternalData")
      })
    )

    it.live("a declared hash mismatch (the hash of other bytes, or not a hash at all)", () =>
      Effect.gen(function* () {
        const other = modelHashOf(addModel({ producerName: "other" }))
        expect(rejection(yield* verify(addModel(), manifest(), {}, other))).toEqual({
          check: "HashMismatch",
          reason: `the file's sha256 is ${modelHashOf(addModel())}, not the declared ${other}`
        })
        expect(rejection(yield* verify(addModel(), manifest(), {}, "hello")).check).toBe("HashMismatch")
        // the same hash spelled in capitals or without 0x is the same hash
        const v = yield* verify(addModel(), manifest(), {}, modelHashOf(addModel()).slice(2).toUpperCase())
        expect(v._tag).toBe("ModelAccepted")
      })
    )

    it.live("a model whose smoke run gives NaN", () =>
      Effect.gen(function* () {
        expect(rejection(yield* verify(nanModel()))).toEqual({
          check: "NonFiniteOutput",
          reason: `smoke run: output "y" has 1 of 1 values NaN or infinite on the seeded input`
        })
      })
    )

    it.live("a huge declared tensor", () =>
      Effect.gen(function* () {
        expect(rejection(yield* verify(hugeTensorModel())).check).toBe("TensorTooLarge")
      })
    )

    it.live("a missing symbolic shape", () =>
      Effect.gen(function* () {
        expect(rejection(yield* verify(SILERO, { ...SILERO_MANIFEST, shapes: { state: [2, 1, 128] } }))).toEqual({
          check: "MissingShape",
          reason: `input "input" has a symbolic dim 0 (unnamed) in [?, ?]: give its whole shape, e.g. --shape input=1,1`
        })
      })
    )

    it.live("a hash on the denylist", () =>
      Effect.gen(function* () {
        const hash = modelHashOf(addModel())
        expect(rejection(yield* verify(addModel(), manifest(), { denylist: new Set([hash]) }))).toEqual({
          check: "Denylisted",
          reason: `model ${hash} is on the denylist`
        })
      })
    )

    it.live("a model onnxruntime refuses to load", () =>
      Effect.gen(function* () {
        const r = rejection(yield* verify(typeErrorModel()))
        expect(r.check).toBe("LoadFailed")
        expect(r.reason).toMatch(/^smoke run: load: Load model from model.onnx failed:Type Error/)
      })
    )

    it.live("a model that runs for ever (Loop of 10^15 iterations): Timeout, and the node lives on", () =>
      Effect.gen(function* () {
        const r = rejection(yield* verify(loopForeverModel(), manifest(), { smoke: { runTimeoutMillis: 300 } }))
        expect(r).toEqual({ check: "Timeout", reason: "smoke run: the run did not finish within 300 ms" })
        expect(childPids().filter(isSmokeChild)).toEqual([])
      })
    )

    it.live("a model that allocates 1 GiB (ConstantOfShape): MemoryLimit at 400 MiB", () =>
      Effect.gen(function* () {
        const r = rejection(yield* verify(memoryHogModel(1 << 28), manifest(), { smoke: { memoryBytesMax: 400 * 2 ** 20 } }))
        expect(r.check).toBe("MemoryLimit")
        expect(r.reason).toMatch(/^smoke run: the process reached \d+ MiB during (load|run), over the 400 MiB limit$/)
      })
    )

    it.live("a model whose outputs are too large", () =>
      Effect.gen(function* () {
        const r = rejection(yield* verify(memoryHogModel(1 << 20), manifest(), { smoke: { outputBytesMax: 1 << 20 } }))
        expect(r).toEqual({ check: "OutputTooLarge", reason: `smoke run: output: outputs are ${4 << 20} bytes, over the ${1 << 20} limit` })
      })
    )
  })
})

describe("SandboxedSmokeRun", () => {
  const tmp = mkdtempSync(join(tmpdir(), "topai-smoke-test-"))
  const addPath = join(tmp, "add.onnx")
  writeFileSync(addPath, addModel())
  const a = { type: "float32", dims: [3], data: Float32Array.of(1, 2, 3) } as const
  const request = { modelPath: addPath, inputs: { a, b: a }, tolerance: 1e-4 }
  const limits: Partial<SmokeLimits> = { loadTimeoutMillis: 5000 }

  it.live("passes a good run with timings and peak RSS", () =>
    Effect.gen(function* () {
      const v = yield* makeSandboxedSmokeRun().run(request, limits)
      expect(v._tag).toBe("SmokePassed")
      if (v._tag === "SmokePassed") {
        expect(v.outputs).toEqual([{ name: "y", type: "float32", dims: [3], min: 2, max: 6, mean: 4 }])
        expect(v.fingerprint).toBe(outputFingerprint({ y: { type: "float32", dims: [3], data: Float32Array.of(2, 4, 6) } }, 1e-4))
        expect(v.peakRssBytes).toBeGreaterThan(0)
      }
    })
  )

  it.live("a child that crashes (SIGSEGV) is Crashed", () =>
    Effect.gen(function* () {
      const v = yield* makeSandboxedSmokeRun({ workerPath: fileURLToPath(new URL("./support/crashWorker.mjs", import.meta.url)) }).run(request, limits)
      expect(v._tag === "SmokeFailed" && [v.reason, v.detail]).toEqual(["Crashed", "the sandbox process was killed by SIGSEGV during load"])
    })
  )

  it.live("a child that never answers is a load Timeout, and is killed", () =>
    Effect.gen(function* () {
      const v = yield* makeSandboxedSmokeRun({ workerPath: fileURLToPath(new URL("./support/silentWorker.mjs", import.meta.url)) }).run(request, { loadTimeoutMillis: 300 })
      expect(v._tag === "SmokeFailed" && [v.reason, v.detail]).toEqual(["Timeout", "the model did not load within 300 ms (process start included)"])
      expect(childPids().length).toBe(0)
    })
  )

  it.live("a missing node binary is SpawnFailed", () =>
    Effect.gen(function* () {
      const v = yield* makeSandboxedSmokeRun({ nodePath: join(tmp, "no-such-node") }).run(request, limits)
      expect(v._tag === "SmokeFailed" && v.reason).toBe("SpawnFailed")
    })
  )

  it.live("interrupting a smoke run kills its child", () =>
    Effect.gen(function* () {
      const loopPath = join(tmp, "loop.onnx")
      writeFileSync(loopPath, loopForeverModel())
      const x = { x: { type: "float32", dims: [1], data: Float32Array.of(0) } } as const
      const smoke = SandboxedSmokeRun.pipe(
        Effect.flatMap((s) => s.run({ modelPath: loopPath, inputs: x, tolerance: 1e-4 })),
        Effect.provide(SandboxedSmokeRunLive())
      )
      const fiber = yield* Effect.fork(smoke)
      yield* Effect.sleep("400 millis")
      expect(childPids().filter(isSmokeChild).length).toBe(1)
      yield* Fiber.interrupt(fiber)
      yield* Effect.sleep("100 millis")
      expect(childPids().filter(isSmokeChild)).toEqual([])
    })
  )

  /** Whether a pid is gone (or a zombie waiting to be reaped). */
  const isGone = (pid: number): boolean => {
    try {
      return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"))
    } catch {
      return true
    }
  }
  const waitGone = async (pid: number, withinMillis: number): Promise<boolean> => {
    const until = Date.now() + withinMillis
    while (Date.now() < until) {
      if (isGone(pid)) return true
      await new Promise((r) => setTimeout(r, 25))
    }
    return isGone(pid)
  }

  it.live("a child whose parent dies mid-run (a model looping in native code) kills itself", () =>
    Effect.promise(async () => {
      const loopPath = join(tmp, "loop2.onnx")
      writeFileSync(loopPath, loopForeverModel())
      const parent = spawn(process.execPath, [fileURLToPath(new URL("./support/smokeParent.mjs", import.meta.url)), SMOKE_WORKER_PATH, loopPath], {
        stdio: ["ignore", "pipe", "inherit"]
      })
      const pid = await new Promise<number>((resolve) => parent.stdout.on("data", (d: Buffer) => resolve(Number(d.toString().trim()))))
      expect(isGone(pid)).toBe(false)
      parent.kill("SIGKILL")
      const gone = await waitGone(pid, 3000)
      const status = gone ? "" : readFileSync(`/proc/${pid}/status`, "utf8").split("\n").filter((l) => /^(State|PPid|Threads)/.test(l)).join(" | ")
      if (!gone) process.kill(pid, "SIGKILL")
      expect(gone, `the orphan still runs: ${status}`).toBe(true)
    })
  )

  it.live("a child past its own deadline kills itself", () =>
    Effect.promise(async () => {
      const loopPath = join(tmp, "loop3.onnx")
      writeFileSync(loopPath, loopForeverModel())
      const child = spawn(process.execPath, [SMOKE_WORKER_PATH], { stdio: ["pipe", "ignore", "inherit"] })
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)))
      const input = { type: "float32", dims: [1], dataBase64: Buffer.from(Float32Array.of(0).buffer).toString("base64") }
      child.stdin.write(JSON.stringify({ modelPath: loopPath, inputs: { x: input }, intraOpNumThreads: 1, outputBytesMax: 1000, deadlineMillis: 500 }) + "\n")
      const signal = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running"), 4000))])
      if (signal === "still running") child.kill("SIGKILL")
      expect(signal).toBe("SIGKILL")
    })
  )

  afterAll(() => rmSync(tmp, { recursive: true, force: true }))
})

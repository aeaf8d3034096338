/**
 * InferenceEngine: onnxruntime in child processes. Outputs equal a bare
 * `session.run` in this process (silero, a generated MatMul chain); runs
 * leave the caller's event loop free; a child that dies fails its run with
 * a typed error and is replaced; CUDA where there is none is a typed error
 * at start. The overhead over a bare run is measured in bench/inference.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, Exit, Logger, Schema } from "effect"
import ort from "onnxruntime-node"
import { checkModelStatic, referenceInputs } from "../../domain/ai/legitimacy.js"
import { ModelManifest } from "../../domain/ai/manifest.js"
import type { TensorMap } from "../../domain/ai/tensor.js"
import { InferenceEngine, InferenceEngineLive, InferenceThreadDied, makeInferenceEngine } from "../../infra/inference/InferenceThread.js"
import { InferenceError } from "../../infra/inference/OnnxSessionPool.js"
import { toOrtFeeds } from "../../infra/inference/ortTensor.js"
import { matMulChainModel, SILERO_MANIFEST, SILERO_PATH, sileroBytes } from "../ai/support/models.js"

const sileroPassed = Either.getOrThrow(checkModelStatic(sileroBytes(), Schema.decodeUnknownSync(ModelManifest)(SILERO_MANIFEST)))
const sileroInputs = (seed: string): TensorMap =>
  referenceInputs(sileroPassed, { shapes: SILERO_MANIFEST.shapes ?? {}, fixedInputs: SILERO_MANIFEST.fixedInputs ?? {} }, seed)

/** ~10–15 ms a run here (2·12·512³ flops), ~1 MiB of weights. */
const HEAVY_N = 512
const HEAVY_K = 12

const dir = mkdtempSync(join(tmpdir(), "topai-engine-"))
const HEAVY_PATH = join(dir, "heavy.onnx")
writeFileSync(HEAVY_PATH, matMulChainModel(HEAVY_N, HEAVY_K))
const heavyInputs = (fill: number): TensorMap => ({
  x: { type: "float32", dims: [HEAVY_N, HEAVY_N], data: Float32Array.from({ length: HEAVY_N * HEAVY_N }, (_, i) => ((i % 13) - 6) * fill) }
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const BARE_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: "all" }
const plain = (outputs: TensorMap | ort.InferenceSession.ReturnType) =>
  Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, { type: t.type, dims: [...t.dims], data: t.data }]))
const bareSession = (path: string) =>
  Effect.acquireRelease(Effect.promise(() => ort.InferenceSession.create(path, BARE_OPTIONS)), (s) => Effect.promise(() => s.release()))

layer(InferenceEngineLive({ threads: 2 }), { excludeTestServices: true, timeout: 60_000 })("InferenceEngine (2 threads)", (it) => {
  it.scoped("silero: equals a bare session.run over a stream of chunks (state fed back)", () =>
    Effect.gen(function* () {
      const engine = yield* InferenceEngine
      const bare = yield* bareSession(SILERO_PATH)
      let state = sileroInputs("s")["state"]!
      for (let chunk = 0; chunk < 8; chunk++) {
        const inputs = { ...sileroInputs(`chunk-${chunk}`), state }
        const fromEngine = yield* engine.run("silero", SILERO_PATH, inputs)
        const fromBare = yield* Effect.promise(() => bare.run(toOrtFeeds(inputs)))
        expect(plain(fromEngine)).toEqual(plain(fromBare))
        state = fromEngine["stateN"]!
      }
    })
  )

  it.scoped("a generated MatMul chain: equals a bare session.run; inputs are copied unless transferred", () =>
    Effect.gen(function* () {
      const engine = yield* InferenceEngine
      const bare = yield* bareSession(HEAVY_PATH)
      const inputs = heavyInputs(0.01)
      const fromEngine = yield* engine.run("heavy", HEAVY_PATH, inputs)
      expect(inputs["x"]!.data.length).toBe(HEAVY_N * HEAVY_N) // copied: still the caller's
      const fromBare = yield* Effect.promise(() => bare.run(toOrtFeeds(inputs)))
      expect(plain(fromEngine)).toEqual(plain(fromBare))
      const moved = heavyInputs(0.01)
      const again = yield* engine.run("heavy", HEAVY_PATH, moved, { transferInputs: true })
      expect(plain(again)).toEqual(plain(fromBare))
    })
  )

  it.effect("runs leave this event loop free, and two threads run two models at once", () =>
    Effect.gen(function* () {
      const engine = yield* InferenceEngine
      yield* engine.warm("heavy", HEAVY_PATH)
      // Spin setImmediate while 8 heavy runs (~10+ ms each) go through the threads. Were the runs on
      // this thread, each would hold it for its whole length: a handful of ticks in all.
      let ticks = 0
      let spinning = true
      const spin = () => {
        ticks++
        if (spinning) setImmediate(spin)
      }
      setImmediate(spin)
      const outputs = yield* Effect.all(
        Array.from({ length: 8 }, (_, i) => engine.run("heavy", HEAVY_PATH, heavyInputs(i + 1), { transferInputs: true })),
        { concurrency: "unbounded" }
      ).pipe(Effect.ensuring(Effect.sync(() => (spinning = false))))
      expect(outputs).toHaveLength(8)
      expect(ticks).toBeGreaterThan(100)
      const stats = yield* engine.stats
      expect(stats.every((s) => s.runs > 0)).toBe(true) // both threads took work
    })
  )

  it.effect("typed errors: a file that is not a model, a missing input", () =>
    Effect.gen(function* () {
      const engine = yield* InferenceEngine
      const junk = join(dir, "junk.onnx")
      writeFileSync(junk, "not a model")
      const load = yield* Effect.flip(engine.run("junk", junk, heavyInputs(1)))
      expect(load).toBeInstanceOf(InferenceError)
      expect((load as InferenceError).reason).toBe("LoadFailed")
      const run = yield* Effect.flip(engine.run("silero", SILERO_PATH, { input: sileroInputs("x")["input"]! }))
      expect(run).toBeInstanceOf(InferenceError)
      expect((run as InferenceError).reason).toBe("RunFailed")
    })
  )
})

describe("InferenceEngine thread death", () => {
  it.live("a thread that dies fails its in-flight runs with InferenceThreadDied and is replaced; its stderr goes to the log only", () => {
    const logs: Array<string> = []
    const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logs.push(String(Array.isArray(message) ? message.join(" ") : message))))
    return Effect.scoped(
      Effect.gen(function* () {
        const engine = yield* makeInferenceEngine({ threads: 1 })
        const before = (yield* engine.stats)[0]!
        yield* engine.warm("silero", SILERO_PATH)
        // The thread throws when it reads the crash message; the runs sent after it are in flight then.
        yield* engine.crashThread(0)
        const exits = yield* Effect.all(
          Array.from({ length: 2 }, (_, i) => Effect.exit(engine.run("silero", SILERO_PATH, sileroInputs(`dead-${i}`)))),
          { concurrency: "unbounded" }
        )
        for (const e of exits) {
          expect(Exit.isFailure(e)).toBe(true)
          const error = Exit.isFailure(e) && e.cause._tag === "Fail" ? e.cause.error : undefined
          expect(error).toBeInstanceOf(InferenceThreadDied)
          expect((error as InferenceThreadDied).thread).toBe(0)
          // The child's stderr stays in the log: the detail travels to the gateway and the developer.
          expect((error as InferenceThreadDied).message).toBe("inference thread 0 died: child exited with code 1")
        }
        // The replacement comes up by itself, and the queue goes on.
        const outputs = yield* Effect.all(
          Array.from({ length: 3 }, (_, i) => engine.run("silero", SILERO_PATH, sileroInputs(`after-${i}`))),
          { concurrency: "unbounded" }
        )
        expect(outputs.every((o) => o["output"]!.dims.join() === "1,1")).toBe(true)
        const after = (yield* engine.stats)[0]!
        expect(after.state).toBe("ready")
        expect(after.restarts).toBe(before.restarts + 1)
        expect(after.pid).not.toBe(before.pid)
        expect(logs.join("\n")).toMatch(/inference thread 0: child exited with code 1; its stderr ends: .*crash requested by the engine/)
      })
    ).pipe(Effect.provide(capture))
  })
})

describe("InferenceEngine start", () => {
  it.live("asking for CUDA on a machine without it fails with ExecutionProviderUnavailable", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.scoped(makeInferenceEngine({ executionProvider: "cuda" })))
      expect(error).toBeInstanceOf(InferenceError)
      expect((error as InferenceError).reason).toBe("ExecutionProviderUnavailable")
      expect(error.message).toMatch(/^ExecutionProviderUnavailable: execution provider "cuda" is not available on this machine/)
    })
  )
})

import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Layer, Schema } from "effect"
import ort from "onnxruntime-node"
import { checkModelStatic, referenceInputs } from "../../domain/ai/legitimacy.js"
import { ModelManifest } from "../../domain/ai/manifest.js"
import type { TensorMap } from "../../domain/ai/tensor.js"
import { DEFAULT_POOL_CONFIG, InferenceError, makeOnnxSessionPool, OnnxSessionPoolLive, type OnnxSessionPoolConfig, type OnnxSessionPoolService } from "../../infra/inference/OnnxSessionPool.js"
import { toOrtFeeds } from "../../infra/inference/ortTensor.js"
import { addModel, matMulChainModel, reluChainModel, SILERO_MANIFEST, SILERO_PATH, sileroBytes } from "./support/models.js"

const SILERO = sileroBytes()
const sileroPassed = Either.getOrThrow(checkModelStatic(SILERO, Schema.decodeUnknownSync(ModelManifest)(SILERO_MANIFEST)))
const sileroInputs = (seed: string): TensorMap => referenceInputs(sileroPassed, { shapes: SILERO_MANIFEST.shapes ?? {}, fixedInputs: SILERO_MANIFEST.fixedInputs ?? {} }, seed)

const withPool = <A, E>(config: Partial<OnnxSessionPoolConfig>, f: (pool: OnnxSessionPoolService) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(makeOnnxSessionPool({ ...DEFAULT_POOL_CONFIG, ...config }), f))

const plain = (outputs: TensorMap | ort.InferenceSession.ReturnType) =>
  Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, { type: t.type, dims: [...t.dims], data: t.data }]))

describe("OnnxSessionPool", () => {
  it.live("silero: the pool's outputs equal a bare session.run on the same inputs, over a stream of chunks", () =>
    withPool({}, (pool) =>
      Effect.gen(function* () {
        const bare = yield* Effect.promise(() => ort.InferenceSession.create(SILERO_PATH))
        yield* pool.warm("silero", { path: SILERO_PATH })
        let state: TensorMap[string] = sileroInputs("s")["state"]!
        for (let chunk = 0; chunk < 8; chunk++) {
          const inputs = { ...sileroInputs(`chunk-${chunk}`), state }
          const fromPool = yield* pool.run("silero", inputs)
          const fromBare = yield* Effect.promise(() => bare.run(toOrtFeeds(inputs)))
          expect(plain(fromPool)).toEqual(plain(fromBare))
          state = fromPool["stateN"]!
        }
        yield* Effect.promise(() => bare.release())
      })
    )
  )

  it.live("loads a model once under concurrent first use, from `locate`", () => {
    let located = 0
    const locate = (hash: string) =>
      Effect.sync(() => {
        located++
        return { bytes: hash === "add" ? addModel() : reluChainModel(3) }
      })
    return withPool({ locate }, (pool) =>
      Effect.gen(function* () {
        const a = { type: "float32", dims: [3], data: Float32Array.of(1, 2, 3) } as const
        const results = yield* Effect.all(Array.from({ length: 10 }, () => pool.run("add", { a, b: a })), { concurrency: "unbounded" })
        expect(located).toBe(1)
        for (const r of results) expect(r["y"]!.data).toEqual(Float32Array.of(2, 4, 6))
      })
    )
  })

  it.live("evicts the least recently used session beyond sessionsMax, and reloads it on use", () =>
    withPool({ sessionsMax: 2 }, (pool) =>
      Effect.gen(function* () {
        const x = { x: { type: "float32", dims: [1, 4], data: Float32Array.of(1, -1, 0.5, 2) } } as const
        yield* pool.warm("r1", { bytes: reluChainModel(1) })
        yield* pool.warm("r2", { bytes: reluChainModel(2) })
        yield* pool.run("r1", x) // r1 is now the most recent
        yield* pool.warm("r3", { bytes: reluChainModel(3) })
        expect(yield* pool.loaded).toEqual(["r1", "r3"])
        const again = yield* pool.run("r2", x)
        expect(again["y"]!.dims).toEqual([1, 4])
        expect(yield* pool.loaded).toEqual(["r3", "r2"])
      })
    )
  )

  it.live("a session evicted while it runs finishes that run", () =>
    withPool({}, (pool) =>
      Effect.gen(function* () {
        yield* pool.warm("mm", { bytes: matMulChainModel(64, 4) })
        const x = { x: { type: "float32", dims: [64, 64], data: new Float32Array(64 * 64).fill(1) } } as const
        const running = yield* Effect.fork(pool.run("mm", x))
        // The run has been handed to onnxruntime (whose binding runs it from a setImmediate, still to come).
        yield* Effect.yieldNow()
        yield* pool.evict("mm")
        expect(yield* pool.loaded).toEqual([])
        const out = yield* running.await
        expect(Exit.isSuccess(out)).toBe(true)
      })
    )
  )

  it.live("a run evicted before it starts loads the model again", () =>
    withPool({}, (pool) =>
      Effect.gen(function* () {
        yield* pool.warm("add", { bytes: addModel() })
        const a = { type: "float32", dims: [3], data: Float32Array.of(1, 2, 3) } as const
        const running = yield* Effect.fork(pool.run("add", { a, b: a }))
        yield* pool.evict("add") // the forked fiber has not started yet
        const out = yield* running
        expect(out["y"]!.data).toEqual(Float32Array.of(2, 4, 6))
        expect(yield* pool.loaded).toEqual(["add"])
      })
    )
  )

  it.live("typed errors: unknown model, a file onnxruntime refuses, a bad input", () =>
    withPool({}, (pool) =>
      Effect.gen(function* () {
        const a = { type: "float32", dims: [3], data: Float32Array.of(1, 2, 3) } as const
        const missing = yield* Effect.flip(pool.run("nope", { a }))
        expect([missing.reason, missing.modelHash]).toEqual(["ModelNotFound", "nope"])
        const garbage = yield* Effect.flip(pool.warm("garbage", { bytes: Uint8Array.of(1, 2, 3, 4) }))
        expect(garbage.reason).toBe("LoadFailed")
        yield* pool.warm("add", { bytes: addModel() })
        const bad = yield* Effect.flip(pool.run("add", { a, c: a }))
        expect(bad).toBeInstanceOf(InferenceError)
        expect(bad.reason).toBe("RunFailed")
        expect(bad.detail).toMatch(/input 'b' is missing|b/)
      })
    )
  )

  it.live("asking for CUDA on a machine without it fails the layer with ExecutionProviderUnavailable", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(OnnxSessionPoolLive({ executionProvider: "cuda" }))))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(error?.reason).toBe("ExecutionProviderUnavailable")
        expect(error?.message).toMatch(/^ExecutionProviderUnavailable: execution provider "cuda" is not available on this machine/)
      }
    })
  )
})

/**
 * The InferenceEngine's limits at serving time, on models that pass a smoke
 * run on small inputs but whose work depends on an input's value: a run past
 * its deadline is killed (InferenceLimitExceeded Deadline), an allocation
 * over the child's RLIMIT_DATA fails (InferenceLimitExceeded Memory); each
 * time the child is replaced, runs that were queued behind the culprit still
 * succeed, and this process lives on.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import type { TensorMap } from "../../domain/ai/tensor.js"
import { findPrlimit, InferenceLimitExceeded, makeInferenceEngine } from "../../infra/inference/InferenceThread.js"
import { valueBombModel, valueLoopModel } from "../ai/support/servingModels.js"

const dir = mkdtempSync(join(tmpdir(), "topai-limits-"))
const LOOP_PATH = join(dir, "loop.onnx")
const BOMB_PATH = join(dir, "bomb.onnx")
writeFileSync(LOOP_PATH, valueLoopModel())
writeFileSync(BOMB_PATH, valueBombModel())
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const loopInputs = (turns: bigint): TensorMap => ({
  m: { type: "int64", dims: [], data: BigInt64Array.of(turns) },
  x: { type: "float32", dims: [1], data: Float32Array.of(0) }
})
const bombInputs = (elements: bigint): TensorMap => ({ n: { type: "int64", dims: [1], data: BigInt64Array.of(elements) } })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined => (Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined)

const MIB = 1024 * 1024

describe("InferenceEngine limits", () => {
  it.live("a run whose loop count comes from an input: killed at its deadline, the child replaced, the run queued behind it served", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const engine = yield* makeInferenceEngine({ threads: 1 })
        // The smoke-sized input: 10 turns, answers at once.
        const small = yield* engine.run("loop", LOOP_PATH, loopInputs(10n), { deadlineMillis: 5_000 })
        expect(Array.from(small["y"]!.data as Float32Array)).toEqual([10])
        const before = (yield* engine.stats)[0]!
        // 10^15 turns with a 300 ms deadline, and an honest run sent right after it to the same child.
        const [hog, honest] = yield* Effect.all(
          [
            Effect.exit(engine.run("loop", LOOP_PATH, loopInputs(10n ** 15n), { deadlineMillis: 300 })),
            Effect.exit(engine.run("loop", LOOP_PATH, loopInputs(3n), { deadlineMillis: 5_000 }))
          ],
          { concurrency: "unbounded" }
        )
        const error = failureOf(hog)
        expect(error).toBeInstanceOf(InferenceLimitExceeded)
        expect((error as InferenceLimitExceeded).reason).toBe("Deadline")
        expect((error as InferenceLimitExceeded).limit).toBe(300)
        expect((error as InferenceLimitExceeded).millis).toBeGreaterThanOrEqual(300)
        expect((error as InferenceLimitExceeded).message).toMatch(/^Deadline \(model loop\): the run was stopped after \d+ ms, past its deadline of 300 ms$/)
        expect(Exit.isSuccess(honest)).toBe(true)
        if (Exit.isSuccess(honest)) expect(Array.from(honest.value["y"]!.data as Float32Array)).toEqual([3])
        const after = (yield* engine.stats)[0]!
        expect(after.killed).toBe(before.killed + 1)
        expect(after.restarts).toBe(before.restarts + 1)
        expect(after.pid).not.toBe(before.pid)
        expect(after.state).toBe("ready")
      })
    )
  )

  it.live("a deadline above the engine's cap is cut to the cap", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const engine = yield* makeInferenceEngine({ threads: 1, runDeadlineMillisMax: 400 })
        const error = failureOf(yield* Effect.exit(engine.run("loop", LOOP_PATH, loopInputs(10n ** 15n), { deadlineMillis: 3_600_000 })))
        expect(error).toBeInstanceOf(InferenceLimitExceeded)
        expect((error as InferenceLimitExceeded).reason).toBe("Deadline")
        expect((error as InferenceLimitExceeded).limit).toBe(400)
      })
    )
  )

  it.live.skipIf(findPrlimit() === undefined)(
    "an allocation sized by an input value (1 GiB under a 512 MiB RLIMIT_DATA): Memory, the child replaced, the next run served",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const engine = yield* makeInferenceEngine({ threads: 1, memoryBytesMax: 512 * MIB })
          expect(engine.memoryLimit).toBe("rlimit-data")
          const small = yield* engine.run("bomb", BOMB_PATH, bombInputs(1000n), { deadlineMillis: 5_000 })
          expect(Array.from(small["y"]!.data as Float32Array)).toEqual([1000])
          const before = (yield* engine.stats)[0]!
          const error = failureOf(yield* Effect.exit(engine.run("bomb", BOMB_PATH, bombInputs(256n * 1024n * 1024n), { deadlineMillis: 10_000 })))
          expect(error).toBeInstanceOf(InferenceLimitExceeded)
          expect((error as InferenceLimitExceeded).reason).toBe("Memory")
          expect((error as InferenceLimitExceeded).limit).toBe(512 * MIB)
          expect((error as InferenceLimitExceeded).detail).toMatch(/^an allocation failed under the 512 MiB limit: .*Failed to allocate memory/)
          const again = yield* engine.run("bomb", BOMB_PATH, bombInputs(7n), { deadlineMillis: 5_000 })
          expect(Array.from(again["y"]!.data as Float32Array)).toEqual([7])
          const after = (yield* engine.stats)[0]!
          expect(after.killed).toBe(before.killed + 1)
          expect(after.pid).not.toBe(before.pid)
        })
      ),
    60_000
  )
})

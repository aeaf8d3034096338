import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { sha256 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import type { TensorMap } from "../../domain/ai/tensor.js"
import {
  BENCHMARK_BATCH,
  BENCHMARK_WIDTH,
  benchmarkExpected,
  benchmarkInputs,
  benchmarkMismatch,
  benchmarkModel,
  measuredUnitsMilli
} from "../../domain/ai/worker/benchmark.js"
import { bareRun } from "../worker/support/bare.js"

describe("the seeded GPU benchmark", () => {
  it("onnxruntime's run of the model equals the gateway's own computation of y for several seeds; another seed's y does not pass", async () => {
    for (const seed of [1, 42, 0x7fffffff]) {
      const out = (await bareRun(benchmarkModel(), benchmarkInputs(seed))) as unknown as TensorMap
      expect(out["y"]!.dims).toEqual([BENCHMARK_BATCH, BENCHMARK_WIDTH])
      expect(benchmarkMismatch(out, seed)).toBeUndefined()
      expect(benchmarkMismatch(out, seed + 1)).toMatch(/^y\[\d+\] is/)
      // Not a flat answer: the outputs vary.
      expect(new Set(out["y"]!.data as Float32Array).size).toBeGreaterThan(1000)
    }
  })

  it("the same bytes on every build (one weights hash), and the inputs and y are a function of the seed", () => {
    expect(bytesToHex(sha256(benchmarkModel()))).toBe(bytesToHex(sha256(benchmarkModel().slice())))
    expect(benchmarkInputs(7).x!.data).toEqual(benchmarkInputs(7).x!.data)
    expect(benchmarkInputs(7).x!.data).not.toEqual(benchmarkInputs(8).x!.data)
    expect(benchmarkExpected(7)).toEqual(benchmarkExpected(7))
  })

  it("outputs of the wrong shape or type are a mismatch", () => {
    const y = { type: "float32" as const, dims: [1, BENCHMARK_WIDTH], data: new Float32Array(BENCHMARK_WIDTH) }
    expect(benchmarkMismatch({ y }, 1)).toMatch(/dims/)
    expect(benchmarkMismatch({}, 1)).toMatch(/no float32 output y/)
  })

  it("units fall as the time grows, at least 1 milli: one unit at 100 ms, an H100's 10 at 10 ms, 0.1 at 1 s", () => {
    expect(measuredUnitsMilli(100)).toBe(1_000n)
    expect(measuredUnitsMilli(10)).toBe(10_000n)
    expect(measuredUnitsMilli(1_000)).toBe(100n)
    expect(measuredUnitsMilli(0)).toBe(100_000n)
    expect(measuredUnitsMilli(1e9)).toBe(1n)
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 10_000_000 }), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a]
        expect(measuredUnitsMilli(lo) >= measuredUnitsMilli(hi)).toBe(true)
        expect(measuredUnitsMilli(hi) >= 1n).toBe(true)
      })
    )
  })
})

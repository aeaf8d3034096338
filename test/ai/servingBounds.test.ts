/**
 * The manifest's serving bounds (domain/ai/servingBounds.ts) and the
 * per-run deadline (domain/ai/runDeadline.ts): each violation is its typed
 * refusal with its message; a manifest written before `maxShapes` bounds a
 * request at the smoke shapes; a bad `maxShapes` is refused at registration.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import fc from "fast-check"
import { ModelManifest, resolveInputShapes } from "../../domain/ai/manifest.js"
import { DEFAULT_RUN_DEADLINE_RULES, runDeadlineMillis } from "../../domain/ai/runDeadline.js"
import { checkServingInputs, servingBounds, type InputOutOfBounds, type ServingBounds } from "../../domain/ai/servingBounds.js"
import type { ModelSignature } from "../../domain/ai/signature.js"
import type { TensorMap } from "../../domain/ai/tensor.js"

/** silero's signature: input [batch, sequence], state [2, batch, 128], sr int64 scalar. */
const SIGNATURE: ModelSignature = {
  inputs: [
    { name: "input", type: "float32", dims: ["batch", "sequence"] },
    { name: "state", type: "float32", dims: [2, "batch", 128] },
    { name: "sr", type: "int64", dims: [] }
  ],
  outputs: [{ name: "output", type: "float32", dims: ["batch", 1] }]
}
const BASE = { name: "vad", version: "1", pricePerCall: "10", minGpuClass: "CPU", license: "MIT", description: "" }
const manifestOf = (over: Record<string, unknown>) => Schema.decodeUnknownSync(ModelManifest)({ ...BASE, ...over })
/** As uploaded before maxShapes existed. */
const OLD = manifestOf({ shapes: { input: [1, 576], state: [2, 1, 128] }, fixedInputs: { sr: [16000] } })
const NEW = manifestOf({ shapes: { input: [1, 576], state: [2, 1, 128] }, maxShapes: { input: [1, 4096] }, fixedInputs: { sr: [16000] } })

const boundsOf = (m: ModelManifest): ServingBounds => Either.getOrThrow(servingBounds(SIGNATURE, m))
const request = (sequence: number, sr = 16000n): TensorMap => ({
  input: { type: "float32", dims: [1, sequence], data: new Float32Array(sequence) },
  state: { type: "float32", dims: [2, 1, 128], data: new Float32Array(256) },
  sr: { type: "int64", dims: [], data: BigInt64Array.of(sr) }
})
const refusal = (inputs: TensorMap, bounds: ServingBounds): InputOutOfBounds => {
  const r = checkServingInputs(inputs, bounds)
  if (Either.isRight(r)) throw new Error("expected a refusal")
  return r.left
}

describe("servingBounds", () => {
  it("an old manifest decodes with no maxShapes: requests are bounded at the smoke shapes", () => {
    expect(OLD.maxShapes).toEqual({})
    expect(OLD.inputBytesMax).toBeUndefined()
    const b = boundsOf(OLD)
    expect(b.inputs.get("input")!.max).toEqual([1, 576])
    expect([b.bytesMax, b.smokeBytes, b.elementsMax]).toEqual([576 * 4 + 256 * 4 + 8, 576 * 4 + 256 * 4 + 8, 576])
    expect(Either.isRight(checkServingInputs(request(576), b))).toBe(true)
    const e = refusal(request(577), b)
    expect([e.reason, e.message]).toEqual([
      "DimOverBound",
      `input "input": dim 1 is 577, over the manifest's max 576 (max shape [1, 576]: the smoke shape, as the manifest gives no maxShapes entry)`
    ])
  })

  it("maxShapes lets a request grow to the declared max, and not one element more", () => {
    const b = boundsOf(NEW)
    expect(Either.isRight(checkServingInputs(request(4096), b))).toBe(true)
    expect(Either.isRight(checkServingInputs(request(100), b))).toBe(true)
    const e = refusal(request(4097), b)
    expect([e.reason, e.message]).toEqual(["DimOverBound", `input "input": dim 1 is 4097, over the manifest's max 4096 (max shape [1, 4096])`])
    expect(b.elementsMax).toBe(4096)
  })

  it("a fixed input must keep its value", () => {
    const e = refusal(request(576, 8000n), boundsOf(NEW))
    expect([e.reason, e.message]).toEqual(["FixedInputChanged", `input "sr": element 0 is 8000, the manifest fixes it to 16000`])
  })

  it("inputBytesMax bounds all inputs together, below what the max shapes allow", () => {
    const b = boundsOf(manifestOf({ ...NEW, pricePerCall: "10", inputBytesMax: 8192 }))
    expect(b.bytesMax).toBe(8192)
    expect(Either.isRight(checkServingInputs(request(1500), b))).toBe(true) // 6000 + 1024 + 8
    const e = refusal(request(2000), b)
    expect([e.reason, e.message]).toEqual(["TooManyBytes", "the inputs hold 9032 bytes, over the model's bound of 8192"])
  })

  it("a bad maxShapes is refused with the manifest (registration): not an input, wrong rank, below the smoke shape, against a fixed dim", () => {
    const cases: ReadonlyArray<readonly [Record<string, ReadonlyArray<number>>, string]> = [
      [{ nope: [1] }, `the manifest gives a max shape for "nope", which is not an input of the model`],
      [{ input: [1, 2, 3] }, `the manifest's max shape of "input" has rank 3, its shape [1, 576] rank 2`],
      [{ input: [1, 100] }, `the manifest's max shape of "input" gives dim 1 = 100, below its smoke shape's 576`],
      [{ state: [2, 1, 256] }, `the manifest's max shape of "state" gives dim 2 = 256, the model fixes it at 128`]
    ]
    for (const [maxShapes, detail] of cases) {
      const r = resolveInputShapes(SIGNATURE.inputs, { ...OLD, maxShapes })
      expect(Either.isLeft(r) ? [r.left.reason, r.left.detail] : "accepted").toEqual(["BadManifest", detail])
    }
  })
})

describe("runDeadlineMillis", () => {
  it("the smoke time × the input growth × the factor, within the floor and the cap", () => {
    expect(DEFAULT_RUN_DEADLINE_RULES).toEqual({ factor: 20, floorMillis: 1_000, capMillis: 30_000 })
    expect(runDeadlineMillis(0.12, 3_336, 3_336)).toBe(1_000) // silero: 2.4 ms → the floor
    expect(runDeadlineMillis(100, 1_000, 1_000)).toBe(2_000)
    expect(runDeadlineMillis(100, 1_000, 4_000)).toBe(8_000) // four times the bytes
    expect(runDeadlineMillis(100, 1_000, 500)).toBe(2_000) // smaller inputs keep the smoke run's budget
    expect(runDeadlineMillis(5_000, 1_000, 1_000)).toBe(30_000) // the cap
    expect(runDeadlineMillis(Number.POSITIVE_INFINITY, 1, 1)).toBe(30_000)
    expect(runDeadlineMillis(10, 0, 100)).toBe(1_000)
  })
})

describe("checkServingInputs, property", () => {
  it("any shape within the max passes, any dim over it is DimOverBound; the bytes bound is exact", () => {
    const b = boundsOf(NEW)
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8192 }), (sequence) => {
        const r = checkServingInputs(request(sequence), b)
        if (sequence <= 4096) expect(Either.isRight(r)).toBe(true)
        else expect(Either.isLeft(r) && r.left.reason).toBe("DimOverBound")
      }),
      { numRuns: 300, seed: 5 }
    )
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 1, max: 20_000 }), (sequence, bytesMax) => {
        const bounded = boundsOf(
          manifestOf({ shapes: { input: [1, 576], state: [2, 1, 128] }, maxShapes: { input: [1, 4096] }, fixedInputs: { sr: [16000] }, inputBytesMax: bytesMax })
        )
        const bytes = sequence * 4 + 256 * 4 + 8
        const r = checkServingInputs(request(sequence), bounded)
        expect(Either.isRight(r)).toBe(bytes <= Math.min(bytesMax, 4096 * 4 + 256 * 4 + 8))
      }),
      { numRuns: 300, seed: 6 }
    )
  })
})

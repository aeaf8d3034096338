/**
 * Tensor JSON against hostile inputs: every refusal is a typed
 * TensorJsonError, never a throw — megabytes of almost-base64 (a regular
 * expression used to overflow V8's backtracking stack there), values nested
 * deeper than any stack quoted in messages, base64 whose length already
 * says it is the wrong size (refused before it is decoded).
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { decodeTensorMapJson, describeJson, isStandardBase64, type TensorJsonError } from "../../domain/ai/tensor.js"

const decodeErr = (json: unknown, elementsMax = 1 << 26): TensorJsonError => {
  const r = decodeTensorMapJson(json, { elementsMax })
  if (Either.isRight(r)) throw new Error("expected a decode error")
  return r.left
}

/** [[[…]]] `depth` deep, built without recursion. */
const nested = (depth: number): unknown => {
  let v: unknown = []
  for (let i = 0; i < depth; i++) v = [v]
  return v
}

describe("tensor JSON, hostile", () => {
  it("16 MiB of base64 with one bad character at the end: BadBase64, no RangeError", () => {
    const bytes = 12 * 1024 * 1024
    const text = "A".repeat((bytes / 3) * 4 - 1) + "!"
    const e = decodeErr({ x: { type: "uint8", dims: [bytes], dataBase64: text } })
    expect([e.reason, e.message]).toEqual(["BadBase64", `input "x": "dataBase64" must be standard padded base64`])
  })

  it("valid base64 of the wrong size is refused from its length, before decoding", () => {
    const e = decodeErr({ x: { type: "float32", dims: [4], dataBase64: "A".repeat(4 * 1024 * 1024) } })
    expect([e.reason, e.message]).toEqual(["DataLength", `input "x": dims [4] need 16 bytes of float32, "dataBase64" has 3145728`])
  })

  it("values nested 200,000 deep in a dim, a type and a data element: typed refusals with short messages", () => {
    const deep = nested(200_000)
    const cases: ReadonlyArray<readonly [unknown, TensorJsonError["reason"], string]> = [
      [{ x: { type: "int32", dims: [deep], data: [] } }, "BadDims", `input "x": "dims" must hold non-negative integers, got an array of 1`],
      [{ x: { type: deep, dims: [1], data: [1] } }, "BadType", `input "x": "type" must be one of float32, float64, int32, int64, uint8, bool, got an array of 1`],
      [{ x: { type: "float32", dims: [2], data: [1, deep] } }, "BadData", `input "x": data[1] = an array of 1 is not a number or "NaN", "Infinity", "-Infinity"`],
      [{ x: { type: "int64", dims: [1], data: ["9".repeat(100_000)] } }, "BadData", `input "x": data[0] = "9999999999999999999999999999999999999999"… (100000 characters) is not a safe integer or a decimal string in the int64 range`]
    ]
    for (const [json, reason, message] of cases) {
      const e = decodeErr(json)
      expect([e.reason, e.message]).toEqual([reason, message])
    }
  })

  it("property: isStandardBase64 agrees with what Buffer round-trips, on any string", () => {
    const alphabet = fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_! ".split(""))
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 24 }).map((cs) => cs.join("")), (s) => {
        // Standard padded base64 is exactly what decodes and encodes back to itself.
        const canonical = Buffer.from(s, "base64").toString("base64") === s
        if (isStandardBase64(s) !== canonical) {
          // Non-canonical trailing bits ("AB==") are standard base64 that Buffer normalizes: allowed, and rare.
          expect(isStandardBase64(s) && !canonical && /[A-Za-z0-9+/]{2}==$|[A-Za-z0-9+/]{3}=$/.test(s)).toBe(true)
        }
      }),
      { numRuns: 5_000, seed: 11 }
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(isStandardBase64(Buffer.from(bytes).toString("base64"))).toBe(true)
      }),
      { numRuns: 1_000, seed: 12 }
    )
  })

  it("describeJson is short for anything", () => {
    expect(describeJson(nested(1_000_000))).toBe("an array of 1")
    expect(describeJson({ a: nested(10) })).toBe("an object")
    expect(describeJson(undefined)).toBe("nothing")
    expect(describeJson("x".repeat(1e6)).length).toBeLessThan(80)
  })
})

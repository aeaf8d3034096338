import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { inputHash } from "../../domain/ai/inputHash.js"
import { decodeTensorMapJson, tensorMapToJson, type TensorMap } from "../../domain/ai/tensor.js"

const decoded = (json: unknown): TensorMap => Either.getOrThrow(decodeTensorMapJson(json))

describe("inputHash", () => {
  it("property: the same tensors hash alike in the data and the dataBase64 forms, whatever the key order", () => {
    fc.assert(
      fc.property(fc.array(fc.float({ noNaN: true }), { maxLength: 64 }), fc.array(fc.integer({ min: -1000, max: 1000 }), { maxLength: 64 }), (fs, is) => {
        const tensors: TensorMap = {
          x: { type: "float32", dims: [fs.length], data: Float32Array.from(fs) },
          n: { type: "int32", dims: [1, is.length], data: Int32Array.from(is) }
        }
        const asData = tensorMapToJson(tensors, Infinity)
        const asBase64 = tensorMapToJson(tensors, 0)
        const reordered = { n: asBase64["n"], x: asBase64["x"] }
        expect(inputHash(decoded(asData))).toBe(inputHash(tensors))
        expect(inputHash(decoded(reordered))).toBe(inputHash(tensors))
      })
    )
  })

  it("tells apart a value, a dim, a type and a name", () => {
    const base = { x: { type: "float32", dims: [2, 2], data: [1, 2, 3, 4] } }
    const variants = [
      base,
      { x: { type: "float32", dims: [2, 2], data: [1, 2, 3, 5] } },
      { x: { type: "float32", dims: [4, 1], data: [1, 2, 3, 4] } },
      { x: { type: "int32", dims: [2, 2], data: [1, 2, 3, 4] } },
      { y: { type: "float32", dims: [2, 2], data: [1, 2, 3, 4] } },
      { ...base, z: { type: "uint8", dims: [0], data: [] } }
    ]
    const hashes = variants.map((v) => inputHash(decoded(v)))
    expect(new Set(hashes).size).toBe(variants.length)
    for (const h of hashes) expect(h).toMatch(/^0x[0-9a-f]{64}$/)
  })
})

import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { Either } from "effect"
import { inputHash } from "../../domain/ai/inputHash.js"
import { outputHash } from "../../domain/ai/outputHash.js"
import { decodeTensorMapJson, tensorMapToJson, tensorMapToWire, type TensorMap } from "../../domain/ai/tensor.js"

const decoded = (json: unknown): TensorMap => Either.getOrThrow(decodeTensorMapJson(json))

describe("outputHash", () => {
  const outputs: TensorMap = { y: { type: "float32", dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) } }

  it("is the same for the same tensors whichever form carried them (JSON data, base64, wire bytes)", () => {
    const h = outputHash(outputs)
    expect(h).toMatch(/^0x[0-9a-f]{64}$/)
    expect(outputHash(decoded(tensorMapToJson(outputs, Infinity)))).toBe(h)
    expect(outputHash(decoded(tensorMapToJson(outputs, 0)))).toBe(h)
    expect(outputHash(decoded(tensorMapToWire(outputs)))).toBe(h)
  })

  it("is its own domain: not the input hash of the same tensors, nor a hash of their JSON text", () => {
    expect(outputHash(outputs)).not.toBe(inputHash(outputs))
    const json = JSON.stringify(tensorMapToWire(outputs))
    expect(outputHash(outputs)).not.toBe(`0x${createHash("sha256").update(json).digest("hex")}`)
  })

  it("tells apart a changed value", () => {
    const other: TensorMap = { y: { type: "float32", dims: [2, 2], data: Float32Array.of(1, 2, 3, 5) } }
    expect(outputHash(other)).not.toBe(outputHash(outputs))
  })
})

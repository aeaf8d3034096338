import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { checkInputs, decodeRequestInputs, type ModelSignature } from "../../domain/ai/signature.js"
import { Buffer } from "node:buffer"
import { decodeStandardBase64, decodeTensorMapJson, isStandardBase64, TensorBytes, tensorMapToJson, tensorMapToWire, tensorToJson, type Tensor, type TensorJsonError } from "../../domain/ai/tensor.js"

const decodeErr = (json: unknown): TensorJsonError => {
  const r = decodeTensorMapJson(json, { elementsMax: 1000 })
  if (Either.isRight(r)) throw new Error("expected a decode error")
  return r.left
}

describe("tensor JSON", () => {
  it("decodes each element type from data arrays", () => {
    const r = Either.getOrThrow(
      decodeTensorMapJson({
        f: { type: "float32", dims: [2], data: [0.5, "NaN"] },
        d: { type: "float64", dims: [1], data: ["-Infinity"] },
        i: { type: "int32", dims: [2], data: [-2147483648, 7] },
        l: { type: "int64", dims: [3], data: [16000, "-9223372036854775808", "9223372036854775807"] },
        u: { type: "uint8", dims: [1], data: [255] },
        b: { type: "bool", dims: [2, 1], data: [true, 0] }
      })
    )
    expect(r["f"]!.data).toEqual(Float32Array.of(0.5, NaN))
    expect(r["d"]!.data).toEqual(Float64Array.of(-Infinity))
    expect(r["i"]!.data).toEqual(Int32Array.of(-2147483648, 7))
    expect(r["l"]!.data).toEqual(BigInt64Array.of(16000n, -(2n ** 63n), 2n ** 63n - 1n))
    expect(r["u"]!.data).toEqual(Uint8Array.of(255))
    expect(r["b"]).toEqual({ type: "bool", dims: [2, 1], data: Uint8Array.of(1, 0) })
  })

  it("decodes dataBase64 as little-endian bytes", () => {
    const r = Either.getOrThrow(decodeTensorMapJson({ x: { type: "float32", dims: [2], dataBase64: Buffer.from(Float32Array.of(1, -2).buffer).toString("base64") } }))
    expect(r["x"]!.data).toEqual(Float32Array.of(1, -2))
  })

  it("keeps a tensor named __proto__ as a tensor", () => {
    const r = Either.getOrThrow(decodeTensorMapJson(JSON.parse(`{"__proto__": {"type": "uint8", "dims": [1], "data": [3]}}`)))
    expect(Object.keys(r)).toEqual(["__proto__"])
    expect(Object.getPrototypeOf(r)).toBe(Object.prototype)
  })

  it("refuses each kind of bad tensor with its reason", () => {
    const cases: ReadonlyArray<readonly [unknown, TensorJsonError["reason"], string]> = [
      [[1], "NotAnObject", "expected an object of named tensors, got array"],
      [{ x: 3 }, "NotAnObject", `input "x": expected {"type", "dims", "data" | "dataBase64"}, got number`],
      [{ x: { type: "float16", dims: [1], data: [1] } }, "BadType", `input "x": "type" must be one of float32, float64, int32, int64, uint8, bool, got "float16"`],
      [{ x: { type: "int32", dims: [-1], data: [] } }, "BadDims", `input "x": "dims" must hold non-negative integers, got -1`],
      [{ x: { type: "int32", dims: [100, 100] } }, "TooLarge", `input "x": dims [100, 100] exceed 1000 elements`],
      [{ x: { type: "int32", dims: [1] } }, "BadData", `input "x": give exactly one of "data" and "dataBase64"`],
      [{ x: { type: "int32", dims: [1], data: [1], dataBase64: "AAAAAA==" } }, "BadData", `input "x": give exactly one of "data" and "dataBase64"`],
      [{ x: { type: "int32", dims: [2], data: [1] } }, "DataLength", `input "x": dims [2] need 2 values, "data" has 1`],
      [{ x: { type: "int32", dims: [1], data: [1.5] } }, "BadData", `input "x": data[0] = 1.5 is not an integer in the int32 range`],
      [{ x: { type: "int64", dims: [1], data: [2 ** 60] } }, "BadData", `input "x": data[0] = 1152921504606847000 is not a safe integer or a decimal string in the int64 range`],
      [{ x: { type: "int64", dims: [1], data: ["9223372036854775808"] } }, "BadData", `input "x": data[0] = "9223372036854775808" is not a safe integer or a decimal string in the int64 range`],
      [{ x: { type: "float32", dims: [1], data: ["1.5"] } }, "BadData", `input "x": data[0] = "1.5" is not a number or "NaN", "Infinity", "-Infinity"`],
      [{ x: { type: "bool", dims: [1], data: [2] } }, "BadData", `input "x": data[0] = 2 is not true, false, 0 or 1`],
      [{ x: { type: "float32", dims: [1], dataBase64: "AAA" } }, "BadBase64", `input "x": "dataBase64" must be standard padded base64`],
      [{ x: { type: "float32", dims: [2], dataBase64: "AAAAAA==" } }, "DataLength", `input "x": dims [2] need 8 bytes of float32, "dataBase64" has 4`],
      [{ x: { type: "bool", dims: [1], dataBase64: "Ag==" } }, "BadData", `input "x": bool element 0 is byte 2, not 0 or 1`]
    ]
    for (const [json, reason, message] of cases) {
      const e = decodeErr(json)
      expect([e.reason, e.message]).toEqual([reason, message])
    }
  })

  it("property: tensorToJson then decode is the identity (data and base64 forms)", () => {
    const arbTensor: fc.Arbitrary<Tensor> = fc.oneof(
      fc.array(fc.float({ noDefaultInfinity: false }), { maxLength: 12 }).map((xs) => ({ type: "float32", dims: [xs.length], data: Float32Array.from(xs) }) as Tensor),
      fc.array(fc.double(), { maxLength: 12 }).map((xs) => ({ type: "float64", dims: [xs.length], data: Float64Array.from(xs) }) as Tensor),
      fc.array(fc.integer(), { maxLength: 12 }).map((xs) => ({ type: "int32", dims: [xs.length], data: Int32Array.from(xs) }) as Tensor),
      fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 12 }).map((xs) => ({ type: "int64", dims: [xs.length], data: BigInt64Array.from(xs) }) as Tensor),
      fc.array(fc.nat({ max: 255 }), { maxLength: 12 }).map((xs) => ({ type: "uint8", dims: [xs.length], data: Uint8Array.from(xs) }) as Tensor),
      fc.array(fc.nat({ max: 1 }), { maxLength: 12 }).map((xs) => ({ type: "bool", dims: [xs.length], data: Uint8Array.from(xs) }) as Tensor)
    )
    fc.assert(
      fc.property(arbTensor, fc.boolean(), (t, base64) => {
        const json = JSON.parse(JSON.stringify(tensorMapToJson({ t }, base64 ? 0 : Infinity)))
        expect(base64 ? "dataBase64" in json.t : "data" in json.t).toBe(true)
        const back = Either.getOrThrow(decodeTensorMapJson(json))
        expect(back["t"]).toEqual(t)
      }),
      { seed: 8, numRuns: 400 }
    )
  })

  it("property: decodeStandardBase64 takes exactly the standard base64 the character scan takes, with Node's bytes", () => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    const near = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString("base64")),
      // stray bits in the last character: standard, not canonical
      fc.uint8Array({ minLength: 1, maxLength: 40 }).chain((b) =>
        fc.nat(63).map((k) => {
          const s = Buffer.from(b).toString("base64")
          const at = s.replace(/=+$/, "").length - 1
          return s.slice(0, at) + alphabet[k] + s.slice(at + 1)
        })
      ),
      fc.string({ unit: fc.constantFrom(...`${alphabet}=-_ \n.é`), maxLength: 40 })
    )
    fc.assert(
      fc.property(near, (s) => {
        const got = decodeStandardBase64(s)
        expect(got !== undefined).toBe(isStandardBase64(s))
        if (got !== undefined) expect(Buffer.from(got)).toEqual(Buffer.from(s, "base64"))
      }),
      { numRuns: 500 }
    )
    expect(decodeStandardBase64("AB==")).toEqual(Buffer.from("AA==", "base64"))
    expect(decodeStandardBase64("AA-_")).toBeUndefined()
    expect(decodeStandardBase64("AA A")).toBeUndefined()
  })

  it("writes int64 beyond 2^53 as strings and non-finite floats as names", () => {
    expect(tensorToJson({ type: "int64", dims: [2], data: BigInt64Array.of(5n, 2n ** 60n) })).toEqual({ type: "int64", dims: [2], data: [5, "1152921504606846976"] })
    expect(tensorToJson({ type: "float32", dims: [3], data: Float32Array.of(NaN, Infinity, -Infinity) }).data).toEqual(["NaN", "Infinity", "-Infinity"])
  })
})

describe("tensors as bytes (binary frames)", () => {
  it("decodes dataBase64 given as bytes, at any offset, into an aligned array of its own", () => {
    const frame = new Uint8Array(1 + 8)
    frame.set(new Uint8Array(Float32Array.of(1, -2).buffer), 1) // a frame's bin can sit at an odd offset
    const bytes = frame.subarray(1)
    const r = Either.getOrThrow(decodeTensorMapJson({ x: { type: "float32", dims: [2], dataBase64: bytes } }))
    expect(r["x"]!.data).toEqual(Float32Array.of(1, -2))
    frame.fill(0) // the tensor does not share the frame's memory
    expect(r["x"]!.data).toEqual(Float32Array.of(1, -2))
  })

  it("refuses bytes of the wrong length and bool bytes other than 0 and 1, as for base64", () => {
    expect([decodeErr({ x: { type: "float32", dims: [2], dataBase64: new Uint8Array(7) } })].map((e) => [e.reason, e.message])).toEqual([
      ["DataLength", `input "x": dims [2] need 8 bytes of float32, "dataBase64" has 7`]
    ])
    expect(decodeErr({ b: { type: "bool", dims: [2], dataBase64: Uint8Array.of(1, 2) } }).reason).toBe("BadData")
    expect(decodeErr({ x: { type: "float32", dims: [2000], dataBase64: new Uint8Array(8000) } }).reason).toBe("TooLarge")
  })

  it("property: tensorMapToWire is tensorMapToJson once JSON writes it, and decodes back to the same tensors as bytes", () => {
    fc.assert(
      fc.property(fc.array(fc.float({ noDefaultInfinity: false }), { maxLength: 40 }), fc.integer({ min: 0, max: 41 }), (xs, min) => {
        const tensors = { x: { type: "float32", dims: [xs.length], data: Float32Array.from(xs) } } as const
        const wire = tensorMapToWire(tensors, min)
        expect(JSON.stringify(wire)).toBe(JSON.stringify(tensorMapToJson(tensors, min)))
        const back = Either.getOrThrow(decodeTensorMapJson(wire))
        expect(Buffer.from(back["x"]!.data.buffer).equals(Buffer.from(tensors.x.data.buffer))).toBe(true)
      })
    )
  })

  it("TensorBytes is a view (no copy) of the tensor's memory", () => {
    const data = Float32Array.of(3, 4)
    const wire = tensorMapToWire({ x: { type: "float32", dims: [2], data } }, 1) as Record<string, { readonly dataBase64: TensorBytes }>
    expect(wire["x"]!.dataBase64.buffer).toBe(data.buffer)
  })
})

describe("checkInputs", () => {
  const SIG: ModelSignature = {
    inputs: [
      { name: "input", type: "float32", dims: ["", ""] },
      { name: "state", type: "float32", dims: [2, "", 128] },
      { name: "sr", type: "int64", dims: [] }
    ],
    outputs: []
  }
  const f32 = (dims: ReadonlyArray<number>): Tensor => ({ type: "float32", dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) })
  const good = { input: f32([1, 512]), state: f32([2, 1, 128]), sr: { type: "int64", dims: [], data: BigInt64Array.of(16000n) } } as const

  const mismatch = (inputs: Record<string, Tensor>, sig = SIG) => {
    const r = checkInputs(inputs, sig)
    return Either.isLeft(r) ? [r.left.reason, r.left.message] : "ok"
  }

  it("accepts silero-shaped inputs with any length ≥ 1 for the symbolic dims", () => {
    expect(mismatch(good)).toBe("ok")
    expect(mismatch({ ...good, input: f32([3, 1024]) })).toBe("ok")
  })

  it("refuses missing, unknown, mistyped and misshapen inputs", () => {
    const { sr: _sr, ...noSr } = good
    expect(mismatch(noSr)).toEqual(["MissingInput", `input "sr": missing; the model takes "input", "state", "sr"`])
    expect(mismatch({ ...good, extra: f32([1]) })).toEqual(["UnknownInput", `input "extra": the model has no such input; it takes "input", "state", "sr"`])
    expect(mismatch({ ...good, sr: f32([]) })).toEqual(["TypeMismatch", `input "sr": is float32, the model takes int64`])
    expect(mismatch({ ...good, input: f32([512]) })).toEqual(["RankMismatch", `input "input": has dims [512], the model takes rank 2 [?, ?]`])
    expect(mismatch({ ...good, state: f32([3, 1, 128]) })).toEqual(["DimMismatch", `input "state": dim 0 is 3, the model takes [2, ?, 128]`])
    expect(mismatch({ ...good, input: f32([1, 0]) })).toEqual(["DimMismatch", `input "input": dim 1 is 0; symbolic dims take a length ≥ 1`])
  })

  it("binds a named symbolic dim to one length across inputs", () => {
    const sig: ModelSignature = { inputs: [{ name: "a", type: "float32", dims: ["batch", 4] }, { name: "b", type: "float32", dims: ["batch"] }], outputs: [] }
    expect(mismatch({ a: f32([3, 4]), b: f32([3]) }, sig)).toBe("ok")
    expect(mismatch({ a: f32([3, 4]), b: f32([2]) }, sig)).toEqual(["DimMismatch", `input "b": dim 0 ("batch") is 2, but "batch" is 3 in input "a"`])
  })

  it("accepts any rank for an input of unknown rank", () => {
    const sig: ModelSignature = { inputs: [{ name: "x", type: "float32", dims: null }], outputs: [] }
    expect(mismatch({ x: f32([1, 2, 3]) }, sig)).toBe("ok")
  })

  it("decodeRequestInputs: JSON to tensors that fit, or the first problem", () => {
    const json = { input: { type: "float32", dims: [1, 2], data: [0.5, -0.5] }, state: { type: "float32", dims: [2, 1, 128], dataBase64: Buffer.alloc(1024).toString("base64") }, sr: { type: "int64", dims: [], data: [16000] } }
    const ok = decodeRequestInputs(json, SIG)
    expect(Either.isRight(ok) && ok.right["sr"]!.data).toEqual(BigInt64Array.of(16000n))
    const notJson = decodeRequestInputs({ ...json, sr: { type: "int64", dims: [], data: ["x"] } }, SIG)
    expect(Either.isLeft(notJson) && notJson.left._tag).toBe("TensorJsonError")
    const wrongShape = decodeRequestInputs({ ...json, sr: { type: "int64", dims: [1], data: [16000] } }, SIG)
    expect(Either.isLeft(wrongShape) && [wrongShape.left._tag, wrongShape.left.message]).toEqual(["InputMismatch", `input "sr": has dims [1], the model takes rank 0 []`])
  })
})

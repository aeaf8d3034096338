import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import fc from "fast-check"
import { outputFingerprint } from "../../domain/ai/fingerprint.js"
import { seededInputs, xoshiro128ss, xoshiro128ssFromState } from "../../domain/ai/seededInputs.js"
import type { TensorSpec } from "../../domain/ai/signature.js"
import { ELEM_TYPES, type Tensor, type TensorMap } from "../../domain/ai/tensor.js"

const SILERO_INPUTS: ReadonlyArray<TensorSpec> = [
  { name: "input", type: "float32", dims: ["", ""] },
  { name: "state", type: "float32", dims: [2, "", 128] },
  { name: "sr", type: "int64", dims: [] }
]
const SILERO_SHAPES = new Map<string, ReadonlyArray<number>>([["input", [1, 576]], ["state", [2, 1, 128]], ["sr", []]])

describe("seeded inputs", () => {
  it("xoshiro128** matches the reference output from state {1, 2, 3, 4}", () => {
    const prng = xoshiro128ssFromState([1, 2, 3, 4])
    expect(Array.from({ length: 8 }, prng.next)).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849])
  })

  it("is pinned: the values for seed \"topai\" never change (validators of different versions must agree)", () => {
    const prng = xoshiro128ss("topai")
    expect(Array.from({ length: 4 }, prng.next)).toEqual([2660045966, 2797009042, 983513688, 3640430498])
    const inputs = seededInputs([{ name: "x", type: "float32", dims: [4] }], new Map([["x", [4]]]), {}, "topai")
    // (draw >>> 8) / 2^23 − 1
    expect(Array.from(inputs["x"]!.data as Float32Array)).toEqual([0.23868036270141602, 0.3024587631225586, -0.542015790939331, 0.6952074766159058])
  })

  it("gives silero its fixed sample rate and seeded floats in [−1, 1), exact in float32", () => {
    const inputs = seededInputs(SILERO_INPUTS, SILERO_SHAPES, { sr: [16000] }, "0xabc")
    expect(inputs["sr"]).toEqual({ type: "int64", dims: [], data: BigInt64Array.of(16000n) })
    expect(inputs["input"]!.dims).toEqual([1, 576])
    expect(inputs["state"]!.dims).toEqual([2, 1, 128])
    for (const x of inputs["input"]!.data as Float32Array) {
      expect(x).toBeGreaterThanOrEqual(-1)
      expect(x).toBeLessThan(1)
      expect(Math.fround(x)).toBe(x)
    }
  })

  it("gives integer inputs small non-negative values and bools 0/1", () => {
    const specs: ReadonlyArray<TensorSpec> = [
      { name: "i", type: "int32", dims: [100] },
      { name: "l", type: "int64", dims: [100] },
      { name: "b", type: "bool", dims: [100] },
      { name: "u", type: "uint8", dims: [100] }
    ]
    const shapes = new Map(specs.map((s) => [s.name, [100]]))
    const t = seededInputs(specs, shapes, {}, "ints")
    expect(Array.from(t["i"]!.data as Int32Array).every((x) => x >= 0 && x < 8)).toBe(true)
    expect(Array.from(t["l"]!.data as BigInt64Array).every((x) => x >= 0n && x < 8n)).toBe(true)
    expect(Array.from(t["b"]!.data as Uint8Array).every((x) => x === 0 || x === 1)).toBe(true)
    expect(new Set(t["u"]!.data as Uint8Array).size).toBeGreaterThan(50)
  })

  it("property: the same seed gives the same tensors; another seed different ones", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }), (seed, other, dims) => {
        const specs: ReadonlyArray<TensorSpec> = [{ name: "x", type: "float32", dims }, { name: "k", type: "int64", dims }]
        const shapes = new Map([["x", dims], ["k", dims]])
        const a = seededInputs(specs, shapes, {}, seed)
        expect(seededInputs(specs, shapes, {}, seed)).toEqual(a)
        // and the order of the specs does not matter
        expect(seededInputs([...specs].reverse(), shapes, {}, seed)).toEqual(a)
        if (other !== seed && dims.reduce((p, d) => p * d, 1) >= 4) {
          expect(seededInputs(specs, shapes, {}, other)["x"]).not.toEqual(a["x"])
        }
      }),
      { seed: 9, numRuns: 300 }
    )
  })
})

describe("output fingerprint", () => {
  const TOL = 1e-3
  const f64 = (xs: ReadonlyArray<number>, dims: ReadonlyArray<number> = [xs.length]): Tensor => ({ type: "float64", dims, data: Float64Array.from(xs) })
  const fp = (outputs: TensorMap, tol = TOL) => outputFingerprint(outputs, tol)

  it("is pinned: encoding v1 of a fixed output", () => {
    expect(fp({ y: f64([0.5, -0.25]), n: { type: "int64", dims: [1], data: BigInt64Array.of(7n) } })).toBe(
      "0x40d26166f24eaa898be45b1f5f1b8a6adf89d588ab927a5026b11e8ea98c4ee8"
    )
  })

  /** Values k·tol + u·tol with |u| ≤ 0.4: away from the bucket edges at ±0.5. */
  const arbCentered = fc.array(fc.tuple(fc.integer({ min: -10_000, max: 10_000 }), fc.double({ min: -0.4, max: 0.4, noNaN: true })), { minLength: 1, maxLength: 16 })

  it("property: the same under perturbations below a tenth of the tolerance", () => {
    fc.assert(
      fc.property(arbCentered, fc.array(fc.double({ min: -0.09, max: 0.09, noNaN: true }), { minLength: 16, maxLength: 16 }), (cells, noise) => {
        const xs = cells.map(([k, u]) => (k + u) * TOL)
        const ys = xs.map((x, i) => x + noise[i]! * TOL)
        expect(fp({ out: f64(ys) })).toBe(fp({ out: f64(xs) }))
        // float32 outputs too (their rounding error is far below the tolerance here)
        expect(fp({ out: { type: "float32", dims: [ys.length], data: Float32Array.from(ys) } })).toBe(
          fp({ out: { type: "float32", dims: [xs.length], data: Float32Array.from(xs) } })
        )
      }),
      { seed: 10, numRuns: 500 }
    )
  })

  it("property: different when one value moves by more than the tolerance", () => {
    fc.assert(
      fc.property(arbCentered, fc.nat(), fc.double({ min: 1.01, max: 1000, noNaN: true }), fc.boolean(), (cells, at, by, up) => {
        const xs = cells.map(([k, u]) => (k + u) * TOL)
        const ys = [...xs]
        const i = at % xs.length
        ys[i] = xs[i]! + (up ? by : -by) * TOL
        expect(fp({ out: f64(ys) })).not.toBe(fp({ out: f64(xs) }))
      }),
      { seed: 11, numRuns: 500 }
    )
  })

  it("tells NaN, +Infinity, −Infinity and finite values apart; −0 is 0", () => {
    // 1e308 / tolerance overflows to Infinity: still a finite value's bucket, not +Infinity's
    const prints = [NaN, Infinity, -Infinity, 0, 1e308, -1e308].map((x) => fp({ y: f64([x]) }))
    expect(new Set(prints).size).toBe(6)
    expect(fp({ y: f64([-0]) })).toBe(fp({ y: f64([0]) }))
    expect(fp({ y: f64([-0.0001]) })).toBe(fp({ y: f64([0]) })) // rounds to −0
  })

  it("depends on names, types, dims and the tolerance, not on key order", () => {
    const a = f64([1, 2])
    const base = fp({ a, b: f64([3]) })
    expect(fp({ b: f64([3]), a })).toBe(base)
    expect(fp({ a, c: f64([3]) })).not.toBe(base)
    expect(fp({ a: { type: "float32", dims: [2], data: Float32Array.of(1, 2) }, b: f64([3]) })).not.toBe(base)
    expect(fp({ a: f64([1, 2], [2, 1]), b: f64([3]) })).not.toBe(base)
    expect(fp({ a, b: f64([3]) }, 1e-4)).not.toBe(base)
  })

  it("compares integers exactly", () => {
    const n = (x: bigint): TensorMap => ({ n: { type: "int64", dims: [1], data: BigInt64Array.of(x) } })
    expect(fp(n(2n ** 62n))).not.toBe(fp(n(2n ** 62n + 1n)))
    const b = (x: number): TensorMap => ({ b: { type: "bool", dims: [1], data: Uint8Array.of(x) } })
    expect(fp(b(0))).not.toBe(fp(b(1)))
  })

  /** The encoding exactly as the module doc states it, written the slow and obvious way. */
  const reference = (outputs: TensorMap, tolerance: number): string => {
    const parts: Array<Buffer> = [Buffer.from("topai/output-fingerprint/v1")]
    const u8 = (x: number) => Buffer.of(x)
    const u32 = (x: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(x); return b }
    const u64 = (x: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(x)); return b }
    const f64 = (x: number) => { const b = Buffer.alloc(8); b.writeDoubleLE(x); return b }
    parts.push(f64(tolerance))
    const names = Object.keys(outputs).sort()
    parts.push(u32(names.length))
    for (const name of names) {
      const t = outputs[name]!
      parts.push(u32(Buffer.byteLength(name)), Buffer.from(name), u8(ELEM_TYPES.indexOf(t.type)), u32(t.dims.length), ...t.dims.map(u64))
      if (t.type === "float32" || t.type === "float64") {
        const odd: Array<[number, number]> = []
        Array.from(t.data).forEach((x, i) => {
          if (Number.isFinite(x)) parts.push(f64(Math.round(x / tolerance) || 0))
          else {
            parts.push(f64(0))
            odd.push([i, Number.isNaN(x) ? 1 : x > 0 ? 2 : 3])
          }
        })
        parts.push(u32(odd.length), ...odd.flatMap(([i, tag]) => [u32(i), u8(tag)]))
      } else parts.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))
    }
    return "0x" + createHash("sha256").update(Buffer.concat(parts)).digest("hex")
  }

  it("property: matches the documented encoding, written out the slow way (large tensors and non-finite values included)", () => {
    const arbFloats = fc.array(fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, -0)), { maxLength: 40 })
    fc.assert(
      fc.property(arbFloats, fc.integer({ min: 0, max: 20_000 }), fc.array(fc.integer(), { maxLength: 5 }), (xs, pad, ints) => {
        const big = new Float32Array(pad + xs.length)
        big.set(xs, pad) // the non-finite values land past the encoder's first flush when pad is large
        const outputs: TensorMap = {
          z: { type: "float32", dims: [big.length], data: big },
          a: f64(xs),
          i: { type: "int32", dims: [ints.length], data: Int32Array.from(ints) }
        }
        expect(outputFingerprint(outputs, 1e-3)).toBe(reference(outputs, 1e-3))
      }),
      { seed: 13, numRuns: 60 }
    )
  })
})

/**
 * Seeded inputs: the same seed and shapes give the same tensors, bit for bit,
 * on every machine, so every validator smoke-runs a model on the same inputs
 * and any worker can re-run them to check the reference fingerprint.
 *
 * The generator is xoshiro128** (Blackman and Vigna, https://prng.di.unimi.it/
 * xoshiro128starstar.c), 32-bit integer arithmetic only, its state the first
 * 16 bytes of sha256(seed). Floats are k / 2^23 − 1 for a 24-bit k, so every
 * value is exact in float32 and lies in [−1, 1); integers are small and
 * non-negative (0..7; uint8 0..255; bool 0/1), since integer inputs are
 * usually indices, lengths or flags. Inputs are filled in name order.
 */
import { sha256 } from "../chain/hash.js"
import { allocate, elementCount, type Tensor, type TensorMap } from "./tensor.js"
import type { TensorSpec } from "./signature.js"

export interface Prng {
  /** The next 32-bit unsigned integer. */
  readonly next: () => number
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k))

/** xoshiro128** from its four 32-bit state words (not all zero). */
export const xoshiro128ssFromState = (state: readonly [number, number, number, number]): Prng => {
  let [s0, s1, s2, s3] = state
  return {
    next: () => {
      const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0
      const t = s1 << 9
      s2 ^= s0
      s3 ^= s1
      s1 ^= s2
      s0 ^= s3
      s2 ^= t
      s3 = rotl(s3, 11)
      return result
    }
  }
}

/** xoshiro128** seeded with the first 16 bytes of sha256(seed). */
export const xoshiro128ss = (seed: string | Uint8Array): Prng => {
  const h = sha256(seed)
  const view = new DataView(h.buffer, h.byteOffset, h.byteLength)
  const state = [0, 4, 8, 12].map((at) => view.getUint32(at, true)) as [number, number, number, number]
  if ((state[0] | state[1] | state[2] | state[3]) === 0) state[0] = 1 // the all-zero state is a fixed point
  return xoshiro128ssFromState(state)
}

/** 2^23: floats are k / FLOAT_SCALE − 1 for k in [0, 2^24). */
const FLOAT_SCALE = 2 ** 23

const fill = (spec: TensorSpec, dims: ReadonlyArray<number>, prng: Prng, fixed: ReadonlyArray<number> | undefined): Tensor => {
  const n = elementCount(dims)
  const value = (i: number): number => fixed![fixed!.length === 1 ? 0 : i]!
  switch (spec.type) {
    case "float32":
    case "float64": {
      const data = allocate(spec.type, n)
      for (let i = 0; i < n; i++) data[i] = fixed !== undefined ? value(i) : (prng.next() >>> 8) / FLOAT_SCALE - 1
      return { type: spec.type, dims, data } as Tensor
    }
    case "int32": {
      const data = allocate("int32", n)
      for (let i = 0; i < n; i++) data[i] = fixed !== undefined ? value(i) : prng.next() >>> 29
      return { type: "int32", dims, data }
    }
    case "int64": {
      const data = allocate("int64", n)
      for (let i = 0; i < n; i++) data[i] = BigInt(fixed !== undefined ? value(i) : prng.next() >>> 29)
      return { type: "int64", dims, data }
    }
    case "uint8": {
      const data = allocate("uint8", n)
      for (let i = 0; i < n; i++) data[i] = fixed !== undefined ? value(i) : prng.next() >>> 24
      return { type: "uint8", dims, data }
    }
    case "bool": {
      const data = allocate("bool", n)
      for (let i = 0; i < n; i++) data[i] = fixed !== undefined ? (value(i) === 0 ? 0 : 1) : prng.next() >>> 31
      return { type: "bool", dims, data }
    }
  }
}

/**
 * Inputs for `inputs` in the resolved `shapes` (see `resolveInputShapes`),
 * random from `seed` except those `fixedInputs` pins. Inputs without a shape
 * in `shapes` are left out (the caller resolved them first).
 */
export const seededInputs = (
  inputs: ReadonlyArray<TensorSpec>,
  shapes: ReadonlyMap<string, ReadonlyArray<number>>,
  fixedInputs: Readonly<Record<string, ReadonlyArray<number>>>,
  seed: string | Uint8Array
): TensorMap => {
  const prng = xoshiro128ss(seed)
  const ordered = [...inputs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const out: Array<[string, Tensor]> = []
  for (const spec of ordered) {
    const dims = shapes.get(spec.name)
    if (dims === undefined) continue
    const fixed = Object.hasOwn(fixedInputs, spec.name) ? fixedInputs[spec.name] : undefined
    out.push([spec.name, fill(spec, dims, prng, fixed)])
  }
  return Object.fromEntries(out)
}

/**
 * The output fingerprint: sha256 over a canonical encoding of a run's
 * outputs, with floats quantized to the model's tolerance, so that two honest
 * machines whose results differ in the last bits (another CPU, another
 * thread count, CUDA) sign the same fingerprint.
 *
 * Encoding, version 1 (all numbers little-endian):
 *   "topai/output-fingerprint/v1" · tolerance (f64) · output count (u32)
 *   then per output, sorted by name (JS string order):
 *     name length (u32) · name (UTF-8) · type index in ELEM_TYPES (u8) ·
 *     rank (u32) · dims (u64 each) · values:
 *   float32/float64: every value as an f64, round(x / tolerance) for a
 *     finite x (−0 written as 0; a quotient that overflows is ±Infinity) and
 *     0 for NaN and ±Infinity; then the count of those non-finite values
 *     (u32) and, for each, its index (u32) and a tag (u8: 1 NaN, 2 +Infinity,
 *     3 −Infinity). So NaN, the infinities and every finite bucket encode
 *     apart, and a finite value whose quotient overflows is not +Infinity.
 *   int32: 4 bytes each; int64: 8 bytes each; uint8 and bool: 1 byte each —
 *     compared exactly.
 *
 * Quantizing is a rounding, so two values a hair apart can still fall either
 * side of a bucket edge (x / tolerance near k + 0.5); such a pair disagrees
 * and the dispute is settled by re-execution. The tolerance makes this rare,
 * not impossible. It is absolute: a model whose outputs are large (where
 * float32's own spacing nears the tolerance) needs a larger one.
 */
import { createHash, type Hash } from "node:crypto"
import type { Hash32 } from "../chain/hash.js"
import { ELEM_TYPES, type Tensor, type TensorMap } from "./tensor.js"

const DOMAIN_TAG = new TextEncoder().encode("topai/output-fingerprint/v1")
const NON_FINITE_TAG = { nan: 1, positiveInfinity: 2, negativeInfinity: 3 } as const
/** The encoding is hashed in pieces of about this size. */
const FLUSH_BYTES = 1 << 16
const utf8Encoder = new TextEncoder()

/** Writes the encoding into one growing buffer, handing it to the hash each FLUSH_BYTES. */
class Encoder {
  private buf = new Uint8Array(4096)
  private view = new DataView(this.buf.buffer)
  private at = 0
  constructor(private readonly hash: Hash) {}

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return
    if (this.at >= FLUSH_BYTES) this.flush()
    if (this.at + n <= this.buf.length) return
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.at + n))
    next.set(this.buf.subarray(0, this.at))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  flush(): void {
    this.hash.update(this.buf.subarray(0, this.at))
    this.at = 0
  }

  bytes(b: Uint8Array): void {
    this.room(b.length)
    this.buf.set(b, this.at)
    this.at += b.length
  }

  u8(x: number): void {
    this.room(1)
    this.buf[this.at++] = x
  }

  u32(x: number): void {
    this.room(4)
    this.view.setUint32(this.at, x, true)
    this.at += 4
  }

  /** A non-negative integer below 2^53 as a u64. */
  u64(x: number): void {
    this.room(8)
    this.view.setUint32(this.at, x % 2 ** 32, true)
    this.view.setUint32(this.at + 4, Math.floor(x / 2 ** 32), true)
    this.at += 8
  }

  f64(x: number): void {
    this.room(8)
    this.view.setFloat64(this.at, x, true)
    this.at += 8
  }

  /** round(x / tolerance) of each value, non-finite ones as 0 and listed after (see the module doc). */
  floats(data: Float32Array | Float64Array, tolerance: number): void {
    let nonFinite: Array<number> | undefined = undefined
    // The quotients go into an aligned f64 array of their own, hashed piece by piece: the same bytes as
    // writing them into the buffer through a DataView (the machine is little-endian), several times faster.
    this.flush()
    const chunk = new Float64Array(Math.min(FLUSH_BYTES / 8, data.length))
    const chunkBytes = new Uint8Array(chunk.buffer)
    for (let start = 0; start < data.length; start += chunk.length) {
      const end = Math.min(start + chunk.length, data.length)
      for (let i = start, j = 0; i < end; i++, j++) {
        const x = data[i]!
        if (x - x === 0) {
          const q = Math.round(x / tolerance)
          chunk[j] = q === 0 ? 0 : q
        } else {
          chunk[j] = 0
          ;(nonFinite ??= []).push(i, Number.isNaN(x) ? NON_FINITE_TAG.nan : x > 0 ? NON_FINITE_TAG.positiveInfinity : NON_FINITE_TAG.negativeInfinity)
        }
      }
      this.hash.update(chunkBytes.subarray(0, (end - start) * 8))
    }
    this.u32(nonFinite === undefined ? 0 : nonFinite.length / 2)
    if (nonFinite === undefined) return
    for (let k = 0; k < nonFinite.length; k += 2) {
      this.u32(nonFinite[k]!)
      this.u8(nonFinite[k + 1]!)
    }
  }
}

/** Typed arrays are encoded as their bytes: the encoding is little-endian, and so must the machine be. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1

const encodeValues = (e: Encoder, t: Tensor, tolerance: number): void => {
  switch (t.type) {
    case "float32":
    case "float64":
      return e.floats(t.data, tolerance)
    default:
      e.bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))
  }
}

/** The fingerprint of `outputs` at `tolerance` (> 0), as `0x` + 64 hex. */
export const outputFingerprint = (outputs: TensorMap, tolerance: number): Hash32 => {
  // Every platform onnxruntime-node ships for is little-endian; anything else is a build we do not make.
  if (!LITTLE_ENDIAN) throw new Error("output fingerprints need a little-endian machine")
  const hash = createHash("sha256")
  const e = new Encoder(hash)
  const names = Object.keys(outputs).sort()
  e.bytes(DOMAIN_TAG)
  e.f64(tolerance)
  e.u32(names.length)
  for (const name of names) {
    const t = outputs[name]!
    const encoded = utf8Encoder.encode(name)
    e.u32(encoded.length)
    e.bytes(encoded)
    e.u8(ELEM_TYPES.indexOf(t.type))
    e.u32(t.dims.length)
    for (const d of t.dims) e.u64(d)
    encodeValues(e, t, tolerance)
  }
  e.flush()
  return `0x${hash.digest("hex")}` as Hash32
}

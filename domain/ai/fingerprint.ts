/**
 * The output fingerprint: sha256 over a canonical encoding of a run's
 * outputs, with floats quantized to the model's tolerance, so that two honest
 * machines whose results differ in the last bits (another CPU, another
 * thread count, CUDA) sign the same fingerprint.
 *
 * Encoding, version 1 (all integers little-endian):
 *   "topai/output-fingerprint/v1" · tolerance (float64) · output count (u32)
 *   then per output, sorted by name (JS string order):
 *   name length (u32) · name (UTF-8) · type index in ELEM_TYPES (u8) ·
 *   rank (u32) · dims (u64 each) · values:
 *     float32/float64: a tag byte, 0 for a finite x followed by
 *       round(x / tolerance) as a float64 (−0 written as 0; a quotient that
 *       overflows stays ±Infinity, still under tag 0), 1 for NaN, 2 for
 *       +Infinity, 3 for −Infinity; so NaN, the infinities and every finite
 *       bucket encode apart;
 *     int32: 4 bytes; int64: 8 bytes; uint8 and bool: 1 byte — exact.
 *
 * Quantizing is a rounding, so two values a hair apart can still fall either
 * side of a bucket edge (x / tolerance near k + 0.5); such a pair disagrees
 * and the dispute is settled by re-execution. The tolerance makes this rare,
 * not impossible.
 */
import { createHash } from "node:crypto"
import { bytesToHex } from "../chain/hex.js"
import type { Hash32 } from "../chain/hash.js"
import { ELEM_TYPES, type Tensor, type TensorMap } from "./tensor.js"

const DOMAIN_TAG = "topai/output-fingerprint/v1"
const CHUNK_BYTES = 1 << 16
const FLOAT_TAG = { finite: 0, nan: 1, positiveInfinity: 2, negativeInfinity: 3 } as const
const utf8Encoder = new TextEncoder()

/** Appends little-endian fields to a sha256, through one reused chunk. */
class HashWriter {
  private readonly hash = createHash("sha256")
  private readonly chunk = new Uint8Array(CHUNK_BYTES)
  private readonly view = new DataView(this.chunk.buffer)
  private used = 0

  private room(n: number): void {
    if (this.used + n > CHUNK_BYTES) this.flush()
  }

  private flush(): void {
    if (this.used > 0) this.hash.update(this.chunk.subarray(0, this.used))
    this.used = 0
  }

  bytes(b: Uint8Array): void {
    this.flush()
    this.hash.update(b)
  }

  u8(x: number): void {
    this.room(1)
    this.chunk[this.used++] = x
  }

  u32(x: number): void {
    this.room(4)
    this.view.setUint32(this.used, x, true)
    this.used += 4
  }

  i32(x: number): void {
    this.room(4)
    this.view.setInt32(this.used, x, true)
    this.used += 4
  }

  u64(x: bigint): void {
    this.room(8)
    this.view.setBigUint64(this.used, x, true)
    this.used += 8
  }

  i64(x: bigint): void {
    this.room(8)
    this.view.setBigInt64(this.used, x, true)
    this.used += 8
  }

  f64(x: number): void {
    this.room(8)
    this.view.setFloat64(this.used, x === 0 ? 0 : x, true)
    this.used += 8
  }

  /** A float output value at `tolerance`, as the module doc describes. */
  quantized(x: number, tolerance: number): void {
    if (Number.isFinite(x)) {
      this.u8(FLOAT_TAG.finite)
      this.f64(Math.round(x / tolerance))
    } else this.u8(Number.isNaN(x) ? FLOAT_TAG.nan : x > 0 ? FLOAT_TAG.positiveInfinity : FLOAT_TAG.negativeInfinity)
  }

  digest(): Uint8Array {
    this.flush()
    return this.hash.digest()
  }
}

const writeValues = (w: HashWriter, t: Tensor, tolerance: number): void => {
  switch (t.type) {
    case "float32":
    case "float64":
      for (let i = 0; i < t.data.length; i++) w.quantized(t.data[i]!, tolerance)
      return
    case "int32":
      for (let i = 0; i < t.data.length; i++) w.i32(t.data[i]!)
      return
    case "int64":
      for (let i = 0; i < t.data.length; i++) w.i64(t.data[i]!)
      return
    default:
      w.bytes(t.data)
  }
}

/** The fingerprint of `outputs` at `tolerance` (> 0), as `0x` + 64 hex. */
export const outputFingerprint = (outputs: TensorMap, tolerance: number): Hash32 => {
  const w = new HashWriter()
  w.bytes(utf8Encoder.encode(DOMAIN_TAG))
  w.f64(tolerance)
  const names = Object.keys(outputs).sort()
  w.u32(names.length)
  for (const name of names) {
    const t = outputs[name]!
    const encoded = utf8Encoder.encode(name)
    w.u32(encoded.length)
    w.bytes(encoded)
    w.u8(ELEM_TYPES.indexOf(t.type))
    w.u32(t.dims.length)
    for (const d of t.dims) w.u64(BigInt(d))
    writeValues(w, t, tolerance)
  }
  return bytesToHex(w.digest()) as Hash32
}

/**
 * The hash of a task's input tensors (`TaskRequested.inputHash`): sha256 over
 * their canonical bytes, so the same tensors hash alike whichever JSON form
 * (`data` or `dataBase64`) carried them, and megabytes of input are hashed
 * as the bytes they are, never turned back into text.
 *
 * Encoding, version 1 (little-endian):
 *   "topai/input-hash/v1" · input count (u32), then per input, sorted by
 *   name (JS string order): name length (u32) · name (UTF-8) · type index in
 *   ELEM_TYPES (u8) · rank (u32) · dims (u64 each) · the typed array's bytes.
 */
import { createHash } from "node:crypto"
import type { Hash32 } from "../chain/hash.js"
import { ELEM_TYPES, type TensorMap } from "./tensor.js"

const DOMAIN_TAG = new TextEncoder().encode("topai/input-hash/v1")
const utf8Encoder = new TextEncoder()

const u32 = (x: number): Uint8Array => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, x, true)
  return b
}

/** A non-negative integer below 2^53 as a u64. */
const u64 = (x: number): Uint8Array => {
  const b = new Uint8Array(8)
  const view = new DataView(b.buffer)
  view.setUint32(0, x % 2 ** 32, true)
  view.setUint32(4, Math.floor(x / 2 ** 32), true)
  return b
}

export const inputHash = (inputs: TensorMap): Hash32 => tensorMapHash(DOMAIN_TAG, inputs)

/** sha256 of a tensor map's canonical bytes (the encoding above) after a domain tag. */
export const tensorMapHash = (domainTag: Uint8Array, inputs: TensorMap): Hash32 => {
  const hash = createHash("sha256").update(domainTag)
  const names = Object.keys(inputs).sort()
  hash.update(u32(names.length))
  for (const name of names) {
    const t = inputs[name]!
    const encoded = utf8Encoder.encode(name)
    hash.update(u32(encoded.length)).update(encoded).update(Uint8Array.of(ELEM_TYPES.indexOf(t.type))).update(u32(t.dims.length))
    for (const d of t.dims) hash.update(u64(d))
    // The typed arrays' memory is little-endian on every platform onnxruntime-node ships for (tensor.ts checks).
    hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))
  }
  return `0x${hash.digest("hex")}` as Hash32
}

/**
 * Tensors as the AI shard carries them: in memory a typed array with its
 * element type and dims (what onnxruntime takes and returns, without a
 * copy), and on the wire the JSON form of issue 4:
 *
 *   {"name": {"type": "float32", "dims": [1, 3], "data": [0.5, 1, -2]}}
 *   {"name": {"type": "int64", "dims": [1], "dataBase64": "gD4AAAAAAAA="}}
 *
 * `data` holds numbers (int64 also as decimal strings, beyond 2^53; floats
 * also as "NaN", "Infinity", "-Infinity"; bool as true/false or 0/1);
 * `dataBase64` holds the little-endian bytes of the typed array, for large
 * tensors: base64 text in JSON, the bytes themselves (a bin) in the binary
 * (MessagePack) frames of src/api/frames.ts. In memory those bytes are a
 * `TensorBytes` view over the typed array, which JSON writes as base64, so
 * one value serves both framings without a copy. Decoding is hand-written rather than a Schema decode: requests
 * carry thousands of numbers and this runs on every one of them.
 *
 * Every check here is one linear pass without recursion and never throws:
 * a request is anyone's input. (A regular expression over a many-megabyte
 * base64 string overflows V8's backtracking stack and throws a RangeError;
 * `JSON.stringify` of a deeply nested value, quoted in an error message,
 * overflows the call stack.) Typed arrays are allocated only after the
 * sizes are checked, and an allocation the process cannot make is the
 * typed `TooLarge`.
 */
import { Buffer } from "node:buffer"
import { Either, Schema } from "effect"

export const ELEM_TYPES = ["float32", "float64", "int32", "int64", "uint8", "bool"] as const
export type ElemType = (typeof ELEM_TYPES)[number]
export const ElemType = Schema.Literal(...ELEM_TYPES)

export interface TensorArrays {
  readonly float32: Float32Array
  readonly float64: Float64Array
  readonly int32: Int32Array
  readonly int64: BigInt64Array
  readonly uint8: Uint8Array
  readonly bool: Uint8Array
}

/** A tensor in memory: row-major data in the typed array of its element type. */
export type Tensor = {
  readonly [K in ElemType]: { readonly type: K; readonly dims: ReadonlyArray<number>; readonly data: TensorArrays[K] }
}[ElemType]

export type TensorMap = Readonly<Record<string, Tensor>>

export const ELEM_BYTES: Readonly<Record<ElemType, number>> = {
  float32: 4,
  float64: 8,
  int32: 4,
  int64: 8,
  uint8: 1,
  bool: 1
}

/** The wire form of `dataBase64` is little-endian; so is every platform onnxruntime-node ships for. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1

/** Ranks beyond this are not a real model's. */
export const RANK_MAX = 32

/** The product of `dims`, or `Infinity` once it passes `max`. */
export const elementCount = (dims: ReadonlyArray<number>, max = Number.MAX_SAFE_INTEGER): number => {
  let n = 1
  for (const d of dims) {
    n *= d
    if (n > max) return Infinity
  }
  return n
}

export const isFloatType = (type: ElemType): type is "float32" | "float64" => type === "float32" || type === "float64"

/** How many elements are NaN or ±Infinity (0 for integer tensors). */
export const nonFiniteCount = (t: Tensor): number => {
  if (t.type !== "float32" && t.type !== "float64") return 0
  let n = 0
  const data = t.data
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) n++
  return n
}

export const allocate = <K extends ElemType>(type: K, length: number): TensorArrays[K] => {
  switch (type) {
    case "float32":
      return new Float32Array(length) as TensorArrays[K]
    case "float64":
      return new Float64Array(length) as TensorArrays[K]
    case "int32":
      return new Int32Array(length) as TensorArrays[K]
    case "int64":
      return new BigInt64Array(length) as TensorArrays[K]
    default:
      return new Uint8Array(length) as TensorArrays[K]
  }
}

// ---------------------------------------------------------------- JSON schema

const JsonScalar = Schema.Union(Schema.Number, Schema.String, Schema.Boolean)

/** One tensor on the wire (for typing and documentation; `decodeTensorMapJson` does the checking). */
export const TensorJson = Schema.Struct({
  type: ElemType,
  dims: Schema.Array(Schema.NonNegativeInt),
  data: Schema.optional(Schema.Array(JsonScalar)),
  dataBase64: Schema.optional(Schema.String)
})
export type TensorJson = typeof TensorJson.Type

export const TensorMapJson = Schema.Record({ key: Schema.String, value: TensorJson })
export type TensorMapJson = typeof TensorMapJson.Type

export class TensorJsonError extends Schema.TaggedError<TensorJsonError>()("TensorJsonError", {
  reason: Schema.Literal("NotAnObject", "BadType", "BadDims", "TooLarge", "BadData", "DataLength", "BadBase64"),
  input: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return this.input === "" ? this.detail : `input "${this.input}": ${this.detail}`
  }
}

export interface TensorJsonLimits {
  /** Elements per tensor. */
  readonly elementsMax: number
}

export const DEFAULT_TENSOR_JSON_LIMITS: TensorJsonLimits = { elementsMax: 1 << 26 }

const INT64_DECIMAL = /^-?\d{1,19}$/
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const INT32_MIN = -(2 ** 31)
const INT32_MAX = 2 ** 31 - 1

/** Standard padded base64 (RFC 4648 §4), in one pass over the characters. */
export const isStandardBase64 = (s: string): boolean => {
  const n = s.length
  if (n % 4 !== 0) return false
  let pad = 0
  if (n > 0 && s.charCodeAt(n - 1) === 61) pad = n > 1 && s.charCodeAt(n - 2) === 61 ? 2 : 1
  for (let i = 0; i < n - pad; i++) {
    const c = s.charCodeAt(i)
    const ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47
    if (!ok) return false
  }
  return true
}

/**
 * The bytes of standard padded base64, or undefined when it is not. Node's
 * decoder skips characters outside the alphabet, so what it decoded is
 * checked by encoding it back (native code, ~1 ms per MiB): the same text
 * means the same base64. Only text that differs (hostile, or with stray bits
 * in its last character, which the standard allows) pays the character scan
 * in JavaScript (~5 ms per MiB).
 */
export const decodeStandardBase64 = (s: string): Uint8Array | undefined => {
  const raw = Buffer.from(s, "base64")
  if (raw.toString("base64") === s) return raw
  return isStandardBase64(s) ? raw : undefined
}

/** A short description of any JSON value for an error message: bounded, never recursive. */
export const describeJson = (u: unknown): string => {
  if (u === undefined) return "nothing"
  if (u === null || typeof u === "number" || typeof u === "boolean") return String(u)
  if (typeof u === "string") return u.length <= 40 ? JSON.stringify(u) : `${JSON.stringify(u.slice(0, 40))}… (${u.length} characters)`
  if (Array.isArray(u)) return `an array of ${u.length}`
  return typeof u === "object" ? "an object" : typeof u
}

/** Allocates after the size checks; a process out of memory answers `undefined`, not a throw. */
const tryAllocate = (type: ElemType, length: number): TensorArrays[ElemType] | undefined => {
  try {
    return allocate(type, length)
  } catch {
    return undefined
  }
}

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const typeName = (u: unknown): string => (u === null ? "null" : Array.isArray(u) ? "array" : typeof u)

const jsonFloat = (v: unknown): number | undefined => {
  if (typeof v === "number") return v
  if (v === "NaN") return NaN
  if (v === "Infinity") return Infinity
  if (v === "-Infinity") return -Infinity
  return undefined
}

/** Fills `out` from JSON values; the index of the first bad value, or -1. */
const fillFromJson = (type: ElemType, values: ReadonlyArray<unknown>, out: TensorArrays[ElemType]): number => {
  switch (type) {
    case "float32":
    case "float64": {
      const a = out as Float32Array | Float64Array
      for (let i = 0; i < values.length; i++) {
        const v = values[i]
        const x = typeof v === "number" ? v : jsonFloat(v)
        if (x === undefined) return i
        a[i] = x
      }
      return -1
    }
    case "int32": {
      const a = out as Int32Array
      for (let i = 0; i < values.length; i++) {
        const v = values[i]
        if (typeof v !== "number" || !Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) return i
        a[i] = v
      }
      return -1
    }
    case "int64": {
      const a = out as BigInt64Array
      for (let i = 0; i < values.length; i++) {
        const v = values[i]
        if (typeof v === "number") {
          if (!Number.isSafeInteger(v)) return i
          a[i] = BigInt(v)
        } else if (typeof v === "string" && INT64_DECIMAL.test(v)) {
          const b = BigInt(v)
          if (b < INT64_MIN || b > INT64_MAX) return i
          a[i] = b
        } else return i
      }
      return -1
    }
    case "uint8": {
      const a = out as Uint8Array
      for (let i = 0; i < values.length; i++) {
        const v = values[i]
        if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 255) return i
        a[i] = v
      }
      return -1
    }
    case "bool": {
      const a = out as Uint8Array
      for (let i = 0; i < values.length; i++) {
        const v = values[i]
        if (v === true || v === 1) a[i] = 1
        else if (v === false || v === 0) a[i] = 0
        else return i
      }
      return -1
    }
  }
}

const expectedValue: Readonly<Record<ElemType, string>> = {
  float32: `a number or "NaN", "Infinity", "-Infinity"`,
  float64: `a number or "NaN", "Infinity", "-Infinity"`,
  int32: "an integer in the int32 range",
  int64: "a safe integer or a decimal string in the int64 range",
  uint8: "an integer 0..255",
  bool: "true, false, 0 or 1"
}

const decodeOne = (
  name: string,
  json: unknown,
  limits: TensorJsonLimits
): Either.Either<Tensor, TensorJsonError> => {
  const fail = (reason: TensorJsonError["reason"], detail: string) =>
    Either.left(new TensorJsonError({ reason, input: name, detail }))
  if (!isRecord(json)) return fail("NotAnObject", `expected {"type", "dims", "data" | "dataBase64"}, got ${typeName(json)}`)
  const type = json["type"]
  if (typeof type !== "string" || !(ELEM_TYPES as ReadonlyArray<string>).includes(type)) {
    return fail("BadType", `"type" must be one of ${ELEM_TYPES.join(", ")}, got ${describeJson(type)}`)
  }
  const elemType = type as ElemType
  const dims = json["dims"]
  if (!Array.isArray(dims) || dims.length > RANK_MAX) {
    return fail("BadDims", `"dims" must be an array of at most ${RANK_MAX} non-negative integers`)
  }
  for (const d of dims) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      return fail("BadDims", `"dims" must hold non-negative integers, got ${describeJson(d)}`)
    }
  }
  const count = elementCount(dims as ReadonlyArray<number>, limits.elementsMax)
  if (count > limits.elementsMax) {
    return fail("TooLarge", `dims [${dims.join(", ")}] exceed ${limits.elementsMax} elements`)
  }
  const data = json["data"]
  const base64 = json["dataBase64"]
  if ((data === undefined) === (base64 === undefined)) return fail("BadData", `give exactly one of "data" and "dataBase64"`)
  if (data !== undefined) {
    if (!Array.isArray(data)) return fail("BadData", `"data" must be an array, got ${typeName(data)}`)
    if (data.length !== count) {
      return fail("DataLength", `dims [${dims.join(", ")}] need ${count} values, "data" has ${data.length}`)
    }
    const out = tryAllocate(elemType, count)
    if (out === undefined) return fail("TooLarge", `cannot allocate ${count} ${elemType} elements now`)
    const bad = fillFromJson(elemType, data, out)
    if (bad >= 0) {
      return fail("BadData", `data[${bad}] = ${describeJson(data[bad])} is not ${expectedValue[elemType]}`)
    }
    return Either.right({ type: elemType, dims: dims as ReadonlyArray<number>, data: out } as Tensor)
  }
  const bytes = count * ELEM_BYTES[elemType]
  if (base64 instanceof Uint8Array) return fromBytes(name, elemType, dims as ReadonlyArray<number>, bytes, base64)
  if (typeof base64 !== "string" || base64.length % 4 !== 0) {
    return fail("BadBase64", `"dataBase64" must be standard padded base64`)
  }
  // The length says the byte count before anything is decoded: 4 characters per 3 bytes, padded.
  const encodedBytes = (base64.length / 4) * 3 - (base64.endsWith("==") ? 2 : base64.endsWith("=") ? 1 : 0)
  if (encodedBytes !== bytes) {
    // Said as before: characters outside the alphabet first (the scan runs only on a refusal).
    if (!isStandardBase64(base64)) return fail("BadBase64", `"dataBase64" must be standard padded base64`)
    return fail("DataLength", `dims [${dims.join(", ")}] need ${bytes} bytes of ${elemType}, "dataBase64" has ${encodedBytes}`)
  }
  const raw = decodeStandardBase64(base64)
  if (raw === undefined) return fail("BadBase64", `"dataBase64" must be standard padded base64`)
  return fromBytes(name, elemType, dims as ReadonlyArray<number>, bytes, raw)
}

/**
 * A tensor from its little-endian bytes (decoded base64, or a binary frame's
 * bin): the size checked, then copied once into an aligned typed array of
 * its own (a frame's bytes may sit at any offset, and are not kept alive).
 */
const fromBytes = (
  name: string,
  elemType: ElemType,
  dims: ReadonlyArray<number>,
  bytes: number,
  raw: Uint8Array
): Either.Either<Tensor, TensorJsonError> => {
  const fail = (reason: TensorJsonError["reason"], detail: string) =>
    Either.left(new TensorJsonError({ reason, input: name, detail }))
  if (raw.byteLength !== bytes) {
    return fail("DataLength", `dims [${dims.join(", ")}] need ${bytes} bytes of ${elemType}, "dataBase64" has ${raw.byteLength}`)
  }
  if (!LITTLE_ENDIAN) return fail("BadBase64", "this machine is big-endian; dataBase64 is little-endian")
  const out = tryAllocate(elemType, bytes / ELEM_BYTES[elemType])
  if (out === undefined) return fail("TooLarge", `cannot allocate ${bytes / ELEM_BYTES[elemType]} ${elemType} elements now`)
  new Uint8Array(out.buffer).set(raw)
  if (elemType === "bool") {
    for (let i = 0; i < out.length; i++) {
      if (out[i]! > 1) return fail("BadData", `bool element ${i} is byte ${out[i]}, not 0 or 1`)
    }
  }
  return Either.right({ type: elemType, dims, data: out } as Tensor)
}

/** Decodes and checks the JSON form of named tensors (already parsed from JSON text). */
export const decodeTensorMapJson = (
  json: unknown,
  limits: TensorJsonLimits = DEFAULT_TENSOR_JSON_LIMITS
): Either.Either<TensorMap, TensorJsonError> => {
  if (!isRecord(json)) {
    return Either.left(new TensorJsonError({ reason: "NotAnObject", input: "", detail: `expected an object of named tensors, got ${typeName(json)}` }))
  }
  // fromEntries defines own properties: a tensor named "__proto__" stays a tensor.
  const entries: Array<[string, Tensor]> = []
  for (const name of Object.keys(json)) {
    const t = decodeOne(name, json[name], limits)
    if (Either.isLeft(t)) return Either.left(t.left)
    entries.push([name, t.right])
  }
  return Either.right(Object.fromEntries(entries))
}

const jsonValues = (t: Tensor): Array<number | string | boolean> => {
  switch (t.type) {
    case "float32":
    case "float64": {
      const out = new Array<number | string>(t.data.length)
      for (let i = 0; i < t.data.length; i++) {
        const x = t.data[i]!
        out[i] = Number.isFinite(x) ? x : Number.isNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity"
      }
      return out
    }
    case "int64": {
      const out = new Array<number | string>(t.data.length)
      for (let i = 0; i < t.data.length; i++) {
        const b = t.data[i]!
        const n = Number(b)
        out[i] = Number.isSafeInteger(n) ? n : b.toString()
      }
      return out
    }
    case "bool":
      return Array.from(t.data, (b) => b !== 0)
    default:
      return Array.from(t.data)
  }
}

/** Tensors with this many elements or more go out as `dataBase64`. */
export const BASE64_ELEMENTS_MIN = 4096

/** The JSON form of one tensor: `data` for small ones, `dataBase64` from `base64ElementsMin` elements. */
export const tensorToJson = (t: Tensor, base64ElementsMin = BASE64_ELEMENTS_MIN): TensorJson => {
  if (t.data.length < base64ElementsMin) return { type: t.type, dims: [...t.dims], data: jsonValues(t) }
  const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)
  return { type: t.type, dims: [...t.dims], dataBase64: bytes.toString("base64") }
}

export const tensorMapToJson = (tensors: TensorMap, base64ElementsMin = BASE64_ELEMENTS_MIN): TensorMapJson => {
  return Object.fromEntries(Object.keys(tensors).map((name) => [name, tensorToJson(tensors[name]!, base64ElementsMin)]))
}

/**
 * A tensor's bytes as they travel: a view over its typed array (no copy).
 * MessagePack writes any typed array as a bin; JSON calls `toJSON`, so the
 * JSON doors still say base64 text, exactly as `tensorToJson` would.
 */
export class TensorBytes extends Uint8Array {
  /** The bytes under a typed array, shared (a tensor's buffer is never a SharedArrayBuffer). */
  static viewOf(a: ArrayBufferView): TensorBytes {
    return new TensorBytes(a.buffer as ArrayBuffer, a.byteOffset, a.byteLength)
  }

  toJSON(): string {
    return Buffer.from(this.buffer, this.byteOffset, this.byteLength).toString("base64")
  }
}

/** A tensor as it leaves a node or a worker: `data` for small ones, `dataBase64` as `TensorBytes` from `base64ElementsMin` elements. */
export const tensorToWire = (t: Tensor, base64ElementsMin = BASE64_ELEMENTS_MIN): unknown =>
  t.data.length < base64ElementsMin
    ? { type: t.type, dims: [...t.dims], data: jsonValues(t) }
    : { type: t.type, dims: [...t.dims], dataBase64: TensorBytes.viewOf(t.data) }

/** Named tensors as they travel (see `tensorToWire`); decoded by `decodeTensorMapJson`. */
export const tensorMapToWire = (tensors: TensorMap, base64ElementsMin = BASE64_ELEMENTS_MIN): Readonly<Record<string, unknown>> => {
  const out: Record<string, unknown> = {}
  for (const name of Object.keys(tensors)) {
    Object.defineProperty(out, name, { value: tensorToWire(tensors[name]!, base64ElementsMin), enumerable: true, writable: true, configurable: true })
  }
  return out
}

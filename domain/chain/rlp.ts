/**
 * Recursive Length Prefix (Ethereum Yellow Paper, appendix B), canonical
 * only. Encoding is total; decoding rejects every non-canonical form so that
 * one value has exactly one encoding and hashes over RLP are unambiguous:
 * a single byte < 0x80 wrapped as a string, long forms for short payloads,
 * lengths with leading zeros, truncated input and trailing bytes.
 */
import { Either, Schema } from "effect"

/** What can be encoded: bytes, unsigned integers (minimal big-endian, 0 → empty) and lists. */
export type RlpInput = Uint8Array | bigint | ReadonlyArray<RlpInput>
/** What decoding yields: integers come back as bytes; use `rlpToBigInt`. */
export type RlpItem = Uint8Array | ReadonlyArray<RlpItem>

/** "If a string is 0-55 bytes long, the RLP encoding consists of a single byte with value 0x80 plus the length". */
const SHORT_LENGTH_MAX = 55
const STRING_OFFSET = 0x80
const LONG_STRING_OFFSET = 0xb7 // 0x80 + 55
const LIST_OFFSET = 0xc0
const LONG_LIST_OFFSET = 0xf7 // 0xc0 + 55
/** Lengths are at most 8 bytes in RLP; we hold them below 2^53 anyway. */
const LENGTH_BYTES_MAX = 6

export class RlpError extends Schema.TaggedError<RlpError>()("RlpError", {
  reason: Schema.Literal(
    "Empty",
    "Truncated",
    "TrailingBytes",
    "NonCanonicalSingleByte",
    "NonCanonicalLength",
    "LengthTooLarge",
    "ExpectedBytes",
    "ExpectedList",
    "LeadingZero",
    "IntegerTooLarge"
  ),
  offset: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.reason} at byte ${this.offset}: ${this.detail}`
  }
}

// ---------------------------------------------------------------- encode

export const bigIntToBytes = (n: bigint): Uint8Array => {
  if (n < 0n) throw new RangeError(`RLP encodes unsigned integers only, got ${n}`) // a caller bug
  if (n === 0n) return new Uint8Array(0)
  let hex = n.toString(16)
  if (hex.length % 2 === 1) hex = "0" + hex
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return out
}

const lengthBytes = (length: number): Uint8Array => bigIntToBytes(BigInt(length))

const header = (length: number, shortOffset: number, longOffset: number): Uint8Array => {
  if (length <= SHORT_LENGTH_MAX) return Uint8Array.of(shortOffset + length)
  const lb = lengthBytes(length)
  const out = new Uint8Array(1 + lb.length)
  out[0] = longOffset + lb.length
  out.set(lb, 1)
  return out
}

const collect = (input: RlpInput, out: Array<Uint8Array>): number => {
  if (typeof input === "bigint") return collect(bigIntToBytes(input), out)
  if (input instanceof Uint8Array) {
    if (input.length === 1 && input[0]! < STRING_OFFSET) {
      out.push(input)
      return 1
    }
    const h = header(input.length, STRING_OFFSET, LONG_STRING_OFFSET)
    out.push(h, input)
    return h.length + input.length
  }
  const slot = out.length
  out.push(new Uint8Array(0)) // the list header, filled in once the payload length is known
  let payload = 0
  for (const item of input as ReadonlyArray<RlpInput>) payload += collect(item, out)
  const h = header(payload, LIST_OFFSET, LONG_LIST_OFFSET)
  out[slot] = h
  return h.length + payload
}

export const encodeRlp = (input: RlpInput): Uint8Array => {
  const parts: Array<Uint8Array> = []
  const total = collect(input, parts)
  const out = new Uint8Array(total)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

// ---------------------------------------------------------------- decode

const fail = (reason: RlpError["reason"], offset: number, detail: string) =>
  Either.left(new RlpError({ reason, offset, detail }))

interface Span {
  readonly isList: boolean
  readonly start: number // first payload byte
  readonly end: number // one past the last payload byte
}

const readLength = (bytes: Uint8Array, offset: number, count: number): Either.Either<number, RlpError> => {
  if (count > LENGTH_BYTES_MAX) return fail("LengthTooLarge", offset, `${count}-byte length`)
  if (offset + 1 + count > bytes.length) return fail("Truncated", offset, `length needs ${count} bytes`)
  if (bytes[offset + 1] === 0) return fail("NonCanonicalLength", offset, "length has a leading zero")
  let length = 0
  for (let i = 0; i < count; i++) length = length * 256 + bytes[offset + 1 + i]!
  if (length <= SHORT_LENGTH_MAX) return fail("NonCanonicalLength", offset, `long form for a ${length}-byte payload`)
  return Either.right(length)
}

const readSpan = (bytes: Uint8Array, offset: number, limit: number): Either.Either<Span, RlpError> => {
  const prefix = bytes[offset]!
  let isList = false
  let start = offset + 1
  let length: number
  if (prefix < STRING_OFFSET) return Either.right({ isList, start: offset, end: offset + 1 })
  if (prefix <= LONG_STRING_OFFSET) {
    length = prefix - STRING_OFFSET
    if (length === 1 && offset + 1 < limit && bytes[offset + 1]! < STRING_OFFSET) {
      return fail("NonCanonicalSingleByte", offset, "a byte below 0x80 must encode as itself")
    }
  } else if (prefix < LIST_OFFSET) {
    const r = readLength(bytes, offset, prefix - LONG_STRING_OFFSET)
    if (Either.isLeft(r)) return Either.left(r.left)
    length = r.right
    start += prefix - LONG_STRING_OFFSET
  } else if (prefix <= LONG_LIST_OFFSET) {
    isList = true
    length = prefix - LIST_OFFSET
  } else {
    isList = true
    const r = readLength(bytes, offset, prefix - LONG_LIST_OFFSET)
    if (Either.isLeft(r)) return Either.left(r.left)
    length = r.right
    start += prefix - LONG_LIST_OFFSET
  }
  if (start + length > limit) return fail("Truncated", offset, `payload of ${length} bytes runs past its container`)
  return Either.right({ isList, start, end: start + length })
}

const decodeAt = (bytes: Uint8Array, offset: number, limit: number): Either.Either<[RlpItem, number], RlpError> => {
  if (offset >= limit) return fail("Truncated", offset, "expected an item")
  const span = readSpan(bytes, offset, limit)
  if (Either.isLeft(span)) return Either.left(span.left)
  const { isList, start, end } = span.right
  if (!isList) return Either.right([bytes.subarray(start, end), end])
  const items: Array<RlpItem> = []
  let cursor = start
  while (cursor < end) {
    const r = decodeAt(bytes, cursor, end)
    if (Either.isLeft(r)) return Either.left(r.left)
    items.push(r.right[0])
    cursor = r.right[1]
  }
  return Either.right([items, end])
}

/** Decode exactly one item that spans all of `bytes`. Byte items are views into `bytes`. */
export const decodeRlp = (bytes: Uint8Array): Either.Either<RlpItem, RlpError> => {
  if (bytes.length === 0) return fail("Empty", 0, "no input")
  const r = decodeAt(bytes, 0, bytes.length)
  if (Either.isLeft(r)) return Either.left(r.left)
  const [item, end] = r.right
  if (end !== bytes.length) return fail("TrailingBytes", end, `${bytes.length - end} bytes after the item`)
  return Either.right(item)
}

// ---------------------------------------------------------------- typed readers

export const rlpBytes = (item: RlpItem, what: string): Either.Either<Uint8Array, RlpError> =>
  item instanceof Uint8Array ? Either.right(item) : fail("ExpectedBytes", 0, `${what} must be a byte string`)

export const rlpList = (item: RlpItem, what: string): Either.Either<ReadonlyArray<RlpItem>, RlpError> =>
  item instanceof Uint8Array ? fail("ExpectedList", 0, `${what} must be a list`) : Either.right(item)

/** An unsigned integer: minimal big-endian (no leading zero byte), at most `bytesMax` bytes. */
export const rlpToBigInt = (item: RlpItem, what: string, bytesMax: number): Either.Either<bigint, RlpError> => {
  if (!(item instanceof Uint8Array)) return fail("ExpectedBytes", 0, `${what} must be an integer`)
  if (item.length > bytesMax) return fail("IntegerTooLarge", 0, `${what} has ${item.length} bytes, max ${bytesMax}`)
  if (item.length > 0 && item[0] === 0) return fail("LeadingZero", 0, `${what} has a leading zero byte`)
  let n = 0n
  for (const b of item) n = (n << 8n) | BigInt(b)
  return Either.right(n)
}

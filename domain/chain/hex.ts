/**
 * Bytes and 0x-hex. The chain's canonical hex is lowercase with a `0x`
 * prefix; parsing is strict (no missing prefix, odd length or stray
 * characters) so one value never has two spellings on the wire.
 */
import { Either, ParseResult, Schema } from "effect"

const HEX_PREFIX = "0x"
const HEX_DIGITS = "0123456789abcdef"
const BYTE_TO_HEX: ReadonlyArray<string> = Array.from(
  { length: 256 },
  (_, b) => HEX_DIGITS[b >> 4]! + HEX_DIGITS[b & 0xf]!
)

export class HexError extends Schema.TaggedError<HexError>()("HexError", {
  reason: Schema.Literal("MissingPrefix", "OddLength", "InvalidCharacter", "WrongLength"),
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}

export const bytesToHex = (bytes: Uint8Array): string => {
  let out = HEX_PREFIX
  for (const b of bytes) out += BYTE_TO_HEX[b]!
  return out
}

const nibble = (code: number): number => {
  if (code >= 48 && code <= 57) return code - 48 // 0-9
  if (code >= 97 && code <= 102) return code - 87 // a-f
  return -1 // uppercase is rejected: lowercase is the one canonical spelling
}

/** Parse `0x`-prefixed lowercase hex; `length` (bytes) is checked when given. */
export const hexToBytes = (hex: string, length?: number): Either.Either<Uint8Array, HexError> => {
  if (!hex.startsWith(HEX_PREFIX)) {
    return Either.left(new HexError({ reason: "MissingPrefix", detail: `expected 0x prefix in ${preview(hex)}` }))
  }
  const digits = hex.length - HEX_PREFIX.length
  if (digits % 2 !== 0) {
    return Either.left(new HexError({ reason: "OddLength", detail: `${digits} hex digits in ${preview(hex)}` }))
  }
  const out = new Uint8Array(digits / 2)
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(hex.charCodeAt(HEX_PREFIX.length + 2 * i))
    const lo = nibble(hex.charCodeAt(HEX_PREFIX.length + 2 * i + 1))
    if (hi < 0 || lo < 0) {
      return Either.left(
        new HexError({ reason: "InvalidCharacter", detail: `not lowercase hex at byte ${i} of ${preview(hex)}` })
      )
    }
    out[i] = (hi << 4) | lo
  }
  if (length !== undefined && out.length !== length) {
    return Either.left(new HexError({ reason: "WrongLength", detail: `expected ${length} bytes, got ${out.length}` }))
  }
  return Either.right(out)
}

const PREVIEW_CHARS_MAX = 24
const preview = (s: string): string => (s.length > PREVIEW_CHARS_MAX ? `${s.slice(0, PREVIEW_CHARS_MAX)}…` : s)

export const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export const concatBytes = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  let length = 0
  for (const p of parts) length += p.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

const utf8Encoder = new TextEncoder()
export const utf8 = (s: string): Uint8Array => utf8Encoder.encode(s)

/** `0x` + lowercase hex of exactly `length` bytes, as a string (the in-memory form of hashes and keys). */
export const fixedHex = (length: number) =>
  Schema.String.pipe(Schema.pattern(new RegExp(`^0x[0-9a-f]{${2 * length}}$`)))

/** Any-length canonical hex string. */
export const HexString = Schema.String.pipe(Schema.pattern(/^0x(?:[0-9a-f]{2})*$/))

/** Bytes in memory, canonical hex on the wire. */
export const BytesFromHex = Schema.transformOrFail(HexString, Schema.Uint8ArrayFromSelf, {
  strict: true,
  decode: (hex, _, ast) =>
    Either.mapLeft(hexToBytes(hex), (e) => new ParseResult.Type(ast, hex, e.message)),
  encode: (bytes) => ParseResult.succeed(bytesToHex(bytes))
})

/**
 * Protocol Buffers wire format, decode side only, strict
 * (https://protobuf.dev/programming-guides/encoding/).
 *
 * A `WireReader` walks one buffer with a stack of length limits, as
 * protobuf's CodedInputStream does: entering a length-delimited field pushes
 * its end as the limit, and no read may cross the limit. Errors are sticky:
 * the first one is kept in `error`, every later read returns a zero value and
 * `more()` turns false, so message loops end at once and the caller checks
 * `error` once at the end. Nothing throws, nothing allocates per read except
 * strings and the views callers ask for.
 *
 * Strict means: truncated input, a length past the enclosing limit, wire
 * types 3, 4, 6 and 7 (groups are deprecated; 6 and 7 do not exist), field
 * number 0, and a varint longer than 10 bytes or one whose 10th byte carries
 * bits past 64 are typed errors. Non-minimal varints (0x80 0x00 for 0) are
 * accepted, as every protobuf parser accepts them.
 */
import { Either, Schema } from "effect"

/** "wire type" values, https://protobuf.dev/programming-guides/encoding/#structure */
export const WireType = {
  Varint: 0,
  Fixed64: 1,
  LengthDelimited: 2,
  StartGroup: 3,
  EndGroup: 4,
  Fixed32: 5
} as const
export type WireType = (typeof WireType)[keyof typeof WireType]

/** "varints ... can take up to 10 bytes" (a 64-bit value in 7-bit groups). */
export const VARINT_BYTES_MAX = 10
/** "The smallest field number you can specify is 1, and the largest is 2^29 - 1". */
export const FIELD_NUMBER_MAX = 2 ** 29 - 1

export class ProtobufError extends Schema.TaggedError<ProtobufError>()("ProtobufError", {
  reason: Schema.Literal(
    "Truncated",
    "VarintTooLong",
    "BadWireType",
    "BadFieldNumber",
    "UnexpectedWireType",
    "TooDeep",
    "RepeatedField"
  ),
  offset: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.reason} at byte ${this.offset}: ${this.detail}`
  }
}

const TWO_POW_32 = 4294967296
const utf8Decoder = new TextDecoder("utf-8")

/** The singular fields of one message seen so far (field numbers below 53, as bits of a number). */
export class SingularFields {
  mask = 0
}

export class WireReader {
  /** Next byte to read. */
  pos: number
  /** One past the last byte of the innermost message being read. */
  limit: number
  /** The first failure; once set, reads return zero values and `more()` is false. */
  error: ProtobufError | undefined = undefined
  /** Field number and wire type of the tag `tag()` read last. */
  field = 0
  wire = 0
  // The two 32-bit halves of the last varint (unsigned).
  private lo = 0
  private hi = 0
  private readonly view: DataView

  constructor(readonly bytes: Uint8Array) {
    this.pos = 0
    this.limit = bytes.length
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  /** Whether another field remains in the current message (and nothing failed). */
  more(): boolean {
    return this.error === undefined && this.pos < this.limit
  }

  fail(reason: ProtobufError["reason"], detail: string, offset = this.pos): void {
    if (this.error === undefined) this.error = new ProtobufError({ reason, offset, detail })
    this.pos = this.limit
  }

  /** Reads a tag into `field` and `wire`; false (with `error` set) on a bad one. */
  tag(): boolean {
    const start = this.pos
    if (!this.readVarint()) return false
    const wire = this.lo & 7
    const field = this.hi === 0 ? this.lo >>> 3 : -1
    if (field < 1 || field > FIELD_NUMBER_MAX) {
      this.fail("BadFieldNumber", `field number ${field < 0 ? "past 2^32" : field}`, start)
      return false
    }
    if (wire === WireType.StartGroup || wire === WireType.EndGroup || wire > WireType.Fixed32) {
      this.fail("BadWireType", `wire type ${wire} on field ${field}`, start)
      return false
    }
    this.field = field
    this.wire = wire
    return true
  }

  /** Fails unless the last tag's wire type is `wire`. */
  expect(wire: WireType): boolean {
    if (this.wire === wire) return true
    this.fail("UnexpectedWireType", `field ${this.field} has wire type ${this.wire}, expected ${wire}`)
    return false
  }

  private readVarint(): boolean {
    const bytes = this.bytes
    const start = this.pos
    let pos = start
    let lo = 0
    let hi = 0
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (pos >= this.limit) {
        this.fail("Truncated", "varint runs past the end", start)
        return false
      }
      const b = bytes[pos++]!
      if (i < 4) lo |= (b & 0x7f) << (7 * i)
      else if (i === 4) {
        lo |= (b & 0x0f) << 28
        hi = (b & 0x7f) >>> 4
      } else hi |= (b & 0x7f) << (7 * i - 32)
      if (b < 0x80) {
        if (i === VARINT_BYTES_MAX - 1 && b > 1) {
          this.fail("VarintTooLong", "varint overflows 64 bits", start)
          return false
        }
        this.pos = pos
        this.lo = lo >>> 0
        this.hi = hi >>> 0
        return true
      }
    }
    this.fail("VarintTooLong", `varint longer than ${VARINT_BYTES_MAX} bytes`, start)
    return false
  }

  /** uint64 as a bigint. */
  uint64(): bigint {
    if (!this.readVarint()) return 0n
    return (BigInt(this.hi) << 32n) | BigInt(this.lo)
  }

  /** int64 (two's complement) as a bigint. */
  int64(): bigint {
    return BigInt.asIntN(64, this.uint64())
  }

  /** int64 as a number: exact within ±2^53, the nearest double beyond (fine for limits and sizes). */
  int64Number(): number {
    if (!this.readVarint()) return 0
    if ((this.hi & 0x80000000) === 0) return this.hi * TWO_POW_32 + this.lo
    return -((~this.hi >>> 0) * TWO_POW_32 + (~this.lo >>> 0) + 1)
  }

  /** int32 or an enum: the low 32 bits, signed (negative int32s are sign-extended to 10 bytes on the wire). */
  int32(): number {
    if (!this.readVarint()) return 0
    return this.lo | 0
  }

  /** uint32: the low 32 bits. */
  uint32(): number {
    if (!this.readVarint()) return 0
    return this.lo
  }

  bool(): boolean {
    if (!this.readVarint()) return false
    return this.lo !== 0 || this.hi !== 0
  }

  private need(n: number, what: string): boolean {
    if (this.error !== undefined) return false
    if (this.limit - this.pos < n) {
      this.fail("Truncated", `${what} needs ${n} bytes, ${this.limit - this.pos} left`)
      return false
    }
    return true
  }

  fixed32(): number {
    if (!this.need(4, "fixed32")) return 0
    const v = this.view.getUint32(this.pos, true)
    this.pos += 4
    return v
  }

  float(): number {
    if (!this.need(4, "float")) return 0
    const v = this.view.getFloat32(this.pos, true)
    this.pos += 4
    return v
  }

  fixed64(): bigint {
    if (!this.need(8, "fixed64")) return 0n
    const v = this.view.getBigUint64(this.pos, true)
    this.pos += 8
    return v
  }

  double(): number {
    if (!this.need(8, "double")) return 0
    const v = this.view.getFloat64(this.pos, true)
    this.pos += 8
    return v
  }

  /** The length prefix of a length-delimited field, checked against the current limit. */
  private length(): number {
    const start = this.pos
    if (!this.readVarint()) return -1
    const left = this.limit - this.pos
    if (this.hi !== 0 || this.lo > left) {
      this.fail("Truncated", `length ${this.hi !== 0 ? "≥ 2^32" : this.lo} with ${left} bytes left`, start)
      return -1
    }
    return this.lo
  }

  /** A length-delimited field's bytes, as a view into the buffer (no copy). */
  bytesView(): Uint8Array {
    const n = this.length()
    if (n < 0) return new Uint8Array(0)
    const out = this.bytes.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  /** A length-delimited field as UTF-8 text (invalid sequences become U+FFFD, as protobuf's proto2 `string`). */
  string(): string {
    const n = this.length()
    if (n <= 0) return ""
    const out = utf8Decoder.decode(this.bytes.subarray(this.pos, this.pos + n))
    this.pos += n
    return out
  }

  /**
   * Enters a length-delimited field (an embedded message or a packed
   * repeated field): returns the enclosing limit to hand back to `leave`.
   */
  enter(): number {
    const outer = this.limit
    const n = this.length()
    if (n < 0) return outer
    this.limit = this.pos + n
    return outer
  }

  /** Leaves the field `enter` entered: skips what was not read and restores the outer limit. */
  leave(outer: number): void {
    if (this.error === undefined) this.pos = this.limit
    this.limit = outer
    if (this.error !== undefined) this.pos = this.limit
  }

  /**
   * Fails (RepeatedField) unless the last tag's field is new in `seen`, the
   * singular fields of the message being read so far. Protobuf keeps the last
   * of a repeated scalar and merges a repeated message; a reader that did
   * otherwise would check one model while onnxruntime runs another, so a
   * singular field seen twice is refused instead.
   */
  once(seen: SingularFields, message: string): boolean {
    const bit = 2 ** this.field
    if (Math.floor(seen.mask / bit) % 2 === 1) {
      this.fail("RepeatedField", `singular field ${this.field} of ${message} appears more than once`)
      return false
    }
    seen.mask += bit
    return true
  }

  /** Skips the value of the last tag's field. */
  skip(): void {
    switch (this.wire) {
      case WireType.Varint:
        this.readVarint()
        return
      case WireType.Fixed64:
        if (this.need(8, "fixed64")) this.pos += 8
        return
      case WireType.LengthDelimited: {
        const n = this.length()
        if (n >= 0) this.pos += n
        return
      }
      case WireType.Fixed32:
        if (this.need(4, "fixed32")) this.pos += 4
        return
      default:
        this.fail("BadWireType", `wire type ${this.wire}`)
    }
  }

  /** The reader's outcome: `value` unless a read failed. */
  result<A>(value: A): Either.Either<A, ProtobufError> {
    return this.error === undefined ? Either.right(value) : Either.left(this.error)
  }
}

/** One field of a message as it is on the wire, without a schema. */
export type WireField =
  | { readonly field: number; readonly wire: typeof WireType.Varint; readonly value: bigint }
  | { readonly field: number; readonly wire: typeof WireType.Fixed64; readonly value: bigint }
  | { readonly field: number; readonly wire: typeof WireType.LengthDelimited; readonly value: Uint8Array }
  | { readonly field: number; readonly wire: typeof WireType.Fixed32; readonly value: number }

/** Every top-level field of a message, in order (varints as uint64). */
export const decodeWireFields = (bytes: Uint8Array): Either.Either<ReadonlyArray<WireField>, ProtobufError> => {
  const r = new WireReader(bytes)
  const out: Array<WireField> = []
  while (r.more()) {
    if (!r.tag()) break
    const field = r.field
    switch (r.wire) {
      case WireType.Varint:
        out.push({ field, wire: WireType.Varint, value: r.uint64() })
        break
      case WireType.Fixed64:
        out.push({ field, wire: WireType.Fixed64, value: r.fixed64() })
        break
      case WireType.LengthDelimited:
        out.push({ field, wire: WireType.LengthDelimited, value: r.bytesView() })
        break
      default:
        out.push({ field, wire: WireType.Fixed32, value: r.fixed32() })
    }
  }
  return r.result(out)
}

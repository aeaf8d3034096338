import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { decodeWireFields, WireReader, WireType, type WireField } from "../../domain/ai/onnx/wire.js"
import { encodeWireFields, ProtoWriter } from "./support/onnxBuilder.js"

const decodeError = (bytes: ReadonlyArray<number>) => {
  const r = decodeWireFields(Uint8Array.from(bytes))
  expect(Either.isLeft(r)).toBe(true)
  return Either.isLeft(r) ? r.left : undefined!
}

const arbField: fc.Arbitrary<WireField> = fc.oneof(
  fc.record({ field: fc.integer({ min: 1, max: 2 ** 29 - 1 }), wire: fc.constant(WireType.Varint), value: fc.bigUint(2n ** 64n - 1n) }),
  fc.record({ field: fc.integer({ min: 1, max: 2 ** 29 - 1 }), wire: fc.constant(WireType.Fixed64), value: fc.bigUint(2n ** 64n - 1n) }),
  fc.record({ field: fc.integer({ min: 1, max: 2 ** 29 - 1 }), wire: fc.constant(WireType.LengthDelimited), value: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ field: fc.integer({ min: 1, max: 2 ** 29 - 1 }), wire: fc.constant(WireType.Fixed32), value: fc.nat({ max: 2 ** 32 - 1 }) })
) as fc.Arbitrary<WireField>

describe("protobuf wire decoder", () => {
  it("decodes the spec's example: field 1 varint 150 is 08 96 01", () => {
    const r = decodeWireFields(Uint8Array.of(0x08, 0x96, 0x01))
    expect(r).toEqual(Either.right([{ field: 1, wire: 0, value: 150n }]))
  })

  it("reads int64 −1 (ten bytes) and the uint64 maximum", () => {
    const bytes = new ProtoWriter().int(1, -1).int(2, 2n ** 64n - 1n).finish()
    const r = new WireReader(bytes)
    expect(r.tag() && r.field).toBe(1)
    expect(r.int64()).toBe(-1n)
    expect(r.tag() && r.field).toBe(2)
    expect(r.uint64()).toBe(2n ** 64n - 1n)
    expect(r.error).toBeUndefined()
  })

  it("int64Number agrees with int64 within ±2^53", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 53n), max: 2n ** 53n }), (v) => {
        const r = new WireReader(new ProtoWriter().varint(v).finish())
        expect(r.int64Number()).toBe(Number(v))
      }),
      { seed: 11, numRuns: 500 }
    )
  })

  it("accepts a non-minimal varint (0x80 0x00 is 0), as protobuf does", () => {
    expect(decodeWireFields(Uint8Array.of(0x08, 0x80, 0x00))).toEqual(Either.right([{ field: 1, wire: 0, value: 0n }]))
  })

  it("rejects truncated input: a varint cut short", () => {
    expect(decodeError([0x08, 0x96]).reason).toBe("Truncated")
  })

  it("rejects truncated input: a length past the end", () => {
    const e = decodeError([0x0a, 0x05, 0x61, 0x62])
    expect(e.reason).toBe("Truncated")
    expect(e.offset).toBe(1)
  })

  it("rejects truncated input: fixed32 and fixed64 cut short", () => {
    expect(decodeError([0x0d, 1, 2, 3]).reason).toBe("Truncated")
    expect(decodeError([0x09, 1, 2, 3, 4, 5, 6, 7]).reason).toBe("Truncated")
  })

  it("rejects group wire types 3 and 4 and the non-existent 6 and 7", () => {
    for (const wire of [3, 4, 6, 7]) expect(decodeError([(1 << 3) | wire, 0]).reason).toBe("BadWireType")
  })

  it("rejects field number 0", () => {
    expect(decodeError([0x00, 0x01]).reason).toBe("BadFieldNumber")
  })

  it("rejects a varint longer than 10 bytes", () => {
    expect(decodeError([0x08, ...Array(10).fill(0xff), 0x01]).reason).toBe("VarintTooLong")
  })

  it("rejects a 10-byte varint that overflows 64 bits", () => {
    expect(decodeError([0x08, ...Array(9).fill(0xff), 0x02]).reason).toBe("VarintTooLong")
  })

  it("rejects a known field with the wrong wire type (UnexpectedWireType through expect)", () => {
    const r = new WireReader(new ProtoWriter().int(7, 1).finish())
    expect(r.tag()).toBe(true)
    expect(r.expect(WireType.LengthDelimited)).toBe(false)
    expect(r.error?.reason).toBe("UnexpectedWireType")
    expect(r.more()).toBe(false)
  })

  it("a sub-message cannot read past its own length", () => {
    // field 1 (length 2) holds a varint whose bytes continue past the sub-message
    const bytes = Uint8Array.of(0x0a, 0x02, 0x08, 0x96, 0x01)
    const r = new WireReader(bytes)
    r.tag()
    const outer = r.enter()
    r.tag()
    r.uint64()
    r.leave(outer)
    expect(r.error?.reason).toBe("Truncated")
  })

  it("property: encode then decode is the identity", () => {
    fc.assert(
      fc.property(fc.array(arbField, { maxLength: 20 }), (fields) => {
        const decoded = decodeWireFields(encodeWireFields(fields))
        expect(decoded).toEqual(Either.right(fields))
      }),
      { seed: 1, numRuns: 500 }
    )
  })

  it("property: random bytes never throw; they decode or fail with a typed error", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const r = decodeWireFields(bytes)
        if (Either.isLeft(r)) expect(r.left._tag).toBe("ProtobufError")
      }),
      { seed: 2, numRuns: 2000 }
    )
  })

  it("property: every strict prefix of a message with a length-delimited tail fails as Truncated", () => {
    fc.assert(
      fc.property(fc.array(arbField, { minLength: 1, maxLength: 8 }), fc.uint8Array({ minLength: 1, maxLength: 20 }), (fields, tail) => {
        const bytes = encodeWireFields([...fields, { field: 1, wire: WireType.LengthDelimited, value: tail }])
        const cut = bytes.length - 1 - (tail.length > 1 ? 1 : 0)
        const r = decodeWireFields(bytes.subarray(0, cut))
        expect(Either.isLeft(r) && r.left.reason).toBe("Truncated")
      }),
      { seed: 3, numRuns: 300 }
    )
  })
})

/**
 * A small protobuf writer and ONNX model builder for tests: the models the
 * tests need are generated here, byte by byte, so no tool or download is
 * involved. Field numbers are onnx.proto's (see domain/ai/onnx/model.ts).
 */
import type { WireField } from "../../../domain/ai/onnx/wire.js"

// ---------------------------------------------------------------- protobuf

export class ProtoWriter {
  private buf = new Uint8Array(256)
  private len = 0

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n))
    next.set(this.buf.subarray(0, this.len))
    this.buf = next
  }

  raw(bytes: Uint8Array): this {
    this.ensure(bytes.length)
    this.buf.set(bytes, this.len)
    this.len += bytes.length
    return this
  }

  /** An unsigned varint; negative numbers are written as their 64-bit two's complement (10 bytes). */
  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value))
    this.ensure(10)
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80
      v >>= 7n
    }
    this.buf[this.len++] = Number(v)
    return this
  }

  tag(field: number, wire: number): this {
    return this.varint((BigInt(field) << 3n) | BigInt(wire))
  }

  int(field: number, value: number | bigint): this {
    return this.tag(field, 0).varint(value)
  }

  bytes(field: number, bytes: Uint8Array): this {
    return this.tag(field, 2).varint(bytes.length).raw(bytes)
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s))
  }

  fixed32(field: number, value: number): this {
    const b = new Uint8Array(4)
    new DataView(b.buffer).setUint32(0, value >>> 0, true)
    return this.tag(field, 5).raw(b)
  }

  fixed64(field: number, value: bigint): this {
    const b = new Uint8Array(8)
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true)
    return this.tag(field, 1).raw(b)
  }

  packedInt64(field: number, values: ReadonlyArray<number | bigint>): this {
    const inner = new ProtoWriter()
    for (const v of values) inner.varint(v)
    return this.bytes(field, inner.finish())
  }

  packedFloat(field: number, values: ReadonlyArray<number>): this {
    const b = new Uint8Array(values.length * 4)
    const view = new DataView(b.buffer)
    values.forEach((v, i) => view.setFloat32(i * 4, v, true))
    return this.bytes(field, b)
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len)
  }
}

/** Encodes fields as `decodeWireFields` returns them. */
export const encodeWireFields = (fields: ReadonlyArray<WireField>): Uint8Array => {
  const w = new ProtoWriter()
  for (const f of fields) {
    switch (f.wire) {
      case 0:
        w.int(f.field, f.value)
        break
      case 1:
        w.fixed64(f.field, f.value)
        break
      case 2:
        w.bytes(f.field, f.value)
        break
      case 5:
        w.fixed32(f.field, f.value)
        break
    }
  }
  return w.finish()
}

// ---------------------------------------------------------------- ONNX

export const DT = { FLOAT: 1, UINT8: 2, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const

export interface TensorDef {
  readonly name?: string
  readonly dataType: number
  readonly dims: ReadonlyArray<number | bigint>
  readonly floats?: ReadonlyArray<number>
  readonly int64s?: ReadonlyArray<number | bigint>
  readonly raw?: Uint8Array
  readonly dataLocation?: number
  readonly externalData?: ReadonlyArray<readonly [string, string]>
}

export const tensor = (t: TensorDef): Uint8Array => {
  const w = new ProtoWriter()
  if (t.dims.length > 0) w.packedInt64(1, t.dims)
  w.int(2, t.dataType)
  if (t.floats !== undefined) w.packedFloat(4, t.floats)
  if (t.int64s !== undefined) w.packedInt64(7, t.int64s)
  if (t.name !== undefined) w.string(8, t.name)
  if (t.raw !== undefined) w.bytes(9, t.raw)
  for (const [key, value] of t.externalData ?? []) {
    w.bytes(13, new ProtoWriter().string(1, key).string(2, value).finish())
  }
  if (t.dataLocation !== undefined) w.int(14, t.dataLocation)
  return w.finish()
}

/** A tensor-typed value info; `dims` undefined leaves the shape out (unknown rank). */
export const valueInfo = (name: string, elemType: number, dims?: ReadonlyArray<number | string>): Uint8Array => {
  const tensorType = new ProtoWriter().int(1, elemType)
  if (dims !== undefined) {
    const shape = new ProtoWriter()
    for (const d of dims) {
      const dim = new ProtoWriter()
      if (typeof d === "number") dim.int(1, d)
      else if (d !== "") dim.string(2, d)
      shape.bytes(1, dim.finish())
    }
    tensorType.bytes(2, shape.finish())
  }
  const type = new ProtoWriter().bytes(1, tensorType.finish())
  return new ProtoWriter().string(1, name).bytes(2, type.finish()).finish()
}

export type AttrDef =
  | { readonly name: string; readonly f: number }
  | { readonly name: string; readonly i: number | bigint }
  | { readonly name: string; readonly s: string }
  | { readonly name: string; readonly t: TensorDef }
  | { readonly name: string; readonly g: Uint8Array }
  | { readonly name: string; readonly ints: ReadonlyArray<number> }

/** AttributeProto.AttributeType */
const ATTR_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, INTS: 7 } as const

const attribute = (a: AttrDef): Uint8Array => {
  const w = new ProtoWriter().string(1, a.name)
  if ("f" in a) w.fixed32(2, new Uint32Array(Float32Array.of(a.f).buffer)[0]!).int(20, ATTR_TYPE.FLOAT)
  else if ("i" in a) w.int(3, a.i).int(20, ATTR_TYPE.INT)
  else if ("s" in a) w.string(4, a.s).int(20, ATTR_TYPE.STRING)
  else if ("t" in a) w.bytes(5, tensor(a.t)).int(20, ATTR_TYPE.TENSOR)
  else if ("g" in a) w.bytes(6, a.g).int(20, ATTR_TYPE.GRAPH)
  else w.packedInt64(8, a.ints).int(20, ATTR_TYPE.INTS)
  return w.finish()
}

export interface NodeDef {
  readonly opType: string
  readonly inputs: ReadonlyArray<string>
  readonly outputs: ReadonlyArray<string>
  readonly name?: string
  readonly domain?: string
  readonly attributes?: ReadonlyArray<AttrDef>
}

export const node = (n: NodeDef): Uint8Array => {
  const w = new ProtoWriter()
  for (const i of n.inputs) w.string(1, i)
  for (const o of n.outputs) w.string(2, o)
  if (n.name !== undefined) w.string(3, n.name)
  w.string(4, n.opType)
  for (const a of n.attributes ?? []) w.bytes(5, attribute(a))
  if (n.domain !== undefined) w.string(7, n.domain)
  return w.finish()
}

export interface GraphDef {
  readonly name?: string
  readonly nodes: ReadonlyArray<NodeDef>
  readonly initializers?: ReadonlyArray<TensorDef>
  readonly inputs: ReadonlyArray<Uint8Array>
  readonly outputs: ReadonlyArray<Uint8Array>
  readonly valueInfo?: ReadonlyArray<Uint8Array>
}

export const graph = (g: GraphDef): Uint8Array => {
  const w = new ProtoWriter()
  for (const n of g.nodes) w.bytes(1, node(n))
  w.string(2, g.name ?? "g")
  for (const t of g.initializers ?? []) w.bytes(5, tensor(t))
  for (const i of g.inputs) w.bytes(11, i)
  for (const o of g.outputs) w.bytes(12, o)
  for (const v of g.valueInfo ?? []) w.bytes(13, v)
  return w.finish()
}

export interface ModelDef {
  readonly irVersion?: number
  readonly opsets?: ReadonlyArray<readonly [string, number]>
  readonly producerName?: string
  readonly graph: GraphDef
  /** Model-local functions as (domain, name). */
  readonly functions?: ReadonlyArray<readonly [string, string]>
}

export const model = (m: ModelDef): Uint8Array => {
  const w = new ProtoWriter().int(1, m.irVersion ?? 8)
  w.string(2, m.producerName ?? "topai-test")
  w.string(3, "1")
  w.bytes(7, graph(m.graph))
  for (const [domain, version] of m.opsets ?? [["", 17]]) {
    w.bytes(8, new ProtoWriter().string(1, domain).int(2, version).finish())
  }
  for (const [domain, name] of m.functions ?? []) {
    w.bytes(25, new ProtoWriter().string(1, name).string(10, domain).finish())
  }
  return w.finish()
}

export const floatRaw = (values: ReadonlyArray<number>): Uint8Array => new Uint8Array(Float32Array.from(values).buffer)

/**
 * The WebSocket framings of the RPC door (src/api/frames.ts), on the parser
 * a connection gets: JSON text as before, MessagePack binary frames with the
 * same size limits, answers in the framing of the connection's first frame,
 * and hostile binary frames refused with a throw (the RPC server turns it
 * into a defect answer or, for a frame over the limit, closes with 1009).
 */
import { Buffer } from "node:buffer"
import { RpcSerialization } from "@effect/rpc"
import fc from "fast-check"
import { Packr, Unpackr } from "msgpackr"
import { describe, expect, it } from "vitest"
import { TensorBytes, tensorMapToJson, tensorMapToWire } from "../../domain/ai/tensor.js"
import { clientFrames, isBinaryFrame, MSGPACK_OPTIONS, serverFrames } from "../../src/api/frames.js"
import { FRAME_BYTES_MAX, REFUSED_TAG, REQUEST_BYTES_MAX, withRequestLimits } from "../../src/api/requestLimits.js"

const server = () => serverFrames(withRequestLimits(RpcSerialization.json)).unsafeMake()
const pack = (value: unknown) => new Packr(MSGPACK_OPTIONS).pack(value)
const unpack = (bytes: Uint8Array) => new Unpackr(MSGPACK_OPTIONS).unpackMultiple(bytes)
const request = (id: string, tag: string, payload: unknown) => ({ _tag: "Request", id, tag, payload, headers: [] })
const exit = { _tag: "Exit", requestId: "1", exit: { _tag: "Success", value: { ok: true } } }

describe("RPC frames: JSON text and MessagePack binary on one WebSocket path", () => {
  it("a JSON text connection is decoded and answered in JSON text, as before", () => {
    const p = server()
    expect(p.decode(JSON.stringify(request("1", "node.status", {})))).toEqual([request("1", "node.status", {})])
    const answer = p.encode(exit)
    expect(typeof answer).toBe("string")
    expect(JSON.parse(answer as string)).toEqual(exit)
  })

  it("a binary frame that starts like JSON text is JSON (a client that sent JSON as binary keeps working)", () => {
    const p = server()
    const frame = new TextEncoder().encode(` ${JSON.stringify(request("1", "node.status", {}))}`)
    expect(isBinaryFrame(frame)).toBe(false)
    expect(p.decode(frame)).toEqual([request("1", "node.status", {})])
    expect(typeof p.encode(exit)).toBe("string")
  })

  it("a MessagePack connection is decoded and answered in binary; a tensor's bytes arrive as bytes", () => {
    const p = server()
    const bytes = Buffer.from(Float32Array.of(1.5, -2).buffer)
    const [m] = p.decode(pack(request("7", "infer", { session: "s", inputs: { x: { type: "float32", dims: [2], dataBase64: bytes } } })))
    const payload = (m as { readonly payload: { readonly inputs: { readonly x: { readonly dataBase64: Uint8Array } } } }).payload
    expect(payload.inputs.x.dataBase64).toBeInstanceOf(Uint8Array)
    expect(Buffer.from(payload.inputs.x.dataBase64).equals(bytes)).toBe(true)
    const answer = p.encode(exit)
    expect(answer).toBeInstanceOf(Uint8Array)
    expect(unpack(answer as Uint8Array)).toEqual([exit])
  })

  it("a binary request over its method's limit becomes rpc.refused with its id, before its payload reaches Schema", () => {
    const p = server()
    const limit = REQUEST_BYTES_MAX["tx.submit"]!
    const frame = pack(request("9", "tx.submit", { raw: "a".repeat(limit), wait: false }))
    expect(p.decode(frame)).toEqual([request("9", REFUSED_TAG, { method: "tx.submit", bytes: frame.byteLength, limit })])
    // Within the limit it passes as it is.
    const small = request("10", "tx.submit", { raw: "0x01", wait: false })
    expect(p.decode(pack(small))).toEqual([small])
  })

  it("a binary frame over FRAME_BYTES_MAX is refused from its size, unread", () => {
    const p = server()
    const frame = new Uint8Array(FRAME_BYTES_MAX + 1).fill(0xc0) // nil, nil, …: valid MessagePack, never decoded
    let thrown: unknown
    try {
      p.decode(frame)
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(RpcSerialization.RpcSerializationError)
    expect((thrown as RpcSerialization.RpcSerializationError).reason).toBe("BufferSizeExceeded")
  })

  it("a frame that ends inside a message is refused, and nothing of it is carried into the next frame", () => {
    const p = server()
    const whole = pack(request("1", "tx.submit", { raw: "b".repeat(1000), wait: false }))
    expect(() => p.decode(whole.subarray(0, 600))).toThrow(/whole MessagePack messages/)
    // The rest alone is not the message's tail glued back on: it decodes as what it is, or throws.
    const next = request("2", "node.status", {})
    expect(p.decode(pack(next))).toEqual([next])
  })

  it("hostile binary frames: random bytes and 100,000 nested arrays give messages or a thrown Error, never a hang or a crash", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (bytes) => {
        const p = server()
        try {
          const out = p.decode(bytes)
          expect(Array.isArray(out)).toBe(true)
        } catch (e) {
          expect(e).toBeInstanceOf(Error)
        }
      }),
      { numRuns: 500 }
    )
    const deep = new Uint8Array(100_000).fill(0x91) // [[[[…
    expect(() => server().decode(deep)).toThrow()
  })

  it("a map key __proto__ stays a plain key: no prototype is set from a frame", () => {
    const p = server()
    // {"__proto__": {"polluted": true}} written by hand: fixmap(1), fixstr "__proto__", fixmap(1), "polluted", true
    const frame = Uint8Array.from([0x81, 0xa9, ...Buffer.from("__proto__"), 0x81, 0xa8, ...Buffer.from("polluted"), 0xc3])
    const [m] = p.decode(frame)
    expect(Object.getPrototypeOf(m)).toBe(Object.prototype)
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined()
    expect((m as { polluted?: boolean }).polluted).toBeUndefined()
  })

  it("the client's frames: it sends binary, and a reply's bytes are TensorBytes, which JSON writes as base64", () => {
    const c = clientFrames.unsafeMake()
    const sent = c.encode(request("1", "node.status", {}))
    expect(sent).toBeInstanceOf(Uint8Array)
    expect(isBinaryFrame(sent as Uint8Array)).toBe(true)
    const data = Float32Array.of(0.25, 8, -1)
    const outputs = tensorMapToWire({ y: { type: "float32", dims: [3], data } }, 1)
    const [reply] = c.decode(server().encode(exit) as never) // a JSON text answer is understood too
    expect(reply).toEqual(exit)
    const p = server()
    p.decode(pack(request("1", "node.status", {})))
    const [decoded] = c.decode(p.encode({ ...exit, exit: { _tag: "Success", value: { outputs } } }) as Uint8Array)
    const y = (decoded as { readonly exit: { readonly value: { readonly outputs: { readonly y: { readonly dataBase64: unknown } } } } }).exit.value.outputs.y
    expect(y.dataBase64).toBeInstanceOf(TensorBytes)
    expect(JSON.stringify({ y })).toBe(JSON.stringify(tensorMapToJson({ y: { type: "float32", dims: [3], data } }, 1)))
  })
})

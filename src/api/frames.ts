/**
 * The WebSocket framings of the node's RPC door, on one path (`/ws`):
 *
 * - JSON text frames, one message each: what any client speaks (and every
 *   client did before binary frames); tensors as `data` numbers or base64;
 * - MessagePack binary frames (plain maps, no records, so any MessagePack
 *   library can speak it): tensors' bytes travel as a bin, never as base64
 *   or JSON numbers. The typed client (`topai/client`) speaks this.
 *
 * The server answers each connection in the framing of its first frame: a
 * binary frame that starts like JSON text (`{`, `[`, whitespace) is JSON,
 * as before; any other binary frame is MessagePack. Size limits are the same
 * for both and checked the same way (requestLimits.ts): the frame's bytes
 * before it is decoded, each request against its method's limit before its
 * payload reaches Schema. A binary frame must hold whole messages: nothing
 * is carried over to the next frame (so a request cannot grow past its
 * limit across frames).
 */
import { RpcSerialization } from "@effect/rpc"
import { Packr, Unpackr } from "msgpackr"
import { TensorBytes } from "../../domain/ai/tensor.js"
import { FRAME_BYTES_MAX, limitRequest, tooBig } from "./requestLimits.js"

/** Plain maps both ways (a record extension would tie clients to msgpackr), maps decoded to objects. */
export const MSGPACK_OPTIONS = { useRecords: false, mapsAsObjects: true } as const

/** First bytes of JSON text: `{`, `[`, space, tab, newline, carriage return. */
const JSON_FIRST_BYTES: ReadonlySet<number> = new Set([0x7b, 0x5b, 0x20, 0x09, 0x0a, 0x0d])

/** Whether a frame is MessagePack (else it is JSON text). */
export const isBinaryFrame = (data: string | Uint8Array): data is Uint8Array =>
  typeof data !== "string" && data.byteLength > 0 && !JSON_FIRST_BYTES.has(data[0]!)

/** The messages of one whole binary frame; a frame cut short is an error, never carried over. */
const unpackFrame = (unpackr: Unpackr, frame: Uint8Array): Array<unknown> => {
  try {
    return unpackr.unpackMultiple(frame) as Array<unknown>
  } catch (e) {
    if (typeof e === "object" && e !== null && (e as { readonly incomplete?: unknown }).incomplete === true) {
      throw new Error("a binary frame must hold whole MessagePack messages; this one ends inside a message")
    }
    throw e
  }
}

/**
 * The server's WebSocket framing: `json` (already with its request limits)
 * for JSON text, MessagePack with the same limits for binary frames.
 */
export const serverFrames = (json: RpcSerialization.RpcSerialization["Type"]): RpcSerialization.RpcSerialization["Type"] =>
  RpcSerialization.RpcSerialization.of({
    contentType: json.contentType,
    includesFraming: false,
    unsafeMake: () => {
      const text = json.unsafeMake()
      const unpackr = new Unpackr(MSGPACK_OPTIONS)
      const packr = new Packr(MSGPACK_OPTIONS)
      /** The connection's framing, from its first frame. */
      let binary: boolean | undefined
      return {
        decode: (data) => {
          const frameIsBinary = isBinaryFrame(data)
          binary ??= frameIsBinary
          if (!frameIsBinary) return text.decode(data)
          const bytes = data.byteLength
          if (bytes > FRAME_BYTES_MAX) throw tooBig(bytes)
          return unpackFrame(unpackr, data).map((message) => limitRequest(message, bytes))
        },
        encode: (response) => (binary === true ? packr.pack(response) : text.encode(response))
      }
    }
  })

/**
 * Every bin of a decoded reply as `TensorBytes` (a view, no copy): the
 * caller's `JSON.stringify` of a result then writes base64, as the JSON door
 * would, instead of a Buffer's `{"type":"Buffer","data":[...]}`. Iterative:
 * no depth the server sends can overflow the stack.
 */
const bytesAsTensorBytes = (value: unknown): unknown => {
  if (typeof value !== "object" || value === null) return value
  const stack: Array<Record<string, unknown> | Array<unknown>> = [value as Record<string, unknown>]
  while (stack.length > 0) {
    const node = stack.pop()!
    for (const key of Object.keys(node)) {
      const v = (node as Record<string, unknown>)[key]
      if (typeof v !== "object" || v === null) continue
      if (v instanceof Uint8Array) {
        if (!(v instanceof TensorBytes)) (node as Record<string, unknown>)[key] = TensorBytes.viewOf(v)
      } else if (!ArrayBuffer.isView(v)) stack.push(v as Record<string, unknown>)
    }
  }
  return value
}

/** The client's WebSocket framing: MessagePack binary frames (what `serverFrames` answers in kind). */
export const clientFrames: RpcSerialization.RpcSerialization["Type"] = RpcSerialization.RpcSerialization.of({
  contentType: "application/msgpack",
  includesFraming: false,
  unsafeMake: () => {
    const unpackr = new Unpackr(MSGPACK_OPTIONS)
    const packr = new Packr(MSGPACK_OPTIONS)
    const decoder = new TextDecoder()
    return {
      // A server that answers in JSON text (an older node) is still understood.
      decode: (data) =>
        typeof data === "string"
          ? [JSON.parse(data)]
          : isBinaryFrame(data)
            ? unpackFrame(unpackr, data).map(bytesAsTensorBytes)
            : [JSON.parse(decoder.decode(data))],
      encode: (message) => packr.pack(message)
    }
  }
})

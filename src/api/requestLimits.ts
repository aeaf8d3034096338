/**
 * What one RPC connection may send: a size per method, checked on the
 * frame's bytes before its payload is decoded, and a number of open streams.
 *
 * Frames enter through the serialization's parser (one per connection: a
 * WebSocket, or one HTTP request), so the check lives there: a frame over
 * FRAME_BYTES_MAX is refused before JSON.parse (the WebSocket is closed with
 * 1009 "message too big"); a request over its method's limit is turned,
 * before its payload reaches Schema, into a call of `rpc.refused`, which
 * answers that request's id with the typed `RequestRefused`. Every method
 * carries `RequestRefused` in its errors through the `RequestLimits`
 * middleware, which also counts each connection's open streams.
 */
import { Buffer } from "node:buffer"
import { Rpc, RpcGroup, RpcMiddleware, RpcSchema, RpcSerialization } from "@effect/rpc"
import { Effect, Layer, Option, Schema } from "effect"

export class RequestRefused extends Schema.TaggedError<RequestRefused>()("RequestRefused", {
  reason: Schema.Literal("TooLarge", "TooManySubscriptions"),
  method: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `request refused (${this.reason}): ${this.detail}`
  }
}

/**
 * Every call but those below carries ids, keys, hashes and signatures: a
 * few hundred bytes. 64 KiB leaves ample room and costs nothing to parse.
 */
export const REQUEST_BYTES_DEFAULT = 64 * 1024

/**
 * Per method, the largest request frame (its JSON text, envelope included):
 * - `model.upload`: a chunk of weights (1 MiB, 1.4 MB as base64) plus its signature;
 * - `infer`, `infer.stream`: a request's input tensors; larger inputs are not an RPC call's job;
 * - `worker.result`: a task's output tensors, which may outgrow its inputs (the same bound);
 * - `tx.submit`: a transaction is at most 4 KiB, 8 KiB as hex;
 * - `usage.receipts`: SHARE_BATCH_MAX (64) receipts of at most 16 results, ~6 KB each as JSON.
 */
export const REQUEST_BYTES_MAX: Readonly<Record<string, number>> = {
  "model.upload": 2 * 1024 * 1024,
  infer: 8 * 1024 * 1024,
  "infer.stream": 8 * 1024 * 1024,
  "worker.result": 8 * 1024 * 1024,
  "tx.submit": 16 * 1024,
  "usage.receipts": 512 * 1024
}

/**
 * The largest frame parsed at all, checked on raw bytes before JSON.parse:
 * the largest method's limit and a margin, so a request a little over any
 * method's limit still gets its typed refusal; a frame beyond is refused
 * unread (the WebSocket closed with 1009). Under the HTTP server's 10 MiB body cap.
 */
export const FRAME_BYTES_MAX = Math.max(REQUEST_BYTES_DEFAULT, ...Object.values(REQUEST_BYTES_MAX)) + 1024 * 1024

/**
 * Streams (`events.subscribe`, `infer.stream`, `worker.tasks`) one
 * connection may hold open. Each holds a fiber and a subscription on the
 * node until it ends; a compute node needs one, a client a handful.
 */
export const SUBSCRIPTIONS_PER_CONNECTION_MAX = 32

export const requestBytesMax = (method: string): number =>
  Object.hasOwn(REQUEST_BYTES_MAX, method) ? REQUEST_BYTES_MAX[method]! : REQUEST_BYTES_DEFAULT

/** The method an oversized request is turned into: it answers that request with `RequestRefused`. */
export const REFUSED_TAG = "rpc.refused"

export class RefusedRpcs extends RpcGroup.make(
  Rpc.make(REFUSED_TAG, {
    payload: { method: Schema.String, bytes: Schema.Number, limit: Schema.Number },
    error: RequestRefused
  })
) {}

export const RefusedRpcHandlers = RefusedRpcs.toLayer({
  [REFUSED_TAG]: ({ method, bytes, limit }) =>
    Effect.fail(
      new RequestRefused({ reason: "TooLarge", method, detail: `a ${method} request is at most ${limit} bytes, this one is ${bytes}` })
    )
})

/** Puts `RequestRefused` among every method's errors, and caps the streams a connection holds open. */
export class RequestLimits extends RpcMiddleware.Tag<RequestLimits>()("topai/RequestLimits", {
  failure: RequestRefused,
  wrap: true
}) {}

/** One per protocol (WebSocket, HTTP): client ids are counted per protocol. */
export const requestLimitsLayer = (): Layer.Layer<RequestLimits> =>
  Layer.sync(RequestLimits, () => {
    const open = new Map<number, number>()
    return RequestLimits.of(({ clientId, next, rpc }) =>
      Option.isNone(RpcSchema.getStreamSchemas(rpc.successSchema.ast))
        ? next
        : Effect.suspend(() => {
            const count = open.get(clientId) ?? 0
            if (count >= SUBSCRIPTIONS_PER_CONNECTION_MAX) {
              return Effect.fail(
                new RequestRefused({
                  reason: "TooManySubscriptions",
                  method: rpc._tag,
                  detail: `this connection holds ${count} streams open, the most one may: end one, or open another connection`
                })
              )
            }
            open.set(clientId, count + 1)
            return next.pipe(
              Effect.ensuring(
                Effect.sync(() => {
                  const left = (open.get(clientId) ?? 1) - 1
                  if (left <= 0) open.delete(clientId)
                  else open.set(clientId, left)
                })
              )
            )
          })
    )
  })

const byteLength = (frame: string | Uint8Array): number => (typeof frame === "string" ? Buffer.byteLength(frame, "utf8") : frame.byteLength)

/** What a parser throws for a frame over FRAME_BYTES_MAX (the WebSocket is then closed with 1009). */
export const tooBig = (bytes: number) =>
  new RpcSerialization.RpcSerializationError({ reason: "BufferSizeExceeded", maxBufferSize: FRAME_BYTES_MAX, bufferSize: bytes })

/** One parsed frame; a request over its method's limit becomes a call of `rpc.refused` with the same id. */
const parseFrame = (text: string, bytes: number): unknown => limitRequest(JSON.parse(text), bytes)

/**
 * A decoded message that arrived in `bytes` bytes (JSON text or a binary
 * frame): a request over its method's limit becomes a call of `rpc.refused`
 * with the same id; anything else is passed on as it is.
 */
export const limitRequest = (message: unknown, bytes: number): unknown => {
  if (typeof message !== "object" || message === null || Array.isArray(message)) return message
  const m = message as { readonly _tag?: unknown; readonly tag?: unknown; readonly id?: unknown }
  if (m._tag !== "Request") return message
  const method = typeof m.tag === "string" ? m.tag : ""
  const limit = requestBytesMax(method)
  if (bytes <= limit) return message
  return { _tag: "Request", id: m.id, tag: REFUSED_TAG, payload: { method: method.slice(0, 100), bytes, limit }, headers: [] }
}

/**
 * `base` with the size checks on the way in (the way out is `base`'s).
 * Handles the two framings the node serves: one message per frame (JSON
 * over WebSocket) and newline-delimited JSON (HTTP).
 */
export const withRequestLimits = (base: RpcSerialization.RpcSerialization["Type"]): RpcSerialization.RpcSerialization["Type"] =>
  RpcSerialization.RpcSerialization.of({
    contentType: base.contentType,
    includesFraming: base.includesFraming,
    unsafeMake: () => {
      const parser = base.unsafeMake()
      const decoder = new TextDecoder()
      let pending = ""
      const decodeFramed = (data: string | Uint8Array): ReadonlyArray<unknown> => {
        pending += typeof data === "string" ? data : decoder.decode(data)
        const out: Array<unknown> = []
        let start = 0
        for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n", start)) {
          const line = pending.slice(start, nl)
          start = nl + 1
          const bytes = Buffer.byteLength(line, "utf8")
          if (bytes > FRAME_BYTES_MAX) {
            pending = ""
            throw tooBig(bytes)
          }
          if (line.trim() !== "") out.push(parseFrame(line, bytes))
        }
        pending = pending.slice(start)
        if (pending.length > FRAME_BYTES_MAX) {
          const bytes = pending.length
          pending = ""
          throw tooBig(bytes)
        }
        return out
      }
      return {
        encode: parser.encode,
        decode: (data) => {
          if (base.includesFraming) return decodeFramed(data)
          const bytes = byteLength(data)
          if (bytes > FRAME_BYTES_MAX) throw tooBig(bytes)
          return [parseFrame(typeof data === "string" ? data : decoder.decode(data), bytes)]
        }
      }
    }
  })

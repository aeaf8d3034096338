/**
 * Where the RPC group is served and how it is framed. Server and client both
 * take their framing from here: a mismatch makes calls hang without an error.
 */
import { Layer } from "effect"
import { RpcSerialization } from "@effect/rpc"
import { clientFrames, serverFrames } from "./frames.js"
import { withRequestLimits } from "./requestLimits.js"

/**
 * WebSocket: one message per frame, JSON text or MessagePack binary (frames.ts).
 * The fast path (~0.5 ms a call here); tensors travel as bytes in binary frames.
 */
export const WS_PATH = "/ws"
/** HTTP POST: newline-delimited JSON, so streamed replies arrive as they happen. */
export const HTTP_PATH = "/rpc"

export const DEFAULT_HOST = "127.0.0.1"
export const DEFAULT_PORT = 8645
export const DEFAULT_RPC_URL = `ws://${DEFAULT_HOST}:${DEFAULT_PORT}${WS_PATH}`

/** The typed client speaks binary frames over WebSocket; the server answers each connection in its own framing. */
export const wsSerialization = Layer.succeed(RpcSerialization.RpcSerialization, clientFrames)
export const httpSerialization = RpcSerialization.layerNdjson

/** The server's side of the same framings: request sizes are checked before decoding (requestLimits.ts). */
export const wsServerSerialization = Layer.succeed(RpcSerialization.RpcSerialization, serverFrames(withRequestLimits(RpcSerialization.json)))
export const httpServerSerialization = Layer.succeed(RpcSerialization.RpcSerialization, withRequestLimits(RpcSerialization.ndjson))

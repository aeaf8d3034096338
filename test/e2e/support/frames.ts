/**
 * The RPC framing spoken by hand over a WebSocket, so a frame's bytes are
 * exactly what a test says: request frames of an exact size, the exit of a
 * request read as `Tag:reason`, and the close code when the node drops the
 * connection.
 */
import { expect } from "vitest"
import { WebSocket } from "ws"
import { waitFor } from "./chain.js"

export interface RawSocket {
  readonly ws: WebSocket
  readonly messages: Array<{ readonly _tag: string; readonly requestId?: string; readonly exit?: unknown }>
  readonly closed: Promise<number>
  readonly send: (frame: string) => void
  readonly exitOf: (id: string) => Promise<unknown>
}

/** A WebSocket to `url` speaking the RPC framing by hand. */
export const rawSocket = async (url: string): Promise<RawSocket> => {
  const ws = new WebSocket(url)
  const messages: RawSocket["messages"] = []
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)))
  ws.on("message", (data) => messages.push(JSON.parse(data.toString())))
  await new Promise<void>((resolve, reject) => (ws.once("open", () => resolve()), ws.once("error", reject)))
  return {
    ws,
    messages,
    closed,
    send: (frame) => ws.send(frame),
    exitOf: (id) =>
      waitFor(`the exit of request ${id}`, async () => messages.find((m) => m._tag === "Exit" && m.requestId === id)?.exit, {
        timeoutMs: 30_000,
        intervalMs: 20
      })
  }
}

/** A request frame of exactly `bytes` bytes: `payload(pad)` with the padding sized to fit. */
export const frameOf = (id: string, method: string, payload: (pad: string) => unknown, bytes: number): string => {
  const make = (k: number) => JSON.stringify({ _tag: "Request", id, tag: method, payload: payload("a".repeat(k)), headers: [] })
  const frame = make(bytes - make(0).length)
  expect(Buffer.byteLength(frame)).toBe(bytes)
  return frame
}

/** An exit as `Success`, `Tag:reason` of its typed failure, or `defect`. */
export const failureOf = (exit: unknown): string => {
  const e = exit as { readonly _tag: string; readonly cause?: { readonly _tag: string; readonly error?: { readonly _tag: string; readonly reason?: string } } }
  return e._tag === "Success" ? "Success" : e.cause?._tag === "Fail" ? `${e.cause.error?._tag}:${e.cause.error?.reason ?? ""}` : `defect`
}

/** A frame subscribing to the event log from its start. */
export const subscribeFrame = (id: number | string): string =>
  JSON.stringify({ _tag: "Request", id: String(id), tag: "events.subscribe", payload: { from: 0 }, headers: [] })

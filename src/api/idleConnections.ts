/**
 * The node's HTTP server, with time limits on what clients hold open: an
 * upgraded (WebSocket) connection whose client sends nothing for `idleMs`
 * is closed, and an HTTP request must arrive whole within a bound.
 */
import { createServer } from "node:http"
import type { Server } from "node:http"
import type { Socket } from "node:net"

/**
 * A WebSocket client silent this long is gone or not an RPC client: the
 * @effect/rpc client pings every 10 s, so a live one is never closed.
 */
export const WS_IDLE_MS = 60_000

/** The longest a client may take to send one HTTP request (headers and body). */
export const HTTP_REQUEST_TIMEOUT_MS = 60_000
/** The longest a client may take to send a request's headers. */
export const HTTP_HEADERS_TIMEOUT_MS = 10_000

export interface ServerLimits {
  readonly idleMs?: number | undefined
}

/**
 * A node:http server that closes idle upgraded sockets. It measures what the
 * client sent (bytes read), sampled a few times per `idleMs`: no listener is
 * added to the socket, whose bytes belong to the WebSocket library.
 */
export const createLimitedServer = (limits: ServerLimits = {}): Server => {
  const idleMs = limits.idleMs ?? WS_IDLE_MS
  const server = createServer({ requestTimeout: HTTP_REQUEST_TIMEOUT_MS, headersTimeout: HTTP_HEADERS_TIMEOUT_MS })
  const watched = new Map<Socket, { bytesRead: number; at: number }>()
  server.on("upgrade", (_request, socket: Socket) => {
    watched.set(socket, { bytesRead: socket.bytesRead, at: Date.now() })
    socket.once("close", () => watched.delete(socket))
  })
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [socket, seen] of watched) {
      if (socket.bytesRead !== seen.bytesRead) {
        seen.bytesRead = socket.bytesRead
        seen.at = now
      } else if (now - seen.at >= idleMs) {
        watched.delete(socket)
        socket.destroy()
      }
    }
  }, Math.max(10, Math.floor(idleMs / 4)))
  sweep.unref()
  server.once("close", () => clearInterval(sweep))
  return server
}

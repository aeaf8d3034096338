/**
 * The node's HTTP server closes WebSocket clients that send nothing for its
 * idle time, and keeps those that talk. A real server on localhost, with the
 * WebSocket library upgrading as the node's does.
 */
import type { AddressInfo } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { WebSocket, WebSocketServer } from "ws"
import { createLimitedServer } from "../../src/api/idleConnections.js"
import { waitFor } from "../support/waitFor.js"

// Long enough that a stalled event loop on a loaded machine does not outlast it between two pings.
const IDLE_MS = 1_000
const opened: Array<{ close: () => Promise<void> }> = []

afterEach(async () => {
  for (const o of opened.splice(0)) await o.close()
})

const serve = async () => {
  const server = createLimitedServer({ idleMs: IDLE_MS })
  const wss = new WebSocketServer({ noServer: true })
  server.on("upgrade", (request, socket, head) => wss.handleUpgrade(request, socket, head, (ws) => ws.on("message", (m) => ws.send(m))))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  opened.push({
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate()
        wss.close()
        server.close(() => resolve())
      })
  })
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`
}

const connect = async (url: string) => {
  const ws = new WebSocket(url)
  let closed = false
  ws.once("close", () => (closed = true))
  await new Promise<void>((resolve, reject) => (ws.once("open", () => resolve()), ws.once("error", reject)))
  return { ws, closed: () => closed }
}

describe("idle WebSocket connections", () => {
  it(`a client silent for ${IDLE_MS} ms is disconnected; one that keeps sending stays`, async () => {
    const url = await serve()
    const silent = await connect(url)
    const talker = await connect(url)
    const ping = setInterval(() => talker.ws.send("ping"), IDLE_MS / 10)
    try {
      await waitFor("the silent client to be disconnected", async () => (silent.closed() ? true : undefined), { timeoutMs: 20 * IDLE_MS, intervalMs: 20 })
      // Two more idle periods: the talker is still served.
      await new Promise((resolve) => setTimeout(resolve, 2 * IDLE_MS))
      expect(talker.closed()).toBe(false)
      const echoed = new Promise<string>((resolve) => talker.ws.once("message", (m) => resolve(m.toString())))
      talker.ws.send("still here")
      expect(await echoed).toMatch(/still here|ping/)
    } finally {
      clearInterval(ping)
      talker.ws.close()
    }
  })
})

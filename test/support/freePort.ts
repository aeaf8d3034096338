/** A port the OS says is free right now: listen on 0, read it, close. (Tests and benches share it.) */
import { createServer } from "node:net"

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      if (address === null || typeof address === "string") return reject(new Error("no port from the OS"))
      server.close(() => resolve(address.port))
    })
  })

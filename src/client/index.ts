/**
 * The typed client: `import { makeClient } from "topai/client"`.
 *
 *   const client = yield* makeClient("ws://127.0.0.1:8645/ws")
 *   const account = yield* client.account.get({ address })
 *   yield* client.tx.submit({ raw, wait: true }).pipe(Effect.catchTag("TransactionRejected", ...))
 *
 * Every call is typed by the shared NodeRpcs group: payloads, replies and
 * errors (TransactionRejected, NotFound, ...) are the server's own classes.
 * A paid call carries the developer's signed request: `signInferRequest`.
 */
import { FetchHttpClient, Socket } from "@effect/platform"
import { RpcClient } from "@effect/rpc"
import type { RpcClientError, RpcGroup } from "@effect/rpc"
import { Effect, Layer } from "effect"
import type { Scope } from "effect"
import { WebSocket } from "ws"
import { NodeRpcs } from "../api/Rpcs.js"
import { DEFAULT_RPC_URL, httpSerialization, wsSerialization } from "../api/transport.js"

export * from "../api/NodeRpcs.js"
export * from "../api/AiRpcs.js"
export * from "../api/EconomyRpcs.js"
export { NodeRpcs } from "../api/Rpcs.js"
export { DEFAULT_RPC_URL } from "../api/transport.js"
export { freshRequestNonce, signInferRequest, type GrantOfSession } from "./taskRequest.js"
export { inferWithFailover, NoGatewayAnswered, withFailover, type FailoverInfer, type InferArgs, type InferCall } from "./failover.js"

export type NodeClient = RpcClient.RpcClient<RpcGroup.Rpcs<typeof NodeRpcs>, RpcClientError.RpcClientError>

/**
 * Client frames masked with a zero key. Masking (RFC 6455 §5.3) keeps script
 * in a browser from choosing the bytes a proxy sees; a Node client runs no
 * one else's script, and XOR-ing every byte in JavaScript cost ~4 ms per MB
 * (no bufferutil here). `ws` skips the XOR on both ends for a zero key.
 */
const zeroMask = (mask: Uint8Array): void => void mask.fill(0)

/** WebSockets of the `ws` package with the zero mask. */
const webSocketConstructor = Layer.succeed(
  Socket.WebSocketConstructor,
  (url: string, protocols?: string | Array<string>) => new WebSocket(url, protocols, { generateMask: zeroMask }) as unknown as globalThis.WebSocket
)

/** The client protocol for a URL: `ws://…/ws` (WebSocket, binary frames) or `http://…/rpc` (HTTP). */
export const protocolLayer = (url: string) =>
  url.startsWith("ws://") || url.startsWith("wss://")
    ? RpcClient.layerProtocolSocket().pipe(
        Layer.provide([Socket.layerWebSocket(url).pipe(Layer.provide(webSocketConstructor)), wsSerialization])
      )
    : RpcClient.layerProtocolHttp({ url }).pipe(Layer.provide([FetchHttpClient.layer, httpSerialization]))

/** A client bound to the caller's scope; the connection closes with it. */
export const makeClient = (url: string = DEFAULT_RPC_URL): Effect.Effect<NodeClient, never, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Layer.build(protocolLayer(url))
    return yield* RpcClient.make(NodeRpcs).pipe(Effect.provide(context))
  })

/**
 * Serves the chain's calls only (ChainRpcs: status, accounts, transactions,
 * blocks, events) on /ws and /rpc: the RPC of a devnet validator that runs
 * neither the AI shard nor the economy. The typed client talks to it like
 * to a full node; AI and economy calls are for the validator that runs them.
 */
import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { RpcServer } from "@effect/rpc"
import { Layer } from "effect"
import { ChainRpcs } from "./NodeRpcs.js"
import { createLimitedServer } from "./idleConnections.js"
import { RefusedRpcHandlers, RefusedRpcs, RequestLimits, requestLimitsLayer } from "./requestLimits.js"
import { ChainRpcHandlers } from "./server.js"
import type { RpcServerOptions } from "./server.js"
import { HTTP_PATH, WS_PATH, httpServerSerialization, wsServerSerialization } from "./transport.js"

/** The chain's calls under the same request limits as a full node's. */
class LimitedChainRpcs extends ChainRpcs.merge(RefusedRpcs).middleware(RequestLimits) {}

export const ChainRpcServerLive = (options: RpcServerOptions) =>
  HttpLayerRouter.serve(
    Layer.mergeAll(
      RpcServer.layerHttpRouter({ group: LimitedChainRpcs, path: WS_PATH, protocol: "websocket" }).pipe(
        Layer.provide([wsServerSerialization, requestLimitsLayer()])
      ),
      RpcServer.layerHttpRouter({ group: LimitedChainRpcs, path: HTTP_PATH, protocol: "http" }).pipe(
        Layer.provide([httpServerSerialization, requestLimitsLayer()])
      )
    ).pipe(Layer.provide([ChainRpcHandlers, RefusedRpcHandlers])),
    { disableLogger: true }
  ).pipe(
    Layer.provide(NodeHttpServer.layer(() => createLimitedServer({ idleMs: options.idleMs }), { port: options.port, host: options.host }))
  )

/**
 * Serves the chain's calls only (ChainRpcs: status, accounts, transactions,
 * blocks, events) on /ws and /rpc: the RPC of a devnet validator that runs
 * neither the AI shard nor the economy. The typed client talks to it like
 * to a full node; AI and economy calls are for the validator that runs them.
 */
import { createServer } from "node:http"
import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { RpcServer } from "@effect/rpc"
import { Layer } from "effect"
import { ChainRpcs } from "./NodeRpcs.js"
import { ChainRpcHandlers } from "./server.js"
import type { RpcServerOptions } from "./server.js"
import { HTTP_PATH, WS_PATH, httpSerialization, wsSerialization } from "./transport.js"

export const ChainRpcServerLive = (options: RpcServerOptions) =>
  HttpLayerRouter.serve(
    Layer.mergeAll(
      RpcServer.layerHttpRouter({ group: ChainRpcs, path: WS_PATH, protocol: "websocket" }).pipe(Layer.provide(wsSerialization)),
      RpcServer.layerHttpRouter({ group: ChainRpcs, path: HTTP_PATH, protocol: "http" }).pipe(Layer.provide(httpSerialization))
    ).pipe(Layer.provide(ChainRpcHandlers)),
    { disableLogger: true }
  ).pipe(Layer.provide(NodeHttpServer.layer(createServer, { port: options.port, host: options.host })))

/**
 * A compute node's client of a node in the same process (`topai node start
 * --workers N`, `topai devnet`): each call goes straight to the node's RPC
 * handlers, with no socket, no framing and no Schema round trip, so a
 * task's tensors reach the worker and come back as the same bytes in
 * memory. Only the transport is skipped: the handlers are the ones the
 * WebSocket door runs, and the node checks the worker's registration,
 * signatures and output fingerprints exactly as for a remote one.
 */
import { RpcTest } from "@effect/rpc"
import { Effect, Layer } from "effect"
import type { Scope } from "effect"
import { AiRpcHandlers } from "../api/aiHandlers.js"
import { requestLimitsLayer } from "../api/requestLimits.js"
import { ChainRpcHandlers } from "../api/server.js"
import { ComputeNodeRpcs, type ComputeNodeClient } from "./ComputeNode.js"

/**
 * Given the node's services (ChainNode, EventStore, AiNode), a target for
 * `startComputeNode({ rpc })`: an effect that makes a fresh in-memory client
 * per connection, closed with the connection's scope.
 */
export const inProcessComputeNodeClient = Effect.gen(function* () {
  const handlers = yield* Layer.build(Layer.mergeAll(ChainRpcHandlers, AiRpcHandlers, requestLimitsLayer()))
  const connect: Effect.Effect<ComputeNodeClient, never, Scope.Scope> = RpcTest.makeClient(ComputeNodeRpcs).pipe(Effect.provide(handlers))
  return connect
})

/**
 * Serves NodeRpcs over WebSocket (/ws) and HTTP (/rpc) on one port. Handlers
 * delegate to the ChainNode, EventStore, AiNode and Economy services; they
 * hold no logic.
 */
import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { RpcServer } from "@effect/rpc"
import { Effect, Layer, Stream } from "effect"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import type { RecordedEvent } from "../../infra/eventstore/EventStore.js"
import { ChainNode } from "../node/ChainNode.js"
import { ChainRpcs, EventView, InvalidRequest, NodeUnavailable } from "./NodeRpcs.js"
import { NodeRpcs } from "./Rpcs.js"
import { AiRpcHandlers } from "./aiHandlers.js"
import { EconomyRpcHandlers } from "./economyHandlers.js"
import { createLimitedServer } from "./idleConnections.js"
import { RefusedRpcHandlers, requestLimitsLayer } from "./requestLimits.js"
import { HTTP_PATH, WS_PATH, httpServerSerialization, wsServerSerialization } from "./transport.js"

/** The most events one `events.read` returns. */
export const MAX_EVENTS_PER_READ = 10_000

const toView = (e: RecordedEvent) =>
  new EventView({
    stream: e.stream,
    revision: e.revision,
    position: e.position,
    id: e.id,
    type: e.type,
    data: e.data,
    metadata: e.metadata,
    hash: e.hash,
    prevHash: e.prevHash
  })

const storeUnavailable = (error: { readonly message: string }) => new NodeUnavailable({ detail: error.message })

const checkRange = (from: number, limit: number) =>
  !Number.isSafeInteger(from) || from < 0
    ? Effect.fail(new InvalidRequest({ detail: `from must be a whole number ≥ 0, got ${from}` }))
    : !Number.isSafeInteger(limit) || limit < 0 || limit > MAX_EVENTS_PER_READ
      ? Effect.fail(new InvalidRequest({ detail: `limit must be a whole number from 0 to ${MAX_EVENTS_PER_READ}` }))
      : Effect.void

export const ChainRpcHandlers = ChainRpcs.toLayer(
  Effect.gen(function* () {
    const node = yield* ChainNode
    const store = yield* EventStore
    return {
      "node.status": () => node.status,
      "account.get": ({ address, shard }) => node.account(address, shard),
      "validators.list": ({ epoch }) => node.validators(epoch),
      "tx.submit": ({ raw, wait }) => node.submit(raw, wait),
      "tx.get": ({ hash }) => node.transaction(hash),
      "block.get": ({ shard, height }) => node.block(shard, height),
      "events.read": ({ stream, from, limit }) =>
        checkRange(from, limit).pipe(
          Effect.zipRight(
            stream === undefined
              ? store.readAll({ after: from, limit })
              : store.readStream(stream, { from, limit, direction: "forwards" })
          ),
          Effect.map((events) => events.map(toView)),
          Effect.catchTag("EventStoreError", (e) => Effect.fail(storeUnavailable(e)))
        ),
      "events.subscribe": ({ stream, from }) =>
        Stream.fromEffect(checkRange(from, 0)).pipe(
          Stream.flatMap(() => (stream === undefined ? store.subscribeAll(from) : store.subscribeStream(stream, from))),
          Stream.map(toView),
          Stream.catchTag("EventStoreError", (e) => Stream.fail(storeUnavailable(e)))
        )
    }
  })
)

export interface RpcServerOptions {
  readonly host: string
  readonly port: number
  /** A WebSocket client silent this long is disconnected (default WS_IDLE_MS). */
  readonly idleMs?: number | undefined
}

/**
 * The HTTP server with both transports; fails to build if the port is taken.
 * Each transport gets its own request limits (sizes, streams per connection).
 */
export const RpcServerLive = (options: RpcServerOptions) =>
  HttpLayerRouter.serve(
    Layer.mergeAll(
      RpcServer.layerHttpRouter({ group: NodeRpcs, path: WS_PATH, protocol: "websocket" }).pipe(
        Layer.provide([wsServerSerialization, requestLimitsLayer()])
      ),
      RpcServer.layerHttpRouter({ group: NodeRpcs, path: HTTP_PATH, protocol: "http" }).pipe(
        Layer.provide([httpServerSerialization, requestLimitsLayer()])
      )
    ).pipe(Layer.provide([ChainRpcHandlers, AiRpcHandlers, EconomyRpcHandlers, RefusedRpcHandlers])),
    { disableLogger: true }
  ).pipe(
    Layer.provide(NodeHttpServer.layer(() => createLimitedServer({ idleMs: options.idleMs }), { port: options.port, host: options.host }))
  )

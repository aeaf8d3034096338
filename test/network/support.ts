/**
 * WebSocket consensus networks on real localhost sockets: N transports of
 * one dev committee, each in its own Scope (closing it is a crash as far as
 * the others can tell), restartable on the same port.
 */
import { Effect, Exit, Queue, Schema, Scope } from "effect"
import type { ShardId } from "../../domain/chain/sharding.js"
import { devValidatorKeys, devValidators } from "../../domain/chain/validators.js"
import type { Envelope } from "../../infra/network/ConsensusNetwork.js"
import { WireMessage } from "../../infra/network/wire.js"
import { CONSENSUS_PATH, makeWsConsensusNetwork } from "../../infra/network/WsConsensusNetwork.js"
import type { WsConsensusNetwork, WsConsensusNetworkOptions } from "../../infra/network/WsConsensusNetwork.js"
import { freePort } from "../e2e/support/processes.js"

export const NET_CHAIN_ID = 7_702n

/** A small WireMessage whose `requestId` numbers it. */
export const numbered = (n: number, shard = 1): WireMessage =>
  Schema.decodeUnknownSync(WireMessage)({ _tag: "TxRequest", shard: shard as ShardId, requestId: n, ids: [] })

export const numberOf = (e: Envelope): number => (e.message._tag === "TxRequest" ? e.message.requestId : -1)

export type Overrides = Partial<Omit<WsConsensusNetworkOptions, "self" | "validators" | "key" | "listen" | "peers" | "chainId">>

export const makeCluster = (count: number, overrides: (i: number) => Overrides = () => ({})) =>
  Effect.gen(function* () {
    const validators = devValidators(count)
    const ports = yield* Effect.promise(() => Promise.all(validators.map(() => freePort())))
    const url = (i: number) => `ws://127.0.0.1:${ports[i]}${CONSENSUS_PATH}`
    const running = new Map<number, { readonly network: WsConsensusNetwork; readonly scope: Scope.CloseableScope }>()

    const start = (i: number) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const network = yield* makeWsConsensusNetwork({
          chainId: NET_CHAIN_ID,
          validators,
          self: i,
          key: devValidatorKeys(i).secp,
          listen: { host: "127.0.0.1", port: ports[i]! },
          peers: validators.map((_, j) => ({ index: j, url: url(j) })).filter((p) => p.index !== i),
          reconnectMaxMs: 200,
          logIntervalMs: 0,
          ...overrides(i)
        }).pipe(Scope.extend(scope), Effect.orDie)
        running.set(i, { network, scope })
        return network
      })

    const stop = (i: number) =>
      Effect.gen(function* () {
        const r = running.get(i)
        if (r === undefined) return
        running.delete(i)
        yield* Scope.close(r.scope, Exit.void)
      })

    const net = (i: number) => running.get(i)!.network

    /** Take `n` envelopes from `i`'s inbound queue (fails after `ms`). */
    const take = (i: number, n: number, ms = 15_000) =>
      Effect.gen(function* () {
        const got: Array<Envelope> = []
        while (got.length < n) got.push(...(yield* Queue.takeBetween(net(i).inbound, 1, n - got.length)))
        return got
      }).pipe(
        Effect.timeoutFail({ duration: ms, onTimeout: () => new Error(`validator ${i} did not receive ${n} messages in ${ms} ms`) }),
        Effect.orDie
      )

    const stopAll = Effect.forEach([...running.keys()], stop, { discard: true })
    yield* Effect.addFinalizer(() => stopAll)
    return { validators, ports, url, start, stop, net, take, stopAll }
  })

export { eventually } from "../support/waitFor.js"

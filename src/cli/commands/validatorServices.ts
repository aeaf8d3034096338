/**
 * What one BFT validator serves on top of its chain node, the same whether
 * it runs inside `topai devnet` (validators in one process) or as its own
 * process (`topai node start --config`): a genesis validator runs the AI
 * shard's services and the economy (model registry and verification, the
 * attestor, the gateway's worker hub and task runner, the settler, the
 * reward ledgers) and serves all of the node's calls; a candidate serves the
 * chain's calls only, until an election seats it.
 */
import { Layer } from "effect"
import type { GenesisConfig } from "../../../domain/chain/genesis.js"
import type { PrivateKey } from "../../../domain/chain/keys.js"
import { ChainRpcServerLive } from "../../api/chainServer.js"
import { RpcServerLive } from "../../api/server.js"
import { aiShardLayer } from "./node.js"

/**
 * The nodes (by seat) that run the AI services and that compute nodes
 * serve: every genesis validator (the AI shard's committee is all of them;
 * no node signs payouts, the AI ledger makes them).
 */
export const aiValidatorsOf = (validators: number): ReadonlyArray<number> => Array.from({ length: validators }, (_, i) => i)

/** Whether the node at `seat` runs the AI services: a genesis validator does, a candidate does not. */
export const runsAiServices = (genesis: GenesisConfig, seat: number): boolean => aiValidatorsOf(genesis.validators?.length ?? 0).includes(seat)

/**
 * The RPC server of the validator at `seat` over its `chain` layer, with the
 * AI services when it runs them: its account key attests models and signs
 * `usage.settle`; `aiPeers` are the other AI validators' RPC URLs, which it
 * fetches weights uploaded to them from.
 */
export const validatorServices = <ROut, E, RIn>(o: {
  readonly genesis: GenesisConfig
  readonly seat: number
  readonly dataDir: string
  readonly accountKey: PrivateKey
  readonly rpc: { readonly host: string; readonly port: number }
  readonly aiPeers: ReadonlyArray<string>
  readonly chain: Layer.Layer<ROut, E, RIn>
}) =>
  runsAiServices(o.genesis, o.seat)
    ? RpcServerLive(o.rpc).pipe(
        Layer.provideMerge(aiShardLayer(o.genesis, o.dataDir, { peers: o.aiPeers, attestorKey: o.accountKey, settlerKey: o.accountKey })),
        Layer.provideMerge(o.chain)
      )
    : ChainRpcServerLive(o.rpc).pipe(Layer.provideMerge(o.chain))

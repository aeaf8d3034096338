/**
 * What a running node offers its doors (RPC, CLI, tests): the chain's read
 * and write operations in wire shapes. The RPC handlers only delegate here.
 */
import { Context } from "effect"
import type { Effect } from "effect"
import type { LedgerState } from "../../domain/chain/ledgerState.js"
import type {
  AccountInfo,
  BlockView,
  InvalidRequest,
  NodeStatus,
  NotFound,
  SubmitResult,
  TransactionRejected,
  TxView,
  ValidatorsView
} from "../api/NodeRpcs.js"

export interface ChainNodeShape {
  readonly status: Effect.Effect<NodeStatus>
  /** The account on `shard` (0: the beacon), else on the address's transfer shard. */
  readonly account: (address: string, shard?: number) => Effect.Effect<AccountInfo, InvalidRequest>
  /** The beacon's validator registry and the committees it elected for `epoch` (default: the open one). */
  readonly validators: (epoch?: number) => Effect.Effect<ValidatorsView, InvalidRequest>
  /** Admit a signed transaction (0x-hex RLP); with `wait`, reply once its block is applied. */
  readonly submit: (raw: string, wait: boolean) => Effect.Effect<SubmitResult, TransactionRejected>
  readonly transaction: (hash: string) => Effect.Effect<TxView, NotFound | InvalidRequest>
  readonly block: (shard: number, height: number) => Effect.Effect<BlockView, NotFound | InvalidRequest>
  /** A shard's ledger state as this node applied it (the AI shard's holds `ai`: models, escrow, workers, the economy). */
  readonly ledger: (shard: number) => Effect.Effect<LedgerState, InvalidRequest>
}

export class ChainNode extends Context.Tag("topai/ChainNode")<ChainNode, ChainNodeShape>() {}

/**
 * What the AI ledger decides from: the block's context (given by the chain
 * ledger, never read from a clock) and one input — an AI-kind transaction
 * (its nonce and fee already charged), a receipt whose money the chain
 * already credited to the system account, or the end of the block.
 */
import type { Address } from "../../chain/keys.js"
import type { ShardId } from "../../chain/sharding.js"
import type { Transaction } from "../../chain/transaction.js"
import type { EconomicsConfig } from "../../economics/config.js"
import type { GpuClassTable } from "../worker/gpuClass.js"
import type { AiReceipt } from "./receiptPurpose.js"

export interface CommitteeSeat {
  readonly address: Address
  readonly stake: bigint
}

export interface AiContext {
  readonly chainId: bigint
  /** The AI shard. */
  readonly shard: ShardId
  readonly transferShards: number
  /** The block being executed. */
  readonly height: number
  /** Its timestamp (ms). */
  readonly timestamp: number
  /** Who may attest models, and their stake weights. */
  readonly committee: ReadonlyArray<CommitteeSeat>
  readonly economics: EconomicsConfig
  /** The chain's total supply when an epoch closes (issuance's floor); the chain side decides it. */
  readonly totalSupply: bigint
  /** GPU class → coefficient (genesis): a worker's units are devices × coefficient. */
  readonly gpuClasses: GpuClassTable
}

export type AiInput =
  | { readonly _tag: "Tx"; readonly tx: Transaction }
  | { readonly _tag: "Receipt"; readonly receipt: AiReceipt }
  | { readonly _tag: "BlockEnd" }

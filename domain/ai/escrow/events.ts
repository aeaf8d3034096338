/**
 * The events of one escrow: what a developer paid in for one model (stream
 * `escrow-{developer}-{modelId}`), what tasks hold of it, and what settled
 * tasks took for the provider.
 */
import { Schema } from "effect"
import { TimestampMs } from "../../chain/block.js"
import { Hash32 } from "../../chain/hash.js"
import { Address } from "../../chain/keys.js"
import { PositiveAmount, Uint256 } from "../../chain/transaction.js"
import { ModelId } from "../model/events.js"
import { TaskId } from "../task/events.js"

/** The stream of a developer's escrow for a model. */
export const escrowStreamId = (developer: Address, modelId: ModelId): string => `escrow-${developer}-${modelId}`

/** A signed deposit transaction, executed on chain. */
export class EscrowDeposited extends Schema.TaggedClass<EscrowDeposited>()("EscrowDeposited", {
  developer: Address,
  modelId: ModelId,
  amount: PositiveAmount,
  txHash: Hash32,
  at: TimestampMs
}) {}

/** Held for a requested task: no longer available, not yet anyone's. */
export class EscrowReserved extends Schema.TaggedClass<EscrowReserved>()("EscrowReserved", {
  taskId: TaskId,
  amount: Uint256
}) {}

/** A failed task's reservation, available again. */
export class EscrowReleased extends Schema.TaggedClass<EscrowReleased>()("EscrowReleased", {
  taskId: TaskId,
  amount: Uint256
}) {}

/** A settled task's reservation, now the provider's; paid out with its receipt batch. */
export class EscrowCaptured extends Schema.TaggedClass<EscrowCaptured>()("EscrowCaptured", {
  taskId: TaskId,
  amount: Uint256,
  receiptBatchId: Hash32
}) {}

/** A capture the AI ledger refused to settle, available again (the ledger's escrow never paid it). */
export class EscrowCaptureReturned extends Schema.TaggedClass<EscrowCaptureReturned>()("EscrowCaptureReturned", {
  taskId: TaskId,
  amount: PositiveAmount
}) {}

export const EscrowEvent = Schema.Union(EscrowDeposited, EscrowReserved, EscrowReleased, EscrowCaptured, EscrowCaptureReturned)
export type EscrowEvent = typeof EscrowEvent.Type

/** What can be asked of an escrow, and the typed error of each command. */
import { Schema } from "effect"
import { TimestampMs } from "../../chain/block.js"
import { Hash32 } from "../../chain/hash.js"
import { Address } from "../../chain/keys.js"
import { PositiveAmount, Uint256 } from "../../chain/transaction.js"
import { ModelId } from "../model/events.js"
import { TaskId } from "../task/events.js"

/** From an executed deposit transaction; delivered at least once. */
export class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", {
  developer: Address,
  modelId: ModelId,
  amount: PositiveAmount,
  txHash: Hash32,
  at: TimestampMs
}) {}

/** Before a task is requested: hold its price. */
export class Reserve extends Schema.TaggedClass<Reserve>()("Reserve", {
  taskId: TaskId,
  price: Uint256
}) {}

/** The task failed: its price is available again. */
export class Release extends Schema.TaggedClass<Release>()("Release", {
  taskId: TaskId
}) {}

/** The task settled in `receiptBatchId`: its price goes to the provider. */
export class Capture extends Schema.TaggedClass<Capture>()("Capture", {
  taskId: TaskId,
  receiptBatchId: Hash32
}) {}

/**
 * The AI ledger refused the task's usage receipt (`UsageRefused`): the ledger
 * took nothing, so what this book captured for it is available again. Once
 * per task: a second return decides nothing.
 */
export class ReturnCapture extends Schema.TaggedClass<ReturnCapture>()("ReturnCapture", {
  taskId: TaskId,
  amount: PositiveAmount
}) {}

export type EscrowCommand = Deposit | Reserve | Release | Capture | ReturnCapture

export class DepositRejected extends Schema.TaggedError<DepositRejected>()("DepositRejected", {
  reason: Schema.Literal("WrongEscrow", "ConflictingDeposit"),
  detail: Schema.String
}) {
  override get message(): string {
    return `deposit rejected, ${this.reason}: ${this.detail}`
  }
}

export class ReserveRejected extends Schema.TaggedError<ReserveRejected>()("ReserveRejected", {
  reason: Schema.Literal("InsufficientFunds", "AlreadyReserved"),
  detail: Schema.String,
  /** What the escrow had available. */
  available: Uint256
}) {
  override get message(): string {
    return `reservation rejected, ${this.reason}: ${this.detail}`
  }
}

export class ReleaseRejected extends Schema.TaggedError<ReleaseRejected>()("ReleaseRejected", {
  reason: Schema.Literal("NoReservation"),
  detail: Schema.String
}) {
  override get message(): string {
    return `release rejected, ${this.reason}: ${this.detail}`
  }
}

export class CaptureRejected extends Schema.TaggedError<CaptureRejected>()("CaptureRejected", {
  reason: Schema.Literal("NoReservation"),
  detail: Schema.String
}) {
  override get message(): string {
    return `capture rejected, ${this.reason}: ${this.detail}`
  }
}

export class ReturnRejected extends Schema.TaggedError<ReturnRejected>()("ReturnRejected", {
  reason: Schema.Literal("OverCaptured"),
  detail: Schema.String
}) {
  override get message(): string {
    return `capture not returned, ${this.reason}: ${this.detail}`
  }
}

export type EscrowError = DepositRejected | ReserveRejected | ReleaseRejected | CaptureRejected | ReturnRejected

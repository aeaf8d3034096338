/**
 * What can be asked of a compute node's record (the GpuWorkerActor's
 * messages) and the typed error of each command.
 */
import { Schema } from "effect"
import { TimestampMs } from "../../chain/block.js"
import { Hash32 } from "../../chain/hash.js"
import { Address } from "../../chain/keys.js"
import { Uint256 } from "../../chain/transaction.js"
import { GpuClass, GpuClassTable } from "./gpuClass.js"
import { Devices, Endpoint, TaskOutcome, WorkerId } from "./events.js"

export const WorkerRules = Schema.Struct({
  /** The genesis coefficient table; a worker's class must be in it. */
  gpuClasses: GpuClassTable,
  /** A worker whose last heartbeat is older than this may be marked offline. */
  heartbeatGraceMs: Schema.Int.pipe(Schema.positive()),
  /** Least stake a worker registers with, in base units. */
  stakeMin: Uint256
})
export type WorkerRules = typeof WorkerRules.Type

// ---------------------------------------------------------------- commands

export class RegisterWorker extends Schema.TaggedClass<RegisterWorker>()("RegisterWorker", {
  workerId: WorkerId,
  owner: Address,
  gpuClass: GpuClass,
  devices: Devices,
  stake: Uint256,
  endpoint: Endpoint,
  at: TimestampMs
}) {}

export class Heartbeat extends Schema.TaggedClass<Heartbeat>()("Heartbeat", {
  at: TimestampMs
}) {}

/** Sent by the node's watchdog; the decider checks the grace period itself. */
export class MarkOffline extends Schema.TaggedClass<MarkOffline>()("MarkOffline", {
  at: TimestampMs
}) {}

/** From `TaskValidated` with `disputed: false`. */
export class RecordTaskResult extends Schema.TaggedClass<RecordTaskResult>()("RecordTaskResult", {
  taskId: Hash32,
  outcome: TaskOutcome,
  at: TimestampMs
}) {}

/** From `TaskValidated` with `disputed: true`. */
export class RecordDispute extends Schema.TaggedClass<RecordDispute>()("RecordDispute", {
  taskId: Hash32,
  outcome: TaskOutcome,
  at: TimestampMs
}) {}

export class Deregister extends Schema.TaggedClass<Deregister>()("Deregister", {
  owner: Address,
  at: TimestampMs
}) {}

export type WorkerCommand = RegisterWorker | Heartbeat | MarkOffline | RecordTaskResult | RecordDispute | Deregister

// ---------------------------------------------------------------- errors

export class RegistrationRejected extends Schema.TaggedError<RegistrationRejected>()("RegistrationRejected", {
  reason: Schema.Literal("AlreadyRegistered", "UnknownGpuClass", "StakeTooLow"),
  detail: Schema.String
}) {
  override get message(): string {
    return `registration rejected, ${this.reason}: ${this.detail}`
  }
}

export class HeartbeatRejected extends Schema.TaggedError<HeartbeatRejected>()("HeartbeatRejected", {
  reason: Schema.Literal("NotRegistered", "Deregistered", "OutOfOrder"),
  detail: Schema.String
}) {
  override get message(): string {
    return `heartbeat rejected, ${this.reason}: ${this.detail}`
  }
}

export class MarkOfflineRejected extends Schema.TaggedError<MarkOfflineRejected>()("MarkOfflineRejected", {
  reason: Schema.Literal("NotRegistered", "Deregistered", "AlreadyOffline", "WithinGrace"),
  detail: Schema.String
}) {
  override get message(): string {
    return `mark offline rejected, ${this.reason}: ${this.detail}`
  }
}

export class OutcomeRejected extends Schema.TaggedError<OutcomeRejected>()("OutcomeRejected", {
  reason: Schema.Literal("NotRegistered", "AlreadyMarked"),
  detail: Schema.String
}) {
  override get message(): string {
    return `outcome rejected, ${this.reason}: ${this.detail}`
  }
}

export class DeregistrationRejected extends Schema.TaggedError<DeregistrationRejected>()("DeregistrationRejected", {
  reason: Schema.Literal("NotRegistered", "NotOwner", "AlreadyDeregistered"),
  detail: Schema.String
}) {
  override get message(): string {
    return `deregistration rejected, ${this.reason}: ${this.detail}`
  }
}

export type WorkerError =
  | RegistrationRejected
  | HeartbeatRejected
  | MarkOfflineRejected
  | OutcomeRejected
  | DeregistrationRejected

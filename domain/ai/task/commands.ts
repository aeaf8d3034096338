/**
 * What can be asked of a task (the TaskActor's messages) and the typed error
 * of each command. Time and the sampling draw come in the commands.
 */
import type { ClaimOverrun, OverrunChargeRejected } from "./overrun.js"
import { Schema } from "effect"
import { SignatureHex, TimestampMs } from "../../chain/block.js"
import { Hash32 } from "../../chain/hash.js"
import { Address } from "../../chain/keys.js"
import { OverranReceipt, ResultChallengePayload, Uint256, UsageReceipt } from "../../chain/transaction.js"
import { ModelId } from "../model/events.js"
import { WorkerId } from "../worker/events.js"
import { SampleDraw, TaskId, TaskRequested, WorkerFailureReason } from "./events.js"

export const TaskRules = Schema.Struct({
  /** Reassignments a task may have; the next worker failure fails it. */
  retriesMax: Schema.Int.pipe(Schema.nonNegative())
})
export type TaskRules = typeof TaskRules.Type

export const DEFAULT_TASK_RULES: TaskRules = { retriesMax: 3 }

// ---------------------------------------------------------------- commands

/** Admitted by the node (signature, model servable, escrow reserved) before it comes here; it becomes TaskRequested as is. */
const { _tag: _requested, ...requestFields } = TaskRequested.fields
export class RequestTask extends Schema.TaggedClass<RequestTask>()("RequestTask", requestFields) {}

/** `workers` from the scheduler, as many as `workersNeeded(policy, sampleDraw)`. */
export class AssignTask extends Schema.TaggedClass<AssignTask>()("AssignTask", {
  workers: Schema.Array(WorkerId),
  /** Uniform in [0, 10^6), drawn by the node; decides sampling under `Single`, ignored under `Quorum`. */
  sampleDraw: SampleDraw,
  at: TimestampMs
}) {}

/** A worker's result; its signature is checked by the node before this command. */
export class SubmitResult extends Schema.TaggedClass<SubmitResult>()("SubmitResult", {
  worker: WorkerId,
  fingerprint: Hash32,
  outputHash: Hash32,
  signature: SignatureHex,
  at: TimestampMs
}) {}

/** The referee's re-execution of a disputed task. */
export class ResolveDispute extends Schema.TaggedClass<ResolveDispute>()("ResolveDispute", {
  referee: WorkerId,
  fingerprint: Hash32,
  outputHash: Hash32,
  signature: SignatureHex,
  at: TimestampMs
}) {}

/**
 * A running worker died or timed out. `replacement` is the scheduler's pick
 * among workers the task has not involved, or null when there is none.
 */
export class WorkerFailed extends Schema.TaggedClass<WorkerFailed>()("WorkerFailed", {
  worker: WorkerId,
  reason: WorkerFailureReason,
  replacement: Schema.NullOr(WorkerId),
  at: TimestampMs
}) {}

/** The node gives up on a task not yet validated (nobody to run it, or no result in time). */
export class AbandonTask extends Schema.TaggedClass<AbandonTask>()("AbandonTask", {
  cause: Schema.Literal("NoWorkerAvailable", "TimedOut"),
  detail: Schema.String,
  at: TimestampMs
}) {}

/** The validated (or confirmed overran) task's usage receipt went into `receiptBatchId`: charge the developer. */
export class SettleTask extends Schema.TaggedClass<SettleTask>()("SettleTask", {
  receiptBatchId: Hash32,
  at: TimestampMs,
  /** The usage receipt to settle on chain (TaskSettled keeps it). */
  receipt: Schema.optional(UsageReceipt),
  /** A confirmed overrun's receipt (two workers' signed claims) to charge on chain in `usage.overran` (TaskSettled keeps it). */
  overran: Schema.optional(OverranReceipt),
  /** Proofs of the wrong results the task saw, to send on chain (TaskSettled keeps them). */
  challenges: Schema.optional(Schema.Array(ResultChallengePayload))
}) {}

export type TaskCommand =
  | RequestTask
  | AssignTask
  | SubmitResult
  | ResolveDispute
  | WorkerFailed
  | AbandonTask
  | SettleTask
  | ClaimOverrun

// ---------------------------------------------------------------- errors

export class RequestRejected extends Schema.TaggedError<RequestRejected>()("RequestRejected", {
  reason: Schema.Literal("AlreadyRequested", "InvalidPolicy"),
  detail: Schema.String
}) {
  override get message(): string {
    return `task request rejected, ${this.reason}: ${this.detail}`
  }
}

export class AssignmentRejected extends Schema.TaggedError<AssignmentRejected>()("AssignmentRejected", {
  reason: Schema.Literal("NotRequested", "AlreadyAssigned", "TaskEnded", "WrongWorkerCount", "DuplicateWorker"),
  detail: Schema.String
}) {
  override get message(): string {
    return `task assignment rejected, ${this.reason}: ${this.detail}`
  }
}

export class SubmissionRejected extends Schema.TaggedError<SubmissionRejected>()("SubmissionRejected", {
  reason: Schema.Literal("NotRunning", "NotAssigned", "AlreadySubmitted"),
  detail: Schema.String
}) {
  override get message(): string {
    return `result rejected, ${this.reason}: ${this.detail}`
  }
}

export class ResolutionRejected extends Schema.TaggedError<ResolutionRejected>()("ResolutionRejected", {
  reason: Schema.Literal("NoDispute", "RefereeIsParty"),
  detail: Schema.String
}) {
  override get message(): string {
    return `dispute resolution rejected, ${this.reason}: ${this.detail}`
  }
}

export class WorkerFailureRejected extends Schema.TaggedError<WorkerFailureRejected>()("WorkerFailureRejected", {
  reason: Schema.Literal("NotRunning", "NotAssigned", "AlreadySubmitted", "ReplacementInvolved"),
  detail: Schema.String
}) {
  override get message(): string {
    return `worker failure rejected, ${this.reason}: ${this.detail}`
  }
}

export class AbandonRejected extends Schema.TaggedError<AbandonRejected>()("AbandonRejected", {
  reason: Schema.Literal("NotRequested", "AlreadyValidated", "AlreadyFailed"),
  detail: Schema.String
}) {
  override get message(): string {
    return `abandon rejected, ${this.reason}: ${this.detail}`
  }
}

export class SettlementRejected extends Schema.TaggedError<SettlementRejected>()("SettlementRejected", {
  reason: Schema.Literal("NotValidated", "TaskFailed", "AlreadySettled"),
  detail: Schema.String
}) {
  override get message(): string {
    return `settlement rejected, ${this.reason}: ${this.detail}`
  }
}

export type TaskError =
  | RequestRejected
  | AssignmentRejected
  | SubmissionRejected
  | ResolutionRejected
  | WorkerFailureRejected
  | AbandonRejected
  | SettlementRejected
  | OverrunChargeRejected

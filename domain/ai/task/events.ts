/**
 * The events of one inference task's stream (`task-{id}`): request,
 * assignment, results, validation (directly or through a dispute),
 * reassignment after a worker failure, the end (failed or settled).
 *
 * `TaskValidated` is the one event that says which workers were right and
 * which wrong; the worker streams' reputation is fed from it alone.
 */
import { OverrunClaimed, OverrunClaimRefuted, TaskOverran } from "./overrun.js"
import { Schema } from "effect"
import { SignatureHex, TimestampMs } from "../../chain/block.js"
import { Hash32 } from "../../chain/hash.js"
import { Address } from "../../chain/keys.js"
import { OverranReceipt, ResultChallengePayload, Uint256, UsageReceipt } from "../../chain/transaction.js"
import { ModelId } from "../model/events.js"
import { WorkerId } from "../worker/events.js"

/** A task is named by the hash of the developer's signed request. */
export const TaskId = Hash32
export type TaskId = typeof TaskId.Type

/** The denominator of sampling rates and draws. */
export const PER_MILLION = 1_000_000
/** Workers a quorum task may run on. */
export const QUORUM_WORKERS_MAX = 16

/**
 * `Single`: one worker; with probability sampleRatePerMillion / 10^6 a second
 * worker runs the task too, and both fingerprints must agree.
 */
export const SinglePolicy = Schema.TaggedStruct("Single", {
  sampleRatePerMillion: Schema.Int.pipe(Schema.between(0, PER_MILLION))
})
export type SinglePolicy = typeof SinglePolicy.Type

/** `Quorum`: n workers run the task; k agreeing fingerprints validate it (k > n/2). */
export const QuorumPolicy = Schema.TaggedStruct("Quorum", {
  k: Schema.Int.pipe(Schema.positive()),
  n: Schema.Int.pipe(Schema.between(1, QUORUM_WORKERS_MAX))
})
export type QuorumPolicy = typeof QuorumPolicy.Type

export const ValidationPolicy = Schema.Union(SinglePolicy, QuorumPolicy)
export type ValidationPolicy = typeof ValidationPolicy.Type

/** A uniform draw in [0, 10^6), made by the node and passed in. */
export const SampleDraw = Schema.Int.pipe(Schema.between(0, PER_MILLION - 1))

export const WorkerFailureReason = Schema.Literal("died", "timeout")
export type WorkerFailureReason = typeof WorkerFailureReason.Type

/**
 * Why a task failed (the developer is never charged for one):
 *   RetriesExhausted   a worker failed after the last allowed reassignment
 *   NoWorkerAvailable  no worker to run it (or to replace a failed one)
 *   TimedOut           the node gave up on it (no result, no referee)
 */
export const TaskFailureCause = Schema.Literal("RetriesExhausted", "NoWorkerAvailable", "TimedOut")
export type TaskFailureCause = typeof TaskFailureCause.Type

export class TaskRequested extends Schema.TaggedClass<TaskRequested>()("TaskRequested", {
  taskId: TaskId,
  developer: Address,
  modelId: ModelId,
  /** What the developer pays on settlement, in base units (the model's price at request). */
  price: Uint256,
  /** sha256 of the canonical input tensors. */
  inputHash: Hash32,
  policy: ValidationPolicy,
  at: TimestampMs
}) {}

export class TaskAssigned extends Schema.TaggedClass<TaskAssigned>()("TaskAssigned", {
  workers: Schema.Array(WorkerId),
  sampleDraw: SampleDraw,
  /** Single policy only: the draw fell under the sampling rate, so two workers run it. */
  sampled: Schema.Boolean,
  at: TimestampMs
}) {}

export class TaskResultSubmitted extends Schema.TaggedClass<TaskResultSubmitted>()("TaskResultSubmitted", {
  worker: WorkerId,
  fingerprint: Hash32,
  /** sha256 of the outputs' canonical bytes (outputHash.ts). */
  outputHash: Hash32,
  /** The worker's signature over the result (checked by the node before the command). */
  signature: SignatureHex,
  at: TimestampMs
}) {}

export const FingerprintGroup = Schema.Struct({ fingerprint: Hash32, workers: Schema.Array(WorkerId) })
export type FingerprintGroup = typeof FingerprintGroup.Type

/** The results disagree so that no fingerprint can validate; re-execution decides. */
export class DisputeOpened extends Schema.TaggedClass<DisputeOpened>()("DisputeOpened", {
  /** In order of first submission. */
  groups: Schema.Array(FingerprintGroup),
  at: TimestampMs
}) {}

/** The referee's re-execution: its fingerprint is the truth. */
export class DisputeResolved extends Schema.TaggedClass<DisputeResolved>()("DisputeResolved", {
  referee: WorkerId,
  fingerprint: Hash32,
  outputHash: Hash32,
  signature: SignatureHex,
  correct: Schema.Array(WorkerId),
  wrong: Schema.Array(WorkerId),
  at: TimestampMs
}) {}

export class TaskValidated extends Schema.TaggedClass<TaskValidated>()("TaskValidated", {
  fingerprint: Hash32,
  /** The output the developer gets. */
  outputHash: Hash32,
  /** Submitters whose fingerprint is the validated one. */
  correct: Schema.Array(WorkerId),
  /** Submitters in the wrong: to be marked. */
  wrong: Schema.Array(WorkerId),
  /** Validated by re-execution after a dispute. */
  disputed: Schema.Boolean,
  at: TimestampMs
}) {}

export class TaskReassigned extends Schema.TaggedClass<TaskReassigned>()("TaskReassigned", {
  failed: WorkerId,
  reason: WorkerFailureReason,
  replacement: WorkerId,
  /** 1 for the first reassignment of the task. */
  retry: Schema.Int.pipe(Schema.positive()),
  at: TimestampMs
}) {}

export class TaskFailed extends Schema.TaggedClass<TaskFailed>()("TaskFailed", {
  cause: TaskFailureCause,
  detail: Schema.String,
  at: TimestampMs
}) {}

/** The developer's one charge: `amount` moves from escrow to the provider in `receiptBatchId`. */
export class TaskSettled extends Schema.TaggedClass<TaskSettled>()("TaskSettled", {
  receiptBatchId: Hash32,
  developer: Address,
  modelId: ModelId,
  amount: Uint256,
  at: TimestampMs,
  /**
   * The usage receipt the parties signed (grant and results): what the
   * gateway's Settler submits in `usage.settle`. Kept here so a crash loses
   * none. Absent on a confirmed overrun, which keeps `overran` instead.
   */
  receipt: Schema.optional(UsageReceipt),
  /** A confirmed overrun's receipt (the grant, the request, two workers' signed claims): what the Settler submits in `usage.overran`. */
  overran: Schema.optional(OverranReceipt),
  /** Proofs of the wrong results the task saw (`wrongResultProofs.ts`): what the gateway's Challenger sends as `result.challenge`. */
  challenges: Schema.optional(Schema.Array(ResultChallengePayload))
}) {}

export const TaskEvent = Schema.Union(
  OverrunClaimed,
  OverrunClaimRefuted,
  TaskOverran,
  TaskRequested,
  TaskAssigned,
  TaskResultSubmitted,
  DisputeOpened,
  DisputeResolved,
  TaskValidated,
  TaskReassigned,
  TaskFailed,
  TaskSettled
)
export type TaskEvent = typeof TaskEvent.Type

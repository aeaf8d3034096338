/**
 * The events of one compute node's stream (`worker-{id}`): registration,
 * heartbeats and going offline, the outcomes of its tasks (its reputation)
 * and the marks that slashing will read, deregistration.
 */
import { Schema } from "effect"
import { TimestampMs } from "../../chain/block.js"
import { Hash32 } from "../../chain/hash.js"
import { Address } from "../../chain/keys.js"
import { Uint256 } from "../../chain/transaction.js"
import { GpuClass } from "./gpuClass.js"

/** A worker is named by the address of the key it signs results with. */
export const WorkerId = Address
export type WorkerId = typeof WorkerId.Type

export const Devices = Schema.Int.pipe(Schema.between(1, 1024))

/** An inference endpoint the node dispatches to, e.g. `ws://10.0.0.7:7400`. */
export const Endpoint = Schema.NonEmptyTrimmedString

/** Whether the worker's fingerprint was the one the task validated with. */
export const TaskOutcome = Schema.Literal("correct", "wrong")
export type TaskOutcome = typeof TaskOutcome.Type

export class WorkerRegistered extends Schema.TaggedClass<WorkerRegistered>()("WorkerRegistered", {
  workerId: WorkerId,
  owner: Address,
  gpuClass: GpuClass,
  devices: Devices,
  /** devices × the class's coefficient at registration, in milli-units. */
  gpuUnitsMilli: Schema.BigInt.pipe(Schema.positiveBigInt()),
  stake: Uint256,
  endpoint: Endpoint,
  at: TimestampMs
}) {}

/** A heartbeat; an offline worker is online again from here. */
export class WorkerHeartbeat extends Schema.TaggedClass<WorkerHeartbeat>()("WorkerHeartbeat", {
  at: TimestampMs
}) {}

export class WorkerWentOffline extends Schema.TaggedClass<WorkerWentOffline>()("WorkerWentOffline", {
  at: TimestampMs,
  lastHeartbeatAt: TimestampMs
}) {}

/** The worker's part in an undisputed task (a minority under quorum is `wrong`). */
export class TaskResultRecorded extends Schema.TaggedClass<TaskResultRecorded>()("TaskResultRecorded", {
  taskId: Hash32,
  outcome: TaskOutcome,
  at: TimestampMs
}) {}

/** The worker's side of a dispute, as re-execution settled it. */
export class DisputeRecorded extends Schema.TaggedClass<DisputeRecorded>()("DisputeRecorded", {
  taskId: Hash32,
  outcome: TaskOutcome,
  at: TimestampMs
}) {}

export class WorkerDeregistered extends Schema.TaggedClass<WorkerDeregistered>()("WorkerDeregistered", {
  at: TimestampMs
}) {}

export const WorkerEvent = Schema.Union(
  WorkerRegistered,
  WorkerHeartbeat,
  WorkerWentOffline,
  TaskResultRecorded,
  DisputeRecorded,
  WorkerDeregistered
)
export type WorkerEvent = typeof WorkerEvent.Type

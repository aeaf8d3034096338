/**
 * Serving overruns of one model: a call stopped by a compute node's limits
 * (past its deadline, or over its memory bound) is recorded on the model's
 * stream; at OVERRUNS_TO_SUSPEND of them the model is suspended — no new
 * tasks — because a model that keeps overrunning on inputs its manifest
 * allows costs workers time that its price may not pay for.
 *
 * Kept apart from decide.ts (verification, price, deprecation): its own
 * command, events, error, decide and evolve, wired in by one case each.
 */
import { Either, Schema } from "effect"
import { TimestampMs } from "../../chain/block.js"
import { Hash32 } from "../../chain/hash.js"
import type { ModelState } from "./state.js"

/** Overruns that suspend a model. */
export const OVERRUNS_TO_SUSPEND = 3

export const OverrunKind = Schema.Literal("Deadline", "LoadDeadline", "Memory")
export type OverrunKind = typeof OverrunKind.Type

/** A task on this model was stopped by a compute node's limit (sent by the node's task runner). */
export class RecordOverrun extends Schema.TaggedClass<RecordOverrun>()("RecordOverrun", {
  taskId: Hash32,
  kind: OverrunKind,
  /** Time the run burned before it was stopped. */
  millis: Schema.NonNegativeInt,
  at: TimestampMs
}) {}

export class ModelOverran extends Schema.TaggedClass<ModelOverran>()("ModelOverran", {
  taskId: Hash32,
  kind: OverrunKind,
  millis: Schema.NonNegativeInt,
  /** Overruns so far, this one included. */
  count: Schema.Int.pipe(Schema.positive()),
  at: TimestampMs
}) {}

/** No new tasks for this model; its history stays. */
export class ModelSuspended extends Schema.TaggedClass<ModelSuspended>()("ModelSuspended", {
  overruns: Schema.Int.pipe(Schema.positive()),
  reason: Schema.String,
  at: TimestampMs
}) {}

export class OverrunRejected extends Schema.TaggedError<OverrunRejected>()("OverrunRejected", {
  reason: Schema.Literal("ModelAbsent", "NotVerified", "AlreadyRecorded"),
  detail: Schema.String
}) {
  override get message(): string {
    return `overrun rejected, ${this.reason}: ${this.detail}`
  }
}

export type OverrunEvent = ModelOverran | ModelSuspended

export const decideOverrun = (s: ModelState, cmd: RecordOverrun): Either.Either<ReadonlyArray<OverrunEvent>, OverrunRejected> => {
  const reject = (reason: OverrunRejected["reason"], detail: string) => Either.left(new OverrunRejected({ reason, detail }))
  if (s.upload === null) return reject("ModelAbsent", "no model was uploaded on this stream")
  if (s.status !== "Verified") return reject("NotVerified", `model ${s.upload.modelId} is ${s.status}; only a verified model serves`)
  if (s.overranTasks.includes(cmd.taskId)) return reject("AlreadyRecorded", `task ${cmd.taskId} is recorded already`)
  const count = s.overranTasks.length + 1
  const overran = new ModelOverran({ taskId: cmd.taskId, kind: cmd.kind, millis: cmd.millis, count, at: cmd.at })
  if (s.suspended || count < OVERRUNS_TO_SUSPEND) return Either.right([overran])
  const reason = `${count} calls overran their limits (the last: ${cmd.kind} after ${cmd.millis} ms); at ${OVERRUNS_TO_SUSPEND} a model is suspended`
  return Either.right([overran, new ModelSuspended({ overruns: count, reason, at: cmd.at })])
}

/** The state after an overrun event (evolve's cases for them). */
export const evolveOverrun = (s: ModelState, e: OverrunEvent, assert: (ok: boolean, what: string) => void): ModelState => {
  switch (e._tag) {
    case "ModelOverran":
      assert(s.status === "Verified", `overrun on a ${s.status} model`)
      assert(e.count === s.overranTasks.length + 1, `overrun count ${e.count} after ${s.overranTasks.length}`)
      return { ...s, overranTasks: [...s.overranTasks, e.taskId] }
    case "ModelSuspended":
      assert(s.status === "Verified" && !s.suspended, `suspension of a ${s.suspended ? "suspended" : s.status} model`)
      return { ...s, suspended: true }
  }
}

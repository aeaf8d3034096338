/**
 * A task whose run was stopped by the compute node's limits — past the
 * deadline derived from the model's verified cost, or over the worker's
 * memory bound. Such a run is not an accident of the worker: the same inputs
 * would overrun on the next one, so the task is not reassigned. The time
 * was burned, so it is charged:
 *
 *   Running → Overran → Settled   (charged the task's price, once)
 *
 * The economy pays the worker its computing fee for `millis` out of that
 * price, as for a validated task; a model whose overruns cost more than its
 * price is paused by the fee rule, and one that overruns repeatedly is
 * suspended on its own stream (model/overruns.ts).
 *
 * An overrun claim is refused once another worker has submitted a result
 * for the task: the inputs did not overrun there, so the claimant is
 * treated as a failed worker instead (the caller's `WorkerFailed`).
 *
 * Kept apart from decide.ts: its own command, event, error and decide,
 * wired in by one case each.
 */
import { Either, Schema } from "effect"
import { TimestampMs } from "../../chain/block.js"
import { OverrunKind } from "../model/overruns.js"
import { WorkerId } from "../worker/events.js"
import { hasSubmitted, type TaskState } from "./state.js"

/** A worker reports that the engine stopped its run at a limit. */
export class ChargeOverrun extends Schema.TaggedClass<ChargeOverrun>()("ChargeOverrun", {
  worker: WorkerId,
  kind: OverrunKind,
  /** How long the run went before it was stopped. */
  millis: Schema.NonNegativeInt,
  /** The limit it passed: ms for a deadline, bytes for memory. */
  limit: Schema.NonNegativeInt,
  at: TimestampMs
}) {}

export class TaskOverran extends Schema.TaggedClass<TaskOverran>()("TaskOverran", {
  worker: WorkerId,
  kind: OverrunKind,
  millis: Schema.NonNegativeInt,
  limit: Schema.NonNegativeInt,
  at: TimestampMs
}) {}

export class OverrunChargeRejected extends Schema.TaggedError<OverrunChargeRejected>()("OverrunChargeRejected", {
  reason: Schema.Literal("NotRunning", "NotAssigned", "AlreadySubmitted", "OthersSucceeded"),
  detail: Schema.String
}) {
  override get message(): string {
    return `overrun charge rejected, ${this.reason}: ${this.detail}`
  }
}

export const decideChargeOverrun = (s: TaskState, cmd: ChargeOverrun): Either.Either<ReadonlyArray<TaskOverran>, OverrunChargeRejected> => {
  const reject = (reason: OverrunChargeRejected["reason"], detail: string) => Either.left(new OverrunChargeRejected({ reason, detail }))
  if (s.status !== "Running") return reject("NotRunning", `the task is ${s.status}`)
  if (!s.assignees.includes(cmd.worker)) return reject("NotAssigned", `${cmd.worker} is not running this task`)
  if (hasSubmitted(s, cmd.worker)) return reject("AlreadySubmitted", `${cmd.worker} has submitted its result`)
  if (s.submissions.length > 0) {
    return reject("OthersSucceeded", `${s.submissions.map((x) => x.worker).join(", ")} ran these inputs within the limits`)
  }
  return Either.right([new TaskOverran({ worker: cmd.worker, kind: cmd.kind, millis: cmd.millis, limit: cmd.limit, at: cmd.at })])
}

/** What a `TaskOverran` says, in words (for the developer's refusal and the logs). */
export const describeOverrun = (e: TaskOverran): string =>
  e.kind === "Memory"
    ? `the run needed more than the ${Math.round(e.limit / (1024 * 1024))} MiB the worker allows (stopped after ${e.millis} ms)`
    : e.kind === "LoadDeadline"
      ? `the model did not load within ${e.limit} ms`
      : `the run went past its deadline of ${e.limit} ms (stopped after ${e.millis} ms)`

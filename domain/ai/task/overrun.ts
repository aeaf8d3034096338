/**
 * A task whose run was stopped by the compute node's limits — past the
 * deadline derived from the model's verified cost, or over the worker's
 * memory bound. The claim comes from the worker, and a worker may lie (to
 * charge the developer, to be paid for time it did not burn, to get a good
 * model suspended), so one worker's claim is only a claim:
 *
 *   Running ─ClaimOverrun→ (claim pending: the claimant is replaced by a
 *                           confirmer the node picked, same inputs, same deadline)
 *     ├ another worker also overruns   → TaskOverran → Settled (charged the price, once)
 *     ├ any worker submits a result    → OverrunClaimRefuted (a deadline claim
 *     │                                  was a lie: marked and slashed as a wrong
 *     │                                  result; `refutationProvesLie`), and the
 *     │                                  task goes on as usual
 *     └ no worker to confirm it        → TaskFailed, never charged
 *
 * A confirmed overrun is charged: the economy pays both workers their
 * burned `millis` as computing fees out of the price, as for a validated
 * task with two workers; the model's overrun count (model/overruns.ts)
 * moves only on a confirmed overrun (`overrunRecordOf`).
 *
 * A claim is refused once a worker has submitted a result for the task: the
 * inputs did not overrun there, so the claimant is treated as a failed
 * worker instead (the caller's `WorkerFailed`).
 *
 * Kept apart from decide.ts: its own command, events, error and decide,
 * wired in by one case each.
 */
import { Either, Schema } from "effect"
import { TimestampMs } from "../../chain/block.js"
import { type Hash32 } from "../../chain/hash.js"
import { OverrunKind, RecordOverrun } from "../model/overruns.js"
import { WorkerId } from "../worker/events.js"
import type { TaskFailed } from "./events.js"
import { hasSubmitted, involves, type TaskState } from "./state.js"

/**
 * A worker reports that its engine stopped the run at a limit. `confirmer`
 * is the node's pick among workers the task has not involved (null when
 * there is none): it re-runs the inputs if this is the first claim.
 */
export class ClaimOverrun extends Schema.TaggedClass<ClaimOverrun>()("ClaimOverrun", {
  worker: WorkerId,
  kind: OverrunKind,
  /** How long the run went before it was stopped. */
  millis: Schema.NonNegativeInt,
  /** The limit it passed: ms for a deadline, bytes for memory. */
  limit: Schema.NonNegativeInt,
  confirmer: Schema.NullOr(WorkerId),
  at: TimestampMs
}) {}

/** A first claim: the claimant leaves the task, `confirmer` runs the same inputs in its place. */
export class OverrunClaimed extends Schema.TaggedClass<OverrunClaimed>()("OverrunClaimed", {
  worker: WorkerId,
  kind: OverrunKind,
  millis: Schema.NonNegativeInt,
  limit: Schema.NonNegativeInt,
  confirmer: WorkerId,
  at: TimestampMs
}) {}

/** A worker ran the inputs within the limits while a claim was pending: the claim was false. */
export class OverrunClaimRefuted extends Schema.TaggedClass<OverrunClaimRefuted>()("OverrunClaimRefuted", {
  claimant: WorkerId,
  /** The limit the claimant said it passed (`refutationProvesLie`). */
  kind: OverrunKind,
  /** The worker whose result refutes the claim. */
  refutedBy: WorkerId,
  at: TimestampMs
}) {}

/** Two workers were stopped at the limits on these inputs: the overrun is confirmed and charged. */
export class TaskOverran extends Schema.TaggedClass<TaskOverran>()("TaskOverran", {
  /** The worker whose claim confirmed the first one. */
  worker: WorkerId,
  /** The first claimant. */
  claimant: WorkerId,
  kind: OverrunKind,
  millis: Schema.NonNegativeInt,
  limit: Schema.NonNegativeInt,
  at: TimestampMs
}) {}

export class OverrunChargeRejected extends Schema.TaggedError<OverrunChargeRejected>()("OverrunChargeRejected", {
  reason: Schema.Literal("NotRunning", "NotAssigned", "AlreadySubmitted", "OthersSucceeded", "ConfirmerInvolved"),
  detail: Schema.String
}) {
  override get message(): string {
    return `overrun claim rejected, ${this.reason}: ${this.detail}`
  }
}

/** Events built here come from decoded commands: their constructors skip re-validation. */
const CHECKED = true

/** `failed` builds the TaskFailed of an unconfirmable claim (events.ts imports this module: no cycle at load). */
export const decideClaimOverrun = (
  s: TaskState,
  cmd: ClaimOverrun,
  failed: (detail: string, at: number) => TaskFailed
): Either.Either<ReadonlyArray<OverrunClaimed | TaskOverran | TaskFailed>, OverrunChargeRejected> => {
  const reject = (reason: OverrunChargeRejected["reason"], detail: string) => Either.left(new OverrunChargeRejected({ reason, detail }))
  if (s.status !== "Running") return reject("NotRunning", `the task is ${s.status}`)
  if (!s.assignees.includes(cmd.worker)) return reject("NotAssigned", `${cmd.worker} is not running this task`)
  if (hasSubmitted(s, cmd.worker)) return reject("AlreadySubmitted", `${cmd.worker} has submitted its result`)
  if (s.submissions.length > 0) {
    return reject("OthersSucceeded", `${s.submissions.map((x) => x.worker).join(", ")} ran these inputs within the limits`)
  }
  const { worker, kind, millis, limit, confirmer, at } = cmd
  // The claimant left the task when it claimed: this is a second, distinct worker.
  if (s.claim !== null) return Either.right([new TaskOverran({ worker, claimant: s.claim.worker, kind, millis, limit, at }, CHECKED)])
  if (confirmer === null) {
    const detail = `worker ${worker} claimed an overrun and no other worker can confirm it: an unconfirmed claim is not charged`
    return Either.right([failed(detail, at)])
  }
  if (involves(s, confirmer)) return reject("ConfirmerInvolved", `${confirmer} has run this task already`)
  return Either.right([new OverrunClaimed({ worker, kind, millis, limit, confirmer, at }, CHECKED)])
}

/** With a claim pending, a result from `worker` refutes it (decide.ts adds this after the submission). */
export const refutationOf = (s: TaskState, worker: WorkerId, at: number): OverrunClaimRefuted | null =>
  s.claim === null ? null : new OverrunClaimRefuted({ claimant: s.claim.worker, kind: s.claim.kind, refutedBy: worker, at }, CHECKED)

/**
 * Whether a refuted claim of this kind proves a lie (the claimant marked
 * and slashed as for a wrong result). The run deadline is the assignment's,
 * the same for every worker; the memory bound and the load deadline are
 * each worker's own, so a worker with less memory may honestly stop where
 * another finishes: its refuted claim is not charged, not paid and not
 * counted, but it is not marked either.
 */
export const refutationProvesLie = (kind: OverrunKind): boolean => kind === "Deadline"

/** What the model's stream records of this task: a confirmed overrun only, never a claim. */
export const overrunRecordOf = (s: TaskState): RecordOverrun | null => {
  const o = s.overrun
  if (o === null || s.request === null) return null
  return new RecordOverrun({ taskId: s.request.taskId as Hash32, kind: o.kind, millis: o.millis, at: o.at }, CHECKED)
}

/** What an overrun says, in words (for the developer's refusal and the logs). */
export const describeOverrun = (e: { readonly kind: OverrunKind; readonly limit: number; readonly millis: number }): string =>
  e.kind === "Memory"
    ? `the run needed more than the ${Math.round(e.limit / (1024 * 1024))} MiB the worker allows (stopped after ${e.millis} ms)`
    : e.kind === "LoadDeadline"
      ? `the model did not load within ${e.limit} ms`
      : `the run went past its deadline of ${e.limit} ms (stopped after ${e.millis} ms)`

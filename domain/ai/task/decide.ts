/**
 * The TaskActor's rules: the life of one paid inference request, as a decider.
 *
 * Validation, after every result (with `need` agreeing fingerprints: 1 under
 * `Single`, 2 under a sampled `Single`, k under `Quorum k-of-n`):
 *   - a fingerprint has `need` results          → TaskValidated (the others named wrong)
 *   - no fingerprint can reach `need`, counting
 *     every result still outstanding on its side → DisputeOpened
 *   - otherwise the task keeps running.
 * Results that arrive after validation are refused (NotRunning): the node
 * cancels the remaining executions.
 *
 * Sampling (`Single`): the node draws `sampleDraw` uniform in [0, 10^6) and
 * passes it in `AssignTask`; the task is sampled when the draw is below
 * `sampleRatePerMillion`, and then two workers run it at once (no added
 * latency for the developer) and must agree.
 *
 * Disputes are resolved by a referee's re-execution, whose fingerprint wins:
 * the submitters that match it are correct, the others wrong; when none
 * matches, all are wrong and the developer gets the referee's output. The
 * referee is never a worker the task has involved.
 *
 * Failures: a worker that dies or times out before its result is replaced in
 * place (`TaskReassigned`) by a worker the task has not involved, at most
 * `retriesMax` times; the next failure, or a failure with no replacement,
 * fails the task. A failed task is never charged.
 *
 * Overruns: a worker's claim that its run was stopped at the limits is
 * confirmed by a second worker before anything is charged (overrun.ts); a
 * result while the claim is pending refutes it.
 *
 * Settlement: only a Validated (or confirmed Overran) task settles, once. A second `SettleTask` is
 * the typed error `AlreadySettled` (not a silent no-op), so a caller that
 * retries a settlement learns it had already happened and the receipt batch
 * it went into (`state.settlement`).
 */
import { decideClaimOverrun, refutationOf } from "./overrun.js"
import { Either } from "effect"
import type { Decider } from "../../Decider.js"
import type { WorkerId } from "../worker/events.js"
import {
  AbandonRejected,
  AssignmentRejected,
  RequestRejected,
  ResolutionRejected,
  SettlementRejected,
  SubmissionRejected,
  WorkerFailureRejected,
  type AbandonTask,
  type AssignTask,
  type RequestTask,
  type ResolveDispute,
  type SettleTask,
  type SubmitResult,
  type TaskCommand,
  type TaskError,
  type TaskRules,
  type WorkerFailed
} from "./commands.js"
import {
  DisputeOpened,
  DisputeResolved,
  TaskAssigned,
  TaskFailed,
  TaskReassigned,
  TaskRequested,
  TaskResultSubmitted,
  TaskSettled,
  TaskValidated,
  type TaskEvent,
  type ValidationPolicy
} from "./events.js"
import { agreementNeeded, evolve, groupsOf, hasSubmitted, initialTaskState, involves, type TaskState } from "./state.js"
import { unreachable } from "../../assert.js"

export { evolve, initialTaskState, type TaskState, type TaskStatus } from "./state.js"

type Decision<E> = Either.Either<ReadonlyArray<TaskEvent>, E>

/** Events built here come from decoded commands: their constructors skip re-validation (this runs per request). */
const CHECKED = true

/** Under `Single`, whether the draw asks for a second execution. */
export const isSampled = (policy: ValidationPolicy, sampleDraw: number): boolean =>
  policy._tag === "Single" && sampleDraw < policy.sampleRatePerMillion

/** How many workers `AssignTask` must name. */
export const workersNeeded = (policy: ValidationPolicy, sampleDraw: number): number =>
  policy._tag === "Quorum" ? policy.n : isSampled(policy, sampleDraw) ? 2 : 1

/** Reassignments the task may still have. */
export const retriesLeft = (rules: TaskRules, s: TaskState): number => Math.max(0, rules.retriesMax - s.retries)

/** Validated or disputed, by the rule of the module doc; null while the task keeps running. */
export const evaluate = (s: TaskState, at: number): TaskValidated | DisputeOpened | null => {
  const need = agreementNeeded(s)
  const groups = groupsOf(s)
  const outstanding = s.assignees.length - s.submissions.length
  let largest = 0
  for (const g of groups) {
    if (g.submissions.length >= need) {
      const correct = g.submissions.map((r) => r.worker)
      const wrong = s.submissions.filter((r) => r.fingerprint !== g.fingerprint).map((r) => r.worker)
      const outputHash = g.submissions[0]!.outputHash
      return new TaskValidated({ fingerprint: g.fingerprint, outputHash, correct, wrong, disputed: false, at }, CHECKED)
    }
    largest = Math.max(largest, g.submissions.length)
  }
  if (largest + outstanding >= need) return null
  const disputed = groups.map((g) => ({ fingerprint: g.fingerprint, workers: g.submissions.map((r) => r.worker) }))
  return new DisputeOpened({ groups: disputed, at }, CHECKED)
}

// ---------------------------------------------------------------- decide, one function per command

const decideRequest = (s: TaskState, cmd: RequestTask): Decision<RequestRejected> => {
  const reject = (reason: RequestRejected["reason"], detail: string) => Either.left(new RequestRejected({ reason, detail }))
  if (s.request !== null) return reject("AlreadyRequested", `task ${s.request.taskId} is ${s.status}`)
  const policy = cmd.policy
  if (policy._tag === "Quorum") {
    if (policy.k > policy.n) return reject("InvalidPolicy", `quorum ${policy.k} of ${policy.n}: k exceeds n`)
    // Two different fingerprints must never both reach k.
    if (2 * policy.k <= policy.n) return reject("InvalidPolicy", `quorum ${policy.k} of ${policy.n}: k must be a majority of n`)
  }
  const { taskId, developer, modelId, price, inputHash, at } = cmd
  return Either.right([new TaskRequested({ taskId, developer, modelId, price, inputHash, policy, at }, CHECKED)])
}

const decideAssign = (s: TaskState, cmd: AssignTask): Decision<AssignmentRejected> => {
  const reject = (reason: AssignmentRejected["reason"], detail: string) => Either.left(new AssignmentRejected({ reason, detail }))
  const request = s.request
  if (request === null) return reject("NotRequested", "no task was requested on this stream")
  if (s.status === "Failed" || s.status === "Settled") return reject("TaskEnded", `task ${request.taskId} is ${s.status}`)
  if (s.status !== "Requested") return reject("AlreadyAssigned", `task ${request.taskId} is ${s.status} on ${s.assignees.join(", ")}`)
  const needed = workersNeeded(request.policy, cmd.sampleDraw)
  if (cmd.workers.length !== needed) {
    return reject("WrongWorkerCount", `${cmd.workers.length} workers named, the ${request.policy._tag} policy needs ${needed}`)
  }
  if (new Set(cmd.workers).size !== cmd.workers.length) return reject("DuplicateWorker", `workers named twice in ${cmd.workers.join(", ")}`)
  const sampled = isSampled(request.policy, cmd.sampleDraw)
  return Either.right([new TaskAssigned({ workers: cmd.workers, sampleDraw: cmd.sampleDraw, sampled, at: cmd.at }, CHECKED)])
}

const decideSubmit = (s: TaskState, cmd: SubmitResult): Decision<SubmissionRejected> => {
  const reject = (reason: SubmissionRejected["reason"], detail: string) => Either.left(new SubmissionRejected({ reason, detail }))
  if (s.status !== "Running") return reject("NotRunning", `the task is ${s.status}`)
  if (!s.assignees.includes(cmd.worker)) return reject("NotAssigned", `${cmd.worker} is not running this task`)
  if (hasSubmitted(s, cmd.worker)) return reject("AlreadySubmitted", `${cmd.worker} has submitted its result`)
  const { worker, fingerprint, outputHash, signature, at } = cmd
  const submitted = new TaskResultSubmitted({ worker, fingerprint, outputHash, signature, at }, CHECKED)
  // A result within the limits while an overrun claim is pending: the claim was false (overrun.ts).
  const refuted = refutationOf(s, worker, at)
  const head: ReadonlyArray<TaskEvent> = refuted === null ? [submitted] : [submitted, refuted]
  const outcome = evaluate(head.reduce(evolve, s), at)
  return Either.right(outcome === null ? head : [...head, outcome])
}

const decideResolve = (s: TaskState, cmd: ResolveDispute): Decision<ResolutionRejected> => {
  const reject = (reason: ResolutionRejected["reason"], detail: string) => Either.left(new ResolutionRejected({ reason, detail }))
  if (s.status !== "Disputed") return reject("NoDispute", `the task is ${s.status}`)
  if (involves(s, cmd.referee)) return reject("RefereeIsParty", `${cmd.referee} ran this task`)
  const { referee, fingerprint, signature, at } = cmd
  const matching = s.submissions.filter((r) => r.fingerprint === fingerprint)
  const correct = matching.map((r) => r.worker)
  const wrong = s.submissions.filter((r) => r.fingerprint !== fingerprint).map((r) => r.worker)
  const outputHash = matching[0]?.outputHash ?? cmd.outputHash
  return Either.right([
    new DisputeResolved({ referee, fingerprint, outputHash: cmd.outputHash, signature, correct, wrong, at }, CHECKED),
    new TaskValidated({ fingerprint, outputHash, correct, wrong, disputed: true, at }, CHECKED)
  ])
}

const describeWorker = (worker: WorkerId, reason: WorkerFailed["reason"]) => `worker ${worker} ${reason === "died" ? "died" : "timed out"}`

const decideWorkerFailed = (rules: TaskRules, s: TaskState, cmd: WorkerFailed): Decision<WorkerFailureRejected> => {
  const reject = (reason: WorkerFailureRejected["reason"], detail: string) =>
    Either.left(new WorkerFailureRejected({ reason, detail }))
  if (s.status !== "Running") return reject("NotRunning", `the task is ${s.status}`)
  if (!s.assignees.includes(cmd.worker)) return reject("NotAssigned", `${cmd.worker} is not running this task`)
  if (hasSubmitted(s, cmd.worker)) return reject("AlreadySubmitted", `${cmd.worker} has submitted its result`)
  const { worker, reason, replacement, at } = cmd
  if (s.retries >= rules.retriesMax) {
    const detail = `${describeWorker(worker, reason)} after ${s.retries} reassignments (at most ${rules.retriesMax})`
    return Either.right([new TaskFailed({ cause: "RetriesExhausted", detail, at }, CHECKED)])
  }
  if (replacement === null) {
    const detail = `${describeWorker(worker, reason)} and no other worker can take the task`
    return Either.right([new TaskFailed({ cause: "NoWorkerAvailable", detail, at }, CHECKED)])
  }
  if (involves(s, replacement)) return reject("ReplacementInvolved", `${replacement} has run this task already`)
  return Either.right([new TaskReassigned({ failed: worker, reason, replacement, retry: s.retries + 1, at }, CHECKED)])
}

const decideAbandon = (s: TaskState, cmd: AbandonTask): Decision<AbandonRejected> => {
  const reject = (reason: AbandonRejected["reason"], detail: string) => Either.left(new AbandonRejected({ reason, detail }))
  switch (s.status) {
    case "Idle":
      return reject("NotRequested", "no task was requested on this stream")
    case "Validated":
    case "Settled":
      return reject("AlreadyValidated", `the task is ${s.status}: its result was delivered`)
    case "Overran":
      return reject("AlreadyValidated", "the task overran its limits and is charged")
    case "Failed":
      return reject("AlreadyFailed", `the task failed already (${s.failure?.cause})`)
    case "Requested":
    case "Running":
    case "Disputed":
      return Either.right([new TaskFailed({ cause: cmd.cause, detail: cmd.detail, at: cmd.at }, CHECKED)])
    default:
      return unreachable(s.status, "task status")
  }
}

const decideSettle = (s: TaskState, cmd: SettleTask): Decision<SettlementRejected> => {
  const reject = (reason: SettlementRejected["reason"], detail: string) => Either.left(new SettlementRejected({ reason, detail }))
  const request = s.request
  if (s.status === "Settled") return reject("AlreadySettled", `settled in receipt batch ${s.settlement?.receiptBatchId}`)
  if (s.status === "Failed") return reject("TaskFailed", `a failed task is never charged (${s.failure?.cause})`)
  if ((s.status !== "Validated" && s.status !== "Overran") || request === null) return reject("NotValidated", `the task is ${s.status}`)
  const { developer, modelId, price } = request
  return Either.right([
    new TaskSettled(
      {
        receiptBatchId: cmd.receiptBatchId,
        developer,
        modelId,
        amount: price,
        at: cmd.at,
        ...(cmd.receipt === undefined ? {} : { receipt: cmd.receipt }),
        ...(cmd.overran === undefined ? {} : { overran: cmd.overran }),
        ...(cmd.challenges === undefined || cmd.challenges.length === 0 ? {} : { challenges: cmd.challenges })
      },
      CHECKED
    )
  ])
}

export const decide = (rules: TaskRules, s: TaskState, cmd: TaskCommand): Decision<TaskError> => {
  switch (cmd._tag) {
    case "RequestTask":
      return decideRequest(s, cmd)
    case "AssignTask":
      return decideAssign(s, cmd)
    case "SubmitResult":
      return decideSubmit(s, cmd)
    case "ResolveDispute":
      return decideResolve(s, cmd)
    case "WorkerFailed":
      return decideWorkerFailed(rules, s, cmd)
    case "AbandonTask":
      return decideAbandon(s, cmd)
    case "SettleTask":
      return decideSettle(s, cmd)
    case "ClaimOverrun":
      return decideClaimOverrun(s, cmd, (detail, at) => new TaskFailed({ cause: "NoWorkerAvailable", detail, at }, CHECKED))
    default:
      return unreachable(cmd, "task command")
  }
}

export const makeTaskDecider = (rules: TaskRules): Decider<TaskState, TaskCommand, TaskEvent, TaskError> => ({
  initialState: initialTaskState,
  decide: (s, cmd) => decide(rules, s, cmd),
  evolve
})

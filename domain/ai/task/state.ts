/**
 * One task's state and `evolve`.
 *
 *   Idle → Requested → Running ──────────────→ Validated → Settled
 *                         │  └→ Disputed ─────↗
 *                         └──────┴──→ Failed   (from Requested too)
 *                         └→ Overran → Settled  (a run stopped at its limits, confirmed by
 *                                                a second worker: overrun.ts)
 *
 * The charge: `charged` is 0 until `TaskSettled` sets it to the price, which
 * evolve allows only on a Validated (or Overran) task that was never charged; `TaskFailed`
 * is allowed only on a task that was never validated nor charged. So a
 * developer pays at most once, and never for a failed task — a stream that
 * says otherwise stops the replay.
 */
import type { Hash32 } from "../../chain/hash.js"
import type { WorkerId } from "../worker/events.js"
import type { OverrunClaimed, OverrunClaimRefuted, TaskOverran } from "./overrun.js"
import type { TaskEvent, TaskFailed, TaskRequested, TaskResultSubmitted, TaskSettled, TaskValidated } from "./events.js"
import { invariantsOf, type Assert } from "../../assert.js"

export type TaskStatus = "Idle" | "Requested" | "Running" | "Disputed" | "Validated" | "Overran" | "Settled" | "Failed"

export interface TaskState {
  readonly status: TaskStatus
  readonly request: TaskRequested | null
  /** Single policy: a second worker re-executes. */
  readonly sampled: boolean
  /** The workers running the task now (a replacement takes the failed worker's place). */
  readonly assignees: ReadonlyArray<WorkerId>
  /** Workers that failed and were replaced, in order. */
  readonly replaced: ReadonlyArray<WorkerId>
  readonly submissions: ReadonlyArray<TaskResultSubmitted>
  /** Reassignments so far. */
  readonly retries: number
  readonly validation: TaskValidated | null
  readonly failure: TaskFailed | null
  /** An overrun claim waiting for its confirmer (overrun.ts); cleared when a result refutes it. */
  readonly claim: OverrunClaimed | null
  /** Overrun claims a result refuted, in order. */
  readonly refuted: ReadonlyArray<OverrunClaimRefuted>
  /** Set by `TaskOverran`: the confirmed overrun (charged all the same). */
  readonly overrun: TaskOverran | null
  readonly settlement: TaskSettled | null
  /** What the developer was charged: 0 until settled, then the price. */
  readonly charged: bigint
}

export const initialTaskState: TaskState = {
  status: "Idle",
  request: null,
  sampled: false,
  assignees: [],
  replaced: [],
  submissions: [],
  retries: 0,
  validation: null,
  failure: null,
  claim: null,
  refuted: [],
  overrun: null,
  settlement: null,
  charged: 0n
}

/** Agreeing fingerprints that validate: 1 (single), 2 (single, sampled), k (quorum). */
export const agreementNeeded = (s: TaskState): number => {
  const policy = s.request?.policy
  if (policy === undefined) return 0
  return policy._tag === "Quorum" ? policy.k : s.sampled ? 2 : 1
}

export const hasSubmitted = (s: TaskState, worker: WorkerId): boolean => s.submissions.some((r) => r.worker === worker)

/** Every worker the task has involved: running, replaced. */
export const involves = (s: TaskState, worker: WorkerId): boolean => s.assignees.includes(worker) || s.replaced.includes(worker)

const assert: Assert = invariantsOf("task")

const distinct = (xs: ReadonlyArray<string>): boolean => new Set(xs).size === xs.length

const isSubmitter = (s: TaskState) => (w: WorkerId) => hasSubmitted(s, w)

export const evolve = (s: TaskState, e: TaskEvent): TaskState => {
  switch (e._tag) {
    case "TaskRequested":
      assert(s.status === "Idle", `request of a ${s.status} task`)
      return { ...s, status: "Requested", request: e }
    case "TaskAssigned":
      assert(s.status === "Requested", `assignment of a ${s.status} task`)
      assert(e.workers.length >= 1 && distinct(e.workers), "assignment to no or repeated workers")
      return { ...s, status: "Running", assignees: e.workers, sampled: e.sampled }
    case "TaskResultSubmitted":
      assert(s.status === "Running", `result on a ${s.status} task`)
      assert(s.assignees.includes(e.worker), `result from ${e.worker}, not assigned`)
      assert(!hasSubmitted(s, e.worker), `${e.worker} submitted twice`)
      return { ...s, submissions: [...s.submissions, e] }
    case "DisputeOpened":
      assert(s.status === "Running", `dispute on a ${s.status} task`)
      return { ...s, status: "Disputed" }
    case "DisputeResolved":
      assert(s.status === "Disputed", `resolution of a ${s.status} task`)
      assert(!involves(s, e.referee), `referee ${e.referee} is a party`)
      return s
    case "TaskValidated": {
      assert(s.status === "Running" || s.status === "Disputed", `validation of a ${s.status} task`)
      assert(e.disputed === (s.status === "Disputed"), "validation disputed flag disagrees with the state")
      assert(s.validation === null && s.charged === 0n, "validated twice")
      const parties = [...e.correct, ...e.wrong]
      assert(distinct(parties) && parties.every(isSubmitter(s)), "validation names a worker without a result")
      return { ...s, status: "Validated", validation: e }
    }
    case "TaskReassigned": {
      assert(s.status === "Running", `reassignment of a ${s.status} task`)
      assert(e.retry === s.retries + 1, `retry ${e.retry} after ${s.retries}`)
      const at = s.assignees.indexOf(e.failed)
      assert(at >= 0 && !hasSubmitted(s, e.failed), `${e.failed} replaced, not a running assignee`)
      assert(!involves(s, e.replacement), `replacement ${e.replacement} already involved`)
      const assignees = s.assignees.map((w, i) => (i === at ? e.replacement : w))
      return { ...s, assignees, replaced: [...s.replaced, e.failed], retries: e.retry }
    }
    case "TaskFailed":
      assert(s.status === "Requested" || s.status === "Running" || s.status === "Disputed", `failure of a ${s.status} task`)
      assert(s.validation === null && s.charged === 0n, "failure of a validated or charged task")
      return { ...s, status: "Failed", failure: e }
    case "OverrunClaimed": {
      assert(s.status === "Running" && s.claim === null, `overrun claim on a ${s.status} task${s.claim === null ? "" : " with a claim pending"}`)
      const at = s.assignees.indexOf(e.worker)
      assert(at >= 0 && s.submissions.length === 0, "overrun claim by a worker not running it, or after a result")
      assert(!involves(s, e.confirmer), `confirmer ${e.confirmer} already involved`)
      const assignees = s.assignees.map((w, i) => (i === at ? e.confirmer : w))
      return { ...s, assignees, replaced: [...s.replaced, e.worker], claim: e }
    }
    case "OverrunClaimRefuted":
      assert(s.status === "Running" && s.claim !== null && s.claim.worker === e.claimant, `refutation of no pending claim by ${e.claimant}`)
      assert(hasSubmitted(s, e.refutedBy), `refutation by ${e.refutedBy}, which has no result`)
      return { ...s, claim: null, refuted: [...s.refuted, e] }
    case "TaskOverran":
      assert(s.status === "Running", `overrun of a ${s.status} task`)
      assert(s.claim !== null && s.claim.worker === e.claimant && e.claimant !== e.worker, "an overrun not confirmed by a second worker")
      assert(s.assignees.includes(e.worker) && s.submissions.length === 0, "overrun by a worker not running it, or after a result")
      return { ...s, status: "Overran", overrun: e }
    case "TaskSettled": {
      const request = s.request
      assert((s.status === "Validated" || s.status === "Overran") && request !== null, `settlement of a ${s.status} task`)
      assert(s.settlement === null && s.charged === 0n, "a second charge")
      assert(e.amount === request.price, `charged ${e.amount}, the price is ${request.price}`)
      assert(e.developer === request.developer && e.modelId === request.modelId, "charge to another developer or model")
      return { ...s, status: "Settled", settlement: e, charged: e.amount }
    }
  }
}

/** Submissions per fingerprint, fingerprints in order of first submission. */
export const groupsOf = (s: TaskState): ReadonlyArray<{ readonly fingerprint: Hash32; readonly submissions: ReadonlyArray<TaskResultSubmitted> }> => {
  const groups = new Map<Hash32, Array<TaskResultSubmitted>>()
  for (const r of s.submissions) {
    const g = groups.get(r.fingerprint)
    if (g === undefined) groups.set(r.fingerprint, [r])
    else g.push(r)
  }
  return [...groups].map(([fingerprint, submissions]) => ({ fingerprint, submissions }))
}

/**
 * One compute node's state and `evolve`. A worker is Online from its
 * registration, Offline once marked so (missed heartbeats), Online again on
 * its next heartbeat, and Deregistered for good.
 *
 * Reputation counts outcomes; a wrong outcome also leaves a mark (the task
 * and when), which slashing will read. Outcomes are recorded in every state
 * after registration, deregistered included: leaving does not erase marks.
 * Load (tasks in flight) is not kept here: it is the scheduler's view,
 * rebuilt from the task streams.
 */
import type { Hash32 } from "../../chain/hash.js"
import type { TaskOutcome, WorkerEvent, WorkerRegistered } from "./events.js"
import { invariantsOf, type Assert } from "../../assert.js"

export type WorkerStatus = "Unregistered" | "Online" | "Offline" | "Deregistered"

export interface Reputation {
  /** Undisputed tasks whose validated fingerprint was the worker's. */
  readonly correct: number
  /** Undisputed tasks validated with another fingerprint (outvoted under quorum). */
  readonly wrong: number
  readonly disputesWon: number
  readonly disputesLost: number
}

export type MarkKind = "WrongResult" | "LostDispute"

export interface WorkerMark {
  readonly taskId: Hash32
  readonly kind: MarkKind
  readonly at: number
}

export interface WorkerState {
  readonly status: WorkerStatus
  readonly registration: WorkerRegistered | null
  /** Registration counts as the first heartbeat. */
  readonly lastHeartbeatAt: number
  readonly reputation: Reputation
  /** One per task the worker was wrong on, in order. */
  readonly marks: ReadonlyArray<WorkerMark>
}

export const initialWorkerState: WorkerState = {
  status: "Unregistered",
  registration: null,
  lastHeartbeatAt: 0,
  reputation: { correct: 0, wrong: 0, disputesWon: 0, disputesLost: 0 },
  marks: []
}

/** A wrong outcome weighs as much as this many correct ones in the score. */
export const WRONG_OUTCOME_WEIGHT = 10
export const REPUTATION_MAX = 1000

/**
 * The scheduler's reputation, 0..1000 (higher is better): a Laplace-smoothed
 * share of good outcomes with wrong ones weighted `WRONG_OUTCOME_WEIGHT`:
 * ⌊1000 · (good + 1) / (good + 10 · bad + 2)⌋. A new worker scores 500.
 */
export const reputationScore = (r: Reputation): number => {
  const good = r.correct + r.disputesWon
  const bad = r.wrong + r.disputesLost
  return Math.floor((REPUTATION_MAX * (good + 1)) / (good + WRONG_OUTCOME_WEIGHT * bad + 2))
}

export const isMarked = (s: WorkerState, taskId: Hash32): boolean => s.marks.some((m) => m.taskId === taskId)

const assert: Assert = invariantsOf("worker")

const recordOutcome = (s: WorkerState, taskId: Hash32, outcome: TaskOutcome, disputed: boolean, at: number): WorkerState => {
  assert(s.status !== "Unregistered", "outcome for an unregistered worker")
  assert(!isMarked(s, taskId), `task ${taskId} recorded after a mark`)
  const r = s.reputation
  if (outcome === "correct") {
    const reputation = disputed ? { ...r, disputesWon: r.disputesWon + 1 } : { ...r, correct: r.correct + 1 }
    return { ...s, reputation }
  }
  const reputation = disputed ? { ...r, disputesLost: r.disputesLost + 1 } : { ...r, wrong: r.wrong + 1 }
  const mark: WorkerMark = { taskId, kind: disputed ? "LostDispute" : "WrongResult", at }
  return { ...s, reputation, marks: [...s.marks, mark] }
}

export const evolve = (s: WorkerState, e: WorkerEvent): WorkerState => {
  switch (e._tag) {
    case "WorkerRegistered":
      assert(s.status === "Unregistered", `registration of a worker already ${s.status}`)
      assert(e.gpuUnitsMilli > 0n, "a worker without GPU units")
      return { ...s, status: "Online", registration: e, lastHeartbeatAt: e.at }
    case "WorkerHeartbeat":
      assert(s.status === "Online" || s.status === "Offline", `heartbeat of a ${s.status} worker`)
      assert(e.at >= s.lastHeartbeatAt, `heartbeat at ${e.at} before ${s.lastHeartbeatAt}`)
      return { ...s, status: "Online", lastHeartbeatAt: e.at }
    case "WorkerWentOffline":
      assert(s.status === "Online", `a ${s.status} worker went offline`)
      assert(e.lastHeartbeatAt === s.lastHeartbeatAt, "offline with another last heartbeat")
      return { ...s, status: "Offline" }
    case "TaskResultRecorded":
      return recordOutcome(s, e.taskId, e.outcome, false, e.at)
    case "DisputeRecorded":
      return recordOutcome(s, e.taskId, e.outcome, true, e.at)
    case "WorkerDeregistered":
      assert(s.status === "Online" || s.status === "Offline", `deregistration of a ${s.status} worker`)
      return { ...s, status: "Deregistered" }
  }
}

/**
 * The GpuWorkerActor's rules: one compute node's registration, liveness and
 * record, as a decider.
 *
 *   RegisterWorker    once per stream; the class must be in the genesis table and
 *                     the stake at least `stakeMin`; GPU units = devices × coefficient
 *   Heartbeat         never older than the last one; brings an offline worker back
 *   MarkOffline       only when the last heartbeat is more than `heartbeatGraceMs` old
 *   RecordTaskResult  reputation from an undisputed task; `wrong` leaves a mark
 *   RecordDispute     the same for a disputed task (marks: LostDispute)
 *   Deregister        by the owner only; final (a new registration takes a new id)
 *
 * A task is marked at most once: a second outcome for a marked task is
 * refused. Correct outcomes are counted, not remembered (a worker runs
 * millions): the actor keeps them exactly-once with event ids derived from
 * the task id, as every append in the store is idempotent by id.
 */
import { Either } from "effect"
import type { Hash32 } from "../../chain/hash.js"
import type { Decider } from "../../Decider.js"
import {
  DeregistrationRejected,
  HeartbeatRejected,
  MarkOfflineRejected,
  OutcomeRejected,
  RegistrationRejected,
  type Deregister,
  type Heartbeat,
  type MarkOffline,
  type RegisterWorker,
  type WorkerCommand,
  type WorkerError,
  type WorkerRules
} from "./commands.js"
import {
  DisputeRecorded,
  TaskResultRecorded,
  WorkerDeregistered,
  WorkerHeartbeat,
  WorkerRegistered,
  WorkerWentOffline,
  type TaskOutcome,
  type WorkerEvent
} from "./events.js"
import { coefficientOf, gpuUnitsMilli } from "./gpuClass.js"
import { evolve, initialWorkerState, isMarked, type WorkerState } from "./state.js"
import { unreachable } from "../../assert.js"

export {
  evolve,
  initialWorkerState,
  reputationScore,
  type Reputation,
  type WorkerMark,
  type WorkerState,
  type WorkerStatus
} from "./state.js"

type Decision<E> = Either.Either<ReadonlyArray<WorkerEvent>, E>

const decideRegister = (rules: WorkerRules, s: WorkerState, cmd: RegisterWorker): Decision<RegistrationRejected> => {
  const reject = (reason: RegistrationRejected["reason"], detail: string) =>
    Either.left(new RegistrationRejected({ reason, detail }))
  if (s.registration !== null) return reject("AlreadyRegistered", `worker ${s.registration.workerId} is ${s.status}`)
  const coefficient = coefficientOf(rules.gpuClasses, cmd.gpuClass)
  if (coefficient === undefined) {
    return reject("UnknownGpuClass", `GPU class "${cmd.gpuClass}" is not one of ${Object.keys(rules.gpuClasses).join(", ")}`)
  }
  if (cmd.stake < rules.stakeMin) return reject("StakeTooLow", `stake ${cmd.stake} < ${rules.stakeMin}`)
  const { workerId, owner, gpuClass, devices, stake, endpoint, at } = cmd
  const units = gpuUnitsMilli(coefficient, devices)
  return Either.right([new WorkerRegistered({ workerId, owner, gpuClass, devices, gpuUnitsMilli: units, stake, endpoint, at })])
}

const decideHeartbeat = (s: WorkerState, cmd: Heartbeat): Decision<HeartbeatRejected> => {
  const reject = (reason: HeartbeatRejected["reason"], detail: string) => Either.left(new HeartbeatRejected({ reason, detail }))
  if (s.status === "Unregistered") return reject("NotRegistered", "no worker registered on this stream")
  if (s.status === "Deregistered") return reject("Deregistered", "the worker has deregistered")
  if (cmd.at < s.lastHeartbeatAt) return reject("OutOfOrder", `heartbeat at ${cmd.at} after one at ${s.lastHeartbeatAt}`)
  return Either.right([new WorkerHeartbeat({ at: cmd.at })])
}

const decideMarkOffline = (rules: WorkerRules, s: WorkerState, cmd: MarkOffline): Decision<MarkOfflineRejected> => {
  const reject = (reason: MarkOfflineRejected["reason"], detail: string) =>
    Either.left(new MarkOfflineRejected({ reason, detail }))
  if (s.status === "Unregistered") return reject("NotRegistered", "no worker registered on this stream")
  if (s.status === "Deregistered") return reject("Deregistered", "the worker has deregistered")
  if (s.status === "Offline") return reject("AlreadyOffline", `offline since its heartbeat at ${s.lastHeartbeatAt}`)
  const silentMs = cmd.at - s.lastHeartbeatAt
  if (silentMs <= rules.heartbeatGraceMs) {
    return reject("WithinGrace", `last heartbeat ${silentMs} ms before ${cmd.at}, grace ${rules.heartbeatGraceMs} ms`)
  }
  return Either.right([new WorkerWentOffline({ at: cmd.at, lastHeartbeatAt: s.lastHeartbeatAt })])
}

const decideOutcome = (
  s: WorkerState,
  cmd: { readonly taskId: Hash32; readonly outcome: TaskOutcome; readonly at: number },
  disputed: boolean
): Decision<OutcomeRejected> => {
  const reject = (reason: OutcomeRejected["reason"], detail: string) => Either.left(new OutcomeRejected({ reason, detail }))
  if (s.status === "Unregistered") return reject("NotRegistered", "no worker registered on this stream")
  if (isMarked(s, cmd.taskId)) return reject("AlreadyMarked", `the worker is already marked wrong on task ${cmd.taskId}`)
  const { taskId, outcome, at } = cmd
  return Either.right([disputed ? new DisputeRecorded({ taskId, outcome, at }) : new TaskResultRecorded({ taskId, outcome, at })])
}

const decideDeregister = (s: WorkerState, cmd: Deregister): Decision<DeregistrationRejected> => {
  const reject = (reason: DeregistrationRejected["reason"], detail: string) =>
    Either.left(new DeregistrationRejected({ reason, detail }))
  const registration = s.registration
  if (registration === null) return reject("NotRegistered", "no worker registered on this stream")
  if (cmd.owner !== registration.owner) return reject("NotOwner", `${cmd.owner} is not the owner ${registration.owner}`)
  if (s.status === "Deregistered") return reject("AlreadyDeregistered", `worker ${registration.workerId} has deregistered`)
  return Either.right([new WorkerDeregistered({ at: cmd.at })])
}

export const decide = (rules: WorkerRules, s: WorkerState, cmd: WorkerCommand): Decision<WorkerError> => {
  switch (cmd._tag) {
    case "RegisterWorker":
      return decideRegister(rules, s, cmd)
    case "Heartbeat":
      return decideHeartbeat(s, cmd)
    case "MarkOffline":
      return decideMarkOffline(rules, s, cmd)
    case "RecordTaskResult":
      return decideOutcome(s, cmd, false)
    case "RecordDispute":
      return decideOutcome(s, cmd, true)
    case "Deregister":
      return decideDeregister(s, cmd)
    default:
      return unreachable(cmd, "worker command")
  }
}

export const makeWorkerDecider = (rules: WorkerRules): Decider<WorkerState, WorkerCommand, WorkerEvent, WorkerError> => ({
  initialState: initialWorkerState,
  decide: (s, cmd) => decide(rules, s, cmd),
  evolve
})

/**
 * A developer's escrow for one model, as a decider.
 *
 *   Deposit  counts once per tx hash: a re-delivery of the same deposit decides
 *            nothing (no events); the same hash with other fields is an error
 *   Reserve  holds a task's price, when the escrow has it available; else
 *            `InsufficientFunds` and nothing changes
 *   Release  a failed task's reservation back to available
 *   Capture  a settled task's reservation to the provider, in its receipt batch
 *   ReturnCapture  the AI ledger refused the task's receipt: its captured
 *            price is available again, once per task (a repeat decides nothing)
 *
 * A reservation closes once, by release or capture, so a task is captured at
 * most once and a released task is never captured. Task ids are unique (a
 * task stream refuses a second request), so a closed reservation is not
 * remembered: the escrow's memory is its open reservations and its deposits.
 * Conservation, asserted on every event: deposited = available + reserved +
 * captured.
 */
import { Either, HashMap, HashSet } from "effect"
import type { Decider } from "../../Decider.js"
import {
  CaptureRejected,
  DepositRejected,
  ReleaseRejected,
  ReserveRejected,
  ReturnRejected,
  type Capture,
  type Deposit,
  type EscrowCommand,
  type EscrowError,
  type Release,
  type Reserve,
  type ReturnCapture
} from "./commands.js"
import { EscrowCaptured, EscrowCaptureReturned, EscrowDeposited, EscrowReleased, EscrowReserved, type EscrowEvent } from "./events.js"
import { evolve, initialEscrowState, reservationOf, type EscrowState } from "./state.js"
import { unreachable } from "../../assert.js"

export { evolve, initialEscrowState, reservationOf, type EscrowState, type EscrowTotals } from "./state.js"

type Decision<E> = Either.Either<ReadonlyArray<EscrowEvent>, E>

const CHECKED = true

const decideDeposit = (s: EscrowState, cmd: Deposit): Decision<DepositRejected> => {
  const reject = (reason: DepositRejected["reason"], detail: string) => Either.left(new DepositRejected({ reason, detail }))
  const owner = s.owner
  if (owner !== null && (owner.developer !== cmd.developer || owner.modelId !== cmd.modelId)) {
    return reject("WrongEscrow", `this escrow is ${owner.developer}'s for model ${owner.modelId}`)
  }
  const seen = HashMap.get(s.deposits, cmd.txHash)
  if (seen._tag === "Some") {
    if (seen.value === cmd.amount) return Either.right([])
    return reject("ConflictingDeposit", `deposit ${cmd.txHash} counted as ${seen.value}, now ${cmd.amount}`)
  }
  const { developer, modelId, amount, txHash, at } = cmd
  return Either.right([new EscrowDeposited({ developer, modelId, amount, txHash, at }, CHECKED)])
}

const decideReserve = (s: EscrowState, cmd: Reserve): Decision<ReserveRejected> => {
  const available = s.totals.available
  const reject = (reason: ReserveRejected["reason"], detail: string) =>
    Either.left(new ReserveRejected({ reason, detail, available }))
  if (reservationOf(s, cmd.taskId) !== undefined) return reject("AlreadyReserved", `task ${cmd.taskId} holds a reservation`)
  if (cmd.price > available) return reject("InsufficientFunds", `price ${cmd.price}, available ${available}`)
  return Either.right([new EscrowReserved({ taskId: cmd.taskId, amount: cmd.price }, CHECKED)])
}

const decideRelease = (s: EscrowState, cmd: Release): Decision<ReleaseRejected> => {
  const amount = reservationOf(s, cmd.taskId)
  if (amount === undefined) {
    return Either.left(new ReleaseRejected({ reason: "NoReservation", detail: `task ${cmd.taskId} holds no reservation` }))
  }
  return Either.right([new EscrowReleased({ taskId: cmd.taskId, amount }, CHECKED)])
}

const decideReturn = (s: EscrowState, cmd: ReturnCapture): Decision<ReturnRejected> => {
  if (HashSet.has(s.returned, cmd.taskId)) return Either.right([])
  if (cmd.amount > s.totals.captured) {
    return Either.left(new ReturnRejected({ reason: "OverCaptured", detail: `task ${cmd.taskId}: ${cmd.amount} to return, ${s.totals.captured} captured in all` }))
  }
  return Either.right([new EscrowCaptureReturned({ taskId: cmd.taskId, amount: cmd.amount }, CHECKED)])
}

const decideCapture = (s: EscrowState, cmd: Capture): Decision<CaptureRejected> => {
  const amount = reservationOf(s, cmd.taskId)
  if (amount === undefined) {
    return Either.left(new CaptureRejected({ reason: "NoReservation", detail: `task ${cmd.taskId} holds no reservation` }))
  }
  return Either.right([new EscrowCaptured({ taskId: cmd.taskId, amount, receiptBatchId: cmd.receiptBatchId }, CHECKED)])
}

export const decide = (s: EscrowState, cmd: EscrowCommand): Decision<EscrowError> => {
  switch (cmd._tag) {
    case "Deposit":
      return decideDeposit(s, cmd)
    case "Reserve":
      return decideReserve(s, cmd)
    case "Release":
      return decideRelease(s, cmd)
    case "Capture":
      return decideCapture(s, cmd)
    case "ReturnCapture":
      return decideReturn(s, cmd)
    default:
      return unreachable(cmd, "escrow command")
  }
}

export const escrowDecider: Decider<EscrowState, EscrowCommand, EscrowEvent, EscrowError> = {
  initialState: initialEscrowState,
  decide,
  evolve
}

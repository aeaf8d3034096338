import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { fold } from "../../../domain/Decider.js"
import { Capture, Deposit, Release, Reserve, ReturnCapture } from "../../../domain/ai/escrow/commands.js"
import { escrowDecider, reservationOf, type EscrowState } from "../../../domain/ai/escrow/decide.js"
import { EscrowCaptured, EscrowCaptureReturned, EscrowEvent, escrowStreamId } from "../../../domain/ai/escrow/events.js"
import { DEFAULT_TASK_RULES, RequestTask } from "../../../domain/ai/task/commands.js"
import { makeTaskDecider, type TaskState } from "../../../domain/ai/task/decide.js"
import type { TaskEvent } from "../../../domain/ai/task/events.js"
import { address, deciderSpec, hash, runAll, T0, tags, throughJson } from "./support.js"
import { commandOf, policyArb, stepArb } from "./taskSteps.js"

const spec = deciderSpec(escrowDecider)
const DEVELOPER = address("developer")
const MODEL = hash("model")
const TASK = hash("task-1")
const deposit = (amount = 100n, tx = "deposit-1", over: Partial<ConstructorParameters<typeof Deposit>[0]> = {}) =>
  new Deposit({ developer: DEVELOPER, modelId: MODEL, amount, txHash: hash(tx), at: T0, ...over })
const reserve = (price = 30n, task = TASK) => new Reserve({ taskId: task, price })

const funded = runAll(escrowDecider, [deposit()]).events
const reserved = runAll(escrowDecider, [deposit(), reserve()]).events

/** A comparable picture of an escrow. */
const snapshot = (s: EscrowState) => ({
  owner: s.owner,
  deposits: [...s.deposits].sort(([a], [b]) => (a < b ? -1 : 1)),
  reservations: [...s.reservations].sort(([a], [b]) => (a < b ? -1 : 1)),
  totals: s.totals
})

describe("Deposit", () => {
  it("given nothing, when a developer deposits, then the amount is available", () => {
    expect(escrowStreamId(DEVELOPER, MODEL)).toBe(`escrow-${DEVELOPER}-${MODEL}`)
    spec.given([]).when(deposit()).then((events, s) => {
      expect(tags(events)).toEqual(["EscrowDeposited"])
      expect([s.owner, s.totals]).toEqual([{ developer: DEVELOPER, modelId: MODEL }, { deposited: 100n, available: 100n, reserved: 0n, captured: 0n }])
    })
  })
  it("the same deposit delivered again counts once: no events", () => {
    spec.given(funded).when(deposit()).then((events, s) => {
      expect(events).toEqual([])
      expect(s.totals.deposited).toBe(100n)
    })
  })
  it("another deposit adds up", () => {
    spec.given(funded).when(deposit(50n, "deposit-2")).then((_, s) => expect(s.totals.available).toBe(150n))
  })
  it.each<[string, Deposit, string]>([
    ["from another developer", deposit(5n, "deposit-2", { developer: address("someone-else") }), "WrongEscrow"],
    ["for another model", deposit(5n, "deposit-2", { modelId: hash("other-model") }), "WrongEscrow"],
    ["with a known tx hash and another amount", deposit(101n), "ConflictingDeposit"]
  ])("refuses a deposit %s", (_, cmd, reason) => spec.given(funded).when(cmd).thenRejects("DepositRejected", reason as never))
})

describe("Reserve, Release, Capture", () => {
  it("a reservation moves the price from available to reserved", () => {
    spec.given(funded).when(reserve()).then((_, s) => {
      expect(s.totals).toEqual({ deposited: 100n, available: 70n, reserved: 30n, captured: 0n })
      expect(reservationOf(s, TASK)).toBe(30n)
    })
  })
  it("the whole balance can be reserved", () => spec.given(funded).when(reserve(100n)).then((_, s) => expect(s.totals.available).toBe(0n)))
  it("insufficient escrow: a typed error saying what is available, and nothing changes", () => {
    const r = escrowDecider.decide(fold(escrowDecider.evolve, escrowDecider.initialState, funded), reserve(101n))
    expect(Either.isLeft(r) && r.left._tag === "ReserveRejected" && [r.left.reason, r.left.available]).toEqual(["InsufficientFunds", 100n])
    spec.given([]).when(reserve(1n)).thenRejects("ReserveRejected", "InsufficientFunds")
  })
  it("refuses a second reservation for one task: AlreadyReserved", () => spec.given(reserved).when(reserve(1n)).thenRejects("ReserveRejected", "AlreadyReserved"))
  it("a failed task's reservation is released: available again", () => {
    spec.given(reserved).when(new Release({ taskId: TASK })).then((_, s) => {
      expect(s.totals).toEqual({ deposited: 100n, available: 100n, reserved: 0n, captured: 0n })
    })
  })
  it("a settled task's reservation is captured for the provider, in its receipt batch", () => {
    spec.given(reserved).when(new Capture({ taskId: TASK, receiptBatchId: hash("batch-1") })).then((events, s) => {
      expect(events).toEqual([new EscrowCaptured({ taskId: TASK, amount: 30n, receiptBatchId: hash("batch-1") })])
      expect(s.totals).toEqual({ deposited: 100n, available: 70n, reserved: 0n, captured: 30n })
    })
  })
  const captured = runAll(escrowDecider, [deposit(), reserve(), new Capture({ taskId: TASK, receiptBatchId: hash("batch-1") })]).events
  const released = runAll(escrowDecider, [deposit(), reserve(), new Release({ taskId: TASK })]).events
  it.each<[string, ReadonlyArray<EscrowEvent>, Release | Capture, "ReleaseRejected" | "CaptureRejected"]>([
    ["release without a reservation", funded, new Release({ taskId: TASK }), "ReleaseRejected"],
    ["capture without a reservation", funded, new Capture({ taskId: TASK, receiptBatchId: hash("b") }), "CaptureRejected"],
    ["a second capture", captured, new Capture({ taskId: TASK, receiptBatchId: hash("b") }), "CaptureRejected"],
    ["capture after release", released, new Capture({ taskId: TASK, receiptBatchId: hash("b") }), "CaptureRejected"],
    ["release after capture", captured, new Release({ taskId: TASK }), "ReleaseRejected"]
  ])("refuses %s: NoReservation", (_, given, cmd, tag) => spec.given(given).when(cmd).thenRejects(tag, "NoReservation"))
  it("evolve refuses a stream that captures twice", () => {
    expect(() => fold(escrowDecider.evolve, escrowDecider.initialState, [...captured, captured.at(-1)!])).toThrow(/invariant/)
  })
})

describe("ReturnCapture (the AI ledger refused the task's receipt)", () => {
  const captured = runAll(escrowDecider, [deposit(), reserve(), new Capture({ taskId: TASK, receiptBatchId: hash("batch-1") })]).events
  const returned = [...captured, new EscrowCaptureReturned({ taskId: TASK, amount: 30n })]
  it("the captured price is available again; deposited unchanged", () => {
    spec.given(captured).when(new ReturnCapture({ taskId: TASK, amount: 30n })).then((events, s) => {
      expect(events).toEqual([new EscrowCaptureReturned({ taskId: TASK, amount: 30n })])
      expect(s.totals).toEqual({ deposited: 100n, available: 100n, reserved: 0n, captured: 0n })
    })
  })
  it("once per task: the same refusal again (a replay, or another gateway's tx) decides nothing", () => {
    spec.given(returned).when(new ReturnCapture({ taskId: TASK, amount: 30n })).then((events, s) => {
      expect(events).toEqual([])
      expect(s.totals.available).toBe(100n)
    })
  })
  it("refuses to return more than the book captured: OverCaptured, nothing changes", () => {
    spec.given(captured).when(new ReturnCapture({ taskId: hash("task-2"), amount: 31n })).thenRejects("ReturnRejected", "OverCaptured")
    spec.given(funded).when(new ReturnCapture({ taskId: TASK, amount: 1n })).thenRejects("ReturnRejected", "OverCaptured")
  })
  it("evolve refuses a stream that returns one task's capture twice", () => {
    expect(() => fold(escrowDecider.evolve, escrowDecider.initialState, [...returned, returned.at(-1)!])).toThrow(/invariant/)
  })
})

// ---------------------------------------------------------------- properties

const escrowStepArb = fc.oneof(
  fc.record({ op: fc.constant("deposit" as const), amount: fc.bigInt({ min: 1n, max: 1_000n }), tx: fc.nat({ max: 6 }) }),
  fc.record({ op: fc.constant("reserve" as const), price: fc.bigInt({ min: 0n, max: 400n }), task: fc.nat({ max: 9 }) }),
  fc.record({ op: fc.constant("release" as const), task: fc.nat({ max: 9 }) }),
  fc.record({ op: fc.constant("capture" as const), task: fc.nat({ max: 9 }) }),
  fc.record({ op: fc.constant("return" as const), task: fc.nat({ max: 9 }), price: fc.bigInt({ min: 1n, max: 400n }) })
)

describe("properties", () => {
  it("escrow conservation under any deposit/reserve/release/capture/return, checked against a model; replay agrees", () => {
    fc.assert(
      fc.property(fc.array(escrowStepArb, { maxLength: 60 }), (steps) => {
        let s = escrowDecider.initialState
        let events: ReadonlyArray<EscrowEvent> = []
        // The model: deposits by tx, open reservations by task, captured so far.
        const deposits = new Map<number, bigint>()
        const open = new Map<number, bigint>()
        let captured = 0n
        /** Each captured task's price, and the tasks whose capture was returned. */
        const capturedOf = new Map<number, bigint>()
        const returnedTasks = new Set<number>()
        const available = () => [...deposits.values()].reduce((a, b) => a + b, 0n) - [...open.values()].reduce((a, b) => a + b, 0n) - captured
        for (const step of steps) {
          const taskId = "task" in step ? hash(`task-${step.task}`) : hash("none")
          // A task captured at price 0 has nothing to return (the gateway asks nothing for it).
          if (step.op === "return" && capturedOf.get(step.task) === 0n) continue
          const cmd =
            step.op === "deposit"
              ? deposit(deposits.get(step.tx) ?? step.amount, `tx-${step.tx}`)
              : step.op === "reserve"
                ? reserve(step.price, taskId)
                : step.op === "release"
                  ? new Release({ taskId })
                  : step.op === "capture"
                    ? new Capture({ taskId, receiptBatchId: hash("batch") })
                    : new ReturnCapture({ taskId, amount: capturedOf.get(step.task) ?? step.price })
          const r = escrowDecider.decide(s, cmd)
          switch (step.op) {
            case "deposit":
              expect(Either.isRight(r)).toBe(true)
              if (!deposits.has(step.tx)) deposits.set(step.tx, step.amount)
              break
            case "reserve": {
              const expected = open.has(step.task) ? "AlreadyReserved" : step.price > available() ? "InsufficientFunds" : null
              expect(Either.isLeft(r) ? r.left.reason : null).toBe(expected)
              if (expected === null) open.set(step.task, step.price)
              break
            }
            case "release":
            case "capture": {
              expect(Either.isRight(r)).toBe(open.has(step.task))
              if (step.op === "capture" && open.has(step.task)) {
                captured += open.get(step.task)!
                capturedOf.set(step.task, open.get(step.task)!)
              }
              open.delete(step.task)
              break
            }
            case "return": {
              const amount = capturedOf.get(step.task) ?? step.price
              if (returnedTasks.has(step.task)) {
                expect(Either.isRight(r) && r.right.length === 0).toBe(true)
              } else {
                expect(Either.isLeft(r) ? r.left.reason : null).toBe(amount > captured ? "OverCaptured" : null)
                if (amount <= captured) {
                  captured -= amount
                  returnedTasks.add(step.task)
                }
              }
            }
          }
          if (Either.isLeft(r)) continue
          s = fold(escrowDecider.evolve, s, r.right)
          events = [...events, ...r.right]
          const t = s.totals
          expect(t).toEqual({ deposited: t.available + t.reserved + t.captured, available: available(), reserved: t.reserved, captured })
          expect(t.available >= 0n && t.reserved >= 0n).toBe(true)
        }
        expect(snapshot(fold(escrowDecider.evolve, escrowDecider.initialState, throughJson(EscrowEvent, events)))).toEqual(snapshot(s))
      }),
      { numRuns: 500 }
    )
  })

  const tasks = makeTaskDecider(DEFAULT_TASK_RULES)
  it("tasks and their escrow together: each settled task captured once, each failed task released, no task charged twice", () => {
    const seen = { settled: 0, failed: 0, refused: 0 }
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 500n }),
        fc.array(fc.record({ policy: policyArb, price: fc.bigInt({ min: 0n, max: 120n }), steps: fc.array(stepArb, { minLength: 4, maxLength: 30 }) }), { maxLength: 12 }),
        (funds, lives) => {
          // The process manager: reserve before the request, release on TaskFailed, capture on TaskSettled.
          let escrow = funds > 0n ? runAll(escrowDecider, [deposit(funds)]).state : escrowDecider.initialState
          const settle = (events: ReadonlyArray<TaskEvent>, taskId: ReturnType<typeof hash>) => {
            for (const e of events) {
              if (e._tag !== "TaskFailed" && e._tag !== "TaskSettled") continue
              const cmd = e._tag === "TaskFailed" ? new Release({ taskId }) : new Capture({ taskId, receiptBatchId: e.receiptBatchId })
              const r = escrowDecider.decide(escrow, cmd)
              expect(Either.isRight(r)).toBe(true)
              if (Either.isRight(r)) escrow = fold(escrowDecider.evolve, escrow, r.right)
            }
          }
          let settledPrices = 0n
          const finals: Array<TaskState> = []
          lives.forEach(({ policy, price, steps }, i) => {
            const taskId = hash(`life-${i}`)
            const r = escrowDecider.decide(escrow, reserve(price, taskId))
            if (Either.isLeft(r)) {
              expect([r.left.reason, price > escrow.totals.available]).toEqual(["InsufficientFunds", true])
              seen.refused++
              return // not admitted: no task
            }
            escrow = fold(escrowDecider.evolve, escrow, r.right)
            const request = new RequestTask({ taskId, developer: DEVELOPER, modelId: MODEL, price, inputHash: hash("in"), policy, at: T0 })
            let { state: task } = runAll(tasks, [request])
            for (const step of steps) {
              const d = tasks.decide(task, commandOf(task, step))
              if (Either.isLeft(d)) continue
              task = fold(tasks.evolve, task, d.right)
              settle(d.right, taskId)
            }
            if (task.status === "Settled") settledPrices += price
            if (task.status === "Settled") seen.settled++
            if (task.status === "Failed") seen.failed++
            expect(reservationOf(escrow, taskId) === undefined).toBe(task.status === "Settled" || task.status === "Failed")
            finals.push(task)
          })
          const t = escrow.totals
          expect(t.captured).toBe(settledPrices)
          expect(t.reserved).toBe(finals.filter((f) => f.status !== "Settled" && f.status !== "Failed").reduce((a, f) => a + f.request!.price, 0n))
          expect(t.deposited).toBe(funds)
          expect(t.deposited).toBe(t.available + t.reserved + t.captured)
        }
      ),
      { numRuns: 300 }
    )
    expect(Math.min(seen.settled, seen.failed, seen.refused)).toBeGreaterThan(50)
  })
})

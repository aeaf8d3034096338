import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { fold } from "../../../domain/Decider.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import type { Address } from "../../../domain/chain/keys.js"
import {
  AbandonTask,
  AssignTask,
  DEFAULT_TASK_RULES,
  RequestTask,
  ResolveDispute,
  SettleTask,
  SubmitResult,
  WorkerFailed,
  type TaskCommand
} from "../../../domain/ai/task/commands.js"
import { makeTaskDecider, workersNeeded, type TaskState } from "../../../domain/ai/task/decide.js"
import {
  DisputeOpened,
  DisputeResolved,
  TaskEvent,
  TaskReassigned,
  TaskSettled,
  TaskValidated,
  type TaskFailed,
  type ValidationPolicy
} from "../../../domain/ai/task/events.js"
import { address, deciderSpec, hash, runAll, signature, T0, tags, throughJson } from "./support.js"
import { commandOf, policyArb, quorum, single, stepArb } from "./taskSteps.js"

const tasks = makeTaskDecider(DEFAULT_TASK_RULES)
const spec = deciderSpec(tasks)
const DEVELOPER = address("developer")
const MODEL = hash("model")
const TASK = hash("task")
const PRICE = 25n
const [W1, W2, W3, W4] = [1, 2, 3, 4].map((i) => address(`worker-${i}`)) as [Address, Address, Address, Address]
const REFEREE = address("referee")
const STRANGER = address("stranger")
const FP_A = hash("fingerprint-a")
const FP_B = hash("fingerprint-b")
const FP_C = hash("fingerprint-c")
const out = (worker: Address, fp: Hash32) => hash(`output:${worker}:${fp}`)

const NOT_SAMPLED = 999_999
const SAMPLED = 0

const request = (policy: ValidationPolicy = single(), price = PRICE) =>
  new RequestTask({ taskId: TASK, developer: DEVELOPER, modelId: MODEL, price, inputHash: hash("input"), policy, at: T0 })
const assign = (workers: ReadonlyArray<Address>, sampleDraw = NOT_SAMPLED) => new AssignTask({ workers, sampleDraw, at: T0 + 1 })
const submit = (worker: Address, fp: Hash32 = FP_A) =>
  new SubmitResult({ worker, fingerprint: fp, outputHash: out(worker, fp), signature: signature(worker), at: T0 + 50 })
const resolve = (fp: Hash32, referee = REFEREE) =>
  new ResolveDispute({ referee, fingerprint: fp, outputHash: out(referee, fp), signature: signature(referee), at: T0 + 90 })
const fail = (worker: Address, replacement: Address | null, reason: "died" | "timeout" = "died") =>
  new WorkerFailed({ worker, reason, replacement, at: T0 + 30 })
const settle = (batch = "batch-1") => new SettleTask({ receiptBatchId: hash(batch), at: T0 + 1_000 })
const abandon = () => new AbandonTask({ cause: "TimedOut", detail: "no result within 30 s", at: T0 + 30_000 })

const eventsOf = (...commands: ReadonlyArray<TaskCommand>) => runAll(tasks, commands).events

const requested = eventsOf(request())
const running = eventsOf(request(), assign([W1]))
const sampledRunning = eventsOf(request(), assign([W1, W2], SAMPLED))
const quorumRunning = eventsOf(request(quorum(2, 3)), assign([W1, W2, W3]))
const disputed = eventsOf(request(), assign([W1, W2], SAMPLED), submit(W1, FP_A), submit(W2, FP_B))
const validated = eventsOf(request(), assign([W1]), submit(W1))
const settled = eventsOf(request(), assign([W1]), submit(W1), settle())
const failed = eventsOf(request(), abandon())

describe("RequestTask", () => {
  it("given nothing, when a developer's request comes in, then the task is Requested at the model's price", () => {
    spec.given([]).when(request()).then((events, s) => {
      expect(tags(events)).toEqual(["TaskRequested"])
      expect([s.status, s.request?.price, s.charged]).toEqual(["Requested", PRICE, 0n])
    })
  })
  it("refuses a second request on the stream: AlreadyRequested", () => spec.given(requested).when(request()).thenRejects("RequestRejected", "AlreadyRequested"))
  it("refuses a quorum with k > n: InvalidPolicy", () => spec.given([]).when(request(quorum(3, 2))).thenRejects("RequestRejected", "InvalidPolicy"))
  it("refuses a quorum with k not a majority of n: InvalidPolicy", () =>
    spec.given([]).when(request(quorum(2, 4))).thenRejects("RequestRejected", "InvalidPolicy"))
})

describe("AssignTask", () => {
  it("single, the draw over the sampling rate: one worker", () => {
    expect(workersNeeded(single(), NOT_SAMPLED)).toBe(1)
    spec.given(requested).when(assign([W1])).then((events, s) => {
      expect(tags(events)).toEqual(["TaskAssigned"])
      expect([s.status, s.assignees, s.sampled]).toEqual(["Running", [W1], false])
    })
  })
  it("single, the draw under the sampling rate: two workers at once", () => {
    expect(workersNeeded(single(100_000), 99_999)).toBe(2)
    expect(workersNeeded(single(100_000), 100_000)).toBe(1)
    spec.given(requested).when(assign([W1, W2], SAMPLED)).then((_, s) => expect([s.assignees, s.sampled]).toEqual([[W1, W2], true]))
  })
  it("a sampling rate of 0 never samples, 10^6 always does", () => {
    expect(workersNeeded(single(0), 0)).toBe(1)
    expect(workersNeeded(single(1_000_000), 999_999)).toBe(2)
  })
  it("quorum k-of-n: n workers", () => {
    spec.given(eventsOf(request(quorum(2, 3)))).when(assign([W1, W2, W3])).then((_, s) => expect(s.assignees).toEqual([W1, W2, W3]))
  })
  it.each<[string, ReadonlyArray<TaskEvent>, AssignTask, string]>([
    ["no request", [], assign([W1]), "NotRequested"],
    ["a running task", running, assign([W2]), "AlreadyAssigned"],
    ["an abandoned task", failed, assign([W1]), "TaskEnded"],
    ["two workers for an unsampled single task", requested, assign([W1, W2]), "WrongWorkerCount"],
    ["one worker for a sampled task", requested, assign([W1], SAMPLED), "WrongWorkerCount"],
    ["a worker twice", eventsOf(request(quorum(2, 3))), assign([W1, W1, W2]), "DuplicateWorker"]
  ])("refuses %s", (_, given, cmd, reason) => spec.given(given).when(cmd).thenRejects("AssignmentRejected", reason as never))
})

describe("SubmitResult and validation", () => {
  it("single: the first result validates", () => {
    spec.given(running).when(submit(W1)).then((events, s) => {
      expect(tags(events)).toEqual(["TaskResultSubmitted", "TaskValidated"])
      expect(events[1]).toEqual(new TaskValidated({ fingerprint: FP_A, outputHash: out(W1, FP_A), correct: [W1], wrong: [], disputed: false, at: T0 + 50 }))
      expect(s.status).toBe("Validated")
    })
  })
  it("single, sampled: the first result waits for the second; agreeing, they validate", () => {
    spec.given(sampledRunning).when(submit(W2)).then((events, s) => {
      expect(tags(events)).toEqual(["TaskResultSubmitted"])
      expect(s.status).toBe("Running")
    })
    spec.given(eventsOf(request(), assign([W1, W2], SAMPLED), submit(W2))).when(submit(W1)).then((events) => {
      expect((events[1] as TaskValidated).correct).toEqual([W2, W1])
    })
  })
  it("single, sampled: disagreeing, they open a dispute", () => {
    spec.given(eventsOf(request(), assign([W1, W2], SAMPLED), submit(W1, FP_A))).when(submit(W2, FP_B)).then((events, s) => {
      expect(events[1]).toEqual(new DisputeOpened({ groups: [{ fingerprint: FP_A, workers: [W1] }, { fingerprint: FP_B, workers: [W2] }], at: T0 + 50 }))
      expect(s.status).toBe("Disputed")
    })
  })
  it("quorum 2-of-3: two agreeing validate at once; the third is not waited for", () => {
    spec.given(eventsOf(request(quorum(2, 3)), assign([W1, W2, W3]), submit(W3))).when(submit(W1)).then((events) => {
      expect((events[1] as TaskValidated).correct).toEqual([W3, W1])
    })
  })
  it("quorum 2-of-3: the outvoted worker is named wrong", () => {
    spec.given(eventsOf(request(quorum(2, 3)), assign([W1, W2, W3]), submit(W1, FP_A), submit(W2, FP_B))).when(submit(W3, FP_A)).then((events) => {
      const v = events[1] as TaskValidated
      expect([v.fingerprint, v.correct, v.wrong, v.disputed]).toEqual([FP_A, [W1, W3], [W2], false])
    })
  })
  it("quorum 2-of-3: three fingerprints open a dispute", () => {
    spec.given(eventsOf(request(quorum(2, 3)), assign([W1, W2, W3]), submit(W1, FP_A), submit(W2, FP_B))).when(submit(W3, FP_C)).then((events) => {
      expect(tags(events)).toEqual(["TaskResultSubmitted", "DisputeOpened"])
    })
  })
  it("quorum 3-of-4: a dispute opens as soon as no fingerprint can reach 3", () => {
    spec.given(eventsOf(request(quorum(3, 4)), assign([W1, W2, W3, W4]), submit(W1, FP_A))).when(submit(W2, FP_B)).then((events) => {
      expect(tags(events)).toEqual(["TaskResultSubmitted"])
    })
    spec.given(eventsOf(request(quorum(3, 4)), assign([W1, W2, W3, W4]), submit(W1, FP_A), submit(W2, FP_B))).when(submit(W3, FP_C)).then((events) => {
      expect(tags(events)).toEqual(["TaskResultSubmitted", "DisputeOpened"])
    })
  })
  it.each<[string, ReadonlyArray<TaskEvent>, SubmitResult, string]>([
    ["on a task not assigned yet", requested, submit(W1), "NotRunning"],
    ["on a validated task", eventsOf(request(quorum(2, 3)), assign([W1, W2, W3]), submit(W1), submit(W2)), submit(W3), "NotRunning"],
    ["from a worker not running the task", running, submit(STRANGER), "NotAssigned"],
    ["from a replaced worker", eventsOf(request(), assign([W1]), fail(W1, W2)), submit(W1), "NotAssigned"],
    ["twice from one worker", eventsOf(request(quorum(2, 3)), assign([W1, W2, W3]), submit(W1)), submit(W1, FP_B), "AlreadySubmitted"]
  ])("refuses a result %s", (_, given, cmd, reason) => spec.given(given).when(cmd).thenRejects("SubmissionRejected", reason as never))
})

describe("ResolveDispute", () => {
  it("the re-execution's fingerprint wins: its side is correct, the other wrong", () => {
    spec.given(disputed).when(resolve(FP_B)).then((events, s) => {
      expect(events).toEqual([
        new DisputeResolved({ referee: REFEREE, fingerprint: FP_B, outputHash: out(REFEREE, FP_B), signature: signature(REFEREE), correct: [W2], wrong: [W1], at: T0 + 90 }),
        new TaskValidated({ fingerprint: FP_B, outputHash: out(W2, FP_B), correct: [W2], wrong: [W1], disputed: true, at: T0 + 90 })
      ])
      expect(s.status).toBe("Validated")
    })
  })
  it("a re-execution matching nobody: everyone is wrong, the developer gets the referee's output", () => {
    spec.given(disputed).when(resolve(FP_C)).then((events) => {
      const v = events[1] as TaskValidated
      expect([v.correct, v.wrong, v.outputHash]).toEqual([[], [W1, W2], out(REFEREE, FP_C)])
    })
  })
  it("refuses a resolution without a dispute: NoDispute", () => spec.given(sampledRunning).when(resolve(FP_A)).thenRejects("ResolutionRejected", "NoDispute"))
  it("refuses a party as referee: RefereeIsParty", () => spec.given(disputed).when(resolve(FP_A, W1)).thenRejects("ResolutionRejected", "RefereeIsParty"))
})

describe("WorkerFailed", () => {
  it("a worker that died is replaced in place; the replacement's result validates", () => {
    spec.given(running).when(fail(W1, W2)).then((events, s) => {
      expect(events).toEqual([new TaskReassigned({ failed: W1, reason: "died", replacement: W2, retry: 1, at: T0 + 30 })])
      expect([s.assignees, s.replaced, s.retries]).toEqual([[W2], [W1], 1])
    })
    spec.given(eventsOf(request(), assign([W1]), fail(W1, W2))).when(submit(W2)).then((events) => {
      expect((events[1] as TaskValidated).correct).toEqual([W2])
    })
  })
  it("past `retriesMax` reassignments the next failure fails the task", () => {
    const given = eventsOf(request(), assign([W1]), fail(W1, W2), fail(W2, W3, "timeout"), fail(W3, W4))
    spec.given(given).when(fail(W4, STRANGER)).then((events, s) => {
      expect([(events[0] as TaskFailed).cause, s.status, s.charged]).toEqual(["RetriesExhausted", "Failed", 0n])
    })
  })
  it("no replacement: the task fails (NoWorkerAvailable)", () => {
    spec.given(running).when(fail(W1, null)).then((events) => expect((events[0] as TaskFailed).cause).toBe("NoWorkerAvailable"))
  })
  it.each<[string, ReadonlyArray<TaskEvent>, WorkerFailed, string]>([
    ["on a task not assigned yet", requested, fail(W1, W2), "NotRunning"],
    ["on a validated task", validated, fail(W1, W2), "NotRunning"],
    ["of a worker not running it", running, fail(STRANGER, W2), "NotAssigned"],
    ["of a worker that submitted", eventsOf(request(quorum(2, 3)), assign([W1, W2, W3]), submit(W1)), fail(W1, W4), "AlreadySubmitted"],
    ["replaced by a worker running it", quorumRunning, fail(W1, W2), "ReplacementInvolved"],
    ["replaced by a worker replaced before", eventsOf(request(), assign([W1]), fail(W1, W2)), fail(W2, W1), "ReplacementInvolved"]
  ])("refuses a failure %s", (_, given, cmd, reason) => spec.given(given).when(cmd).thenRejects("WorkerFailureRejected", reason as never))
})

describe("AbandonTask", () => {
  it.each<[string, ReadonlyArray<TaskEvent>]>([
    ["requested", requested],
    ["running", running],
    ["disputed", disputed]
  ])("a %s task fails, uncharged", (_, given) => {
    spec.given(given).when(abandon()).then((events, s) => {
      expect([tags(events), s.status, s.charged]).toEqual([["TaskFailed"], "Failed", 0n])
    })
  })
  it.each<[string, ReadonlyArray<TaskEvent>, string]>([
    ["no task", [], "NotRequested"],
    ["a validated task", validated, "AlreadyValidated"],
    ["a settled task", settled, "AlreadyValidated"],
    ["a failed task", failed, "AlreadyFailed"]
  ])("refuses to abandon %s", (_, given, reason) => spec.given(given).when(abandon()).thenRejects("AbandonRejected", reason as never))
})

describe("SettleTask: the one charge", () => {
  it("a validated task settles: the developer is charged the price, once", () => {
    spec.given(validated).when(settle()).then((events, s) => {
      expect(events).toEqual([new TaskSettled({ receiptBatchId: hash("batch-1"), developer: DEVELOPER, modelId: MODEL, amount: PRICE, at: T0 + 1_000 })])
      expect([s.status, s.charged]).toEqual(["Settled", PRICE])
    })
  })
  it("the usage receipt given with the settlement is kept in TaskSettled, through its JSON encoding (the Settler's durable copy)", () => {
    const receipt = {
      grant: {
        chainId: 7n,
        model: MODEL,
        issuedAt: T0,
        expiresAt: T0 + 60_000,
        spendMax: 100n,
        nonce: `0x${"ab".repeat(16)}`,
        publicKey: `0x02${"11".repeat(32)}`,
        signature: `0x${"22".repeat(64)}`
      },
      taskId: TASK,
      model: MODEL,
      price: PRICE,
      results: [{ worker: W1, fingerprint: FP_A, execMs: 120, signature: `0x${"33".repeat(64)}` }],
      request: { inputHash: hash("inputs"), nonce: `0x${"44".repeat(16)}`, signature: `0x${"55".repeat(64)}` }
    }
    spec.given(validated).when(new SettleTask({ receiptBatchId: hash("batch-1"), at: T0 + 1_000, receipt })).then((events) => {
      const [back] = throughJson(TaskEvent, events)
      expect(back).toEqual(new TaskSettled({ receiptBatchId: hash("batch-1"), developer: DEVELOPER, modelId: MODEL, amount: PRICE, at: T0 + 1_000, receipt }))
    })
  })
  it.each<[string, ReadonlyArray<TaskEvent>, string]>([
    ["a second time (typed, not a silent no-op)", settled, "AlreadySettled"],
    ["a failed task", failed, "TaskFailed"],
    ["a running task", running, "NotValidated"],
    ["a disputed task", disputed, "NotValidated"],
    ["nothing", [], "NotValidated"]
  ])("refuses to settle %s", (_, given, reason) => spec.given(given).when(settle("batch-2")).thenRejects("SettlementRejected", reason as never))
  it("evolve refuses a stream that charges twice or charges a failed task", () => {
    const charge = settled.at(-1)!
    expect(() => fold(tasks.evolve, tasks.initialState, [...settled, charge])).toThrow(/invariant/)
    expect(() => fold(tasks.evolve, tasks.initialState, [...failed, charge])).toThrow(/invariant/)
  })
})

describe("replay", () => {
  it("the decided events, through their JSON encoding, fold to the decided state", () => {
    for (const commands of [
      [request(quorum(2, 3)), assign([W1, W2, W3]), fail(W2, W4, "timeout"), submit(W1, FP_A), submit(W4, FP_B), submit(W3, FP_A), settle()],
      [request(), assign([W1, W2], SAMPLED), submit(W1, FP_A), submit(W2, FP_B), resolve(FP_A), settle()],
      [request(), assign([W1]), fail(W1, null)]
    ]) {
      const { state, events } = runAll(tasks, commands)
      expect(fold(tasks.evolve, tasks.initialState, throughJson(TaskEvent, events))).toEqual(state)
    }
  })
})

describe("properties", () => {
  it("any sequence of task commands: charged at most once, only after validation, never after failing; errors are typed; replay agrees", () => {
    const ends: Record<TaskState["status"] | "resolved" | "reassigned" | "overran", number> = {
      Idle: 0, Requested: 0, Running: 0, Disputed: 0, Validated: 0, Overran: 0, Settled: 0, Failed: 0, resolved: 0, reassigned: 0, overran: 0
    }
    fc.assert(
      fc.property(policyArb, fc.bigInt({ min: 0n, max: 10n ** 20n }), fc.array(stepArb, { minLength: 4, maxLength: 40 }), (policy, price, steps) => {
        let { state: s, events } = runAll(tasks, [request(policy, price)])
        for (const step of steps) {
          const r = tasks.decide(s, commandOf(s, step))
          if (Either.isLeft(r)) continue
          events = [...events, ...r.right]
          s = fold(tasks.evolve, s, r.right)
        }
        ends[s.status]++
        if (events.some((e) => e._tag === "DisputeResolved")) ends.resolved++
        if (events.some((e) => e._tag === "TaskReassigned")) ends.reassigned++
        const overranAt = events.findIndex((e) => e._tag === "TaskOverran")
        if (overranAt >= 0) ends.overran++
        const charges = events.filter((e) => e._tag === "TaskSettled")
        const failedAt = events.findIndex((e) => e._tag === "TaskFailed")
        const validatedAt = events.findIndex((e) => e._tag === "TaskValidated")
        expect(charges.length).toBeLessThanOrEqual(1)
        if (failedAt >= 0) expect([charges.length, validatedAt, overranAt, s.charged]).toEqual([0, -1, -1, 0n])
        // A task is validated or overran, never both; an overrun comes before any result.
        expect(validatedAt < 0 || overranAt < 0).toBe(true)
        if (overranAt >= 0) expect(events.slice(0, overranAt).some((e) => e._tag === "TaskResultSubmitted")).toBe(false)
        if (charges.length === 1) {
          expect(Math.max(validatedAt, overranAt)).toBeGreaterThanOrEqual(0)
          expect(s.charged).toBe(price)
        } else {
          expect(s.charged).toBe(0n)
        }
        expect(events.filter((e) => e._tag === "TaskValidated").length).toBeLessThanOrEqual(1)
        expect(s.retries).toBeLessThanOrEqual(DEFAULT_TASK_RULES.retriesMax)
        expect(fold(tasks.evolve, tasks.initialState, throughJson(TaskEvent, events))).toEqual(s)
      }),
      { numRuns: 1_000 }
    )
    // The random lives reach every end, not just refusals.
    expect(Math.min(ends.Settled, ends.Failed, ends.Validated, ends.Running)).toBeGreaterThan(50)
    expect(Math.min(ends.reassigned, ends.resolved, ends.overran)).toBeGreaterThan(0)
  })
})

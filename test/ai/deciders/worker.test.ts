import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { fold } from "../../../domain/Decider.js"
import {
  Deregister,
  Heartbeat,
  MarkOffline,
  RecordDispute,
  RecordTaskResult,
  RegisterWorker,
  type WorkerRules
} from "../../../domain/ai/worker/commands.js"
import { makeWorkerDecider, reputationScore } from "../../../domain/ai/worker/decide.js"
import { WorkerEvent, WorkerWentOffline, type WorkerRegistered } from "../../../domain/ai/worker/events.js"
import { DEFAULT_GPU_CLASSES, meetsClass } from "../../../domain/ai/worker/gpuClass.js"
import { address, deciderSpec, hash, runAll, T0, tags, throughJson } from "./support.js"

const GRACE_MS = 15_000
const rules: WorkerRules = { gpuClasses: DEFAULT_GPU_CLASSES, heartbeatGraceMs: GRACE_MS, stakeMin: 1_000n }
const workers = makeWorkerDecider(rules)
const spec = deciderSpec(workers)
const WORKER = address("worker-1")
const OWNER = address("owner-1")
const STRANGER = address("stranger")
const TASK = hash("task-1")

const register = (over: Partial<ConstructorParameters<typeof RegisterWorker>[0]> = {}) =>
  new RegisterWorker({ workerId: WORKER, owner: OWNER, gpuClass: "A100", devices: 4, stake: 5_000n, endpoint: "ws://10.0.0.7:7400", at: T0, ...over })

const registered = runAll(workers, [register()]).events
const offline = runAll(workers, [register(), new MarkOffline({ at: T0 + GRACE_MS + 1 })]).events
const deregistered = runAll(workers, [register(), new Deregister({ owner: OWNER, at: T0 + 1 })]).events
const marked = runAll(workers, [register(), new RecordTaskResult({ taskId: TASK, outcome: "wrong", at: T0 + 1 })]).events

describe("GPU classes", () => {
  it("coefficients are exact milli-units, and classes order by them", () => {
    expect(DEFAULT_GPU_CLASSES).toEqual({ H100: 10_000n, A100: 6_000n, RTX4090: 3_000n, CPU: 100n })
    expect(meetsClass(DEFAULT_GPU_CLASSES, "H100", "A100")).toBe(true)
    expect(meetsClass(DEFAULT_GPU_CLASSES, "CPU", "RTX4090")).toBe(false)
    expect(meetsClass(DEFAULT_GPU_CLASSES, "TPU", "CPU")).toBe(false)
    expect(meetsClass(DEFAULT_GPU_CLASSES, "CPU", "toString")).toBe(false)
  })
})

describe("RegisterWorker", () => {
  it("given nothing, when a worker registers, then it is online with devices × coefficient GPU units", () => {
    spec.given([]).when(register()).then((events, s) => {
      expect(tags(events)).toEqual(["WorkerRegistered"])
      expect((events[0] as WorkerRegistered).gpuUnitsMilli).toBe(24_000n) // 4 × A100 (6)
      expect([s.status, s.lastHeartbeatAt, reputationScore(s.reputation)]).toEqual(["Online", T0, 500])
    })
  })
  it("a CPU counts 0.1 unit per device, exactly", () => {
    spec.given([]).when(register({ gpuClass: "CPU", devices: 3 })).then((events) => {
      expect((events[0] as WorkerRegistered).gpuUnitsMilli).toBe(300n)
    })
  })
  it.each<[string, ReadonlyArray<WorkerEvent>, RegisterWorker, string]>([
    ["a second registration", registered, register(), "AlreadyRegistered"],
    ["a registration after deregistering", deregistered, register(), "AlreadyRegistered"],
    ["a class not in the table", [], register({ gpuClass: "TPU" }), "UnknownGpuClass"],
    ["a stake under the minimum", [], register({ stake: 999n }), "StakeTooLow"]
  ])("refuses %s", (_, given, cmd, reason) => spec.given(given).when(cmd).thenRejects("RegistrationRejected", reason as never))
})

describe("heartbeats and going offline", () => {
  it("a heartbeat moves the last-seen time", () => {
    spec.given(registered).when(new Heartbeat({ at: T0 + 5_000 })).then((events, s) => {
      expect(tags(events)).toEqual(["WorkerHeartbeat"])
      expect(s.lastHeartbeatAt).toBe(T0 + 5_000)
    })
  })
  it("silent past the grace period: marked offline", () => {
    spec.given(registered).when(new MarkOffline({ at: T0 + GRACE_MS + 1 })).then((events, s) => {
      expect(events).toEqual([new WorkerWentOffline({ at: T0 + GRACE_MS + 1, lastHeartbeatAt: T0 })])
      expect(s.status).toBe("Offline")
    })
  })
  it("an offline worker's heartbeat brings it back online", () => {
    spec.given(offline).when(new Heartbeat({ at: T0 + GRACE_MS + 2 })).then((_, s) => expect(s.status).toBe("Online"))
  })
  it.each<[string, ReadonlyArray<WorkerEvent>, Heartbeat, string]>([
    ["from nobody", [], new Heartbeat({ at: T0 }), "NotRegistered"],
    ["after deregistering", deregistered, new Heartbeat({ at: T0 + 2 }), "Deregistered"],
    ["older than the last one", registered, new Heartbeat({ at: T0 - 1 }), "OutOfOrder"]
  ])("refuses a heartbeat %s", (_, given, cmd, reason) => spec.given(given).when(cmd).thenRejects("HeartbeatRejected", reason as never))
  it.each<[string, ReadonlyArray<WorkerEvent>, MarkOffline, string]>([
    ["nobody", [], new MarkOffline({ at: T0 + GRACE_MS + 1 }), "NotRegistered"],
    ["a deregistered worker", deregistered, new MarkOffline({ at: T0 + GRACE_MS + 1 }), "Deregistered"],
    ["an offline worker", offline, new MarkOffline({ at: T0 + 3 * GRACE_MS }), "AlreadyOffline"],
    ["a worker heard from within the grace period", registered, new MarkOffline({ at: T0 + GRACE_MS }), "WithinGrace"]
  ])("refuses to mark offline %s", (_, given, cmd, reason) => spec.given(given).when(cmd).thenRejects("MarkOfflineRejected", reason as never))
})

describe("reputation and marks", () => {
  it("a correct result raises the score; a wrong one leaves a mark", () => {
    spec.given(registered).when(new RecordTaskResult({ taskId: TASK, outcome: "correct", at: T0 + 1 })).then((_, s) => {
      expect([s.reputation.correct, reputationScore(s.reputation), s.marks]).toEqual([1, 666, []])
    })
    spec.given(registered).when(new RecordTaskResult({ taskId: TASK, outcome: "wrong", at: T0 + 1 })).then((_, s) => {
      expect(s.marks).toEqual([{ taskId: TASK, kind: "WrongResult", at: T0 + 1 }])
      expect(reputationScore(s.reputation)).toBe(83) // ⌊1000 · 1 / 12⌋
    })
  })
  it("a lost dispute is marked LostDispute; a won one counts", () => {
    spec.given(registered).when(new RecordDispute({ taskId: TASK, outcome: "wrong", at: T0 + 1 })).then((events, s) => {
      expect(tags(events)).toEqual(["DisputeRecorded"])
      expect([s.marks[0]?.kind, s.reputation.disputesLost]).toEqual(["LostDispute", 1])
    })
    spec.given(registered).when(new RecordDispute({ taskId: TASK, outcome: "correct", at: T0 + 1 })).then((_, s) => {
      expect([s.reputation.disputesWon, s.marks.length]).toEqual([1, 0])
    })
  })
  it("a deregistered worker keeps collecting the marks of its past tasks", () => {
    spec.given(deregistered).when(new RecordTaskResult({ taskId: TASK, outcome: "wrong", at: T0 + 9 })).then((_, s) => {
      expect([s.status, s.marks.length]).toEqual(["Deregistered", 1])
    })
  })
  it.each<[string, ReadonlyArray<WorkerEvent>, RecordTaskResult | RecordDispute, string]>([
    ["for nobody", [], new RecordTaskResult({ taskId: TASK, outcome: "correct", at: T0 }), "NotRegistered"],
    ["for a task marked already", marked, new RecordTaskResult({ taskId: TASK, outcome: "wrong", at: T0 + 2 }), "AlreadyMarked"],
    ["of a dispute on a task marked already", marked, new RecordDispute({ taskId: TASK, outcome: "wrong", at: T0 + 2 }), "AlreadyMarked"]
  ])("refuses an outcome %s", (_, given, cmd, reason) => spec.given(given).when(cmd).thenRejects("OutcomeRejected", reason as never))
})

describe("Deregister", () => {
  it("the owner deregisters the worker", () => {
    spec.given(offline).when(new Deregister({ owner: OWNER, at: T0 + 99_999 })).then((_, s) => expect(s.status).toBe("Deregistered"))
  })
  it.each<[string, ReadonlyArray<WorkerEvent>, Deregister, string]>([
    ["nobody", [], new Deregister({ owner: OWNER, at: T0 }), "NotRegistered"],
    ["for another account", registered, new Deregister({ owner: STRANGER, at: T0 + 1 }), "NotOwner"],
    ["twice", deregistered, new Deregister({ owner: OWNER, at: T0 + 2 }), "AlreadyDeregistered"]
  ])("refuses to deregister %s", (_, given, cmd, reason) => spec.given(given).when(cmd).thenRejects("DeregistrationRejected", reason as never))
})

describe("replay and properties", () => {
  const commandArb = fc.oneof(
    fc.integer({ min: 0, max: 40_000 }).map((dt) => ({ kind: "heartbeat" as const, dt })),
    fc.integer({ min: 0, max: 40_000 }).map((dt) => ({ kind: "offline" as const, dt })),
    fc.record({ task: fc.integer({ min: 0, max: 5 }), wrong: fc.boolean(), disputed: fc.boolean() }).map((r) => ({ kind: "outcome" as const, ...r })),
    fc.constant({ kind: "deregister" as const })
  )
  it("any command sequence: the events through JSON fold to the decided state; marks match wrong outcomes; online iff heartbeat within grace or not yet marked", () => {
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 40 }), (steps) => {
        let s = fold(workers.evolve, workers.initialState, registered)
        const events: Array<WorkerEvent> = [...registered]
        let now = T0
        for (const step of steps) {
          const cmd =
            step.kind === "heartbeat"
              ? new Heartbeat({ at: (now += step.dt) })
              : step.kind === "offline"
                ? new MarkOffline({ at: (now += step.dt) })
                : step.kind === "deregister"
                  ? new Deregister({ owner: OWNER, at: now })
                  : step.disputed
                    ? new RecordDispute({ taskId: hash(`t${step.task}`), outcome: step.wrong ? "wrong" : "correct", at: now })
                    : new RecordTaskResult({ taskId: hash(`t${step.task}`), outcome: step.wrong ? "wrong" : "correct", at: now })
          const before = s
          const r = workers.decide(s, cmd)
          if (Either.isRight(r)) {
            events.push(...r.right)
            s = fold(workers.evolve, s, r.right)
          }
          if (step.kind === "offline" && before.status === "Online") {
            expect(Either.isRight(r)).toBe(now - before.lastHeartbeatAt > GRACE_MS)
          }
        }
        expect(fold(workers.evolve, workers.initialState, throughJson(WorkerEvent, events))).toEqual(s)
        expect(s.marks.length).toBe(s.reputation.wrong + s.reputation.disputesLost)
        expect(new Set(s.marks.map((m) => m.taskId)).size).toBe(s.marks.length)
      }),
      { numRuns: 300 }
    )
  })
})

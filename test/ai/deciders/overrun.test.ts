/**
 * Serving overruns in the deciders: a worker's overrun claim is confirmed by
 * a second worker before the task is charged its price, once; a result while
 * the claim is pending refutes it (task/overrun.ts);
 * a model is suspended at its OVERRUNS_TO_SUSPEND-th overrun
 * (model/overruns.ts). Given / when / then, with replays through JSON.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import fc from "fast-check"
import { fold } from "../../../domain/Decider.js"
import type { Address } from "../../../domain/chain/keys.js"
import { ModelManifest } from "../../../domain/ai/manifest.js"
import * as Verdict from "../../../domain/ai/verdict.js"
import { AttestModel, UploadModel, type ModelRules } from "../../../domain/ai/model/commands.js"
import { isServable, makeModelDecider } from "../../../domain/ai/model/decide.js"
import { ModelEvent } from "../../../domain/ai/model/events.js"
import { ModelOverran, ModelSuspended, OVERRUNS_TO_SUSPEND, RecordOverrun } from "../../../domain/ai/model/overruns.js"
import { AbandonTask, AssignTask, DEFAULT_TASK_RULES, RequestTask, SettleTask, SubmitResult, WorkerFailed, type TaskCommand } from "../../../domain/ai/task/commands.js"
import { makeTaskDecider } from "../../../domain/ai/task/decide.js"
import { SinglePolicy, TaskEvent, TaskSettled } from "../../../domain/ai/task/events.js"
import { ClaimOverrun, describeOverrun, OverrunClaimed, OverrunClaimRefuted, overrunRecordOf, refutationProvesLie, TaskOverran } from "../../../domain/ai/task/overrun.js"
import { DEFAULT_GPU_CLASSES } from "../../../domain/ai/worker/gpuClass.js"
import { address, deciderSpec, hash, runAll, signature, T0, tags, throughJson } from "./support.js"
import { commandOf, policyArb, stepArb } from "./taskSteps.js"

// ---------------------------------------------------------------- the task

const tasks = makeTaskDecider(DEFAULT_TASK_RULES)
const taskSpec = deciderSpec(tasks)
const DEVELOPER = address("developer")
const MODEL = hash("model")
const PRICE = 25n
const [W1, W2, W3, W4] = [address("worker-1"), address("worker-2"), address("worker-3"), address("worker-4")] as [Address, Address, Address, Address]

const request = new RequestTask({
  taskId: hash("task"),
  developer: DEVELOPER,
  modelId: MODEL,
  price: PRICE,
  inputHash: hash("input"),
  policy: SinglePolicy.make({ sampleRatePerMillion: 0 }),
  at: T0
})
const assign = (workers: ReadonlyArray<Address>, sampleDraw = 999_999) => new AssignTask({ workers, sampleDraw, at: T0 + 1 })
const claim = (worker: Address = W1, confirmer: Address | null = W2, kind: "Deadline" | "Memory" = "Deadline") =>
  new ClaimOverrun({ worker, kind, millis: 1_503, limit: kind === "Memory" ? 512 * 1024 * 1024 : 1_500, confirmer, at: T0 + 1_600 })
const submit = (worker: Address) =>
  new SubmitResult({ worker, fingerprint: hash("fp"), outputHash: hash(`out:${worker}`), signature: signature(worker), at: T0 + 50 })
const settle = new SettleTask({ receiptBatchId: hash("batch-1"), at: T0 + 2_000 })
const eventsOf = (...commands: ReadonlyArray<TaskCommand>) => runAll(tasks, commands).events

const running = eventsOf(request, assign([W1]))
const claimed = eventsOf(request, assign([W1]), claim())
const overran = eventsOf(request, assign([W1]), claim(), claim(W2, W3))

describe("ClaimOverrun", () => {
  it("given a running task, when its worker claims an overrun, then nothing is charged: the claimant is replaced by the confirmer", () => {
    taskSpec.given(running).when(claim()).then((events, s) => {
      expect(events).toEqual([new OverrunClaimed({ worker: W1, kind: "Deadline", millis: 1_503, limit: 1_500, confirmer: W2, at: T0 + 1_600 })])
      expect([s.status, s.assignees, s.replaced, s.retries, s.charged, s.overrun]).toEqual(["Running", [W2], [W1], 0, 0n, null])
      expect(s.claim?.worker).toBe(W1)
    })
  })
  it("given a pending claim, when the confirmer overruns too, then the task Overran (confirmed) and settles once at the price", () => {
    taskSpec.given(claimed).when(claim(W2, W3)).then((events, s) => {
      expect(events).toEqual([new TaskOverran({ worker: W2, claimant: W1, kind: "Deadline", millis: 1_503, limit: 1_500, at: T0 + 1_600 })])
      expect([s.status, s.charged]).toEqual(["Overran", 0n])
      expect(describeOverrun(events[0] as TaskOverran)).toBe("the run went past its deadline of 1500 ms (stopped after 1503 ms)")
    })
    taskSpec.given(overran).when(settle).then((events, s) => {
      expect(events).toEqual([new TaskSettled({ receiptBatchId: hash("batch-1"), developer: DEVELOPER, modelId: MODEL, amount: PRICE, at: T0 + 2_000 })])
      expect([s.status, s.charged]).toEqual(["Settled", PRICE])
    })
    taskSpec.given(eventsOf(request, assign([W1]), claim(), claim(W2, W3), settle)).when(settle).thenRejects("SettlementRejected", "AlreadySettled")
  })
  it("given a pending claim, when the confirmer submits a result, then the claim is refuted, the task validates on the honest result, and the claimant is a liar", () => {
    taskSpec.given(claimed).when(submit(W2)).then((events, s) => {
      expect(tags(events)).toEqual(["TaskResultSubmitted", "OverrunClaimRefuted", "TaskValidated"])
      expect(events[1]).toEqual(new OverrunClaimRefuted({ claimant: W1, kind: "Deadline", refutedBy: W2, at: T0 + 50 }))
      expect([s.status, s.claim, s.refuted.map((r) => r.claimant), s.overrun, s.validation?.correct]).toEqual(["Validated", null, [W1], null, [W2]])
      expect(refutationProvesLie("Deadline")).toBe(true)
    })
    // The developer pays the normal price for the honest result, once.
    const refuted = eventsOf(request, assign([W1]), claim(), submit(W2))
    taskSpec.given(refuted).when(settle).then((_, s) => expect([s.status, s.charged]).toEqual(["Settled", PRICE]))
    // The liar cannot come back with its result.
    taskSpec.given(claimed).when(submit(W1)).thenRejects("SubmissionRejected", "NotAssigned")
  })
  it("a refuted memory claim is no proof of a lie: the memory bound is each worker's own", () => {
    taskSpec.given(eventsOf(request, assign([W1]), claim(W1, W2, "Memory"))).when(submit(W2)).then((events, s) => {
      expect(events[1]).toEqual(new OverrunClaimRefuted({ claimant: W1, kind: "Memory", refutedBy: W2, at: T0 + 50 }))
      expect(s.status).toBe("Validated")
    })
    expect([refutationProvesLie("Memory"), refutationProvesLie("LoadDeadline")]).toEqual([false, false])
  })
  it("given a running task and no worker to confirm, when its worker claims an overrun, then the task fails uncharged", () => {
    taskSpec.given(running).when(claim(W1, null)).then((events, s) => {
      expect(tags(events)).toEqual(["TaskFailed"])
      expect([s.status, s.charged, s.failure?.cause]).toEqual(["Failed", 0n, "NoWorkerAvailable"])
      expect(s.failure?.detail).toContain("unconfirmed claim is not charged")
    })
    taskSpec.given(eventsOf(request, assign([W1]), claim(W1, null))).when(settle).thenRejects("SettlementRejected", "TaskFailed")
  })
  it("given a pending claim, when the confirmer dies with no replacement, then the task fails uncharged", () => {
    taskSpec.given(claimed).when(new WorkerFailed({ worker: W2, reason: "died", replacement: null, at: T0 + 1_700 })).then((_, s) => {
      expect([s.status, s.charged]).toEqual(["Failed", 0n])
    })
  })
  it("a memory overrun says its bound in MiB", () => {
    taskSpec.given(claimed).when(claim(W2, W3, "Memory")).then((events) => {
      expect(describeOverrun(events[0] as TaskOverran)).toBe("the run needed more than the 512 MiB the worker allows (stopped after 1503 ms)")
    })
  })
  it("an overran task cannot be abandoned (released) instead of charged", () => {
    taskSpec.given(overran).when(new AbandonTask({ cause: "TimedOut", detail: "late", at: T0 + 30_000 })).thenRejects("AbandonRejected", "AlreadyValidated")
  })
  it("refuses a worker not running the task, the claimant again, an involved confirmer, a claim after a result", () => {
    taskSpec.given(running).when(claim(W2)).thenRejects("OverrunChargeRejected", "NotAssigned")
    taskSpec.given(claimed).when(claim(W1, W3)).thenRejects("OverrunChargeRejected", "NotAssigned")
    taskSpec.given(running).when(claim(W1, W1)).thenRejects("OverrunChargeRejected", "ConfirmerInvolved")
    taskSpec.given(overran).when(claim(W2, W4)).thenRejects("OverrunChargeRejected", "NotRunning")
    taskSpec.given(eventsOf(request)).when(claim()).thenRejects("OverrunChargeRejected", "NotRunning")
    // Sampled: two workers; W2 ran it within the limits, so W1's overrun is W1's problem.
    const sampledWithResult = eventsOf(
      new RequestTask({ ...request, policy: SinglePolicy.make({ sampleRatePerMillion: 1_000_000 }) }),
      assign([W1, W2], 0),
      submit(W2)
    )
    taskSpec.given(sampledWithResult).when(claim(W1, W3)).thenRejects("OverrunChargeRejected", "OthersSucceeded")
    taskSpec.given(sampledWithResult).when(claim(W2, W3)).thenRejects("OverrunChargeRejected", "AlreadySubmitted")
  })
  it("replays through JSON to the same state", () => {
    for (const commands of [
      [request, assign([W1]), claim(W1, W2, "Memory"), claim(W2, W3, "Memory"), settle],
      [request, assign([W1]), claim(), submit(W2), settle]
    ]) {
      const { state, events } = runAll(tasks, commands)
      expect(fold(tasks.evolve, tasks.initialState, throughJson(TaskEvent, events))).toEqual(state)
    }
  })
  it("only a confirmed overrun makes a record for the model", () => {
    expect(overrunRecordOf(runAll(tasks, [request, assign([W1]), claim()]).state)).toBeNull()
    expect(overrunRecordOf(runAll(tasks, [request, assign([W1]), claim(), submit(W2)]).state)).toBeNull()
    expect(overrunRecordOf(runAll(tasks, [request, assign([W1]), claim(), claim(W2, W3)]).state)).toEqual(
      new RecordOverrun({ taskId: hash("task"), kind: "Deadline", millis: 1_503, at: T0 + 1_600 })
    )
  })
})

// ---------------------------------------------------------------- the model

const V1 = address("validator-1")
const rules: ModelRules = { validators: [V1], attestationQuorum: 1, verificationTimeoutMs: 60_000, gpuClasses: DEFAULT_GPU_CLASSES }
const models = makeModelDecider(rules)
const modelSpec = deciderSpec(models)
const manifest = Schema.decodeUnknownSync(ModelManifest)({ name: "m", version: "1", pricePerCall: "25", minGpuClass: "CPU", license: "MIT", description: "" })
const WEIGHTS = hash("weights")
const upload = new UploadModel({ modelId: hash("upload-tx"), provider: address("provider"), manifest, weightsHash: WEIGHTS, sizeBytes: 4096, at: T0 })
const accept = new AttestModel({
  validator: V1,
  verdict: new Verdict.ModelAccepted({
    modelHash: WEIGHTS,
    sizeBytes: 4096,
    signature: { inputs: [{ name: "x", type: "float32", dims: [1] }], outputs: [{ name: "y", type: "float32", dims: [1] }] },
    referenceFingerprint: hash("fp"),
    smoke: new Verdict.SmokePassed({ fingerprint: hash("fp"), outputs: [], loadMillis: 3, runMillis: 0.2, totalMillis: 40, peakRssBytes: 50_000_000 })
  }),
  at: T0 + 1_000
})
const record = (i: number) => new RecordOverrun({ taskId: hash(`task-${i}`), kind: "Deadline", millis: 1_500 + i, at: T0 + 10_000 + i })
const verified = runAll(models, [upload, accept]).events
const afterOverruns = (n: number) => runAll(models, [upload, accept, ...Array.from({ length: n }, (_, i) => record(i))]).events

describe("RecordOverrun", () => {
  it(`counts overruns; the model stays servable below ${OVERRUNS_TO_SUSPEND}`, () => {
    modelSpec.given(verified).when(record(0)).then((events, s) => {
      expect(events).toEqual([new ModelOverran({ taskId: hash("task-0"), kind: "Deadline", millis: 1_500, count: 1, at: T0 + 10_000 })])
      expect([s.overranTasks.length, s.suspended, isServable(s)]).toEqual([1, false, true])
    })
  })
  it(`the ${OVERRUNS_TO_SUSPEND}rd overrun suspends the model: not servable any more`, () => {
    modelSpec.given(afterOverruns(OVERRUNS_TO_SUSPEND - 1)).when(record(OVERRUNS_TO_SUSPEND - 1)).then((events, s) => {
      expect(tags(events)).toEqual(["ModelOverran", "ModelSuspended"])
      expect(events[1]).toEqual(
        new ModelSuspended({
          overruns: OVERRUNS_TO_SUSPEND,
          reason: `${OVERRUNS_TO_SUSPEND} calls overran their limits (the last: Deadline after ${1_500 + OVERRUNS_TO_SUSPEND - 1} ms); at ${OVERRUNS_TO_SUSPEND} a model is suspended`,
          at: T0 + 10_000 + OVERRUNS_TO_SUSPEND - 1
        })
      )
      expect([s.suspended, isServable(s), s.status]).toEqual([true, false, "Verified"])
    })
  })
  it("a late overrun of a suspended model is recorded, and suspends nothing twice", () => {
    modelSpec.given(afterOverruns(OVERRUNS_TO_SUSPEND)).when(record(OVERRUNS_TO_SUSPEND)).then((events, s) => {
      expect(tags(events)).toEqual(["ModelOverran"])
      expect([s.overranTasks.length, s.suspended]).toEqual([OVERRUNS_TO_SUSPEND + 1, true])
    })
  })
  it("refuses the same task twice, a model not verified, and no model", () => {
    modelSpec.given(afterOverruns(1)).when(record(0)).thenRejects("OverrunRejected", "AlreadyRecorded")
    modelSpec.given(runAll(models, [upload]).events).when(record(0)).thenRejects("OverrunRejected", "NotVerified")
    modelSpec.given([]).when(record(0)).thenRejects("OverrunRejected", "ModelAbsent")
  })
  it("replays through JSON to the same state", () => {
    const events = afterOverruns(OVERRUNS_TO_SUSPEND + 1)
    const state = fold(models.evolve, models.initialState, events)
    expect(fold(models.evolve, models.initialState, throughJson(ModelEvent, events))).toEqual(state)
    expect(state.suspended).toBe(true)
  })
})

// ---------------------------------------------------------------- properties

/** Lives with more claims than taskSteps' own mix, so overruns are confirmed and models suspended often. */
const claimStepArb = fc.oneof(
  { weight: 3, arbitrary: stepArb },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("overrun" as const), worker: fc.nat(), memory: fc.boolean(), confirmer: fc.option(fc.nat(), { freq: 6 }) })
  }
)

describe("properties", () => {
  it("no sequence of worker claims charges a developer for an unconfirmed overrun; only confirmed overruns suspend a model", () => {
    let confirmedSeen = 0
    let suspendedSeen = 0
    fc.assert(
      fc.property(
        fc.array(fc.tuple(policyArb, fc.array(claimStepArb, { minLength: 4, maxLength: 30 })), { minLength: 1, maxLength: 6 }),
        (lives) => {
          let model = fold(models.evolve, models.initialState, verified)
          let confirmed = 0
          lives.forEach(([policy, steps], i) => {
            let { state: s, events } = runAll(tasks, [new RequestTask({ ...request, taskId: hash(`task-${i}`), policy })])
            /** Workers whose claim the decider took. */
            const claimants: Array<string> = []
            for (const step of steps) {
              const command = commandOf(s, step)
              const r = tasks.decide(s, command)
              if (Either.isLeft(r)) continue
              if (command._tag === "ClaimOverrun") claimants.push(command.worker)
              events = [...events, ...r.right]
              s = fold(tasks.evolve, s, r.right)
            }
            const overranAt = events.findIndex((e) => e._tag === "TaskOverran")
            const validated = events.some((e) => e._tag === "TaskValidated")
            if (s.charged > 0n && !validated) {
              // Charged without a result: two distinct workers claimed, and no result came before.
              expect(overranAt).toBeGreaterThanOrEqual(0)
              expect(new Set(claimants).size).toBeGreaterThanOrEqual(2)
            }
            if (overranAt >= 0) {
              const o = events[overranAt] as TaskOverran
              expect(o.worker).not.toBe(o.claimant)
              expect(claimants).toEqual(expect.arrayContaining([o.worker, o.claimant]))
              expect(events.slice(0, overranAt).some((e) => e._tag === "TaskResultSubmitted")).toBe(false)
              confirmed++
            }
            // A refuted claimant is never the one an overrun is charged on.
            for (const r of s.refuted) expect(s.overrun?.claimant).not.toBe(r.claimant)
            const record = overrunRecordOf(s)
            expect(record !== null).toBe(overranAt >= 0)
            if (record !== null) {
              const r = models.decide(model, record)
              if (Either.isRight(r)) model = fold(models.evolve, model, r.right)
            }
          })
          expect(model.suspended).toBe(confirmed >= OVERRUNS_TO_SUSPEND)
          expect(model.overranTasks.length).toBe(confirmed)
          confirmedSeen += confirmed
          if (model.suspended) suspendedSeen++
        }
      ),
      { numRuns: 400 }
    )
    // The random lives do confirm overruns, and suspend models, not only refuse.
    expect(confirmedSeen).toBeGreaterThan(0)
    expect(suspendedSeen).toBeGreaterThan(0)
  })
})

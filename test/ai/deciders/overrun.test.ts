/**
 * Serving overruns in the deciders: a task whose run was stopped at its
 * limits is charged its price once and never reassigned (task/overrun.ts);
 * a model is suspended at its OVERRUNS_TO_SUSPEND-th overrun
 * (model/overruns.ts). Given / when / then, with replays through JSON.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { fold } from "../../../domain/Decider.js"
import type { Address } from "../../../domain/chain/keys.js"
import { ModelManifest } from "../../../domain/ai/manifest.js"
import * as Verdict from "../../../domain/ai/verdict.js"
import { AttestModel, UploadModel, type ModelRules } from "../../../domain/ai/model/commands.js"
import { isServable, makeModelDecider } from "../../../domain/ai/model/decide.js"
import { ModelEvent } from "../../../domain/ai/model/events.js"
import { ModelOverran, ModelSuspended, OVERRUNS_TO_SUSPEND, RecordOverrun } from "../../../domain/ai/model/overruns.js"
import { AbandonTask, AssignTask, DEFAULT_TASK_RULES, RequestTask, SettleTask, SubmitResult, type TaskCommand } from "../../../domain/ai/task/commands.js"
import { makeTaskDecider } from "../../../domain/ai/task/decide.js"
import { SinglePolicy, TaskEvent, TaskSettled } from "../../../domain/ai/task/events.js"
import { ChargeOverrun, describeOverrun, TaskOverran } from "../../../domain/ai/task/overrun.js"
import { DEFAULT_GPU_CLASSES } from "../../../domain/ai/worker/gpuClass.js"
import { address, deciderSpec, hash, runAll, signature, T0, tags, throughJson } from "./support.js"

// ---------------------------------------------------------------- the task

const tasks = makeTaskDecider(DEFAULT_TASK_RULES)
const taskSpec = deciderSpec(tasks)
const DEVELOPER = address("developer")
const MODEL = hash("model")
const PRICE = 25n
const [W1, W2] = [address("worker-1"), address("worker-2")] as [Address, Address]

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
const overrun = (worker: Address = W1, kind: "Deadline" | "Memory" = "Deadline") =>
  new ChargeOverrun({ worker, kind, millis: 1_503, limit: kind === "Memory" ? 512 * 1024 * 1024 : 1_500, at: T0 + 1_600 })
const submit = (worker: Address) =>
  new SubmitResult({ worker, fingerprint: hash("fp"), outputHash: hash(`out:${worker}`), signature: signature(worker), at: T0 + 50 })
const settle = new SettleTask({ receiptBatchId: hash("batch-1"), at: T0 + 2_000 })
const eventsOf = (...commands: ReadonlyArray<TaskCommand>) => runAll(tasks, commands).events

const running = eventsOf(request, assign([W1]))
const overran = eventsOf(request, assign([W1]), overrun())

describe("ChargeOverrun", () => {
  it("given a running task, when its worker reports a deadline overrun, then the task Overran and is not reassigned", () => {
    taskSpec.given(running).when(overrun()).then((events, s) => {
      expect(events).toEqual([new TaskOverran({ worker: W1, kind: "Deadline", millis: 1_503, limit: 1_500, at: T0 + 1_600 })])
      expect([s.status, s.retries, s.charged]).toEqual(["Overran", 0, 0n])
      expect(describeOverrun(events[0] as TaskOverran)).toBe("the run went past its deadline of 1500 ms (stopped after 1503 ms)")
    })
  })
  it("a memory overrun says its bound in MiB", () => {
    taskSpec.given(running).when(overrun(W1, "Memory")).then((events) => {
      expect(describeOverrun(events[0] as TaskOverran)).toBe("the run needed more than the 512 MiB the worker allows (stopped after 1503 ms)")
    })
  })
  it("given an overran task, when it settles, then the developer is charged the price, once", () => {
    taskSpec.given(overran).when(settle).then((events, s) => {
      expect(events).toEqual([new TaskSettled({ receiptBatchId: hash("batch-1"), developer: DEVELOPER, modelId: MODEL, amount: PRICE, at: T0 + 2_000 })])
      expect([s.status, s.charged]).toEqual(["Settled", PRICE])
    })
    taskSpec.given(eventsOf(request, assign([W1]), overrun(), settle)).when(settle).thenRejects("SettlementRejected", "AlreadySettled")
  })
  it("an overran task cannot be abandoned (released) instead of charged", () => {
    taskSpec.given(overran).when(new AbandonTask({ cause: "TimedOut", detail: "late", at: T0 + 30_000 })).thenRejects("AbandonRejected", "AlreadyValidated")
  })
  it("refuses a worker not running the task, a second claim, a claim after the worker's result, and a claim after another worker's result", () => {
    taskSpec.given(running).when(overrun(W2)).thenRejects("OverrunChargeRejected", "NotAssigned")
    taskSpec.given(overran).when(overrun()).thenRejects("OverrunChargeRejected", "NotRunning")
    taskSpec.given(eventsOf(request)).when(overrun()).thenRejects("OverrunChargeRejected", "NotRunning")
    // Sampled: two workers; W2 ran it within the limits, so W1's overrun is W1's problem.
    const sampledWithResult = eventsOf(
      new RequestTask({ ...request, policy: SinglePolicy.make({ sampleRatePerMillion: 1_000_000 }) }),
      assign([W1, W2], 0),
      submit(W2)
    )
    taskSpec.given(sampledWithResult).when(overrun(W1)).thenRejects("OverrunChargeRejected", "OthersSucceeded")
    taskSpec.given(sampledWithResult).when(overrun(W2)).thenRejects("OverrunChargeRejected", "AlreadySubmitted")
  })
  it("replays through JSON to the same state", () => {
    const { state, events } = runAll(tasks, [request, assign([W1]), overrun(W1, "Memory"), settle])
    expect(fold(tasks.evolve, tasks.initialState, throughJson(TaskEvent, events))).toEqual(state)
    expect(state.overrun?.kind).toBe("Memory")
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

/**
 * The economy's reading of overrun claims (src/node/economy/factsOfLog.ts):
 * a refuted deadline claim is a wrong result (the claimant slashed, the
 * refuting worker its reporter), a refuted memory claim slashes nobody; a confirmed overrun settles with both workers paid
 * the time they burned. Events come from the task decider, encoded as the
 * store keeps them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import type { Address } from "../../domain/chain/keys.js"
import { AssignTask, DEFAULT_TASK_RULES, RequestTask, SettleTask, SubmitResult, type TaskCommand } from "../../domain/ai/task/commands.js"
import { makeTaskDecider } from "../../domain/ai/task/decide.js"
import { SinglePolicy, TaskEvent } from "../../domain/ai/task/events.js"
import { ClaimOverrun } from "../../domain/ai/task/overrun.js"
import type { RecordedEvent } from "../../infra/eventstore/EventStore.js"
import { makeFactReader } from "../../src/node/economy/factsOfLog.js"
import { address, hash, runAll, signature, T0 } from "../ai/deciders/support.js"

const tasks = makeTaskDecider(DEFAULT_TASK_RULES)
const [LIAR, HONEST, CONFIRMER] = [address("liar"), address("honest"), address("confirmer")] as [Address, Address, Address]
const MODEL = hash("model")
const PROVIDER = address("provider")
const DEVELOPER = address("developer")
const TASK = hash("task")

const request = new RequestTask({ taskId: TASK, developer: DEVELOPER, modelId: MODEL, price: 100n, inputHash: hash("in"), policy: SinglePolicy.make({ sampleRatePerMillion: 0 }), at: T0 })
const claim = (worker: Address, confirmer: Address | null, at: number, kind: "Deadline" | "Memory" = "Deadline") =>
  new ClaimOverrun({ worker, kind, millis: 1_500, limit: 1_500, confirmer, at })

/** The facts the reader gets from the model's upload and the task's events, in order. */
const factsOf = (commands: ReadonlyArray<TaskCommand>) => {
  const read = makeFactReader()
  let position = 0
  const recorded = (stream: string, type: string, data: unknown): RecordedEvent =>
    ({ stream, revision: 0, position: ++position, id: `${position}`, type, data, metadata: {}, prevHash: "", hash: "" }) as unknown as RecordedEvent
  read(recorded(`model-${MODEL}`, "ModelUploaded", { provider: PROVIDER }))
  return runAll(tasks, commands).events.flatMap((e) => read(recorded(`task-${TASK}`, e._tag, Schema.encodeSync(TaskEvent)(e))))
}

describe("overrun claims in the economy's facts", () => {
  it("a refuted claim: the claimant's wrong result, reported by the worker that ran the inputs; only that worker is paid", () => {
    const facts = factsOf([
      request,
      new AssignTask({ workers: [LIAR], sampleDraw: 999_999, at: T0 + 1 }),
      claim(LIAR, HONEST, T0 + 10),
      new SubmitResult({ worker: HONEST, fingerprint: hash("fp"), outputHash: hash("out"), signature: signature("honest"), at: T0 + 60 }),
      new SettleTask({ receiptBatchId: hash("batch"), at: T0 + 70 })
    ])
    expect(facts).toEqual([
      { _tag: "ResultProvenWrong", taskId: TASK, worker: LIAR, developer: DEVELOPER, reporter: HONEST, at: T0 + 60 },
      { _tag: "TaskSettled", taskId: TASK, modelId: MODEL, provider: PROVIDER, developer: DEVELOPER, price: 100n, workers: [{ worker: HONEST, execMs: 50 }], at: T0 + 70 }
    ])
  })
  it("a refuted memory claim slashes nobody (the memory bound is each worker's own); only the worker that ran it is paid", () => {
    const facts = factsOf([
      request,
      new AssignTask({ workers: [LIAR], sampleDraw: 999_999, at: T0 + 1 }),
      claim(LIAR, HONEST, T0 + 10, "Memory"),
      new SubmitResult({ worker: HONEST, fingerprint: hash("fp"), outputHash: hash("out"), signature: signature("honest"), at: T0 + 60 }),
      new SettleTask({ receiptBatchId: hash("batch"), at: T0 + 70 })
    ])
    expect(facts).toEqual([
      { _tag: "TaskSettled", taskId: TASK, modelId: MODEL, provider: PROVIDER, developer: DEVELOPER, price: 100n, workers: [{ worker: HONEST, execMs: 50 }], at: T0 + 70 }
    ])
  })
  it("a confirmed overrun: settled with both workers paid the ms they burned; nobody slashed", () => {
    const facts = factsOf([
      request,
      new AssignTask({ workers: [LIAR], sampleDraw: 999_999, at: T0 + 1 }),
      claim(LIAR, CONFIRMER, T0 + 10),
      claim(CONFIRMER, null, T0 + 2_000),
      new SettleTask({ receiptBatchId: hash("batch"), at: T0 + 2_010 })
    ])
    expect(facts).toEqual([
      {
        _tag: "TaskSettled",
        taskId: TASK,
        modelId: MODEL,
        provider: PROVIDER,
        developer: DEVELOPER,
        price: 100n,
        workers: [
          { worker: LIAR, execMs: 1_500 },
          { worker: CONFIRMER, execMs: 1_500 }
        ],
        at: T0 + 2_010
      }
    ])
  })
})

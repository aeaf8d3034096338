/**
 * Random lives of a task for property tests: steps that turn into mostly
 * well-formed commands against the current state (workers of the task, the
 * count the policy needs), sometimes not.
 */
import fc from "fast-check"
import type { Hash32 } from "../../../domain/chain/hash.js"
import type { Address } from "../../../domain/chain/keys.js"
import { AbandonTask, AssignTask, ResolveDispute, SettleTask, SubmitResult, WorkerFailed, type TaskCommand } from "../../../domain/ai/task/commands.js"
import { ClaimOverrun } from "../../../domain/ai/task/overrun.js"
import { workersNeeded, type TaskState } from "../../../domain/ai/task/decide.js"
import { QuorumPolicy, SinglePolicy, type ValidationPolicy } from "../../../domain/ai/task/events.js"
import { address, hash, signature, T0 } from "./support.js"

export const single = (sampleRatePerMillion = 100_000) => SinglePolicy.make({ sampleRatePerMillion })
export const quorum = (k: number, n: number) => QuorumPolicy.make({ k, n })

const WORKERS = [1, 2, 3, 4, 5, 6].map((i) => address(`worker-${i}`))
const REFEREE = address("referee")
const POOL: ReadonlyArray<Address> = [...WORKERS, REFEREE]
const FPS: ReadonlyArray<Hash32> = [hash("fingerprint-a"), hash("fingerprint-b")]
const REFEREE_FPS: ReadonlyArray<Hash32> = [...FPS, hash("fingerprint-c")]
const pick = <A>(xs: ReadonlyArray<A>, i: number): A => xs[i % xs.length]!

const submit = (worker: Address, fingerprint: Hash32, at: number) =>
  new SubmitResult({ worker, fingerprint, outputHash: hash(`output:${worker}:${fingerprint}`), signature: signature(worker), at })

export const policyArb: fc.Arbitrary<ValidationPolicy> = fc.oneof(
  fc.integer({ min: 0, max: 1_000_000 }).map((r) => single(r)),
  fc.constant(single(1_000_000)),
  fc.constantFrom(quorum(1, 1), quorum(2, 3), quorum(3, 4), quorum(3, 5))
)

/** One step of a random life: indices into the pools, turned into a command against the current state. */
export const stepArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("assign" as const), draw: fc.integer({ min: 0, max: 999_999 }), from: fc.nat(), exact: fc.nat({ max: 4 }) }) },
  { weight: 8, arbitrary: fc.record({ op: fc.constant("submit" as const), worker: fc.nat(), fp: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("fail" as const), worker: fc.nat(), replacement: fc.option(fc.nat(), { freq: 6 }), timeout: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("resolve" as const), referee: fc.nat(), fp: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("abandon" as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("overrun" as const), worker: fc.nat(), memory: fc.boolean(), confirmer: fc.option(fc.nat(), { freq: 6 }) })
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("settle" as const), batch: fc.nat({ max: 2 }) }) }
)
export type Step = typeof stepArb extends fc.Arbitrary<infer S> ? S : never

/** Mostly well-formed commands (workers of the task, the right count), sometimes not. */
export const commandOf = (s: TaskState, step: Step): TaskCommand => {
  switch (step.op) {
    case "assign": {
      const policy = s.request?.policy ?? single()
      const count = step.exact === 0 ? 1 + (step.from % 3) : workersNeeded(policy, step.draw)
      const workers = Array.from({ length: count }, (_, i) => pick(POOL, step.from + i))
      return new AssignTask({ workers, sampleDraw: step.draw, at: T0 + 1 })
    }
    case "submit": {
      const worker = s.assignees.length > 0 && step.worker % 5 !== 0 ? pick(s.assignees, step.worker) : pick(POOL, step.worker)
      return submit(worker, pick(FPS, step.fp), T0 + 50)
    }
    case "fail": {
      const worker = s.assignees.length > 0 ? pick(s.assignees, step.worker) : pick(POOL, step.worker)
      const replacement = step.replacement === null ? null : pick(POOL, step.replacement)
      return new WorkerFailed({ worker, reason: step.timeout ? "timeout" : "died", replacement, at: T0 + 30 })
    }
    case "resolve": {
      const referee = step.referee % 4 === 0 ? pick(POOL, step.referee) : REFEREE
      const fingerprint = pick(REFEREE_FPS, step.fp)
      return new ResolveDispute({ referee, fingerprint, outputHash: hash(`output:${referee}:${fingerprint}`), signature: signature(referee), at: T0 + 90 })
    }
    case "overrun": {
      const worker = s.assignees.length > 0 && step.worker % 5 !== 0 ? pick(s.assignees, step.worker) : pick(POOL, step.worker)
      const confirmer = step.confirmer === null ? null : pick(POOL, step.confirmer)
      const kind = step.memory ? "Memory" : "Deadline"
      return new ClaimOverrun({ worker, kind, millis: 1_200, limit: step.memory ? 2 ** 30 : 1_000, confirmer, at: T0 + 40 })
    }
    case "abandon":
      return new AbandonTask({ cause: "TimedOut", detail: "no result in time", at: T0 + 30_000 })
    case "settle":
      return new SettleTask({ receiptBatchId: hash(`batch-${step.batch}`), at: T0 + 1_000 })
  }
}


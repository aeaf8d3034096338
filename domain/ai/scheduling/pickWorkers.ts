/**
 * Scheduling: which workers run a task. A pure function of the node's view
 * of the workers; it runs on every request, so it is one pass over the view
 * keeping the best `count` (O(workers × count), no sort, no allocation per
 * worker).
 *
 * Eligible: online, of a GPU class in the table whose coefficient is at
 * least the model's minimum class's, at least one device, not excluded
 * (workers the task already involved).
 *
 * Order, best first, a total order so the pick is deterministic whatever the
 * order of the view:
 *   1. least loaded: tasks in flight per device (compared exactly, by cross-multiplying)
 *   2. lowest price
 *   3. best reputation
 *   4. lowest id
 * Worker ids in the view are distinct (it is keyed by id).
 */
import { Either, Schema } from "effect"
import type { WorkerId } from "../worker/events.js"
import { coefficientOf, type GpuClassTable } from "../worker/gpuClass.js"

export interface WorkerView {
  readonly id: WorkerId
  readonly gpuClass: string
  readonly devices: number
  readonly online: boolean
  /** Tasks running on it now. */
  readonly inFlight: number
  /** What it asks per task, in base units; the network rate for a worker that asks nothing of its own. */
  readonly price: bigint
  /** Higher is better (`reputationScore`: 0..1000). */
  readonly reputation: number
}

export interface WorkerNeed {
  readonly count: number
  /** The model's `minGpuClass`. */
  readonly minGpuClass: string
  /** Workers not to pick: those a task already involved. */
  readonly exclude?: ReadonlySet<WorkerId>
}

export class SchedulingFailed extends Schema.TaggedError<SchedulingFailed>()("SchedulingFailed", {
  reason: Schema.Literal("UnknownGpuClass", "NotEnoughWorkers"),
  needed: Schema.Int,
  eligible: Schema.Int,
  detail: Schema.String
}) {
  override get message(): string {
    return `scheduling failed, ${this.reason}: ${this.detail}`
  }
}

/** Negative when `a` is the better pick: less loaded, cheaper, more reputable, lower id. */
export const compareWorkers = (a: WorkerView, b: WorkerView): number => {
  const loadA = a.inFlight * b.devices
  const loadB = b.inFlight * a.devices
  if (loadA !== loadB) return loadA < loadB ? -1 : 1
  if (a.price !== b.price) return a.price < b.price ? -1 : 1
  if (a.reputation !== b.reputation) return a.reputation > b.reputation ? -1 : 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** The `need.count` best eligible workers, best first, or why there are not enough. */
export const pickWorkers = (
  gpuClasses: GpuClassTable,
  workers: ReadonlyArray<WorkerView>,
  need: WorkerNeed
): Either.Either<ReadonlyArray<WorkerView>, SchedulingFailed> => {
  const count = need.count
  const minCoefficient = coefficientOf(gpuClasses, need.minGpuClass)
  if (minCoefficient === undefined) {
    const detail = `the model's minimum GPU class "${need.minGpuClass}" is not one of ${Object.keys(gpuClasses).join(", ")}`
    return Either.left(new SchedulingFailed({ reason: "UnknownGpuClass", needed: count, eligible: 0, detail }))
  }
  const exclude = need.exclude
  const best: Array<WorkerView> = []
  let eligible = 0
  for (const w of workers) {
    if (!w.online || w.devices < 1 || (exclude !== undefined && exclude.has(w.id))) continue
    const coefficient = coefficientOf(gpuClasses, w.gpuClass)
    if (coefficient === undefined || coefficient < minCoefficient) continue
    eligible++
    if (count < 1) continue
    let i: number
    if (best.length < count) {
      i = best.length
      best.push(w)
    } else {
      if (compareWorkers(w, best[count - 1]!) >= 0) continue
      i = count - 1
      best[i] = w
    }
    while (i > 0 && compareWorkers(best[i]!, best[i - 1]!) < 0) {
      const t = best[i - 1]!
      best[i - 1] = best[i]!
      best[i] = t
      i--
    }
  }
  if (best.length < count) {
    const detail = `${count} workers of class ${need.minGpuClass} or better needed, ${eligible} online and free to take the task`
    return Either.left(new SchedulingFailed({ reason: "NotEnoughWorkers", needed: count, eligible, detail }))
  }
  return Either.right(best)
}

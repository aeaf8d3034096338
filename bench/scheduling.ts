/**
 * Scheduling throughput with 100 simulated workers: picks per second of the
 * node's scheduler (one pass, top n) against the obvious baseline measured
 * in the same run — filter the eligible workers, fully sort them with the
 * same comparison, take n.
 */
import { performance } from "node:perf_hooks"
import { Either } from "effect"
import { compareWorkers, pickWorkers } from "../domain/ai/scheduling/pickWorkers.js"
import type { WorkerView } from "../domain/ai/scheduling/pickWorkers.js"
import { coefficientOf, DEFAULT_GPU_CLASSES } from "../domain/ai/worker/gpuClass.js"
import { devKey } from "../domain/chain/keys.js"
import type { BenchModule } from "./lib.js"
import { compare, report } from "./lib.js"

const WORKERS = 100
const PICKS = 50_000
const REPEATS = 5
const CLASSES = Object.keys(DEFAULT_GPU_CLASSES)

const fleet: ReadonlyArray<WorkerView> = Array.from({ length: WORKERS }, (_, i) => ({
  id: devKey(i).publicKey.address,
  gpuClass: CLASSES[i % CLASSES.length]!,
  devices: 1 + (i % 8),
  online: i % 10 !== 0,
  inFlight: (i * 7) % 5,
  price: BigInt((i * 13) % 17),
  reputation: (i * 37) % 1000
}))

const baselinePick = (count: number, minGpuClass: string): ReadonlyArray<WorkerView> => {
  const min = coefficientOf(DEFAULT_GPU_CLASSES, minGpuClass)!
  return fleet
    .filter((w) => w.online && (coefficientOf(DEFAULT_GPU_CLASSES, w.gpuClass) ?? 0n) >= min)
    .sort(compareWorkers)
    .slice(0, count)
}

export const run: BenchModule["run"] = async () => {
  const needs = [1, 2, 3].map((count) => ({ count, minGpuClass: "CPU" }))
  // Both must agree, or the comparison means nothing.
  for (const need of needs) {
    const ours = pickWorkers(DEFAULT_GPU_CLASSES, fleet, need)
    if (Either.isLeft(ours) || ours.right.map((w) => w.id).join() !== baselinePick(need.count, need.minGpuClass).map((w) => w.id).join()) {
      throw new Error("scheduler and baseline disagree")
    }
  }
  const timed = (pick: (i: number) => unknown) => async () => {
    const start = performance.now()
    for (let i = 0; i < PICKS; i++) pick(i)
    return (PICKS * 1_000) / (performance.now() - start)
  }
  const result = await compare(
    REPEATS,
    timed((i) => pickWorkers(DEFAULT_GPU_CLASSES, fleet, needs[i % 3]!)),
    timed((i) => baselinePick(needs[i % 3]!.count, "CPU"))
  )
  return [
    report({
      name: "scheduling-100-workers",
      unit: "pick",
      ...result,
      target: { ratio: 1 },
      details: { workers: WORKERS, picksPerRun: PICKS }
    })
  ]
}

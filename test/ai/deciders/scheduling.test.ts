import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import type { Address } from "../../../domain/chain/keys.js"
import { compareWorkers, pickWorkers, type WorkerView } from "../../../domain/ai/scheduling/pickWorkers.js"
import { DEFAULT_GPU_CLASSES, meetsClass } from "../../../domain/ai/worker/gpuClass.js"
import { address } from "./support.js"

const CLASSES = DEFAULT_GPU_CLASSES
const view = (label: string, over: Partial<WorkerView> = {}): WorkerView => ({
  id: address(label),
  gpuClass: "A100",
  devices: 1,
  online: true,
  inFlight: 0,
  price: 10n,
  reputation: 500,
  ...over
})
const ids = (ws: ReadonlyArray<WorkerView>) => ws.map((w) => w.id)
const picked = (workers: ReadonlyArray<WorkerView>, count: number, minGpuClass = "CPU", exclude?: ReadonlySet<Address>) =>
  Either.getOrThrow(pickWorkers(CLASSES, workers, exclude === undefined ? { count, minGpuClass } : { count, minGpuClass, exclude }))

describe("pickWorkers: the order", () => {
  it("least loaded first, tasks in flight counted per device", () => {
    const busy = view("busy", { inFlight: 3 })
    const big = view("big", { inFlight: 2, devices: 4 }) // 0.5 per device
    const idle = view("idle", { inFlight: 0, price: 99n, reputation: 0 })
    expect(ids(picked([busy, big, idle], 3))).toEqual(ids([idle, big, busy]))
  })
  it("then the lowest price, then the best reputation, then the lowest id", () => {
    const [a, b] = [view("a"), view("b")].sort((x, y) => (x.id < y.id ? -1 : 1)) as [WorkerView, WorkerView]
    const cheap = view("cheap", { price: 5n })
    const reputable = view("reputable", { reputation: 900 })
    expect(ids(picked([b, reputable, a, cheap], 4))).toEqual(ids([cheap, reputable, a, b]))
  })
})

describe("pickWorkers: eligibility", () => {
  it("only online workers of the model's class or better, never an excluded one", () => {
    const workers = [
      view("offline", { online: false }),
      view("cpu", { gpuClass: "CPU" }),
      view("h100", { gpuClass: "H100", inFlight: 5 }),
      view("tpu", { gpuClass: "TPU" }),
      view("no-devices", { devices: 0 }),
      view("excluded"),
      view("a100", { inFlight: 1 })
    ]
    expect(ids(picked(workers, 2, "A100", new Set([address("excluded")])))).toEqual([address("a100"), address("h100")])
  })
  it("a minimum class outside the table: UnknownGpuClass", () => {
    const r = pickWorkers(CLASSES, [view("a")], { count: 1, minGpuClass: "TPU" })
    expect(Either.isLeft(r) && [r.left.reason, r.left.needed]).toEqual(["UnknownGpuClass", 1])
  })
  it("fewer eligible workers than needed: NotEnoughWorkers, with the counts", () => {
    const r = pickWorkers(CLASSES, [view("a"), view("b", { online: false }), view("c")], { count: 3, minGpuClass: "CPU" })
    expect(Either.isLeft(r) && [r.left._tag, r.left.reason, r.left.needed, r.left.eligible]).toEqual(["SchedulingFailed", "NotEnoughWorkers", 3, 2])
  })
  it("no workers at all: NotEnoughWorkers", () => {
    const r = pickWorkers(CLASSES, [], { count: 1, minGpuClass: "CPU" })
    expect(Either.isLeft(r) && r.left.reason).toBe("NotEnoughWorkers")
  })
})

// ---------------------------------------------------------------- properties

const CLASS_NAMES = ["H100", "A100", "RTX4090", "CPU", "TPU"]
const workerArb = (i: number) =>
  fc.record({
    gpuClass: fc.constantFrom(...CLASS_NAMES),
    devices: fc.integer({ min: 0, max: 8 }),
    online: fc.boolean(),
    inFlight: fc.integer({ min: 0, max: 6 }),
    price: fc.bigInt({ min: 0n, max: 3n }),
    reputation: fc.integer({ min: 0, max: 3 }).map((r) => r * 250)
  }).map((w): WorkerView => ({ id: address(`w${i}`), ...w }))
const viewArb = fc.integer({ min: 0, max: 40 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => workerArb(i))))
const needArb = fc.record({
  count: fc.integer({ min: 1, max: 6 }),
  minGpuClass: fc.constantFrom("H100", "A100", "RTX4090", "CPU"),
  exclude: fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 4 }).map((xs) => new Set(xs.map((i) => address(`w${i}`))))
})
const isEligible = (w: WorkerView, need: { minGpuClass: string; exclude: ReadonlySet<Address> }) =>
  w.online && w.devices >= 1 && !need.exclude.has(w.id) && meetsClass(CLASSES, w.gpuClass, need.minGpuClass)

describe("properties", () => {
  it("picks exactly `count` distinct eligible workers, the best by the order, or says how many were eligible", () => {
    fc.assert(
      fc.property(viewArb, needArb, (workers, need) => {
        const eligible = workers.filter((w) => isEligible(w, need))
        const r = pickWorkers(CLASSES, workers, need)
        if (eligible.length < need.count) {
          expect(Either.isLeft(r) && [r.left.reason, r.left.eligible]).toEqual(["NotEnoughWorkers", eligible.length])
          return
        }
        const chosen = Either.getOrThrow(r)
        expect(chosen.length).toBe(need.count)
        expect(new Set(ids(chosen)).size).toBe(need.count)
        for (const w of chosen) expect(isEligible(w, need)).toBe(true)
        // The reference: sort every eligible worker by the order and take the first `count`.
        expect(ids(chosen)).toEqual(ids([...eligible].sort(compareWorkers).slice(0, need.count)))
      }),
      { numRuns: 1_000 }
    )
  })
  it("is deterministic: the same pick whatever the order of the view", () => {
    fc.assert(
      fc.property(viewArb.chain((ws) => fc.tuple(fc.constant(ws), fc.shuffledSubarray(ws, { minLength: ws.length, maxLength: ws.length }))), needArb, ([workers, shuffled], need) => {
        const a = pickWorkers(CLASSES, workers, need)
        const b = pickWorkers(CLASSES, shuffled, need)
        expect(Either.map(b, ids)).toEqual(Either.map(a, ids))
      }),
      { numRuns: 500 }
    )
  })
})

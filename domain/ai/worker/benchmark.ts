/**
 * The seeded benchmark an AI committee member's gateway runs on a worker to
 * measure its GPU units (`worker.measure`; the ledger takes the
 * stake-weighted median, capped by the declared class):
 *
 *   model    x [BATCH, WIDTH] → (MatMul Wi, Tanh) × LAYERS → y; the weights
 *            come from a fixed seed, so every node builds the same bytes
 *            (one weights hash)
 *   inputs   from a fresh seed per run (the gateway draws it from the Random
 *            service), so a worker cannot answer from a table
 *   check    the gateway computes y itself (a few million multiply-adds) and
 *            counts the run only if the worker's outputs match it
 *   units    from the time the GATEWAY saw the run take (dispatch to result:
 *            the worker's own word on its time is not taken):
 *            unitsMilli = ⌊BENCHMARK_UNIT_MS × 1000 / ms⌋, at least 1 —
 *            one GPU unit runs it in BENCHMARK_UNIT_MS.
 * The run is small, so the round trip weighs in its time: the scale is
 * generous (an H100's 10 units at 10 ms), and the class's units cap what a
 * fast worker gets. What it catches is a worker far slower than the class it
 * declares (an "H100" taking 1 s is measured at 0.1 unit).
 */
import { DT, model, valueInfo } from "../onnx/builder.js"
import type { TensorMap } from "../tensor.js"

export const BENCHMARK_BATCH = 32
export const BENCHMARK_WIDTH = 128
export const BENCHMARK_LAYERS = 4
/** The time one GPU unit (1_000 milli) takes for the whole benchmark, round trip included. */
export const BENCHMARK_UNIT_MS = 100
const WEIGHTS_SEED = 0x7091a1

/** mulberry32: a small deterministic generator of floats in [0, 1) from a 32-bit seed. */
const generator = (seed: number) => {
  let a = seed >>> 0
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const uniform = (seed: number, n: number, scale: number): Float32Array => {
  const next = generator(seed)
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale)
}

const layerWeights = (layer: number): Float32Array => uniform(WEIGHTS_SEED + layer, BENCHMARK_WIDTH * BENCHMARK_WIDTH, 2 / Math.sqrt(BENCHMARK_WIDTH))

let built: Uint8Array | undefined
/** The benchmark model's ONNX bytes (the same on every node). */
export const benchmarkModel = (): Uint8Array => {
  built ??= model({
    producerName: "topai-benchmark",
    graph: {
      name: "benchmark",
      nodes: Array.from({ length: BENCHMARK_LAYERS }, (_, i) => [
        { opType: "MatMul", inputs: [i === 0 ? "x" : `t${i - 1}`, `W${i}`], outputs: [`m${i}`] },
        { opType: "Tanh", inputs: [`m${i}`], outputs: [i === BENCHMARK_LAYERS - 1 ? "y" : `t${i}`] }
      ]).flat(),
      initializers: Array.from({ length: BENCHMARK_LAYERS }, (_, i) => ({
        name: `W${i}`,
        dataType: DT.FLOAT,
        dims: [BENCHMARK_WIDTH, BENCHMARK_WIDTH],
        raw: new Uint8Array(layerWeights(i).buffer)
      })),
      inputs: [valueInfo("x", DT.FLOAT, [BENCHMARK_BATCH, BENCHMARK_WIDTH])],
      outputs: [valueInfo("y", DT.FLOAT, [BENCHMARK_BATCH, BENCHMARK_WIDTH])]
    }
  })
  return built
}

/** The run's inputs from its seed. */
export const benchmarkInputs = (seed: number): TensorMap => ({
  x: { type: "float32", dims: [BENCHMARK_BATCH, BENCHMARK_WIDTH], data: uniform(seed, BENCHMARK_BATCH * BENCHMARK_WIDTH, 1) }
})

/** y for the seed's inputs, computed here (float64 sums of float32 values). */
export const benchmarkExpected = (seed: number): Float64Array => {
  let h: ArrayLike<number> = benchmarkInputs(seed).x!.data as Float32Array
  for (let layer = 0; layer < BENCHMARK_LAYERS; layer++) {
    const w = layerWeights(layer)
    const out = new Float64Array(BENCHMARK_BATCH * BENCHMARK_WIDTH)
    for (let r = 0; r < BENCHMARK_BATCH; r++) {
      for (let k = 0; k < BENCHMARK_WIDTH; k++) {
        const x = h[r * BENCHMARK_WIDTH + k]!
        const row = k * BENCHMARK_WIDTH
        const base = r * BENCHMARK_WIDTH
        for (let c = 0; c < BENCHMARK_WIDTH; c++) out[base + c]! += x * w[row + c]!
      }
    }
    for (let i = 0; i < out.length; i++) out[i] = Math.tanh(out[i]!)
    h = out
  }
  return h as Float64Array
}

/** Float32 arithmetic in another order than the reference's: this much apart still counts as the same y. */
export const BENCHMARK_TOLERANCE = 1e-3

/** Why the worker's outputs are not the benchmark's y for `seed`, or undefined when they are. */
export const benchmarkMismatch = (outputs: TensorMap, seed: number): string | undefined => {
  const y = outputs["y"]
  if (y === undefined || y.type !== "float32") return "no float32 output y"
  if (y.dims.length !== 2 || y.dims[0] !== BENCHMARK_BATCH || y.dims[1] !== BENCHMARK_WIDTH) return `y has dims [${y.dims.join(", ")}]`
  const expected = benchmarkExpected(seed)
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(y.data[i]! - expected[i]!) <= BENCHMARK_TOLERANCE)) return `y[${i}] is ${y.data[i]}, expected ${expected[i]}`
  }
  return undefined
}

/** The GPU units (milli) a run of `ms` (as the gateway saw it) stands for. */
export const measuredUnitsMilli = (ms: number): bigint => {
  const units = Math.floor((BENCHMARK_UNIT_MS * 1_000) / Math.max(1, ms))
  return BigInt(Math.max(1, units))
}

/**
 * Real-size tensors through the whole system against a bare onnxruntime
 * `session.run` of the same model on the same inputs, in the same run.
 *
 * The models are generated here (no download) at the sizes of real ones:
 *
 *   tensors-mlp    x [256, 512] → MatMul 512×512, Relu, MatMul 512×512 →
 *                  y [256, 512]: 512 KiB in, 512 KiB out (~5 ms bare)
 *   tensors-conv   x [1, 3, 320, 320] → Conv 3→16, Relu, Conv 16→16, Relu,
 *                  Conv 16→1, Sigmoid → [1, 1, 320, 320]: a text detector's
 *                  1.2 MiB image in, its 400 KiB probability map out
 *
 * The system is bench/inference.ts's one-process devnet (node, RPC server,
 * one in-process compute node) and the typed client over WebSocket; the
 * inputs go as bytes (`tensorMapToWire`: a bin in the client's binary
 * frames), what a client with megabytes does. Per model:
 *
 *   <name>-throughput   requests/s with 4 in flight vs bare runs back to
 *                       back; target ≥ 0.8×
 *   <name>-latency      one request at a time: added p50 (infer p50 − bare
 *                       p50); target ≤ 5 ms + 10% of the bare run
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { Either } from "effect"
import ort from "onnxruntime-node"
import { decodeTensorMapJson, tensorMapToWire } from "../domain/ai/tensor.js"
import { devKey } from "../domain/chain/keys.js"
import { sessionOptions } from "../infra/inference/OnnxSessionPool.js"
import { toOrtFeeds } from "../infra/inference/ortTensor.js"
import { DT, floatRaw, model, valueInfo } from "../test/ai/support/onnxBuilder.js"
import type { BenchModule, BenchResult } from "./lib.js"
import { compare, median, percentile, report, RESULTS_DIR } from "./lib.js"
import { inferArgs, serve, startDevnet } from "./inference.js"

const REQUESTS = 24
const IN_FLIGHT = 4
const REPEATS = 3
const SEQUENTIAL = 30
const RATIO_MIN = 0.8
const ADDED_P50_BASE_MS = 5
const ADDED_P50_SHARE = 0.1

/** Covers the computing fee of a run of seconds (a price under it pauses the model). */
export const PRICE = 10n ** 15n
const NO_SAMPLING = { kind: "single", sampleRatePerMillion: 0 } as const

/** Small deterministic weights: values stay in range through the layers. */
const weights = (count: number, scale: number): Uint8Array =>
  floatRaw(Array.from({ length: count }, (_, i) => (((i * 7919) % 13) - 6) * scale))

export const mlpModel = (): Uint8Array =>
  model({
    graph: {
      nodes: [
        { opType: "MatMul", inputs: ["x", "W1"], outputs: ["h"] },
        { opType: "Relu", inputs: ["h"], outputs: ["r"] },
        { opType: "MatMul", inputs: ["r", "W2"], outputs: ["y"] }
      ],
      initializers: [
        { name: "W1", dataType: DT.FLOAT, dims: [512, 512], raw: weights(512 * 512, 1 / 512) },
        { name: "W2", dataType: DT.FLOAT, dims: [512, 512], raw: weights(512 * 512, 1 / 512) }
      ],
      inputs: [valueInfo("x", DT.FLOAT, [256, 512])],
      outputs: [valueInfo("y", DT.FLOAT, [256, 512])]
    }
  })

const conv = (input: string, w: string, b: string, output: string) => ({
  opType: "Conv",
  inputs: [input, w, b],
  outputs: [output],
  attributes: [
    { name: "kernel_shape", ints: [3, 3] },
    { name: "pads", ints: [1, 1, 1, 1] }
  ]
})

export const convModel = (): Uint8Array =>
  model({
    graph: {
      nodes: [
        conv("x", "W1", "B1", "c1"),
        { opType: "Relu", inputs: ["c1"], outputs: ["r1"] },
        conv("r1", "W2", "B2", "c2"),
        { opType: "Relu", inputs: ["c2"], outputs: ["r2"] },
        conv("r2", "W3", "B3", "c3"),
        { opType: "Sigmoid", inputs: ["c3"], outputs: ["y"] }
      ],
      initializers: [
        { name: "W1", dataType: DT.FLOAT, dims: [16, 3, 3, 3], raw: weights(16 * 27, 1 / 27) },
        { name: "B1", dataType: DT.FLOAT, dims: [16], raw: weights(16, 1 / 64) },
        { name: "W2", dataType: DT.FLOAT, dims: [16, 16, 3, 3], raw: weights(16 * 144, 1 / 144) },
        { name: "B2", dataType: DT.FLOAT, dims: [16], raw: weights(16, 1 / 64) },
        { name: "W3", dataType: DT.FLOAT, dims: [1, 16, 3, 3], raw: weights(144, 1 / 144) },
        { name: "B3", dataType: DT.FLOAT, dims: [1], raw: weights(1, 1 / 64) }
      ],
      inputs: [valueInfo("x", DT.FLOAT, [1, 3, 320, 320])],
      outputs: [valueInfo("y", DT.FLOAT, [1, 1, 320, 320])]
    }
  })

/** A float input of `dims` as the typed client sends it: its bytes (a bin in the binary frames; base64 on a JSON door). */
export const floatInput = (name: string, dims: ReadonlyArray<number>) => {
  const count = dims.reduce((a, b) => a * b, 1)
  const data = Float32Array.from({ length: count }, (_, i) => Math.fround(Math.sin(i / 97)))
  return tensorMapToWire({ [name]: { type: "float32", dims, data } })
}

const rate = async (count: number, inFlight: number, call: () => Promise<unknown>): Promise<number> => {
  let next = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        next++
        await call()
      }
    })
  )
  return (count * 1_000) / (performance.now() - start)
}

const timedRuns = async (count: number, call: () => Promise<unknown>): Promise<Array<number>> => {
  const samples: Array<number> = []
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    await call()
    samples.push(performance.now() - t)
  }
  return samples
}

export const run: BenchModule["run"] = async () => {
  const dir = mkdtempSync(join(tmpdir(), "topai-bench-tensors-"))
  const d = await startDevnet(dir)
  const cases = [
    { name: "tensors-mlp", label: "MLP [256, 512] → [256, 512]", bytes: mlpModel(), inputs: floatInput("x", [256, 512]), developer: devKey(4) },
    { name: "tensors-conv", label: "conv net [1, 3, 320, 320] → [1, 1, 320, 320]", bytes: convModel(), inputs: floatInput("x", [1, 3, 320, 320]), developer: devKey(5) }
  ]
  const results: Array<BenchResult> = []
  try {
    for (const c of cases) {
      const manifest = { version: "1", minGpuClass: "CPU", license: "MIT", description: "bench", validation: NO_SAMPLING, name: c.name, pricePerCall: PRICE.toString() }
      const session = await serve(d, c.bytes, manifest, devKey(1), c.developer, PRICE * 1_000n)
      const bare = await ort.InferenceSession.create(c.bytes, sessionOptions({ executionProvider: "cpu", intraOpNumThreads: 1 }))
      const feeds = toOrtFeeds(Either.getOrThrow(decodeTensorMapJson(c.inputs)))
      const bareRun = () => bare.run(feeds)
      const infer = () => d.call(d.client.infer(inferArgs(session, c.inputs)))
      try {
        // Both sides must compute the same thing, or the comparison means nothing.
        const got = Either.getOrThrow(decodeTensorMapJson((await infer()).outputs))
        const want = await bareRun()
        for (const name of Object.keys(want)) {
          const a = got[name]!.data as Float32Array
          const b = want[name]!.data as Float32Array
          if (a.length !== b.length || a.some((x, i) => x !== b[i])) throw new Error(`${c.name}: output ${name} differs from the bare run`)
        }
        const bareRunMs: Array<number> = []
        const throughput = await compare(
          REPEATS,
          () => rate(REQUESTS, IN_FLIGHT, infer),
          () =>
            rate(REQUESTS, 1, async () => {
              const t = performance.now()
              await bareRun()
              bareRunMs.push(performance.now() - t)
            }),
          { warmups: 1 }
        )
        results.push(
          report({
            name: `${c.name}-throughput`,
            unit: "req",
            ...throughput,
            target: { ratio: RATIO_MIN },
            details: { model: c.label, bareRunMsMedian: median(bareRunMs), requestsPerRound: REQUESTS, inFlight: IN_FLIGHT, repeats: REPEATS }
          })
        )
        // CPU time of this process (client, node and compute node; not the inference child) per request:
        // on a shared machine it moves less with the neighbours' load than the wall clock does.
        const cpuBefore = process.cpuUsage()
        const inferMs = await timedRuns(SEQUENTIAL, infer)
        const cpu = process.cpuUsage(cpuBefore)
        const cpuMsPerRequest = Math.round(((cpu.user + cpu.system) / 1_000 / SEQUENTIAL) * 10) / 10
        const bareMs = await timedRuns(SEQUENTIAL, bareRun)
        const round = (n: number) => Math.round(n * 1_000) / 1_000
        const bareP50 = percentile(bareMs, 50)
        const addedP50Ms = round(percentile(inferMs, 50) - bareP50)
        const addedP50MsMax = round(ADDED_P50_BASE_MS + ADDED_P50_SHARE * bareP50)
        const latency: BenchResult = {
          name: `${c.name}-latency`,
          unit: "req",
          opsPerSecond: 1_000 / percentile(inferMs, 50),
          baselineOpsPerSecond: 1_000 / bareP50,
          ratio: bareP50 / percentile(inferMs, 50),
          target: {},
          pass: addedP50Ms <= addedP50MsMax,
          samples: inferMs,
          baselineSamples: bareMs,
          details: { model: c.label, inferP50Ms: round(percentile(inferMs, 50)), bareP50Ms: round(bareP50), addedP50Ms, addedP50MsMax, cpuMsPerRequest, calls: SEQUENTIAL },
          measuredAt: new Date().toISOString()
        }
        console.log(
          `${latency.name}: infer p50 ${round(percentile(inferMs, 50))} ms vs bare p50 ${round(bareP50)} ms = added p50 ${addedP50Ms} ms` +
            ` (target ≤ ${addedP50MsMax} ms) ${latency.pass ? "PASS" : "MISS"}; ${cpuMsPerRequest} ms of CPU per request in this process`
        )
        mkdirSync(RESULTS_DIR, { recursive: true })
        writeFileSync(join(RESULTS_DIR, `${latency.name}.json`), `${JSON.stringify(latency, null, 2)}\n`)
        results.push(latency)
      } finally {
        await bare.release()
      }
    }
    return results
  } finally {
    await d.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

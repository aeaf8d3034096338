/**
 * What the smoke-run child does (smokeWorker.mjs loads this after it has
 * read the request and started its watchdog): everything about a model that
 * scales with the file's size, its declared shapes or its outputs, so that
 * none of it happens in the node.
 *
 *   1. read the file and run the static checks (`checkModelStatic`: parse,
 *      versions, domains, operators, external data, tensor sizes, shapes,
 *      types) → `refused` with the check and its message;
 *   2. build the seeded inputs (seed: the model hash) at their shapes;
 *   3. create the onnxruntime session → `loaded`;
 *   4. run once → `ran`; refuse outputs over `outputBytesMax`
 *      (OutputTooLarge) or with a NaN or an infinity (NonFiniteOutput);
 *   5. run again on the same inputs and require every output identical, bit
 *      for bit (else Nondeterministic);
 *   6. `done` with the fingerprint, a summary per output and the signature —
 *      a few hundred bytes whatever the model, all the node ever parses.
 *
 * Every message is one JSON line on stdout; the protocol is in
 * SandboxedSmokeRun.ts. Nothing here throws past `smokeCheck`: a failure is
 * a `failed` message with its reason.
 */
import { readFileSync } from "node:fs"
import { Either } from "effect"
import ort from "onnxruntime-node"
import { outputFingerprint } from "../../domain/ai/fingerprint.js"
import { checkModelStatic, referenceInputs, type StaticLimits } from "../../domain/ai/legitimacy.js"
import type { ModelManifest } from "../../domain/ai/manifest.js"
import { ELEM_TYPES, nonFiniteCount, type ElemType, type Tensor, type TensorMap } from "../../domain/ai/tensor.js"
import { summarizeOutputs, type SmokeFailureReason } from "../../domain/ai/verdict.js"

export interface SmokeCheckRequest {
  readonly modelPath: string
  /** The seed of the inputs. */
  readonly modelHash: string
  readonly manifest: Pick<ModelManifest, "shapes" | "fixedInputs" | "outputTolerance">
  readonly staticLimits: StaticLimits
  readonly intraOpNumThreads: number
  readonly outputBytesMax: number
}

export type Send = (message: Record<string, unknown>) => Promise<void>

const errorText = (e: unknown): string => String((e as { message?: unknown } | null)?.message ?? e).slice(0, 2000)

/** The outputs as domain tensors, or why not. */
const toTensors = (outputs: Record<string, ort.Tensor>): Either.Either<TensorMap, string> => {
  const out: Record<string, Tensor> = {}
  for (const [name, t] of Object.entries(outputs)) {
    if (!(ELEM_TYPES as ReadonlyArray<string>).includes(t.type)) return Either.left(`output "${name}" has type ${t.type}`)
    if (!ArrayBuffer.isView(t.data)) return Either.left(`output "${name}" is not a typed array`)
    out[name] = { type: t.type as ElemType, dims: Array.from(t.dims), data: t.data } as Tensor
  }
  return Either.right(out)
}

const bytesOf = (t: Tensor): Uint8Array => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)

/** The first output that differs between two runs, bit for bit, described; undefined when none does. */
const firstDifference = (a: TensorMap, b: TensorMap): string | undefined => {
  const names = Object.keys(a).sort()
  if (names.join("\0") !== Object.keys(b).sort().join("\0")) return "the two runs gave different outputs"
  for (const name of names) {
    const x = a[name]!
    const y = b[name]!
    if (x.type !== y.type || x.dims.join(",") !== y.dims.join(",")) {
      return `output "${name}" is ${x.type}[${x.dims.join(", ")}] on one run and ${y.type}[${y.dims.join(", ")}] on the other`
    }
    const bx = bytesOf(x)
    const by = bytesOf(y)
    if (Buffer.compare(bx, by) !== 0) {
      let differing = 0
      for (let i = 0; i < x.data.length; i++) if (!Object.is(x.data[i], y.data[i])) differing++
      return `output "${name}" differs in ${differing} of ${x.data.length} values between two runs on the same inputs`
    }
  }
  return undefined
}

export const smokeCheck = async (request: SmokeCheckRequest, send: Send): Promise<void> => {
  let feeds: Record<string, ort.Tensor>
  let signature: unknown
  try {
    const passed = checkModelStatic(new Uint8Array(readFileSync(request.modelPath)), request.manifest, request.staticLimits)
    if (Either.isLeft(passed)) return await send({ event: "refused", check: passed.left.reason, detail: passed.left.message })
    const inputs = referenceInputs(passed.right, request.manifest, request.modelHash)
    feeds = Object.fromEntries(Object.entries(inputs).map(([name, t]) => [name, new ort.Tensor(t.type, t.data, t.dims)]))
    // Only the signature goes on; the parsed model is garbage before the session loads.
    signature = passed.right.signature
  } catch (e) {
    return await send({ event: "failed", reason: "Crashed", detail: `input: ${errorText(e)}` })
  }
  try {
    await loadAndRunTwice(request, feeds, signature, send)
  } catch (e) {
    await send({ event: "failed", reason: "Crashed", detail: `run: ${errorText(e)}` })
  }
}

/** Steps 3–6 of the module doc, on inputs already built (exported for the test of the second run). */
export const loadAndRunTwice = async (
  request: Pick<SmokeCheckRequest, "modelPath" | "manifest" | "intraOpNumThreads" | "outputBytesMax">,
  feeds: Record<string, ort.Tensor>,
  signature: unknown,
  send: Send
): Promise<void> => {
  const failed = (reason: SmokeFailureReason, detail: string) => send({ event: "failed", reason, detail })
  let session: ort.InferenceSession
  const loadStart = performance.now()
  try {
    session = await ort.InferenceSession.create(request.modelPath, {
      executionProviders: ["cpu"],
      intraOpNumThreads: request.intraOpNumThreads,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
      logSeverityLevel: 3
    })
  } catch (e) {
    return failed("LoadFailed", `load: ${errorText(e)}`)
  }
  await send({ event: "loaded", millis: performance.now() - loadStart })
  const runOnce = async (): Promise<Either.Either<TensorMap, string>> => toTensors(await session.run(feeds))
  let first: TensorMap
  const runStart = performance.now()
  try {
    const r = await runOnce()
    if (Either.isLeft(r)) return failed("BadOutput", r.left)
    first = r.right
  } catch (e) {
    return failed("RunFailed", `run: ${errorText(e)}`)
  }
  const runMillis = performance.now() - runStart
  let bytes = 0
  for (const t of Object.values(first)) bytes += t.data.byteLength
  if (bytes > request.outputBytesMax) return failed("OutputTooLarge", `output: outputs are ${bytes} bytes, over the ${request.outputBytesMax} limit`)
  for (const name of Object.keys(first).sort()) {
    const bad = nonFiniteCount(first[name]!)
    if (bad > 0) return failed("NonFiniteOutput", `output "${name}" has ${bad} of ${first[name]!.data.length} values NaN or infinite on the seeded input`)
  }
  await send({ event: "ran", millis: runMillis })
  let second: TensorMap
  try {
    const r = await runOnce()
    if (Either.isLeft(r)) return failed("BadOutput", r.left)
    second = r.right
  } catch (e) {
    return failed("RunFailed", `second run: ${errorText(e)}`)
  }
  const difference = firstDifference(first, second)
  if (difference !== undefined) return failed("Nondeterministic", `${difference}; honest workers would disagree on its outputs`)
  // NaN summaries (an output with no elements) go as null: JSON has no NaN.
  const outputs = summarizeOutputs(first).map((o) => ({ ...o, min: nanToNull(o.min), max: nanToNull(o.max), mean: nanToNull(o.mean) }))
  await send({ event: "done", millis: runMillis, fingerprint: outputFingerprint(first, request.manifest.outputTolerance), outputs, signature })
}

const nanToNull = (x: number): number | null => (Number.isNaN(x) ? null : x)

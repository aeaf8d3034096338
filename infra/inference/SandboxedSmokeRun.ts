/**
 * SandboxedSmokeRun: runs an untrusted model once, on given inputs, in a
 * child process the node can kill — because a model can loop for ever
 * (Loop with a huge trip count) or allocate gigabytes (ConstantOfShape,
 * Expand), and both happen inside onnxruntime's native code, where no
 * JavaScript timeout reaches.
 *
 * The child is plain node on `smokeWorker.mjs` (no compiler, so it starts in
 * about a tenth of a second). It gets the model path and the inputs on
 * stdin and answers on stdout. The parent watches it:
 *
 * - time: `loadTimeoutMillis` from spawn until the session exists (node and
 *   onnxruntime startup included), then `runTimeoutMillis` for the run;
 * - memory: the child's VmRSS from /proc/PID/status every `pollMillis`,
 *   and `--max-old-space-size` for the JavaScript heap; a model's native
 *   allocations overshoot the bound by at most what it touches in one poll;
 * - output size: `outputBytesMax`, in the child and on the pipe;
 *
 * and kills it with SIGKILL on any breach. Should this process die first,
 * the child kills itself (a watchdog thread in it watches its parent pid
 * and a deadline), so a model looping in native code never outlives the node. The verdict is data, never an
 * error: `SmokePassed` (fingerprint, output summary, timings, peak RSS) or
 * `SmokeFailed` with a reason and a detail. Outputs must be finite.
 *
 * Off Linux there is no /proc: only the heap flag bounds memory there.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Context, Effect, Either, Layer } from "effect"
import { outputFingerprint } from "../../domain/ai/fingerprint.js"
import { decodeTensorMapJson, nonFiniteCount, type TensorMap } from "../../domain/ai/tensor.js"
import { SmokeFailed, SmokePassed, summarizeOutputs, type SmokeFailureReason, type SmokeVerdict } from "../../domain/ai/verdict.js"
import type { Hash32 } from "../../domain/chain/hash.js"

export interface SmokeLimits {
  /** From spawn until the session is created. */
  readonly loadTimeoutMillis: number
  /** The one run. */
  readonly runTimeoutMillis: number
  /** The child's resident set. */
  readonly memoryBytesMax: number
  /** All outputs together. */
  readonly outputBytesMax: number
  /** How often the child's memory is read. */
  readonly pollMillis: number
  readonly intraOpNumThreads: number
}

export const DEFAULT_SMOKE_LIMITS: SmokeLimits = {
  loadTimeoutMillis: 30_000,
  runTimeoutMillis: 10_000,
  memoryBytesMax: 2 * 1024 ** 3,
  outputBytesMax: 64 * 1024 ** 2,
  pollMillis: 20,
  intraOpNumThreads: 1
}

export interface SmokeRequest {
  readonly modelPath: string
  readonly inputs: TensorMap
  /** The model's output tolerance, for the fingerprint. */
  readonly tolerance: number
}

export interface SandboxedSmokeRunService {
  readonly run: (request: SmokeRequest, limits?: Partial<SmokeLimits>) => Effect.Effect<SmokeVerdict>
}

export class SandboxedSmokeRun extends Context.Tag("topai/SandboxedSmokeRun")<SandboxedSmokeRun, SandboxedSmokeRunService>() {}

export const SMOKE_WORKER_PATH = fileURLToPath(new URL("./smokeWorker.mjs", import.meta.url))

const MIB = 1024 * 1024
const mib = (bytes: number): string => `${(bytes / MIB).toFixed(0)} MiB`
/** Base64 is 4/3 of the bytes; the JSON around it is small. */
const PIPE_BYTES_SLACK = 1 * MIB
const STDERR_TAIL_CHARS = 2000
const DETAIL_CHARS_MAX = 1000
const CHILD_DEADLINE_SLACK_MILLIS = 1000
const REAP_WAIT_MILLIS_MAX = 5000

interface ProcStatus {
  readonly rssBytes: number
  readonly peakBytes: number
}

const statusField = (text: string, field: string): number => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)
  return m === null ? 0 : Number(m[1]) * 1024
}

/** VmRSS and VmHWM of a live process; undefined once it is gone or off Linux. */
const readProcStatus = (pid: number): ProcStatus | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8")
    return { rssBytes: statusField(text, "VmRSS"), peakBytes: statusField(text, "VmHWM") }
  } catch {
    return undefined
  }
}

const toWire = (inputs: TensorMap) =>
  Object.fromEntries(
    Object.entries(inputs).map(([name, t]) => [
      name,
      { type: t.type, dims: t.dims, dataBase64: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString("base64") }
    ])
  )

type WorkerMessage =
  | { readonly event: "loaded"; readonly millis: number }
  | { readonly event: "done"; readonly millis: number; readonly outputs: unknown }
  | { readonly event: "error"; readonly stage: string; readonly message: string }

const STAGE_REASON: Readonly<Record<string, SmokeFailureReason>> = {
  input: "Crashed",
  load: "LoadFailed",
  run: "RunFailed",
  output: "OutputTooLarge"
}

export interface SandboxOptions {
  /** The node binary (default: the one running this process). */
  readonly nodePath?: string
  /** The child's script (default: smokeWorker.mjs; tests swap in misbehaving ones). */
  readonly workerPath?: string
}

const runInChild = (options: SandboxOptions, request: SmokeRequest, limits: SmokeLimits): Effect.Effect<SmokeVerdict> =>
  Effect.async<SmokeVerdict>((resume) => {
    const started = performance.now()
    const elapsed = () => performance.now() - started
    let child: ChildProcessWithoutNullStreams | undefined = undefined
    let finished = false
    let peak = 0
    let phase: "load" | "run" = "load"
    let loadMillis = 0
    let stdout = ""
    let stderrTail = ""
    const timers: Array<ReturnType<typeof setTimeout>> = []
    let poll: ReturnType<typeof setInterval> | undefined = undefined

    const observe = (): ProcStatus | undefined => {
      const s = child?.pid === undefined ? undefined : readProcStatus(child.pid)
      if (s !== undefined) peak = Math.max(peak, s.peakBytes, s.rssBytes)
      return s
    }
    const stop = (): void => {
      finished = true
      for (const t of timers) clearTimeout(t)
      if (poll !== undefined) clearInterval(poll)
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    }
    // Settles when the child is gone (reaped), so a verdict never leaves a process behind.
    let markExited: () => void = () => undefined
    const exited = new Promise<void>((resolve) => {
      markExited = resolve
    })
    const finish = (verdict: SmokeVerdict): void => {
      if (finished) return
      stop()
      if (child === undefined) return resume(Effect.succeed(verdict))
      // SIGKILL cannot be refused, but never let a verdict hang on a reap that does not come.
      const fallback = setTimeout(markExited, REAP_WAIT_MILLIS_MAX)
      void exited.then(() => {
        clearTimeout(fallback)
        resume(Effect.succeed(verdict))
      })
    }
    // The temp path differs between validators; their reasons should not.
    const failed = (reason: SmokeFailureReason, detail: string): void =>
      finish(
        new SmokeFailed({
          reason,
          detail: detail.replaceAll(request.modelPath, "model.onnx").slice(0, DETAIL_CHARS_MAX),
          totalMillis: elapsed(),
          peakRssBytes: peak
        })
      )

    const onDone = (millis: number, outputsJson: unknown): void => {
      observe()
      const decoded = decodeTensorMapJson(outputsJson, { elementsMax: Number.MAX_SAFE_INTEGER })
      if (Either.isLeft(decoded)) return failed("BadOutput", `the outputs did not decode: ${decoded.left.message}`)
      const outputs = decoded.right
      for (const name of Object.keys(outputs).sort()) {
        const bad = nonFiniteCount(outputs[name]!)
        if (bad > 0) {
          return failed("NonFiniteOutput", `output "${name}" has ${bad} of ${outputs[name]!.data.length} values NaN or infinite on the seeded input`)
        }
      }
      finish(
        new SmokePassed({
          fingerprint: outputFingerprint(outputs, request.tolerance) as Hash32,
          outputs: summarizeOutputs(outputs),
          loadMillis,
          runMillis: millis,
          totalMillis: elapsed(),
          peakRssBytes: peak
        })
      )
    }

    const onMessage = (line: string): void => {
      let message: WorkerMessage
      try {
        message = JSON.parse(line) as WorkerMessage
      } catch {
        return failed("BadOutput", `the child wrote a line that is not JSON: ${line.slice(0, 200)}`)
      }
      switch (message.event) {
        case "loaded":
          phase = "run"
          loadMillis = message.millis
          for (const t of timers.splice(0)) clearTimeout(t)
          timers.push(
            setTimeout(() => failed("Timeout", `the run did not finish within ${limits.runTimeoutMillis} ms`), limits.runTimeoutMillis)
          )
          return
        case "done":
          return onDone(message.millis, message.outputs)
        case "error":
          return failed(STAGE_REASON[message.stage] ?? "Crashed", `${message.stage}: ${message.message}`)
        default:
          return failed("BadOutput", `unexpected message from the child: ${line.slice(0, 200)}`)
      }
    }

    try {
      child = spawn(
        options.nodePath ?? process.execPath,
        [`--max-old-space-size=${Math.max(64, Math.floor(limits.memoryBytesMax / MIB))}`, options.workerPath ?? SMOKE_WORKER_PATH],
        { stdio: ["pipe", "pipe", "pipe"], env: { PATH: process.env["PATH"] ?? "" } }
      )
    } catch (e) {
      failed("SpawnFailed", `could not start the sandbox process: ${e instanceof Error ? e.message : String(e)}`)
      return
    }
    child.on("exit", () => markExited())
    child.on("error", (e) => {
      if (child.pid === undefined) markExited() // never started: no exit event comes
      failed("SpawnFailed", `the sandbox process failed: ${e.message}`)
    })
    child.stdin.on("error", () => undefined) // EPIPE when the child is gone; 'close' reports it
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      if (finished) return
      stdout += chunk
      if (stdout.length > (limits.outputBytesMax * 4) / 3 + PIPE_BYTES_SLACK) {
        return failed("OutputTooLarge", `the child wrote more than ${mib(limits.outputBytesMax)} of outputs`)
      }
      let newline: number
      while (!finished && (newline = stdout.indexOf("\n")) >= 0) {
        const line = stdout.slice(0, newline)
        stdout = stdout.slice(newline + 1)
        onMessage(line)
      }
    })
    child.stderr.setEncoding("utf8")
    child.stderr.on("data", (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_CHARS)
    })
    child.on("close", (code, signal) => {
      if (finished) return
      if (/heap out of memory|Allocation failed/i.test(stderrTail)) {
        return failed("MemoryLimit", `the JavaScript heap ran out during ${phase}`)
      }
      const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`
      failed("Crashed", `the sandbox process ${how} during ${phase}${stderrTail === "" ? "" : `: ${stderrTail.trim().slice(-500)}`}`)
    })

    timers.push(
      setTimeout(
        () => failed("Timeout", `the model did not load within ${limits.loadTimeoutMillis} ms (process start included)`),
        limits.loadTimeoutMillis
      )
    )
    poll = setInterval(() => {
      const s = observe()
      if (s !== undefined && s.rssBytes > limits.memoryBytesMax) {
        failed("MemoryLimit", `the process reached ${mib(s.rssBytes)} during ${phase}, over the ${mib(limits.memoryBytesMax)} limit`)
      }
    }, limits.pollMillis)

    const payload = {
      modelPath: request.modelPath,
      inputs: toWire(request.inputs),
      intraOpNumThreads: limits.intraOpNumThreads,
      outputBytesMax: limits.outputBytesMax,
      // The child's own backstop, should this process die while the child runs.
      deadlineMillis: limits.loadTimeoutMillis + limits.runTimeoutMillis + CHILD_DEADLINE_SLACK_MILLIS
    }
    child.stdin.write(JSON.stringify(payload) + "\n")
    // stdin stays open: its end tells the child that this process is gone.

    return Effect.suspend(() => {
      stop()
      return Effect.promise(() => exited)
    })
  })

export const makeSandboxedSmokeRun = (options: SandboxOptions = {}): SandboxedSmokeRunService => ({
  run: (request, limits) => runInChild(options, request, { ...DEFAULT_SMOKE_LIMITS, ...limits })
})

export const SandboxedSmokeRunLive = (options: SandboxOptions = {}): Layer.Layer<SandboxedSmokeRun> =>
  Layer.succeed(SandboxedSmokeRun, makeSandboxedSmokeRun(options))

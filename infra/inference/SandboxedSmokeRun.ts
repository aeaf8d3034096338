/**
 * SandboxedSmokeRun: checks and runs an untrusted model in a child process
 * the node can kill — because a model can loop for ever (Loop with a huge
 * trip count) or allocate gigabytes (ConstantOfShape, Expand, a huge
 * declared input), and both happen inside onnxruntime's native code, where
 * no JavaScript timeout reaches — and because everything that scales with
 * the file or its shapes must not happen in the node.
 *
 * The child is node on `smokeWorker.mjs`, which loads `smokeCheck.ts`: it
 * parses the file and runs the static checks, builds the seeded inputs,
 * loads the model and runs it twice (see smokeCheck.ts). It gets the model
 * path, hash, manifest shapes and limits on stdin (one JSON line) and
 * answers with JSON lines on stdout:
 *
 *   {"event":"refused","check":StaticCheck,"detail":"..."}    a static check failed
 *   {"event":"loaded","millis":n}                              session created
 *   {"event":"ran","millis":n}                                 first run done
 *   {"event":"done","millis":n,"fingerprint":"0x…","outputs":[summary],"signature":{…}}
 *   {"event":"failed","reason":SmokeFailureReason,"detail":"..."}
 *
 * The node holds at most `REPLY_BYTES_MAX` of them (a longer reply is
 * BadOutput) and the last `STDERR_TAIL_CHARS` of stderr, decodes each line
 * with a schema, and never throws: the stderr tail (and a stray line) goes
 * to the node's log only — a verdict's detail is public (`ModelView.reason`),
 * so it says what happened (exit code, signal, phase), never what the child
 * printed. Every callback catches and turns what it caught into a
 * `SmokeFailed`. The parent watches the child:
 *
 * - time: `loadTimeoutMillis` from spawn until the session exists (node,
 *   the static checks and onnxruntime startup included), then
 *   `runTimeoutMillis` for each of the two runs;
 * - memory: the child's VmRSS from /proc/PID/status every `pollMillis`,
 *   and `--max-old-space-size` for the JavaScript heap; a model's native
 *   allocations overshoot the bound by at most what it touches in one poll;
 * - output size: `outputBytesMax`, in the child (OutputTooLarge);
 *
 * and kills it with SIGKILL on any breach. Should this process die first,
 * the child kills itself (a watchdog thread in it watches its parent pid
 * and a deadline), so a model looping in native code never outlives the
 * node. The verdict is data, never an error: `SandboxPassed` (the smoke
 * verdict and the signature), `StaticRefused` (a static check's reason), or
 * `SmokeFailed` with a reason and a detail.
 *
 * Off Linux there is no /proc: only the heap flag bounds memory there.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Context, Effect, Either, Layer, Schema } from "effect"
import { DEFAULT_STATIC_LIMITS, StaticCheck, type StaticLimits } from "../../domain/ai/legitimacy.js"
import type { ModelManifest } from "../../domain/ai/manifest.js"
import { ModelSignature } from "../../domain/ai/signature.js"
import { ElemType } from "../../domain/ai/tensor.js"
import { SmokeFailed, SmokeFailureReason, SmokePassed } from "../../domain/ai/verdict.js"
import { Hash32 } from "../../domain/chain/hash.js"

export interface SmokeLimits {
  /** From spawn until the session is created. */
  readonly loadTimeoutMillis: number
  /** Each of the two runs. */
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
  /** sha256 of the file (0x + hex): the seed of the inputs. */
  readonly modelHash: string
  /** The shapes and fixed inputs of the seeded inputs, and the tolerance of the fingerprint. */
  readonly manifest: Pick<ModelManifest, "shapes" | "fixedInputs" | "outputTolerance">
  readonly staticLimits?: StaticLimits
}

/** The model passed the static checks and the smoke run. */
export interface SandboxPassed {
  readonly _tag: "SandboxPassed"
  readonly smoke: SmokePassed
  readonly signature: ModelSignature
}

/** A static check failed (in the child, where the file is parsed). */
export interface StaticRefused {
  readonly _tag: "StaticRefused"
  readonly check: StaticCheck
  readonly detail: string
}

export type SandboxVerdict = SandboxPassed | StaticRefused | SmokeFailed

export interface SandboxedSmokeRunService {
  readonly run: (request: SmokeRequest, limits?: Partial<SmokeLimits>) => Effect.Effect<SandboxVerdict>
}

export class SandboxedSmokeRun extends Context.Tag("topai/SandboxedSmokeRun")<SandboxedSmokeRun, SandboxedSmokeRunService>() {}

export const SMOKE_WORKER_PATH = fileURLToPath(new URL("./smokeWorker.mjs", import.meta.url))

const MIB = 1024 * 1024
const mib = (bytes: number): string => `${(bytes / MIB).toFixed(0)} MiB`
/**
 * All the child's replies together: a few hundred bytes plus one summary
 * (about 150 bytes) per output and one spec per input and output. A model
 * with thousands of outputs may need more; it is refused (BadOutput), the
 * node never buffers more than this.
 */
export const REPLY_BYTES_MAX = 1 * MIB
export const STDERR_TAIL_CHARS = 2000
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

/** A summary's min, max and mean come as null when NaN (an output with no elements): JSON has no NaN. */
const NumberOrNaN = Schema.transform(Schema.NullOr(Schema.Number), Schema.Number, {
  strict: true,
  decode: (x) => (x === null ? NaN : x),
  encode: (x) => (Number.isNaN(x) ? null : x)
})

/** One line from the child, as smokeCheck.ts writes it. */
const ChildMessage = Schema.Union(
  Schema.Struct({ event: Schema.Literal("refused"), check: StaticCheck, detail: Schema.String }),
  Schema.Struct({ event: Schema.Literal("loaded", "ran"), millis: Schema.Number }),
  Schema.Struct({
    event: Schema.Literal("done"),
    millis: Schema.Number,
    fingerprint: Hash32,
    outputs: Schema.Array(
      Schema.Struct({ name: Schema.String, type: ElemType, dims: Schema.Array(Schema.Int), min: NumberOrNaN, max: NumberOrNaN, mean: NumberOrNaN })
    ),
    signature: ModelSignature
  }),
  Schema.Struct({ event: Schema.Literal("failed"), reason: SmokeFailureReason, detail: Schema.String })
)
const decodeChildMessage = Schema.decodeUnknownEither(Schema.parseJson(ChildMessage))

export interface SandboxOptions {
  /** The node binary (default: the one running this process). */
  readonly nodePath?: string
  /** The child's script (default: smokeWorker.mjs; tests swap in misbehaving ones). */
  readonly workerPath?: string
}

const runInChild = (options: SandboxOptions, request: SmokeRequest, limits: SmokeLimits): Effect.Effect<SandboxVerdict> =>
  Effect.async<SandboxVerdict>((resume) => {
    const started = performance.now()
    const elapsed = () => performance.now() - started
    let child: ChildProcessWithoutNullStreams | undefined = undefined
    let finished = false
    let peak = 0
    let phase: "load" | "run" = "load"
    let loadMillis = 0
    let stdout = ""
    let replyBytes = 0
    let stderrTail = ""
    /** What the child said that only the node's log may keep (its stderr, a stray line): never in a reason. */
    let forTheLog: string | undefined = undefined
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
    const finish = (verdict: SandboxVerdict): void => {
      if (finished) return
      stop()
      const reply = forTheLog === undefined ? Effect.succeed(verdict) : Effect.logWarning(forTheLog).pipe(Effect.as(verdict))
      if (child === undefined) return resume(reply)
      // SIGKILL cannot be refused, but never let a verdict hang on a reap that does not come.
      const fallback = setTimeout(markExited, REAP_WAIT_MILLIS_MAX)
      void exited.then(() => {
        clearTimeout(fallback)
        resume(reply)
      })
    }
    // The temp path differs between validators; their reasons should not.
    const clean = (detail: string): string => detail.replaceAll(request.modelPath, "model.onnx").slice(0, DETAIL_CHARS_MAX)
    const failed = (reason: SmokeFailureReason, detail: string): void =>
      finish(new SmokeFailed({ reason, detail: clean(detail), totalMillis: elapsed(), peakRssBytes: peak }))
    /** Runs a callback's body; whatever it throws ends the run as `reason`, never the node. */
    const guarded =
      <A extends ReadonlyArray<unknown>>(what: string, body: (...args: A) => void) =>
      (...args: A): void => {
        try {
          body(...args)
        } catch (e) {
          failed("Crashed", `the sandbox's ${what} handler failed: ${e instanceof Error ? e.message : String(e)}`)
        }
      }
    const startRunTimer = (): void => {
      for (const t of timers.splice(0)) clearTimeout(t)
      timers.push(setTimeout(() => failed("Timeout", `the run did not finish within ${limits.runTimeoutMillis} ms`), limits.runTimeoutMillis))
    }

    const onMessage = (line: string): void => {
      const decoded = decodeChildMessage(line)
      if (Either.isLeft(decoded)) {
        forTheLog = `smoke run: the sandbox wrote a line that is not a message: ${line.slice(0, 200)}`
        return failed("BadOutput", `the sandbox wrote a line of ${line.length} characters that is not a message of the protocol`)
      }
      const message = decoded.right
      switch (message.event) {
        case "refused":
          return finish({ _tag: "StaticRefused", check: message.check, detail: clean(message.detail) })
        case "loaded":
          phase = "run"
          loadMillis = message.millis
          return startRunTimer()
        case "ran":
          return startRunTimer()
        case "failed":
          return failed(message.reason, message.detail)
        case "done":
          observe()
          return finish({
            _tag: "SandboxPassed",
            signature: message.signature,
            smoke: new SmokePassed({
              fingerprint: message.fingerprint,
              outputs: message.outputs,
              loadMillis,
              runMillis: message.millis,
              totalMillis: elapsed(),
              peakRssBytes: peak
            })
          })
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
    const spawned = child
    spawned.on("exit", () => markExited())
    spawned.on(
      "error",
      guarded("error", (e: Error) => {
        if (spawned.pid === undefined) markExited() // never started: no exit event comes
        failed("SpawnFailed", `the sandbox process failed: ${e.message}`)
      })
    )
    spawned.stdin.on("error", () => undefined) // EPIPE when the child is gone; 'close' reports it
    spawned.stdout.setEncoding("utf8")
    spawned.stdout.on(
      "data",
      guarded("stdout", (chunk: string) => {
        if (finished) return
        replyBytes += chunk.length
        if (replyBytes > REPLY_BYTES_MAX) {
          return failed("BadOutput", `the child wrote more than ${mib(REPLY_BYTES_MAX)} of replies; a summary of the outputs is far less`)
        }
        stdout += chunk
        let newline: number
        while (!finished && (newline = stdout.indexOf("\n")) >= 0) {
          const line = stdout.slice(0, newline)
          stdout = stdout.slice(newline + 1)
          onMessage(line)
        }
      })
    )
    spawned.stderr.setEncoding("utf8")
    spawned.stderr.on(
      "data",
      guarded("stderr", (chunk: string) => {
        stderrTail = (stderrTail + chunk.slice(-STDERR_TAIL_CHARS)).slice(-STDERR_TAIL_CHARS)
      })
    )
    spawned.on(
      "close",
      guarded("close", (code: number | null, signal: NodeJS.Signals | null) => {
        if (finished) return
        if (/heap out of memory|Allocation failed/i.test(stderrTail)) {
          return failed("MemoryLimit", `the JavaScript heap ran out during ${phase}`)
        }
        const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`
        // Its stderr (paths, stacks, whatever the model made onnxruntime print) stays in the node's log:
        // the reason is public (ModelView.reason).
        if (stderrTail !== "") forTheLog = `smoke run: the sandbox process ${how} during ${phase}; its stderr ends: ${stderrTail.trim().slice(-500)}`
        failed("Crashed", `the sandbox crashed while ${phase === "load" ? "loading" : "running"} the model (its process ${how})`)
      })
    )

    timers.push(
      setTimeout(
        () => failed("Timeout", `the model did not load within ${limits.loadTimeoutMillis} ms (process start and static checks included)`),
        limits.loadTimeoutMillis
      )
    )
    poll = setInterval(
      guarded("memory poll", () => {
        const s = observe()
        if (s !== undefined && s.rssBytes > limits.memoryBytesMax) {
          failed("MemoryLimit", `the process reached ${mib(s.rssBytes)} during ${phase}, over the ${mib(limits.memoryBytesMax)} limit`)
        }
      }),
      limits.pollMillis
    )

    const payload = {
      modelPath: request.modelPath,
      modelHash: request.modelHash,
      manifest: { shapes: request.manifest.shapes, fixedInputs: request.manifest.fixedInputs, outputTolerance: request.manifest.outputTolerance },
      staticLimits: request.staticLimits ?? DEFAULT_STATIC_LIMITS,
      intraOpNumThreads: limits.intraOpNumThreads,
      outputBytesMax: limits.outputBytesMax,
      // The child's own backstop, should this process die while the child runs.
      deadlineMillis: limits.loadTimeoutMillis + 2 * limits.runTimeoutMillis + CHILD_DEADLINE_SLACK_MILLIS
    }
    try {
      spawned.stdin.write(JSON.stringify(payload) + "\n")
    } catch (e) {
      failed("SpawnFailed", `could not write to the sandbox process: ${e instanceof Error ? e.message : String(e)}`)
    }
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

/**
 * InferenceEngine: onnxruntime in killable child processes.
 *
 * onnxruntime-node 1.30 runs `session.run` (and session creation)
 * synchronously on the calling JavaScript thread; its promise is a facade.
 * A model is a provider's code: it may loop (a Loop with a huge trip
 * count), or allocate gigabytes on inputs larger than its smoke shapes or
 * on an input *value* (ConstantOfShape fed from an input). Native code
 * cannot be stopped from JavaScript, and a worker thread cannot be
 * terminated during a native run (onnxruntime-node then aborts the whole
 * process), so every run happens in a child process the engine can kill:
 *
 * - `threads` children (the name is kept from when they were threads),
 *   each hosting an OnnxSessionPool (warm sessions, LRU, cpu|cuda), started
 *   as `prlimit --data=memoryBytesMax -- node inferenceThread.mjs`: the
 *   kernel caps each child's data segment (RLIMIT_DATA). RLIMIT_AS cannot
 *   be used: V8 reserves ~22 GB of address space at start (measured: node
 *   with onnxruntime does not even start under `--as=4G`), while its
 *   VmData is ~240 MB, and an over-limit allocation inside onnxruntime
 *   fails as an error ("Failed to allocate memory"), not a crash. Without
 *   util-linux' `prlimit` only `--max-old-space-size` bounds the child
 *   (`stats` and the start log say which).
 * - A run has a deadline (`RunOptions.deadlineMillis`, at most
 *   `runDeadlineMillisMax`), counted from the child's `started` message
 *   (the model is loaded, the run begins), so time spent queued or loading
 *   does not count; loading has its own bound, `loadTimeoutMillis`. Past
 *   it the child is SIGKILLed, the run fails with `InferenceLimitExceeded`
 *   `Deadline`, the other runs sent to that child go back to the front of
 *   the queue, and a new child is started.
 * - A run whose allocation fails under the limit fails with
 *   `InferenceLimitExceeded` `Memory`, and its child is replaced too (a
 *   process that has seen `bad_alloc` is not trusted with the next run).
 * - Tensors cross by the IPC channel's structured clone ("advanced"
 *   serialization), never JSON.
 * - Runs wait in one queue here and go to the least loaded ready child, at
 *   most PIPELINE_DEPTH at a time per child (so a child never idles for a
 *   message round trip).
 * - A child that dies otherwise fails its in-flight runs with
 *   `InferenceThreadDied` and is replaced.
 * - Start fails with `InferenceError` `ExecutionProviderUnavailable` when
 *   the configured provider (cuda) cannot load, as the pool's probe says.
 *
 * Closing asks each child to release its sessions and exit; one still busy
 * after CLOSE_WAIT_MILLIS is killed. An interrupted run's answer is dropped
 * (the child still finishes it, within its deadline).
 *
 * The child program is `inferenceThreadWorker.ts`, started through the
 * plain-JS `inferenceThread.mjs`, which registers tsx: the same code runs
 * under `node --import tsx`, the `bin/topai.js` loader and vitest. A child
 * takes ~0.6–1 s to start (tsx, Effect, onnxruntime).
 */
import { spawn, type ChildProcess } from "node:child_process"
import { existsSync } from "node:fs"
import { delimiter, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Context, Effect, Layer, Runtime, Schema } from "effect"
import type { Scope } from "effect"
import type { ElemType, Tensor, TensorMap } from "../../domain/ai/tensor.js"
import { InferenceError, type ExecutionProvider, type SessionInfo } from "./OnnxSessionPool.js"

export class InferenceThreadDied extends Schema.TaggedError<InferenceThreadDied>()("InferenceThreadDied", {
  thread: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `inference thread ${this.thread} died: ${this.detail}`
  }
}

/**
 * A run stopped by the engine's limits: `Deadline` (it ran longer than its
 * deadline, `limit` ms), `LoadDeadline` (its model did not load within
 * `limit` ms), `Memory` (an allocation failed under the child's `limit`
 * bytes). The child was killed and replaced; the run burned the time.
 */
export class InferenceLimitExceeded extends Schema.TaggedError<InferenceLimitExceeded>()("InferenceLimitExceeded", {
  reason: Schema.Literal("Deadline", "LoadDeadline", "Memory"),
  modelHash: Schema.String,
  limit: Schema.Number,
  /** How long the run had been going when it was stopped (ms). */
  millis: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.reason} (model ${this.modelHash}): ${this.detail}`
  }
}

export type InferenceEngineError = InferenceError | InferenceThreadDied | InferenceLimitExceeded

export interface InferenceEngineConfig {
  /** Worker threads, each with its own session pool (a model loads once per thread that runs it). */
  readonly threads: number
  readonly executionProvider: ExecutionProvider
  /** Threads of one run's operators; 0 lets onnxruntime choose (one per core). */
  readonly intraOpNumThreads: number
  /** Loaded sessions kept per thread. */
  readonly sessionsMax: number
  /** How long a thread may take to start (tsx, Effect, onnxruntime, the provider probe). */
  readonly startTimeoutMillis: number
  /** Wait before starting a replacement whose predecessor failed to start. */
  readonly restartDelayMillis: number
  /** Each child's data segment (RLIMIT_DATA, by `prlimit`); its JavaScript heap gets half. */
  readonly memoryBytesMax: number
  /** A model's first load in a child, before its run starts. */
  readonly loadTimeoutMillis: number
  /** The longest deadline a run may have (a run without one gets this). */
  readonly runDeadlineMillisMax: number
}

export const DEFAULT_ENGINE_CONFIG: InferenceEngineConfig = {
  threads: 1,
  executionProvider: "cpu",
  intraOpNumThreads: 1,
  sessionsMax: 8,
  startTimeoutMillis: 60_000,
  restartDelayMillis: 1_000,
  memoryBytesMax: 2 * 1024 ** 3,
  loadTimeoutMillis: 60_000,
  runDeadlineMillisMax: 60_000
}

export interface RunOptions {
  /** The caller will not use the inputs again (kept for callers; a child process always gets a copy). */
  readonly transferInputs?: boolean
  /** Kill the run this long after it starts (capped at `runDeadlineMillisMax`). */
  readonly deadlineMillis?: number
}

export interface ThreadStats {
  readonly index: number
  readonly state: "starting" | "ready" | "dead"
  readonly inflight: number
  readonly runs: number
  /** Replacements so far. */
  readonly restarts: number
  /** Runs stopped by a limit (deadline or memory); each also counts as a restart. */
  readonly killed: number
  /** The child's process id (-1 while none). */
  readonly pid: number
}

export interface InferenceEngineService {
  /** Runs a model (loading it from `modelPath` on first use in a thread). */
  readonly run: (
    weightsHash: string,
    modelPath: string,
    inputs: TensorMap,
    options?: RunOptions
  ) => Effect.Effect<TensorMap, InferenceEngineError>
  /** Loads a model on every ready thread now. */
  readonly warm: (weightsHash: string, modelPath: string) => Effect.Effect<SessionInfo, InferenceEngineError>
  readonly stats: Effect.Effect<ReadonlyArray<ThreadStats>>
  /**
   * TEST HOOK: thread `index` throws an uncaught error when it reaches this
   * message, that is after the runs already sent to it; runs sent after it
   * fail with InferenceThreadDied, and the thread is replaced.
   */
  readonly crashThread: (index: number) => Effect.Effect<void>
  readonly config: InferenceEngineConfig
  /** How the children's memory is bounded: "rlimit-data" (prlimit found) or "heap-only". */
  readonly memoryLimit: "rlimit-data" | "heap-only"
}

export class InferenceEngine extends Context.Tag("topai/InferenceEngine")<InferenceEngine, InferenceEngineService>() {}

// ---------------------------------------------------------------- the thread protocol

/** A tensor between threads: the typed array travels by structured clone (or transfer). */
export interface WireTensor {
  readonly name: string
  readonly type: ElemType
  readonly dims: ReadonlyArray<number>
  readonly data: Tensor["data"]
}

/** What the thread is started with (`workerData`). */
export interface ThreadConfig {
  readonly index: number
  readonly executionProvider: ExecutionProvider
  readonly intraOpNumThreads: number
  readonly sessionsMax: number
}

export type ThreadRequest =
  | { readonly kind: "run"; readonly id: number; readonly hash: string; readonly path: string; readonly inputs: ReadonlyArray<WireTensor> }
  | { readonly kind: "warm"; readonly id: number; readonly hash: string; readonly path: string }
  /** Release the sessions and end the thread. */
  | { readonly kind: "close" }
  /** Test hook: throw an uncaught error. */
  | { readonly kind: "crash" }

export interface ErrorData {
  readonly reason: InferenceError["reason"]
  readonly modelHash: string
  readonly detail: string
}

export type ThreadReply =
  | { readonly kind: "ready" }
  | { readonly kind: "init-failed"; readonly error: ErrorData }
  /** The run's model is loaded and the run begins (its deadline starts). */
  | { readonly kind: "started"; readonly id: number }
  | { readonly kind: "ran"; readonly id: number; readonly outputs: ReadonlyArray<WireTensor> }
  | { readonly kind: "warmed"; readonly id: number; readonly info: SessionInfo }
  | { readonly kind: "failed"; readonly id: number; readonly error: ErrorData }

export const toWire = (tensors: TensorMap): Array<WireTensor> =>
  Object.keys(tensors).map((name) => {
    const t = tensors[name]!
    return { name, type: t.type, dims: t.dims, data: t.data }
  })

export const fromWire = (tensors: ReadonlyArray<WireTensor>): TensorMap => {
  const out: Record<string, Tensor> = {}
  for (const t of tensors) {
    Object.defineProperty(out, t.name, { value: { type: t.type, dims: t.dims, data: t.data }, enumerable: true, writable: true, configurable: true })
  }
  return out
}

/** The distinct buffers under the tensors, to transfer. */
export const buffersOf = (tensors: ReadonlyArray<WireTensor>): Array<ArrayBuffer> => {
  const set = new Set<ArrayBuffer>()
  for (const t of tensors) if (t.data.buffer instanceof ArrayBuffer && t.data.buffer.byteLength > 0) set.add(t.data.buffer)
  return [...set]
}

// ---------------------------------------------------------------- the engine

/** Runs sent to one child before it answers. */
const PIPELINE_DEPTH = 2
/** How long closing waits for children to exit before killing them. */
const CLOSE_WAIT_MILLIS = 5_000
const STDERR_TAIL_CHARS = 4000
const MIB = 1024 * 1024

/** The child reads its ThreadConfig from this variable. */
export const CHILD_CONFIG_ENV = "TOPAI_INFERENCE_CHILD"

const BOOT_PATH = fileURLToPath(new URL("./inferenceThread.mjs", import.meta.url))

/** onnxruntime's words for an allocation that failed (under RLIMIT_DATA: an error, not a crash). */
const ALLOCATION_FAILED = /Failed to allocate memory|bad_alloc|Cannot allocate memory|heap out of memory|Allocation failed/i

/**
 * The child's environment: this process's (the CUDA provider needs its library paths), without
 * NODE_OPTIONS (a test runner's or a loader's flags are not the child's), plus its config.
 */
const childEnv = (config: ThreadConfig): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_CONFIG_ENV]: JSON.stringify(config) }
  delete env["NODE_OPTIONS"]
  return env
}

/** util-linux' prlimit on the PATH (or in /usr/bin), to set the child's RLIMIT_DATA. */
export const findPrlimit = (): string | undefined => {
  const dirs = [...(process.env["PATH"] ?? "").split(delimiter), "/usr/bin", "/bin"]
  for (const dir of dirs) {
    if (dir === "") continue
    const candidate = join(dir, "prlimit")
    if (existsSync(candidate)) return candidate
  }
  return undefined
}

interface Job {
  readonly id: number
  readonly hash: string
  readonly message: ThreadRequest
  /** Run deadline (ms from `started`); undefined for warms. */
  readonly deadlineMillis: number | undefined
  readonly done: (reply: ThreadReply) => void
  readonly failed: (error: InferenceEngineError) => void
  /** The caller stopped waiting; the answer is dropped. */
  abandoned: boolean
  /** When the child said `started` (performance.now()). */
  startedAt: number | undefined
  /** When it became the first of its child's runs (its load began). */
  headSince: number | undefined
}

interface Slot {
  readonly index: number
  child: ChildProcess | undefined
  state: "starting" | "ready" | "dead"
  /** In the order sent = the order the child runs them. */
  readonly inflight: Map<number, Job>
  runs: number
  restarts: number
  killed: number
  pid: number
  stderrTail: string
  /** The deadline of the first in-flight job (load or run). */
  timer: ReturnType<typeof setTimeout> | undefined
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).slice(0, 2000)

const toError = (e: ErrorData): InferenceError => new InferenceError({ reason: e.reason, modelHash: e.modelHash, detail: e.detail })

/** The line of a child's stderr that says why it ended (an error line, not its stack or node's banner). */
const lastWords = (stderr: string): string => {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("at ") && !l.startsWith("Node.js v") && l !== "^")
  const said = lines.filter((l) => /error|fail|abort|memory/i.test(l))
  return (said[said.length - 1] ?? lines[lines.length - 1] ?? "").slice(0, 500)
}

const firstOf = (slot: Slot): Job | undefined => {
  for (const job of slot.inflight.values()) return job
  return undefined
}

export const makeInferenceEngine = (
  overrides: Partial<InferenceEngineConfig> = {}
): Effect.Effect<InferenceEngineService, InferenceEngineError, Scope.Scope> =>
  Effect.gen(function* () {
    const config: InferenceEngineConfig = { ...DEFAULT_ENGINE_CONFIG, ...overrides }
    if (!(Number.isInteger(config.threads) && config.threads >= 1)) return yield* Effect.dieMessage(`threads must be a whole number ≥ 1, got ${config.threads}`)
    if (!(config.memoryBytesMax >= 256 * MIB)) return yield* Effect.dieMessage(`memoryBytesMax must be ≥ 256 MiB (a child's baseline is ~240 MB), got ${config.memoryBytesMax}`)
    const prlimit = findPrlimit()
    const memoryLimit = prlimit === undefined ? ("heap-only" as const) : ("rlimit-data" as const)
    if (prlimit === undefined) yield* Effect.logWarning("inference: prlimit (util-linux) not found: children are bounded by their JavaScript heap only, not by RLIMIT_DATA")
    /** The child's stderr goes to this log only: a detail travels to the gateway and its developer (worker.failed). */
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const logStderr = (slot: Slot, what: string, tail: string): void => {
      if (tail !== "") runFork(Effect.logWarning(`inference thread ${slot.index}: ${what}; its stderr ends: ${tail}`))
    }
    let closed = false
    let nextId = 0
    const queue: Array<Job> = []
    const slots: Array<Slot> = Array.from({ length: config.threads }, (_, index) => ({
      index,
      child: undefined,
      state: "starting",
      inflight: new Map(),
      runs: 0,
      restarts: 0,
      killed: 0,
      pid: -1,
      stderrTail: "",
      timer: undefined
    }))
    /** Told when each slot's first start succeeds or fails. */
    const firstStart = new Map<number, (error: InferenceEngineError | undefined) => void>()

    const pump = (): void => {
      while (queue.length > 0) {
        let best: Slot | undefined
        for (const s of slots) {
          if (s.state !== "ready" || s.inflight.size >= PIPELINE_DEPTH) continue
          if (best === undefined || s.inflight.size < best.inflight.size) best = s
        }
        if (best === undefined) return
        const job = queue.shift()!
        if (job.abandoned) continue
        best.inflight.set(job.id, job)
        try {
          best.child!.send(job.message)
        } catch (e) {
          // A tensor that cannot be cloned: the caller's mistake, not the child's.
          best.inflight.delete(job.id)
          job.done({ kind: "failed", id: job.id, error: { reason: "RunFailed", modelHash: job.hash, detail: `cannot send the inputs to the child: ${errorText(e)}` } })
        }
        arm(best)
      }
    }

    /** Arms the slot's one timer for its first job: the run's deadline once started, else the load's. */
    const arm = (slot: Slot): void => {
      if (slot.timer !== undefined) clearTimeout(slot.timer)
      slot.timer = undefined
      const head = firstOf(slot)
      if (head === undefined) return
      const now = performance.now()
      if (head.startedAt !== undefined && head.deadlineMillis !== undefined) {
        const left = head.startedAt + head.deadlineMillis - now
        slot.timer = setTimeout(() => overrun(slot, head, "Deadline"), Math.max(0, left))
      } else {
        head.headSince ??= now
        const left = head.headSince + config.loadTimeoutMillis - now
        slot.timer = setTimeout(() => overrun(slot, head, "LoadDeadline"), Math.max(0, left))
      }
    }

    /** Detaches the slot's child and kills it; the jobs it still held (but `culprit`) go back to the queue's front. */
    const recycle = (slot: Slot, culprit: Job): void => {
      const child = slot.child
      if (slot.timer !== undefined) clearTimeout(slot.timer)
      slot.timer = undefined
      slot.child = undefined
      slot.state = "dead"
      slot.killed++
      const others = [...slot.inflight.values()].filter((j) => j !== culprit && !j.abandoned)
      slot.inflight.clear()
      for (const j of others) {
        j.startedAt = undefined
        j.headSince = undefined
      }
      queue.unshift(...others)
      child?.kill("SIGKILL")
      if (closed) return
      slot.restarts++
      spawnChild(slot)
    }

    const overrun = (slot: Slot, job: Job, reason: "Deadline" | "LoadDeadline"): void => {
      if (firstOf(slot) !== job) return
      const since = reason === "Deadline" ? job.startedAt! : job.headSince!
      const limit = reason === "Deadline" ? job.deadlineMillis! : config.loadTimeoutMillis
      // A Node timer counts from the event loop's cached clock, which can lag
      // performance.now() by a busy iteration: it may fire before the limit has
      // passed on our clock. Then wait out the rest rather than stop a run early.
      if (performance.now() - since < limit) return arm(slot)
      const millis = Math.round(performance.now() - since)
      recycle(slot, job)
      if (!job.abandoned) {
        job.failed(
          new InferenceLimitExceeded({
            reason,
            modelHash: job.hash,
            limit,
            millis,
            detail:
              reason === "Deadline"
                ? `the run was stopped after ${millis} ms, past its deadline of ${limit} ms`
                : `the model did not load within ${limit} ms`
          })
        )
      }
      pump()
    }

    const spawnChild = (slot: Slot): void => {
      slot.state = "starting"
      slot.stderrTail = ""
      const data: ThreadConfig = {
        index: slot.index,
        executionProvider: config.executionProvider,
        intraOpNumThreads: config.intraOpNumThreads,
        sessionsMax: config.sessionsMax
      }
      const heapMiB = Math.max(128, Math.floor(config.memoryBytesMax / 2 / MIB))
      const nodeArgs = [`--max-old-space-size=${heapMiB}`, BOOT_PATH]
      const [command, args] =
        prlimit === undefined
          ? [process.execPath, nodeArgs]
          : [prlimit, [`--data=${Math.floor(config.memoryBytesMax)}`, "--", process.execPath, ...nodeArgs]]
      let child: ChildProcess
      try {
        child = spawn(command, args, {
          stdio: ["ignore", "ignore", "pipe", "ipc"],
          serialization: "advanced",
          env: childEnv(data)
        })
      } catch (e) {
        slot.pid = -1
        setTimeout(() => died(slot, undefined, `could not start: ${errorText(e)}`), 0)
        return
      }
      slot.child = child
      slot.pid = child.pid ?? -1
      const startTimer = setTimeout(() => {
        if (slot.child === child && slot.state === "starting") {
          child.kill("SIGKILL")
          died(slot, child, `did not start within ${config.startTimeoutMillis} ms`)
        }
      }, config.startTimeoutMillis)
      startTimer.unref()
      child.stderr?.setEncoding("utf8")
      child.stderr?.on("data", (chunk: string) => {
        slot.stderrTail = (slot.stderrTail + chunk).slice(-STDERR_TAIL_CHARS)
      })
      child.on("message", (message: unknown) => {
        if (slot.child !== child) return
        // The child's words are data: one that is not a reply we know ends that child, never this process.
        try {
          onReply(message as ThreadReply)
        } catch (e) {
          child.kill("SIGKILL")
          died(slot, child, `the child sent a message that is not a reply: ${errorText(e)}`)
        }
      })
      const onReply = (reply: ThreadReply): void => {
        switch (reply.kind) {
          case "ready": {
            clearTimeout(startTimer)
            slot.state = "ready"
            firstStart.get(slot.index)?.(undefined)
            firstStart.delete(slot.index)
            pump()
            return
          }
          case "init-failed": {
            clearTimeout(startTimer)
            const notify = firstStart.get(slot.index)
            if (notify !== undefined) {
              firstStart.delete(slot.index)
              notify(toError(reply.error))
            }
            child.send({ kind: "close" } satisfies ThreadRequest)
            return
          }
          case "started": {
            const job = slot.inflight.get(reply.id)
            if (job === undefined) return
            job.startedAt = performance.now()
            arm(slot)
            return
          }
          default: {
            const job = slot.inflight.get(reply.id)
            if (job === undefined) return
            if (reply.kind === "failed" && ALLOCATION_FAILED.test(reply.error.detail)) {
              // Over the memory limit: the run fails typed, and the child is not trusted with the next one.
              const millis = job.startedAt === undefined ? 0 : Math.round(performance.now() - job.startedAt)
              recycle(slot, job)
              if (!job.abandoned) {
                job.failed(
                  new InferenceLimitExceeded({
                    reason: "Memory",
                    modelHash: job.hash,
                    limit: config.memoryBytesMax,
                    millis,
                    detail: `an allocation failed under the ${Math.round(config.memoryBytesMax / MIB)} MiB limit: ${reply.error.detail.slice(-300)}`
                  })
                )
              }
              pump()
              return
            }
            slot.inflight.delete(reply.id)
            if (reply.kind === "ran") slot.runs++
            if (!job.abandoned) job.done(reply)
            arm(slot)
            pump()
          }
        }
      }
      child.on("error", (e) => {
        slot.stderrTail = (slot.stderrTail + `\n${errorText(e)}`).slice(-STDERR_TAIL_CHARS)
        if (child.pid === undefined) died(slot, child, `could not start: ${errorText(e)}`)
      })
      child.on("exit", (code, signal) => {
        clearTimeout(startTimer)
        if (slot.child !== child) return
        const tail = lastWords(slot.stderrTail)
        const head = firstOf(slot)
        if (head?.startedAt !== undefined && ALLOCATION_FAILED.test(slot.stderrTail)) {
          // Died of an allocation during a run: that run is the culprit, the others are innocent.
          const millis = Math.round(performance.now() - head.startedAt)
          recycle(slot, head)
          if (!head.abandoned) {
            logStderr(slot, "the child ran out of memory", tail)
            head.failed(new InferenceLimitExceeded({ reason: "Memory", modelHash: head.hash, limit: config.memoryBytesMax, millis, detail: "the child ran out of memory" }))
          }
          pump()
          return
        }
        const how = `child exited with ${signal !== null ? signal : `code ${code}`}`
        logStderr(slot, how, tail)
        died(slot, child, how)
      })
    }

    /** The slot's child is gone: fail its runs, and start another unless closing. */
    const died = (slot: Slot, child: ChildProcess | undefined, detail: string): void => {
      if (slot.child !== child) return
      const wasStarting = slot.state === "starting"
      if (slot.timer !== undefined) clearTimeout(slot.timer)
      slot.timer = undefined
      slot.child = undefined
      slot.state = "dead"
      const jobs = [...slot.inflight.values()]
      slot.inflight.clear()
      for (const job of jobs) if (!job.abandoned) job.failed(new InferenceThreadDied({ thread: slot.index, detail }))
      const notify = firstStart.get(slot.index)
      if (notify !== undefined) {
        firstStart.delete(slot.index)
        notify(new InferenceThreadDied({ thread: slot.index, detail: `failed to start: ${detail}` }))
        return
      }
      if (closed) return
      slot.restarts++
      if (wasStarting) {
        // A replacement that cannot start: try again later; other children carry the load.
        setTimeout(() => {
          if (!closed && slot.state === "dead") spawnChild(slot)
        }, config.restartDelayMillis).unref()
      } else spawnChild(slot)
      pump()
    }

    /** Asks every child to exit; waits up to CLOSE_WAIT_MILLIS, then kills the ones still running. */
    const closeAll = Effect.promise(async () => {
      closed = true
      for (const job of queue.splice(0)) job.abandoned = true
      const children = slots.flatMap((s) => {
        if (s.timer !== undefined) clearTimeout(s.timer)
        return s.child === undefined ? [] : [s.child]
      })
      const exits = children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve()
            c.once("exit", () => resolve())
            try {
              c.send({ kind: "close" } satisfies ThreadRequest)
            } catch {
              c.kill("SIGKILL")
            }
          })
      )
      let timer: NodeJS.Timeout | undefined
      await Promise.race([Promise.all(exits), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MILLIS)))])
      clearTimeout(timer)
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
      await Promise.race([Promise.all(exits), new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)))])
      clearTimeout(timer)
    })

    yield* Effect.acquireRelease(
      Effect.async<void, InferenceEngineError>((resume) => {
        let pending = slots.length
        let failed = false
        for (const slot of slots) {
          firstStart.set(slot.index, (error) => {
            if (failed) return
            if (error !== undefined) {
              failed = true
              resume(Effect.fail(error))
            } else if (--pending === 0) resume(Effect.void)
          })
          spawnChild(slot)
        }
      }).pipe(Effect.onError(() => closeAll)),
      () => closeAll
    )

    const submit = (hash: string, deadlineMillis: number | undefined, build: (id: number) => ThreadRequest) =>
      Effect.async<ThreadReply, InferenceEngineError>((resume) => {
        if (closed) {
          resume(Effect.fail(new InferenceThreadDied({ thread: -1, detail: "the engine is closed" })))
          return
        }
        const id = nextId++
        const job: Job = {
          id,
          hash,
          message: build(id),
          deadlineMillis,
          abandoned: false,
          startedAt: undefined,
          headSince: undefined,
          done: (reply) => resume(Effect.succeed(reply)),
          failed: (error) => resume(Effect.fail(error))
        }
        queue.push(job)
        pump()
        return Effect.sync(() => {
          job.abandoned = true
          const at = queue.indexOf(job)
          if (at >= 0) queue.splice(at, 1)
        })
      })

    const run = (weightsHash: string, modelPath: string, inputs: TensorMap, options?: RunOptions) =>
      Effect.suspend(() => {
        const asked = options?.deadlineMillis
        const deadline = asked === undefined || !(asked > 0) ? config.runDeadlineMillisMax : Math.min(Math.ceil(asked), config.runDeadlineMillisMax)
        return submit(weightsHash, deadline, (id) => ({ kind: "run", id, hash: weightsHash, path: modelPath, inputs: toWire(inputs) }))
      }).pipe(
        Effect.flatMap((reply) =>
          reply.kind === "ran"
            ? Effect.succeed(fromWire(reply.outputs))
            : reply.kind === "failed"
              ? Effect.fail(toError(reply.error))
              : Effect.dieMessage(`unexpected reply ${reply.kind} to a run`)
        )
      )

    /** Loads a model on every ready child (each warm queued like a run, pinned to its child). */
    const warmOn = (slot: Slot, weightsHash: string, modelPath: string) =>
      Effect.async<SessionInfo, InferenceEngineError>((resume) => {
        if (slot.state !== "ready" || slot.child === undefined) {
          resume(Effect.fail(new InferenceThreadDied({ thread: slot.index, detail: "not running" })))
          return
        }
        const id = nextId++
        const job: Job = {
          id,
          hash: weightsHash,
          message: { kind: "warm", id, hash: weightsHash, path: modelPath },
          deadlineMillis: undefined,
          abandoned: false,
          startedAt: undefined,
          headSince: undefined,
          done: (reply) =>
            resume(
              reply.kind === "warmed"
                ? Effect.succeed(reply.info)
                : reply.kind === "failed"
                  ? Effect.fail(toError(reply.error))
                  : Effect.dieMessage(`unexpected reply ${reply.kind} to a warm`)
            ),
          failed: (error) => resume(Effect.fail(error))
        }
        slot.inflight.set(id, job)
        slot.child.send(job.message)
        arm(slot)
        return Effect.sync(() => {
          job.abandoned = true
        })
      })

    const warm = (weightsHash: string, modelPath: string) =>
      Effect.suspend(() => {
        const ready = slots.filter((s) => s.state === "ready")
        if (ready.length === 0) {
          return submit(weightsHash, undefined, (id) => ({ kind: "warm", id, hash: weightsHash, path: modelPath })).pipe(
            Effect.flatMap((reply) =>
              reply.kind === "warmed" ? Effect.succeed(reply.info) : reply.kind === "failed" ? Effect.fail(toError(reply.error)) : Effect.dieMessage(`unexpected reply ${reply.kind}`)
            )
          )
        }
        return Effect.forEach(ready, (s) => warmOn(s, weightsHash, modelPath), { concurrency: "unbounded" }).pipe(Effect.map((infos) => infos[0]!))
      })

    yield* Effect.logDebug(
      `inference: ${config.threads} child process(es), memory ${memoryLimit === "rlimit-data" ? `RLIMIT_DATA ${Math.round(config.memoryBytesMax / MIB)} MiB` : "heap only"}, run deadline ≤ ${config.runDeadlineMillisMax} ms`
    )

    return InferenceEngine.of({
      run,
      warm,
      stats: Effect.sync(() =>
        slots.map((s) => ({ index: s.index, state: s.state, inflight: s.inflight.size, runs: s.runs, restarts: s.restarts, killed: s.killed, pid: s.pid }))
      ),
      crashThread: (index) =>
        Effect.sync(() => {
          const slot = slots[index]
          try {
            slot?.child?.send({ kind: "crash" } satisfies ThreadRequest)
          } catch {
            // already gone
          }
        }),
      config,
      memoryLimit
    })
  })

export const InferenceEngineLive = (config: Partial<InferenceEngineConfig> = {}): Layer.Layer<InferenceEngine, InferenceEngineError> =>
  Layer.scoped(InferenceEngine, makeInferenceEngine(config))

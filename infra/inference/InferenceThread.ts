/**
 * InferenceEngine: onnxruntime off the caller's event loop.
 *
 * onnxruntime-node 1.30 runs `session.run` (and session creation)
 * synchronously on the calling JavaScript thread; its promise is a facade.
 * A process that serves network traffic — a compute node answering
 * heartbeats, a devnet node with an in-process worker — must not run models
 * on its own event loop. This engine keeps `threads` worker threads, each
 * hosting an OnnxSessionPool (warm sessions, LRU, cpu|cuda provider), and
 * hands runs to them:
 *
 * - Tensors cross as typed arrays by structured clone, never JSON. Outputs
 *   are transferred (moved, no copy); inputs too with
 *   `{ transferInputs: true }` (their buffers are then detached in the
 *   caller), else copied.
 * - Runs wait in one queue here and go to the least loaded ready thread,
 *   at most PIPELINE_DEPTH at a time per thread (so a thread never idles
 *   for a message round trip, and a run never queues behind a long one
 *   while another thread is free).
 * - A thread that dies (an uncaught error in it, running out of heap)
 *   fails its in-flight runs with `InferenceThreadDied` and is replaced.
 * - Start fails with `InferenceError` `ExecutionProviderUnavailable` when
 *   the configured provider (cuda) cannot load, as the pool's probe says.
 *
 * Threads are never `terminate()`d: onnxruntime-node aborts the whole
 * process ("terminate called after throwing an instance of 'Napi::Error'")
 * when a thread is terminated during a native load or run, since the
 * binding then fails to build its result. Closing the engine asks each
 * thread to release its sessions and exit, which it does after the runs
 * already sent to it (at most PIPELINE_DEPTH); a thread still busy after
 * CLOSE_WAIT_MILLIS is let go (unref'd) rather than killed. A model that
 * never ends is the smoke run's business (SandboxedSmokeRun kills a child
 * process); here a run past its caller's deadline is abandoned, not
 * stopped.
 *
 * The thread program is `inferenceThreadWorker.ts`, started through the
 * plain-JS `inferenceThread.mjs`, which registers tsx in the thread: the
 * same code runs under `node --import tsx`, the `bin/topai.js` loader and
 * vitest. A thread takes ~0.6–1 s to start (tsx, Effect, onnxruntime).
 *
 * An interrupted run's answer is dropped; the thread still finishes it
 * (native code cannot be stopped midway), and is counted busy until then.
 */
import { Worker } from "node:worker_threads"
import { Context, Effect, Layer, Schema } from "effect"
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

export type InferenceEngineError = InferenceError | InferenceThreadDied

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
}

export const DEFAULT_ENGINE_CONFIG: InferenceEngineConfig = {
  threads: 1,
  executionProvider: "cpu",
  intraOpNumThreads: 1,
  sessionsMax: 8,
  startTimeoutMillis: 60_000,
  restartDelayMillis: 1_000
}

export interface RunOptions {
  /** Move the inputs' buffers to the thread instead of copying them; the caller's arrays are detached after. */
  readonly transferInputs?: boolean
}

export interface ThreadStats {
  readonly index: number
  readonly state: "starting" | "ready" | "dead"
  readonly inflight: number
  readonly runs: number
  /** Replacements so far. */
  readonly restarts: number
  readonly threadId: number
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

/** Runs sent to one thread before it answers. */
const PIPELINE_DEPTH = 2
/** How long closing waits for threads to exit (one stuck in a long native run exits when that run ends). */
const CLOSE_WAIT_MILLIS = 5_000

const BOOT_URL = new URL("./inferenceThread.mjs", import.meta.url)

interface Job {
  readonly id: number
  readonly message: ThreadRequest
  readonly transfer: ReadonlyArray<ArrayBuffer>
  readonly done: (reply: ThreadReply) => void
  readonly died: (error: InferenceThreadDied) => void
  /** The caller stopped waiting; the answer is dropped. */
  abandoned: boolean
}

interface Slot {
  readonly index: number
  worker: Worker | undefined
  state: "starting" | "ready" | "dead"
  readonly inflight: Map<number, Job>
  runs: number
  restarts: number
  threadId: number
  /** Why the thread ended, from its `error` event. */
  lastError: string | undefined
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).slice(0, 2000)

const toError = (e: ErrorData): InferenceError => new InferenceError({ reason: e.reason, modelHash: e.modelHash, detail: e.detail })

export const makeInferenceEngine = (
  overrides: Partial<InferenceEngineConfig> = {}
): Effect.Effect<InferenceEngineService, InferenceEngineError, Scope.Scope> =>
  Effect.gen(function* () {
    const config: InferenceEngineConfig = { ...DEFAULT_ENGINE_CONFIG, ...overrides }
    if (!(Number.isInteger(config.threads) && config.threads >= 1)) return yield* Effect.dieMessage(`threads must be a whole number ≥ 1, got ${config.threads}`)
    let closed = false
    let nextId = 0
    const queue: Array<Job> = []
    const slots: Array<Slot> = Array.from({ length: config.threads }, (_, index) => ({
      index,
      worker: undefined,
      state: "starting",
      inflight: new Map(),
      runs: 0,
      restarts: 0,
      threadId: -1,
      lastError: undefined
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
          best.worker!.postMessage(job.message, job.transfer as Array<ArrayBuffer>)
        } catch (e) {
          // A tensor that cannot be cloned: the caller's mistake, not the thread's.
          best.inflight.delete(job.id)
          job.done({ kind: "failed", id: job.id, error: { reason: "RunFailed", modelHash: "", detail: `cannot send the inputs to the thread: ${errorText(e)}` } })
        }
      }
    }

    const spawn = (slot: Slot): void => {
      slot.state = "starting"
      slot.lastError = undefined
      const data: ThreadConfig = {
        index: slot.index,
        executionProvider: config.executionProvider,
        intraOpNumThreads: config.intraOpNumThreads,
        sessionsMax: config.sessionsMax
      }
      const worker = new Worker(BOOT_URL, { workerData: data })
      slot.worker = worker
      slot.threadId = worker.threadId
      const startTimer = setTimeout(() => {
        if (slot.worker === worker && slot.state === "starting") {
          // Not terminated (it may be inside onnxruntime): let go, and told to exit when it can.
          abandon(slot, worker, `did not start within ${config.startTimeoutMillis} ms`)
        }
      }, config.startTimeoutMillis)
      startTimer.unref()

      worker.on("message", (reply: ThreadReply) => {
        if (slot.worker !== worker) return
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
            slot.lastError = reply.error.detail
            const notify = firstStart.get(slot.index)
            if (notify !== undefined) {
              firstStart.delete(slot.index)
              notify(toError(reply.error))
            }
            worker.postMessage({ kind: "close" } satisfies ThreadRequest)
            return
          }
          default: {
            const job = slot.inflight.get(reply.id)
            if (job === undefined) return
            slot.inflight.delete(reply.id)
            if (reply.kind === "ran") slot.runs++
            if (!job.abandoned) job.done(reply)
            pump()
          }
        }
      })
      worker.on("error", (e) => {
        if (slot.worker === worker) slot.lastError = errorText(e)
      })
      worker.on("exit", (code) => {
        clearTimeout(startTimer)
        if (slot.worker !== worker) return
        died(slot, `thread exited with code ${code}${slot.lastError === undefined ? "" : `: ${slot.lastError}`}`)
      })
    }

    /** The slot's thread is gone: fail its runs, and start another unless closing. */
    const died = (slot: Slot, detail: string): void => {
      const wasStarting = slot.state === "starting"
      slot.worker = undefined
      slot.state = "dead"
      const jobs = [...slot.inflight.values()]
      slot.inflight.clear()
      for (const job of jobs) if (!job.abandoned) job.died(new InferenceThreadDied({ thread: slot.index, detail }))
      const notify = firstStart.get(slot.index)
      if (notify !== undefined) {
        firstStart.delete(slot.index)
        notify(new InferenceThreadDied({ thread: slot.index, detail: `failed to start: ${detail}` }))
        return
      }
      if (closed) return
      slot.restarts++
      if (wasStarting) {
        // A replacement that cannot start: try again later; other threads carry the load.
        setTimeout(() => {
          if (!closed && slot.state === "dead") spawn(slot)
        }, config.restartDelayMillis).unref()
      } else spawn(slot)
      pump()
    }

    /** Gives up on a thread without terminating it (see the module doc): it exits when it reads "close". */
    const abandon = (slot: Slot, worker: Worker, detail: string): void => {
      worker.postMessage({ kind: "close" } satisfies ThreadRequest)
      worker.unref()
      if (slot.worker === worker) died(slot, detail)
    }

    /** Asks every thread to exit; waits up to CLOSE_WAIT_MILLIS, then lets the busy ones go. */
    const closeAll = Effect.promise(async () => {
      closed = true
      for (const job of queue.splice(0)) job.abandoned = true
      const workers = slots.flatMap((s) => (s.worker === undefined ? [] : [s.worker]))
      const exits = workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once("exit", () => resolve())
            w.postMessage({ kind: "close" } satisfies ThreadRequest)
          })
      )
      let timer: NodeJS.Timeout | undefined
      await Promise.race([Promise.all(exits), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MILLIS)))])
      clearTimeout(timer)
      for (const w of workers) w.unref()
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
          spawn(slot)
        }
      }).pipe(Effect.onError(() => closeAll)),
      () => closeAll
    )

    const submit = (build: (id: number) => { readonly message: ThreadRequest; readonly transfer: ReadonlyArray<ArrayBuffer> }) =>
      Effect.async<ThreadReply, InferenceEngineError>((resume) => {
        if (closed) {
          resume(Effect.fail(new InferenceThreadDied({ thread: -1, detail: "the engine is closed" })))
          return
        }
        const id = nextId++
        const { message, transfer } = build(id)
        const job: Job = {
          id,
          message,
          transfer,
          abandoned: false,
          done: (reply) => resume(Effect.succeed(reply)),
          died: (error) => resume(Effect.fail(error))
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
      submit((id) => {
        const wire = toWire(inputs)
        return { message: { kind: "run", id, hash: weightsHash, path: modelPath, inputs: wire }, transfer: options?.transferInputs === true ? buffersOf(wire) : [] }
      }).pipe(
        Effect.flatMap((reply) =>
          reply.kind === "ran"
            ? Effect.succeed(fromWire(reply.outputs))
            : reply.kind === "failed"
              ? Effect.fail(toError(reply.error))
              : Effect.dieMessage(`unexpected reply ${reply.kind} to a run`)
        )
      )

    /** Warm one thread directly (bypassing the queue: a warm is per thread). */
    const warmOn = (slot: Slot, weightsHash: string, modelPath: string) =>
      Effect.async<SessionInfo, InferenceEngineError>((resume) => {
        if (slot.state !== "ready" || slot.worker === undefined) {
          resume(Effect.fail(new InferenceThreadDied({ thread: slot.index, detail: "not running" })))
          return
        }
        const id = nextId++
        const job: Job = {
          id,
          message: { kind: "warm", id, hash: weightsHash, path: modelPath },
          transfer: [],
          abandoned: false,
          done: (reply) =>
            resume(
              reply.kind === "warmed"
                ? Effect.succeed(reply.info)
                : reply.kind === "failed"
                  ? Effect.fail(toError(reply.error))
                  : Effect.dieMessage(`unexpected reply ${reply.kind} to a warm`)
            ),
          died: (error) => resume(Effect.fail(error))
        }
        slot.inflight.set(id, job)
        slot.worker.postMessage(job.message)
        return Effect.sync(() => {
          job.abandoned = true
        })
      })

    const warm = (weightsHash: string, modelPath: string) =>
      Effect.suspend(() => {
        const ready = slots.filter((s) => s.state === "ready")
        if (ready.length === 0) {
          return submit((id) => ({ message: { kind: "warm", id, hash: weightsHash, path: modelPath }, transfer: [] })).pipe(
            Effect.flatMap((reply) =>
              reply.kind === "warmed" ? Effect.succeed(reply.info) : reply.kind === "failed" ? Effect.fail(toError(reply.error)) : Effect.dieMessage(`unexpected reply ${reply.kind}`)
            )
          )
        }
        return Effect.forEach(ready, (s) => warmOn(s, weightsHash, modelPath), { concurrency: "unbounded" }).pipe(Effect.map((infos) => infos[0]!))
      })

    return InferenceEngine.of({
      run,
      warm,
      stats: Effect.sync(() =>
        slots.map((s) => ({ index: s.index, state: s.state, inflight: s.inflight.size, runs: s.runs, restarts: s.restarts, threadId: s.threadId }))
      ),
      crashThread: (index) =>
        Effect.sync(() => {
          const slot = slots[index]
          slot?.worker?.postMessage({ kind: "crash" } satisfies ThreadRequest)
        }),
      config
    })
  })

export const InferenceEngineLive = (config: Partial<InferenceEngineConfig> = {}): Layer.Layer<InferenceEngine, InferenceEngineError> =>
  Layer.scoped(InferenceEngine, makeInferenceEngine(config))

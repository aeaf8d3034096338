/**
 * OnnxSessionPool: warm onnxruntime sessions, one per model hash, for the
 * GPU worker's execution path (DESIGN.md, "AI shard", stage 4).
 *
 * - A session is created on first use from the model's source (a file path
 *   or bytes, registered with `warm` or found by the config's `locate`), and
 *   reused. Concurrent first uses of one model create it once.
 * - Beyond `sessionsMax` loaded sessions the least recently used one is
 *   evicted; a session still running is released when its last run ends.
 * - The execution provider comes from config: "cpu", or "cuda" where the
 *   CUDA provider libraries are installed. The layer probes the provider
 *   when it is built, so a node configured for CUDA on a machine without it
 *   fails at start with `ExecutionProviderUnavailable`, not on a request.
 *
 * The hot path (`run` on a warm model) is a map lookup, one `ort.Tensor`
 * wrapper per input (no copy), `session.run` and a wrapper per output.
 *
 * Mind the thread: onnxruntime-node 1.30's `session.run` returns a promise,
 * but the run itself is synchronous on the calling JavaScript thread (the
 * binding calls it from a `setImmediate`; the intra-op threads only split
 * operators). So is session creation. A run of N ms blocks this thread's
 * event loop for N ms, and runs in one process never overlap. For a small
 * model that is the cheapest way to run it; a process that must stay
 * responsive during long runs should host the pool in a worker thread or
 * its own process (as `topai worker start` does).
 *
 * Inputs are not checked here:
 * the caller checks requests against the model's signature
 * (`checkInputs`) before they reach a worker; onnxruntime's own error for a
 * bad input still comes back as a typed `RunFailed`.
 */
import { Context, Deferred, Effect, Either, Exit, FiberId, Layer, Schema, type Scope } from "effect"
import ort from "onnxruntime-node"
import type { TensorMap } from "../../domain/ai/tensor.js"
import { fromOrtOutputs, toOrtFeeds } from "./ortTensor.js"

export type ExecutionProvider = "cpu" | "cuda"

/** Where a model's ONNX file is. */
export type ModelSource = { readonly path: string } | { readonly bytes: Uint8Array }

export class InferenceError extends Schema.TaggedError<InferenceError>()("InferenceError", {
  reason: Schema.Literal("ExecutionProviderUnavailable", "ModelNotFound", "LoadFailed", "RunFailed", "UnsupportedOutput"),
  modelHash: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.reason}${this.modelHash === "" ? "" : ` (model ${this.modelHash})`}: ${this.detail}`
  }
}

export interface OnnxSessionPoolConfig {
  readonly executionProvider: ExecutionProvider
  /** Threads of one run's operators; 0 lets onnxruntime choose (one per core). */
  readonly intraOpNumThreads: number
  /** Loaded sessions kept; the least recently used beyond this is released. */
  readonly sessionsMax: number
  /** Finds a model not registered with `warm` (the blob store, in a worker). */
  readonly locate: (modelHash: string) => Effect.Effect<ModelSource, InferenceError>
}

export const DEFAULT_POOL_CONFIG: OnnxSessionPoolConfig = {
  executionProvider: "cpu",
  intraOpNumThreads: 1,
  sessionsMax: 8,
  locate: (modelHash) =>
    Effect.fail(new InferenceError({ reason: "ModelNotFound", modelHash, detail: "no source registered for this model" }))
}

export interface SessionInfo {
  readonly inputNames: ReadonlyArray<string>
  readonly outputNames: ReadonlyArray<string>
}

export interface OnnxSessionPoolService {
  /** Runs a model on inputs (loading it first if it is cold). */
  readonly run: (modelHash: string, inputs: TensorMap) => Effect.Effect<TensorMap, InferenceError>
  /** Loads a model now; with a source, registers it for later loads too. */
  readonly warm: (modelHash: string, source?: ModelSource) => Effect.Effect<SessionInfo, InferenceError>
  /** Releases a model's session (after its running calls). */
  readonly evict: (modelHash: string) => Effect.Effect<void>
  /** Hashes of the loaded sessions, least recently used first. */
  readonly loaded: Effect.Effect<ReadonlyArray<string>>
}

export class OnnxSessionPool extends Context.Tag("topai/OnnxSessionPool")<OnnxSessionPool, OnnxSessionPoolService>() {}

interface Entry {
  readonly hash: string
  session: ort.InferenceSession | undefined
  readonly ready: Deferred.Deferred<ort.InferenceSession, InferenceError>
  inflight: number
  evicted: boolean
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).slice(0, 2000)

/** Identity on float[1] (IR 7, opset 13): 79 bytes, written by test/ai/support/onnxBuilder.ts. */
const PROBE_MODEL = Uint8Array.from(
  Buffer.from("CAcSBXRvcGFpGgExOjsKEAoBeBIBeSIISWRlbnRpdHkSBXByb2JlWg8KAXgSCgoICAESBAoCCAFiDwoBeRIKCggIARIECgIIAUIECgAQDQ==", "base64")
)

export const sessionOptions = (config: Pick<OnnxSessionPoolConfig, "executionProvider" | "intraOpNumThreads">): ort.InferenceSession.SessionOptions => ({
  executionProviders: [config.executionProvider],
  ...(config.intraOpNumThreads > 0 ? { intraOpNumThreads: config.intraOpNumThreads } : {}),
  interOpNumThreads: 1,
  graphOptimizationLevel: "all",
  logSeverityLevel: 3
})

/** Creates a session on the probe model with the configured provider (the provider's libraries load here). */
const probeProvider = (config: OnnxSessionPoolConfig): Effect.Effect<void, InferenceError> =>
  Effect.tryPromise({
    try: async () => {
      const session = await ort.InferenceSession.create(PROBE_MODEL, sessionOptions(config))
      await session.release()
    },
    catch: (e) =>
      new InferenceError({
        reason: "ExecutionProviderUnavailable",
        modelHash: "",
        detail: `execution provider "${config.executionProvider}" is not available on this machine: ${errorText(e)}`
      })
  })

export const makeOnnxSessionPool = (config: OnnxSessionPoolConfig): Effect.Effect<OnnxSessionPoolService, InferenceError, Scope.Scope> =>
  Effect.gen(function* () {
    if (!(config.sessionsMax >= 1)) return yield* Effect.dieMessage(`sessionsMax must be ≥ 1, got ${config.sessionsMax}`)
    yield* probeProvider(config)
    const options = sessionOptions(config)
    const sources = new Map<string, ModelSource>()
    /** Insertion order is recency: the first entry is the least recently used. */
    const entries = new Map<string, Entry>()

    const release = (entry: Entry): void => {
      const session = entry.session
      entry.session = undefined
      if (session !== undefined) session.release().catch(() => undefined)
    }

    const remove = (entry: Entry): void => {
      if (entries.get(entry.hash) === entry) entries.delete(entry.hash)
      entry.evicted = true
      if (entry.inflight === 0) release(entry)
    }

    const evictOverflow = (keep: Entry): void => {
      let loaded = 0
      for (const e of entries.values()) if (e.session !== undefined) loaded++
      for (const e of entries.values()) {
        if (loaded <= config.sessionsMax) return
        if (e === keep || e.session === undefined) continue
        remove(e)
        loaded--
      }
    }

    const touch = (entry: Entry): void => {
      entries.delete(entry.hash)
      entries.set(entry.hash, entry)
    }

    const create = (hash: string): Effect.Effect<ort.InferenceSession, InferenceError> =>
      Effect.gen(function* () {
        const source = sources.get(hash) ?? (yield* config.locate(hash))
        return yield* Effect.tryPromise({
          try: () => ("path" in source ? ort.InferenceSession.create(source.path, options) : ort.InferenceSession.create(source.bytes, options)),
          catch: (e) => new InferenceError({ reason: "LoadFailed", modelHash: hash, detail: errorText(e) })
        })
      })

    /** The entry of a loaded session, loading it once however many fibers ask. */
    const acquire = (hash: string): Effect.Effect<Entry, InferenceError> =>
      Effect.suspend(() => {
        const existing = entries.get(hash)
        if (existing !== undefined) {
          touch(existing)
          return existing.session !== undefined ? Effect.succeed(existing) : Deferred.await(existing.ready).pipe(Effect.as(existing))
        }
        const entry: Entry = { hash, session: undefined, ready: Deferred.unsafeMake(FiberId.none), inflight: 0, evicted: false }
        entries.set(hash, entry)
        // Uninterruptible: other fibers may be waiting on this load.
        return create(hash).pipe(
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.sync(() => {
              if (Exit.isSuccess(exit)) {
                entry.session = exit.value
                if (entry.evicted) release(entry)
                else evictOverflow(entry)
              } else if (entries.get(hash) === entry) entries.delete(hash)
              Deferred.unsafeDone(entry.ready, exit)
              return exit
            })
          ),
          Effect.uninterruptible,
          Effect.flatten,
          Effect.as(entry)
        )
      })

    const runOn = (entry: Entry, inputs: TensorMap): Effect.Effect<TensorMap, InferenceError> =>
      Effect.async<TensorMap, InferenceError>((resume) => {
        const session = entry.session
        if (session === undefined) {
          // Evicted between lookup and run: look it up (and load it) again.
          resume(run(entry.hash, inputs))
          return
        }
        entry.inflight++
        const done = (): void => {
          entry.inflight--
          if (entry.evicted && entry.inflight === 0) release(entry)
        }
        let pending: Promise<ort.InferenceSession.ReturnType>
        try {
          pending = session.run(toOrtFeeds(inputs))
        } catch (e) {
          done()
          resume(Effect.fail(new InferenceError({ reason: "RunFailed", modelHash: entry.hash, detail: errorText(e) })))
          return
        }
        pending.then(
          (outputs) => {
            done()
            const tensors = fromOrtOutputs(outputs)
            resume(
              Either.isRight(tensors)
                ? Effect.succeed(tensors.right)
                : Effect.fail(new InferenceError({ reason: "UnsupportedOutput", modelHash: entry.hash, detail: tensors.left }))
            )
          },
          (e: unknown) => {
            done()
            resume(Effect.fail(new InferenceError({ reason: "RunFailed", modelHash: entry.hash, detail: errorText(e) })))
          }
        )
      })

    const run = (modelHash: string, inputs: TensorMap): Effect.Effect<TensorMap, InferenceError> =>
      Effect.suspend(() => {
        const entry = entries.get(modelHash)
        if (entry !== undefined && entry.session !== undefined) {
          touch(entry)
          return runOn(entry, inputs)
        }
        return Effect.flatMap(acquire(modelHash), (e) => runOn(e, inputs))
      })

    const warm = (modelHash: string, source?: ModelSource): Effect.Effect<SessionInfo, InferenceError> =>
      Effect.suspend(() => {
        if (source !== undefined) sources.set(modelHash, source)
        return acquire(modelHash)
      }).pipe(
        Effect.flatMap((e) =>
          e.session === undefined
            ? Effect.fail(new InferenceError({ reason: "LoadFailed", modelHash, detail: "evicted while loading" }))
            : Effect.succeed({ inputNames: e.session.inputNames, outputNames: e.session.outputNames })
        )
      )

    const evict = (modelHash: string): Effect.Effect<void> =>
      Effect.sync(() => {
        const entry = entries.get(modelHash)
        if (entry !== undefined && entry.session !== undefined) remove(entry)
      })

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const e of [...entries.values()]) remove(e)
      })
    )

    return OnnxSessionPool.of({
      run,
      warm,
      evict,
      loaded: Effect.sync(() => [...entries.values()].filter((e) => e.session !== undefined).map((e) => e.hash))
    })
  })

export const OnnxSessionPoolLive = (config: Partial<OnnxSessionPoolConfig> = {}): Layer.Layer<OnnxSessionPool, InferenceError> =>
  Layer.scoped(OnnxSessionPool, makeOnnxSessionPool({ ...DEFAULT_POOL_CONFIG, ...config }))

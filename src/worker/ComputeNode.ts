/**
 * A compute node (GPU worker) as an Effect program: it connects to a node
 * over RPC, registers with a signed offer (GPU class, devices, stake,
 * endpoint), keeps itself online with heartbeats, and runs the tasks the
 * node streams to it (`worker.tasks`), `devices` at a time (two taken per
 * engine thread, so a thread has its next run queued):
 *
 *   weights  the blob cache under `<dataDir>/blobs` (content-addressed);
 *            missing weights come from the node by `blob.get` in
 *            BLOB_CHUNK_BYTES chunks and are stored only if they hash to
 *            the assignment's sha256; cached ones are re-hashed once per
 *            process before first use
 *   request  only a task the developer asked for runs: its id must be the
 *            digest of the developer's request (the node's chain, the model,
 *            the grant's nonce, these inputs' hash, the call's nonce), signed
 *            with the grant's key; else `NotRequested`, before any weights
 *            are fetched (so the result signature binds the inputs)
 *   run      on the InferenceEngine (child processes under a memory limit:
 *            the event loop that answers the node never runs a model), killed
 *            at the assignment's `runDeadlineMs` (the model's verified cost);
 *            a run stopped at a limit is reported with `overrun`, and the
 *            node charges the call
 *   answer   `worker.result` with the outputs (tensors as bytes), their
 *            fingerprint at the model's tolerance and the worker's
 *            signature over `resultDigest(task, fingerprint, execMsOf(millis))`
 *            (the run time is paid, so it is signed too); or
 *            `worker.failed` with the reason in words
 *
 * It may serve several nodes at once (every validator is an AI gateway):
 * one connection per node, each registered (its own signed offer and fresh
 * nonce), heartbeating and taking that node's assignments, all run on the
 * one engine. A task holds one of `threads × TASKS_PER_THREAD` slots shared
 * by every connection; each connection waits for a slot before it takes its
 * next assignment, and waiters are served in turn, so a node that floods
 * the worker does not starve another.
 *
 * On chain first: before it registers with a node, the worker reads its
 * registration on the AI shard there (`worker.onChain`); if there is none,
 * or it names another class or endpoint, it submits `worker.register
 * {gpuClass, devices, endpoint}` signed with its own key (fee 0, its
 * AI-shard account's nonce) and waits until the node shows it — once per
 * chain: a node names its chain (its genesis hash), so a node of a chain the
 * worker.register was already sent to only waits to see it, and a node of
 * another chain gets its own. So a worker registers on
 * each chain once, however often it restarts; nodes
 * schedule only workers registered there. A node without an AI shard (a
 * stand-in) skips this.
 *
 * When a node goes away (a call fails or times out, the task stream
 * ends), everything of that connection stops — its in-flight tasks too (the
 * node reassigns them) — and that node is dialled again with capped
 * exponential back-off, then registered again; the other connections go
 * on. A registration a node refuses (bad signature, bad offer, a bad
 * request) ends that node's connection for good: retrying would not change
 * the answer; once every node has refused, the program ends with the error.
 *
 * `startComputeNode` runs it in the caller's scope and hands back a handle
 * (for an in-process worker and for tests); `runComputeNode` runs it until
 * interrupted (the CLI).
 */
import { Buffer } from "node:buffer"
import { randomBytes } from "node:crypto"
import { join } from "node:path"
import { Rpc, RpcClient, RpcGroup } from "@effect/rpc"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import { Cause, Clock, Deferred, Duration, Effect, Either, Fiber, FiberSet, Layer, Option, Schedule, Schema, Stream } from "effect"
import type { Scope } from "effect"
import { outputFingerprint } from "../../domain/ai/fingerprint.js"
import {
  checkTaskRequest,
  execMsOf,
  overrunDigest,
  resultDigest,
  signMessage,
  taskIdOf,
  taskRequestDigest,
  workerRegistrationDigest,
  type TaskRequest
} from "../../domain/ai/signedMessages.js"
import { inputHash } from "../../domain/ai/inputHash.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { decodeTensorMapJson, tensorMapToWire, type Tensor, type TensorMap } from "../../domain/ai/tensor.js"
import type { Address, PrivateKey } from "../../domain/chain/keys.js"
import { BlobError } from "../../infra/blobstore/BlobStore.js"
import { makeFsBlobStore } from "../../infra/blobstore/FsBlobStore.js"
import { makeInferenceEngine, type InferenceEngineConfig, type InferenceEngineError, type InferenceEngineService } from "../../infra/inference/InferenceThread.js"
import { AiRpcs, BLOB_CHUNK_BYTES, type TaskAssignment, WorkerOverrun, WorkerRejected } from "../api/AiRpcs.js"
import { AccountGetRpc, InvalidRequest, NodeStatus, NodeUnavailable, TxGetRpc, TxSubmitRpc } from "../api/NodeRpcs.js"
import { bytesToHex, hexToBytes } from "../../domain/chain/hex.js"
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from "../../domain/chain/keys.js"
import type { SignatureVerifierService } from "../../infra/crypto/SignatureVerifier.js"
import { BEACON_SHARD } from "../../domain/chain/sharding.js"
import { isAiShardKind, isBeaconKind, signTransaction, TransactionBody } from "../../domain/chain/transaction.js"
import { protocolLayer } from "../client/index.js"
import { RequestLimits } from "../api/requestLimits.js"
import { makeFairSlots } from "./FairSlots.js"

// ---------------------------------------------------------------- the client

/**
 * The calls a compute node makes: `node.status`, the AI shard's group, and
 * `account.get`, `tx.submit`, `tx.get` for its `worker.register` on chain.
 * A client of the node's whole group (NodeRpcs, once it holds AiRpcs) has
 * these and more, so it can be passed where a ComputeNodeClient is asked.
 */
export class ComputeNodeRpcs extends RpcGroup.make(
  Rpc.make("node.status", { success: NodeStatus, error: NodeUnavailable }),
  AccountGetRpc,
  TxSubmitRpc,
  TxGetRpc
)
  .merge(AiRpcs)
  .middleware(RequestLimits) {}

export type ComputeNodeClient = RpcClient.RpcClient<RpcGroup.Rpcs<typeof ComputeNodeRpcs>, RpcClientError>

/** A client over WebSocket (`ws://…/ws`) or HTTP (`http://…/rpc`), closed with the caller's scope. */
export const makeComputeNodeClient = (url: string): Effect.Effect<ComputeNodeClient, never, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Layer.build(protocolLayer(url))
    return yield* RpcClient.make(ComputeNodeRpcs).pipe(Effect.provide(context))
  })

// ---------------------------------------------------------------- options

/** A node: a URL (a fresh client per connection), or an effect giving a client (run once per connection). */
export type NodeTarget = string | Effect.Effect<ComputeNodeClient, unknown, Scope.Scope>

export interface ComputeNodeOptions {
  /** The node, or the nodes (each served on its own connection; at least one, URLs not repeated). */
  readonly rpc: NodeTarget | ReadonlyArray<NodeTarget>
  /** The worker's key: its address is the worker id; it signs registrations and results. */
  readonly key: PrivateKey
  /** A class of the genesis GPU table (CPU, RTX4090, A100, H100, ...). */
  readonly gpuClass: string
  /** Devices offered: tasks run at most this many at a time (and the engine has this many threads by default). */
  readonly devices: number
  readonly stake: bigint
  /** Where the worker says it is (informational: the worker dials the node). */
  readonly endpoint: string
  /** The blob cache is `<dataDir>/blobs` unless `blobDir` says otherwise. */
  readonly dataDir: string
  /**
   * Where cached weights live (default `<dataDir>/blobs`). A worker in the
   * node's own process may point this at the node's blob store directory:
   * the store is content-addressed, so the two share files safely and the
   * worker never downloads what the node already holds.
   */
  readonly blobDir?: string | undefined
  /** The inference engine; `threads` defaults to `devices`. */
  readonly engine?: Partial<InferenceEngineConfig> | undefined
  /** Default 2 s. */
  readonly heartbeatInterval?: Duration.DurationInput | undefined
  /** Each unary call to the node gives up after this (default 10 s). */
  readonly callTimeout?: Duration.DurationInput | undefined
  /** Back-off after a lost connection: doubles from `reconnectInitial` (250 ms) to `reconnectMax` (5 s). */
  readonly reconnectInitial?: Duration.DurationInput | undefined
  readonly reconnectMax?: Duration.DurationInput | undefined
  /**
   * Checks the developer's request signatures off the event loop, and one the node in the same process checked
   * already (its memo) is not checked again (devnet's in-process workers). Default: noble in the calling thread.
   */
  readonly verifier?: SignatureVerifierService | undefined
  /**
   * FOR TESTS ONLY: a lying worker. Every output is perturbed before it is
   * fingerprinted and signed, so its fingerprints disagree with honest
   * workers' (the quorum tests need one). Never set this on a real worker:
   * the node will mark it wrong and, with the economics, slash its stake.
   */
  readonly faultLie?: boolean | undefined
}

export const DEFAULT_HEARTBEAT_INTERVAL = Duration.seconds(2)
export const DEFAULT_CALL_TIMEOUT = Duration.seconds(10)
export const DEFAULT_RECONNECT_INITIAL = Duration.millis(250)
export const DEFAULT_RECONNECT_MAX = Duration.seconds(5)
/**
 * Tasks taken per engine thread. The engine queues up to two runs on each
 * thread, so while one task's result is fingerprinted, signed and sent, and
 * the next task's inputs decoded, the thread already runs that next task.
 * Taking only one per thread left the device idle for all of that (on a
 * 10 ms model it halved throughput).
 */
export const TASKS_PER_THREAD = 2
/** How long the worker waits for its worker.register to be in a block and shown by the node. */
export const CHAIN_REGISTRATION_WAIT = Duration.seconds(60)

// ---------------------------------------------------------------- errors

/** A call to the node that got no answer in time. */
export class CallTimedOut extends Schema.TaggedError<CallTimedOut>()("CallTimedOut", {
  call: Schema.String,
  millis: Schema.Number
}) {
  override get message() {
    return `${this.call}: no answer within ${this.millis} ms`
  }
}

/** The node closed the task stream or forgot this worker's session: register again. */
export class SessionLost extends Schema.TaggedError<SessionLost>()("SessionLost", {
  detail: Schema.String
}) {
  override get message() {
    return `session lost: ${this.detail}`
  }
}

/** Why one task could not be run; sent to the node as `worker.failed`. */
export class TaskFailure extends Schema.TaggedError<TaskFailure>()("TaskFailure", {
  reason: Schema.Literal(
    "WeightsUnavailable",
    "WeightsMismatch",
    "BadInputs",
    "BadAssignment",
    "InferenceFailed",
    "TimedOut",
    "Overran",
    /** The task id is not the digest of the developer's request for these inputs, or the grant's key did not sign it. */
    "NotRequested"
  ),
  detail: Schema.String,
  /** With `Overran`: which limit stopped the run, and when. */
  overrun: Schema.optional(WorkerOverrun)
}) {
  override get message() {
    return `${this.reason}: ${this.detail}`
  }
}

/** The chain's execution refused this worker's `worker.register` (an unknown GPU class, ...): retrying would not change it. */
export class ChainRegistrationRefused extends Schema.TaggedError<ChainRegistrationRefused>()("ChainRegistrationRefused", {
  tx: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `worker.register ${this.tx} was refused on chain: ${this.detail}`
  }
}

/** The node refused this worker's registration, or the chain its worker.register: the program stops with it. */
export type ComputeNodeFatal = WorkerRejected | InvalidRequest | ChainRegistrationRefused

export type ComputeNodeError = ComputeNodeFatal | InferenceEngineError | BadNodeList

// ---------------------------------------------------------------- the handle

export interface Registration {
  readonly worker: string
  readonly session: string
  readonly chainId: bigint
  /** The node's index in `rpc`, and its URL (or "node i"). */
  readonly node: number
  readonly where: string
  /** 1 for the first registration with this node, then one more per reconnection. */
  readonly count: number
}

/** One node's connection, as `stats` shows it. */
export interface NodeConnectionStats {
  readonly where: string
  readonly connected: boolean
  readonly registrations: number
  /** Why the node refused this worker for good, if it did. */
  readonly refused: string | null
}

export interface ComputeNodeStats {
  /** Over every node. */
  readonly registrations: number
  /** worker.register transactions this process submitted (0 when the chain already had this worker). */
  readonly chainRegistrations: number
  readonly tasksDone: number
  readonly tasksFailed: number
  readonly weightsFetched: number
  readonly inFlight: number
  /** Connected to at least one node. */
  readonly connected: boolean
  readonly nodes: ReadonlyArray<NodeConnectionStats>
}

export interface ComputeNodeHandle {
  readonly address: Address
  /** Waits for registration number `count` (default: the first) with node `node` (default 0) and returns its latest one. */
  readonly registered: (count?: number, node?: number) => Effect.Effect<Registration>
  readonly stats: Effect.Effect<ComputeNodeStats>
  readonly engine: InferenceEngineService
  /** The running program; fails with a ComputeNodeFatal once every node has refused the worker. */
  readonly fiber: Fiber.RuntimeFiber<never, ComputeNodeError>
  /** Stops it (as Ctrl-C does): in-flight tasks are dropped, the connection closed, the threads ended. */
  readonly stop: Effect.Effect<void>
}

// ---------------------------------------------------------------- helpers

/** A typed error's message; for a transport failure, the innermost readable reason (ECONNREFUSED, ...). */
const errorText = (e: unknown): string => {
  if (!(e instanceof RpcClientError)) {
    return typeof e === "object" && e !== null && "message" in e && typeof e.message === "string" && e.message !== "" ? e.message : String(e)
  }
  const messages: Array<string> = []
  let current: unknown = e
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const message = (current as { readonly message?: unknown }).message
    if (typeof message === "string" && message !== "" && !message.startsWith("An error has occurred")) messages.push(message)
    const next = current as { readonly cause?: unknown; readonly error?: unknown }
    current = next.cause ?? next.error
  }
  const reason = messages[messages.length - 1] ?? String(e)
  const close = /^Close: (\d+)$/.exec(reason)
  return close === null ? reason : `connection closed, code ${close[1]}`
}

const short = (hash: string): string => (hash.length > 16 ? `${hash.slice(0, 8)}…${hash.slice(-4)}` : hash)

const mib = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`

/**
 * The lie of `faultLie`: the first element of every output moves by more
 * than the tolerance (floats), or flips (integers, bools), so the quantized
 * encoding — and with it the fingerprint — differs from an honest run's.
 */
export const perturbOutputs = (outputs: TensorMap, tolerance: number): TensorMap => {
  const out: Record<string, Tensor> = {}
  for (const name of Object.keys(outputs)) {
    const t = outputs[name]!
    const data = t.data.slice() as typeof t.data
    if (data.length > 0) {
      switch (t.type) {
        case "float32":
        case "float64": {
          const x = (data as Float32Array | Float64Array)[0]!
          ;(data as Float32Array | Float64Array)[0] = Number.isFinite(x) ? x + Math.abs(x) + 3 * tolerance + 1 : 0
          break
        }
        case "int64":
          ;(data as BigInt64Array)[0] = (data as BigInt64Array)[0]! ^ 1n
          break
        default:
          ;(data as Int32Array | Uint8Array)[0] = (data as Int32Array | Uint8Array)[0]! ^ 1
      }
    }
    out[name] = { type: t.type, dims: t.dims, data } as Tensor
  }
  return out
}

// ---------------------------------------------------------------- the program

/** The nodes to serve, refused before any connection: none, or a URL given twice (a worker registers once per node). */
export class BadNodeList extends Schema.TaggedError<BadNodeList>()("BadNodeList", {
  reason: Schema.Literal("Empty", "Duplicate"),
  detail: Schema.String
}) {
  override get message() {
    return `${this.reason}: ${this.detail}`
  }
}

/** The nodes of `rpc`, checked: at least one, no URL twice. */
export const nodeTargets = (rpc: ComputeNodeOptions["rpc"]): Either.Either<ReadonlyArray<NodeTarget>, BadNodeList> => {
  const targets: ReadonlyArray<NodeTarget> = typeof rpc === "string" || Effect.isEffect(rpc) ? [rpc] : (rpc as ReadonlyArray<NodeTarget>)
  if (targets.length === 0) return Either.left(new BadNodeList({ reason: "Empty", detail: "a compute node needs at least one node to serve" }))
  const urls = targets.filter((t): t is string => typeof t === "string")
  const twice = urls.find((u, i) => urls.indexOf(u) !== i)
  return twice === undefined
    ? Either.right(targets)
    : Either.left(new BadNodeList({ reason: "Duplicate", detail: `${twice} is listed twice: a compute node connects once to each node` }))
}

export const startComputeNode = (
  options: ComputeNodeOptions
): Effect.Effect<ComputeNodeHandle, InferenceEngineError | BadNodeList, Scope.Scope> =>
  Effect.gen(function* () {
    const { key, gpuClass, devices, stake, endpoint } = options
    const address = key.publicKey.address
    const heartbeatInterval = Duration.decode(options.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL)
    const callTimeout = Duration.decode(options.callTimeout ?? DEFAULT_CALL_TIMEOUT)
    const reconnectInitial = Duration.decode(options.reconnectInitial ?? DEFAULT_RECONNECT_INITIAL)
    const reconnectMax = Duration.decode(options.reconnectMax ?? DEFAULT_RECONNECT_MAX)
    const targets = yield* nodeTargets(options.rpc)
    const nodes = targets.map((t, i) => ({
      where: typeof t === "string" ? t : targets.length === 1 ? "the node" : `node ${i}`,
      connect: typeof t === "string" ? makeComputeNodeClient(t) : t,
      connected: false,
      registrations: 0,
      refused: null as string | null,
      latest: undefined as Registration | undefined
    }))
    /** Which node a client talks to (for the logs of what is shared between connections, e.g. a download). */
    const whereOf = new WeakMap<ComputeNodeClient, string>()
    const faultLie = options.faultLie === true

    const blobDir = options.blobDir ?? join(options.dataDir, "blobs")
    const blobs = yield* Effect.sync(() => makeFsBlobStore(blobDir))
    const engine = yield* makeInferenceEngine({ threads: devices, ...options.engine })
    const scope = yield* Effect.scope

    const stats = { chainRegistrations: 0, tasksDone: 0, tasksFailed: 0, weightsFetched: 0, inFlight: 0 }
    const waiters: Array<{ readonly node: number; readonly count: number; readonly deferred: Deferred.Deferred<Registration> }> = []
    const announce = (r: Registration) =>
      Effect.suspend(() => {
        nodes[r.node]!.latest = r
        const ready = waiters.filter((w) => w.node === r.node && w.count <= r.count)
        for (const w of ready) waiters.splice(waiters.indexOf(w), 1)
        return Effect.forEach(ready, (w) => Deferred.succeed(w.deferred, r), { discard: true })
      })

    yield* Effect.logInfo(
      `compute node ${address}: ${devices} × ${gpuClass}, stake ${stake}, engine ${engine.config.threads} thread(s) ` +
        `(${engine.config.executionProvider}, ${engine.config.intraOpNumThreads} intra-op), blobs in ${blobDir}` +
        (faultLie ? " — FAULT-LIE: outputs are perturbed (tests only)" : "")
    )

    const call = <A, E>(name: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | CallTimedOut> =>
      Effect.timeoutFail(effect, { duration: callTimeout, onTimeout: () => new CallTimedOut({ call: name, millis: Duration.toMillis(callTimeout) }) })

    // ---- weights: the blob cache, fetched once however many tasks ask

    /** Hashes whose cached file was hashed in this process. */
    const verified = new Set<string>()
    const fetching = new Map<string, Deferred.Deferred<string, TaskFailure>>()

    const blobFailure = (e: BlobError): TaskFailure =>
      new TaskFailure({ reason: e.reason === "HashMismatch" || e.reason === "Corrupt" ? "WeightsMismatch" : "WeightsUnavailable", detail: e.message })

    const download = (client: ComputeNodeClient, hash: string, sizeBytes: number): Effect.Effect<string, TaskFailure> =>
      Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        const chunks = Stream.paginateEffect(0, (offset: number) =>
          call("blob.get", client.blob.get({ hash, offset, length: BLOB_CHUNK_BYTES })).pipe(
            Effect.mapError((e) => new TaskFailure({ reason: "WeightsUnavailable", detail: `blob.get ${short(hash)} at ${offset}: ${errorText(e)}` })),
            Effect.flatMap(({ data, size }) => {
              const bytes = new Uint8Array(Buffer.from(data, "base64"))
              if (size !== sizeBytes) {
                return Effect.fail(new TaskFailure({ reason: "WeightsMismatch", detail: `the node holds ${size} bytes of ${short(hash)}, the task says ${sizeBytes}` }))
              }
              const next = offset + bytes.length
              if (bytes.length === 0 && offset < size) {
                return Effect.fail(new TaskFailure({ reason: "WeightsUnavailable", detail: `blob.get ${short(hash)} returned nothing at ${offset} of ${size}` }))
              }
              return Effect.succeed([bytes, next < size ? Option.some(next) : Option.none()] as const)
            })
          )
        )
        // putStream hashes as it writes and makes the file visible only if it is `hash`.
        const failed: { error: TaskFailure | undefined } = { error: undefined }
        const info = yield* blobs
          .putStream(
            chunks.pipe(
              Stream.tapError((e) => Effect.sync(() => (failed.error = e))),
              Stream.mapError((e) => new BlobError({ reason: "Io", hash, detail: e.message }))
            ),
            hash,
            sizeBytes
          )
          .pipe(Effect.mapError((e) => failed.error ?? blobFailure(e)))
        verified.add(hash)
        stats.weightsFetched++
        const millis = (yield* Clock.currentTimeMillis) - started
        yield* Effect.logInfo(`weights ${short(hash)}: fetched ${mib(info.size)} from ${whereOf.get(client) ?? "the node"} in ${millis} ms, sha256 checked`)
        return yield* blobs.path(hash).pipe(Effect.mapError(blobFailure))
      })

    const ensureWeights = (client: ComputeNodeClient, a: TaskAssignment): Effect.Effect<string, TaskFailure> =>
      Effect.gen(function* () {
        const hash = a.weightsHash
        const cached = yield* blobs.has(hash).pipe(Effect.mapError(blobFailure))
        if (cached) {
          if (!verified.has(hash)) {
            // A cache file changed on disk since it was fetched must not run: read it back through its hash once.
            const bytes = yield* blobs.get(hash).pipe(Effect.mapError(blobFailure))
            if (bytes.length !== a.sizeBytes) {
              return yield* new TaskFailure({ reason: "WeightsMismatch", detail: `the cached ${short(hash)} has ${bytes.length} bytes, the task says ${a.sizeBytes}` })
            }
            verified.add(hash)
          }
          return yield* blobs.path(hash).pipe(Effect.mapError(blobFailure))
        }
        let pending = fetching.get(hash)
        if (pending === undefined) {
          const deferred = yield* Deferred.make<string, TaskFailure>()
          pending = deferred
          fetching.set(hash, deferred)
          // In the node's scope: a task that times out does not abort a download another task will use.
          yield* download(client, hash, a.sizeBytes).pipe(
            Effect.exit,
            Effect.flatMap((exit) => Effect.zipRight(Effect.sync(() => fetching.delete(hash)), Deferred.done(deferred, exit))),
            Effect.forkIn(scope)
          )
        }
        return yield* Deferred.await(pending)
      })

    // ---- one task

    /**
     * `checkTaskRequest`, with the signature through `options.verifier` when there is one. Any doubt (bytes that do
     * not parse, a signature that does not verify) is checked again in the thread, for the same words as without it.
     */
    const checkRequest = (request: TaskRequest, taskId: string, publicKey: string, signature: string) =>
      Effect.gen(function* () {
        const verifier = options.verifier
        const inThread = Effect.sync(() => checkTaskRequest(request, taskId, publicKey, signature))
        if (verifier === undefined || taskId.toLowerCase() !== taskIdOf(request)) return yield* inThread
        const keyBytes = hexToBytes(publicKey.toLowerCase(), PUBLIC_KEY_BYTES)
        const signatureBytes = hexToBytes(signature.toLowerCase(), SIGNATURE_BYTES)
        if (Either.isLeft(keyBytes) || Either.isLeft(signatureBytes)) return yield* inThread
        const valid = yield* verifier.verifyDigest({ digest: taskRequestDigest(request), publicKey: { bytes: keyBytes.right }, signature: signatureBytes.right })
        return valid ? Either.right<void>(undefined) : yield* inThread
      })

    const execute = (client: ComputeNodeClient, chainId: bigint, a: TaskAssignment) =>
      Effect.gen(function* () {
        if (!(a.outputTolerance > 0) || !Number.isFinite(a.outputTolerance)) {
          return yield* new TaskFailure({ reason: "BadAssignment", detail: `output tolerance must be a finite number > 0, got ${a.outputTolerance}` })
        }
        const inputs = decodeTensorMapJson(a.inputs)
        if (Either.isLeft(inputs)) return yield* new TaskFailure({ reason: "BadInputs", detail: inputs.left.message })
        // Only what the developer asked for runs: the task id (which this worker's result signs) must be the digest of the
        // developer's request for these very inputs, signed with the grant's key — so the signature binds the inputs.
        const request = { chainId, model: a.model as Hash32, grantNonce: a.request.grantNonce, inputHash: inputHash(inputs.right), nonce: a.request.nonce }
        const requested = yield* checkRequest(request, a.task, a.request.publicKey, a.request.signature)
        if (Either.isLeft(requested)) return yield* new TaskFailure({ reason: "NotRequested", detail: `${requested.left.reason}: ${requested.left.detail}` })
        const path = yield* ensureWeights(client, a)
        const started = performance.now()
        const options = a.runDeadlineMs === undefined ? { transferInputs: true } : { transferInputs: true, deadlineMillis: a.runDeadlineMs }
        const ran = yield* engine.run(a.weightsHash, path, inputs.right, options).pipe(
          Effect.mapError((e) => {
            if (e._tag !== "InferenceLimitExceeded") return new TaskFailure({ reason: "InferenceFailed", detail: e.message })
            // Signed like a result: a confirmed overrun is charged on chain and these ms are paid (`usage.overran`).
            const millis = Math.max(0, Math.round(e.millis))
            const limit = Math.max(0, Math.round(e.limit))
            const signature = signMessage(overrunDigest(a.task, e.reason, millis, limit), key)
            return new TaskFailure({ reason: "Overran", detail: e.message, overrun: { kind: e.reason, millis, limit, signature } })
          })
        )
        const millis = Math.max(0, Math.round((performance.now() - started) * 1000) / 1000)
        const outputs = faultLie ? perturbOutputs(ran, a.outputTolerance) : ran
        const fingerprint = outputFingerprint(outputs, a.outputTolerance)
        const signature = signMessage(resultDigest(a.task, fingerprint, execMsOf(millis)), key)
        return { outputs: tensorMapToWire(outputs), fingerprint, signature, millis }
      })

    const handleTask = (client: ComputeNodeClient, chainId: bigint, session: string) => (a: TaskAssignment) =>
      Effect.gen(function* () {
        const started = performance.now()
        const outcome = yield* execute(client, chainId, a).pipe(
          Effect.timeoutFail({
            duration: Duration.millis(Math.max(1, a.deadlineMs)),
            onTimeout: () => new TaskFailure({ reason: "TimedOut", detail: `not done within the task's deadline of ${a.deadlineMs} ms` })
          }),
          Effect.either
        )
        const total = Math.round(performance.now() - started)
        if (Either.isRight(outcome)) {
          const r = outcome.right
          const reply = yield* call("worker.result", client.worker.result({ session, task: a.task, ...r })).pipe(Effect.either)
          if (Either.isRight(reply)) {
            stats.tasksDone++
            yield* Effect.logInfo(
              `task ${short(a.task)} (model ${short(a.model)}): done in ${total} ms (run ${r.millis.toFixed(1)} ms), fingerprint ${short(r.fingerprint)}` +
                (reply.right.accepted ? "" : " — the node did not accept it")
            )
          } else yield* Effect.logWarning(`task ${short(a.task)}: the result could not be delivered: ${errorText(reply.left)}`)
        } else {
          stats.tasksFailed++
          const failure = outcome.left
          yield* Effect.logWarning(`task ${short(a.task)} (model ${short(a.model)}): failed after ${total} ms: ${failure.message}`)
          const report = failure.overrun === undefined ? { session, task: a.task, detail: failure.message } : { session, task: a.task, detail: failure.message, overrun: failure.overrun }
          const reply = yield* call("worker.failed", client.worker.failed(report)).pipe(Effect.either)
          if (Either.isLeft(reply)) yield* Effect.logWarning(`task ${short(a.task)}: the failure could not be reported: ${errorText(reply.left)}`)
        }
      }).pipe((body) =>
        Effect.acquireUseRelease(
          Effect.sync(() => stats.inFlight++),
          () => body,
          () => Effect.sync(() => stats.inFlight--)
        )
      )

    // ---- the task slots, shared by every connection

    /**
     * A task holds a slot from before its assignment is taken until its answer
     * is sent. Each connection waits for one slot at a time, and a freed slot
     * goes to the longest waiter (FairSlots), so the nodes with work take turns.
     */
    const slots = yield* makeFairSlots(engine.config.threads * TASKS_PER_THREAD)

    // ---- one connection

    const heartbeats = (client: ComputeNodeClient, session: string) =>
      Effect.gen(function* () {
        for (;;) {
          yield* Effect.sleep(heartbeatInterval)
          const beat = yield* call("worker.heartbeat", client.worker.heartbeat({ session })).pipe(
            Effect.catchTag("WorkerRejected", (e) => Effect.fail(new SessionLost({ detail: `heartbeat refused: ${e.message}` })))
          )
          if (!beat.online) yield* Effect.logWarning(`heartbeat: ${whereOf.get(client) ?? "the node"} reports this worker offline`)
        }
      })

    const tasks = (client: ComputeNodeClient, chainId: bigint, session: string) =>
      Effect.gen(function* () {
        // This connection's running tasks: they end with it (the node reassigns them).
        const running = yield* FiberSet.make<void>()
        const take = (a: TaskAssignment) =>
          Effect.uninterruptibleMask((restore) =>
            restore(slots.take).pipe(
              Effect.zipRight(FiberSet.run(running, Effect.ensuring(restore(handleTask(client, chainId, session)(a)), slots.release))),
              Effect.asVoid
            )
          )
        yield* client.worker.tasks({ session }).pipe(
          Stream.catchTag("WorkerRejected", (e) => Stream.fail(new SessionLost({ detail: `task stream refused: ${e.message}` }))),
          // The next assignment is pulled only once a slot is free: the others wait in the stream, not in the engine.
          Stream.runForEach(take)
        )
        // The stream ended: the tasks already taken finish (their answers go on this session), then register again.
        yield* FiberSet.awaitEmpty(running)
        return yield* new SessionLost({ detail: "the node closed the task stream" })
      }).pipe(Effect.scoped)

    const isFatal = (e: unknown): e is ComputeNodeFatal =>
      (e instanceof WorkerRejected && (e.reason === "BadSignature" || e.reason === "BadRegistration" || e.reason === "ClassMismatch")) ||
      e instanceof InvalidRequest ||
      e instanceof ChainRegistrationRefused

    // ---- on chain: this key's worker.register on the AI shard

    const onChainMatches = (w: { readonly gpuClass: string; readonly endpoint: string }) => w.gpuClass === gpuClass && w.endpoint === endpoint
    const onChain = (client: ComputeNodeClient) =>
      call("worker.onChain", client.worker.onChain({ address })).pipe(
        Effect.map((w) => onChainMatches(w)),
        Effect.catchTag("NotFound", () => Effect.succeed(false))
      )
    /** Until this node's view of the AI shard shows the registration (its block may reach it later than another node's). */
    const untilOnChain = (client: ComputeNodeClient) =>
      onChain(client).pipe(
        Effect.flatMap((shown) => (shown ? Effect.void : Effect.fail("not yet" as const))),
        Effect.retry({ schedule: Schedule.spaced(Duration.millis(200)) }),
        Effect.timeoutFail({
          duration: CHAIN_REGISTRATION_WAIT,
          onTimeout: () => new CallTimedOut({ call: "worker.onChain after worker.register", millis: Duration.toMillis(CHAIN_REGISTRATION_WAIT) })
        })
      )
    /**
     * One connection at a time decides whether to submit. The nodes may share one chain (a
     * devnet's validators) or each run its own (`--node A --node B` of separate `node start`s):
     * a node names its chain (`node.status`: the genesis hash, else the chain id). A node whose
     * registry shows the registration needs nothing; one of a chain we already sent
     * worker.register to only waits until its view shows it (its block may reach it later);
     * a node of another chain gets its own worker.register.
     */
    const chainLock = yield* Effect.makeSemaphore(1)
    /** worker.register txs this process sent, by the chain they were sent to. */
    const sentTo = new Map<string, string>()
    const chainOf = (status: NodeStatus) => status.genesisHash ?? `chain id ${status.chainId}`

    /** Registered on chain with this class and endpoint, or submit worker.register and wait until the node shows it. */
    const ensureOnChain = (client: ComputeNodeClient, status: NodeStatus) =>
      chainLock.withPermits(1)(
        Effect.gen(function* () {
          const aiShard = status.shards.find((x) => x.kind === "ai")?.shard
          if (aiShard === undefined) return
          if (yield* onChain(client)) return
          if (sentTo.has(chainOf(status))) return yield* untilOnChain(client)
          // Where the kind runs: the AI shard (its nonce is that account's).
          const shard = isBeaconKind("worker.register") ? BEACON_SHARD : isAiShardKind("worker.register") ? aiShard : undefined
          const account = yield* call("account.get", client.account.get({ address, ...(shard === undefined ? {} : { shard }) }))
          const body = new TransactionBody({
            chainId: status.chainId,
            nonce: account.pendingNonce,
            fee: 0n,
            payload: { kind: "worker.register", gpuClass, devices, endpoint }
          })
          const tx = signTransaction(body, key)
          const submitted = yield* client.tx.submit({ raw: bytesToHex(tx.encoded), wait: true }).pipe(
            Effect.timeoutFail({
              duration: CHAIN_REGISTRATION_WAIT,
              onTimeout: () => new CallTimedOut({ call: "tx.submit worker.register", millis: Duration.toMillis(CHAIN_REGISTRATION_WAIT) })
            })
          )
          if (submitted.status === "rejected") {
            const view = yield* call("tx.get", client.tx.get({ hash: submitted.hash })).pipe(Effect.option)
            const reason = Option.isSome(view) && view.value.reason !== undefined ? view.value.reason : "no reason given"
            return yield* new ChainRegistrationRefused({ tx: submitted.hash, detail: `block ${submitted.shard}/${submitted.blockHeight ?? "?"}: ${reason}` })
          }
          sentTo.set(chainOf(status), tx.hash)
          stats.chainRegistrations++
          yield* untilOnChain(client)
          yield* Effect.logInfo(
            `registered on chain: worker.register ${tx.hash} (${devices} × ${gpuClass}, endpoint ${endpoint}) in block ${submitted.shard}/${submitted.blockHeight ?? "?"}`
          )
        })
      )

    /** One node's connection, dialled again with back-off whenever it is lost; fails only when the node refuses the worker. */
    const serve = (index: number): Effect.Effect<never, ComputeNodeFatal> => {
      const node = nodes[index]!
      const where = node.where
      const connection = Effect.gen(function* () {
        const client = yield* node.connect
        whereOf.set(client, where)
        const status = yield* call("node.status", client.node.status())
        yield* ensureOnChain(client, status)
        const at = yield* Clock.currentTimeMillis
        // A fresh nonce each time (and for each node): a node refuses a registration it has seen (a replay).
        const nonce = `0x${randomBytes(16).toString("hex")}`
        const offer = { chainId: status.chainId, gpuClass, devices, stake, endpoint, at, nonce }
        const signature = signMessage(workerRegistrationDigest(offer), key)
        const reg = yield* call(
          "worker.register",
          client.worker.register({ publicKey: key.publicKey.hex, gpuClass, devices, stake, endpoint, at, nonce, signature })
        )
        node.registrations++
        node.connected = true
        yield* Effect.logInfo(
          `registered with ${where} as worker ${reg.worker} (chain ${status.chainId}, ${devices} × ${gpuClass})` +
            (node.registrations > 1 ? `, registration ${node.registrations}` : "")
        )
        yield* announce({ worker: reg.worker, session: reg.session, chainId: status.chainId, node: index, where, count: node.registrations })
        return yield* Effect.raceFirst(heartbeats(client, reg.session), tasks(client, status.chainId, reg.session))
      }).pipe(
        Effect.scoped,
        Effect.ensuring(Effect.sync(() => (node.connected = false)))
      )

      return Effect.gen(function* () {
        let delay = reconnectInitial
        for (;;) {
          const before = node.registrations
          const exit = yield* Effect.exit(connection)
          const cause = exit._tag === "Failure" ? exit.cause : Cause.empty
          const failure = Cause.failureOption(cause)
          if (Option.isSome(failure) && isFatal(failure.value)) {
            node.refused = failure.value.message
            yield* Effect.logError(`${where} refused this worker: ${failure.value.message}`)
            return yield* Effect.fail(failure.value)
          }
          if (node.registrations > before) delay = reconnectInitial
          const reason = Option.isSome(failure) ? errorText(failure.value) : Cause.pretty(cause).split("\n")[0]
          yield* Effect.logWarning(
            `${node.registrations > before ? "lost" : "cannot reach"} ${where} (${reason}); reconnecting in ${Duration.format(delay)}`
          )
          yield* Effect.sleep(delay)
          delay = Duration.min(Duration.times(delay, 2), reconnectMax)
        }
      })
    }

    /** Every node's connection at once; the program fails (with the first refusal) only once every node has refused. */
    const loop: Effect.Effect<never, ComputeNodeFatal> = Effect.forEach(nodes, (_, i) => Effect.flip(serve(i)), { concurrency: "unbounded" }).pipe(
      Effect.flatMap((refusals) => Effect.fail(refusals[0]!))
    )

    const fiber = yield* Effect.forkIn(loop, scope)

    return {
      address,
      registered: (count = 1, node = 0) =>
        Effect.suspend(() => {
          const latest = nodes[node]?.latest
          if (latest !== undefined && latest.count >= count) return Effect.succeed(latest)
          return Effect.flatMap(Deferred.make<Registration>(), (deferred) => {
            waiters.push({ node, count, deferred })
            return Deferred.await(deferred)
          })
        }),
      stats: Effect.sync(() => ({
        ...stats,
        registrations: nodes.reduce((n, c) => n + c.registrations, 0),
        connected: nodes.some((c) => c.connected),
        nodes: nodes.map((c) => ({ where: c.where, connected: c.connected, registrations: c.registrations, refused: c.refused }))
      })),
      engine,
      fiber,
      stop: Fiber.interrupt(fiber).pipe(Effect.asVoid)
    } satisfies ComputeNodeHandle
  })

/** Runs a compute node until interrupted (or until every node has refused it). */
export const runComputeNode = (options: ComputeNodeOptions): Effect.Effect<never, ComputeNodeError> =>
  Effect.scoped(Effect.flatMap(startComputeNode(options), (handle) => Fiber.join(handle.fiber)))

/**
 * A stand-in for the node's side of the compute-node protocol, served over a
 * real WebSocket RPC server on localhost: `node.status`, `worker.register`
 * (checks the signature with verifyMessage), `worker.heartbeat`,
 * `worker.tasks` (a stream fed from a queue the test offers to),
 * `worker.result` and `worker.failed` (recorded), `blob.get` (served from a
 * real FsBlobStore), and `worker.list` (for the CLI). Every other call dies:
 * a compute node must not make it.
 *
 * The state lives outside the server, so a test can stop the server and
 * start another on the same port with the same state (a node restart that
 * forgot its sessions: `state.sessions` is cleared by `restart`).
 */
import { randomBytes } from "node:crypto"
import { createServer } from "node:http"
import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { RpcServer } from "@effect/rpc"
import { Buffer } from "node:buffer"
import { Effect, Either, Exit, Layer, Queue, Scope, Stream } from "effect"
import { verifyMessage, workerRegistrationDigest } from "../../../domain/ai/signedMessages.js"
import type { BlobStoreShape } from "../../../infra/blobstore/BlobStore.js"
import { TaskAssignment, WorkerRejected, WorkerView } from "../../../src/api/AiRpcs.js"
import { NodeStatus, NotFound } from "../../../src/api/NodeRpcs.js"
import { WS_PATH, wsSerialization } from "../../../src/api/transport.js"
import { requestLimitsLayer } from "../../../src/api/requestLimits.js"
import { ComputeNodeRpcs } from "../../../src/worker/ComputeNode.js"

export const FAKE_CHAIN_ID = 7_700n

export interface RegistrationRecord {
  readonly publicKey: string
  readonly address: string
  readonly gpuClass: string
  readonly devices: number
  readonly stake: bigint
  readonly endpoint: string
  /** The registration's nonce (a compute node sends a fresh one each time, to each node). */
  readonly nonce: string
  readonly session: string
}

export interface ResultRecord {
  readonly session: string
  readonly task: string
  readonly outputs: unknown
  readonly fingerprint: string
  readonly millis: number
  readonly signature: string
}

export interface FailureRecord {
  readonly session: string
  readonly task: string
  readonly detail: string
  /** Set when the worker's engine stopped the run at a limit. */
  readonly overrun?: { readonly kind: string; readonly millis: number; readonly limit: number } | undefined
}

export interface FakeNodeState {
  readonly registrations: Array<RegistrationRecord>
  /** session → worker address */
  readonly sessions: Map<string, string>
  heartbeats: number
  blobGets: number
  /** Served instead of the stored bytes, for tests of a lying node. */
  readonly tamperedBlobs: Map<string, Uint8Array>
  /** GPU classes registrations may name. */
  readonly gpuClasses: ReadonlySet<string>
  readonly tasks: Queue.Queue<TaskAssignment>
  readonly results: Queue.Queue<ResultRecord>
  readonly failures: Queue.Queue<FailureRecord>
  readonly blobs: BlobStoreShape
}

export const makeFakeNodeState = (blobs: BlobStoreShape): Effect.Effect<FakeNodeState> =>
  Effect.gen(function* () {
    return {
      registrations: [],
      sessions: new Map(),
      heartbeats: 0,
      blobGets: 0,
      tamperedBlobs: new Map(),
      gpuClasses: new Set(["CPU", "RTX4090", "A100", "H100"]),
      tasks: yield* Queue.unbounded<TaskAssignment>(),
      results: yield* Queue.unbounded<ResultRecord>(),
      failures: yield* Queue.unbounded<FailureRecord>(),
      blobs
    }
  })

const notServed = (tag: string) => () => Effect.dieMessage(`${tag} is not served by the test node`)

const handlers = (state: FakeNodeState) =>
  ComputeNodeRpcs.toLayer({
    "node.status": () => Effect.succeed(new NodeStatus({ chainId: FAKE_CHAIN_ID, version: "test", shards: [], eventsPosition: 0 })),
    "worker.register": (p) =>
      Effect.suspend(() => {
        const digest = workerRegistrationDigest({ chainId: FAKE_CHAIN_ID, gpuClass: p.gpuClass, devices: p.devices, stake: p.stake, endpoint: p.endpoint, at: p.at, nonce: p.nonce })
        const key = verifyMessage(digest, p.publicKey, p.signature)
        if (Either.isLeft(key)) return Effect.fail(new WorkerRejected({ reason: "BadSignature", detail: key.left }))
        if (!state.gpuClasses.has(p.gpuClass)) return Effect.fail(new WorkerRejected({ reason: "BadRegistration", detail: `unknown GPU class ${p.gpuClass}` }))
        const session = `s-${randomBytes(8).toString("hex")}`
        const address = key.right.address
        state.sessions.set(session, address)
        state.registrations.push({ publicKey: p.publicKey, address, gpuClass: p.gpuClass, devices: p.devices, stake: p.stake, endpoint: p.endpoint, nonce: p.nonce, session })
        return Effect.succeed({ worker: address, session })
      }),
    "worker.heartbeat": ({ session }) =>
      Effect.suspend(() => {
        if (!state.sessions.has(session)) return Effect.fail(new WorkerRejected({ reason: "UnknownWorker", detail: `no session ${session}` }))
        state.heartbeats++
        return Effect.succeed({ online: true })
      }),
    "worker.tasks": ({ session }) =>
      state.sessions.has(session)
        ? Stream.fromQueue(state.tasks)
        : Stream.fail(new WorkerRejected({ reason: "UnknownWorker", detail: `no session ${session}` })),
    "worker.result": (r) =>
      state.sessions.has(r.session)
        ? Queue.offer(state.results, r).pipe(Effect.as({ accepted: true }))
        : Effect.fail(new WorkerRejected({ reason: "UnknownWorker", detail: `no session ${r.session}` })),
    "worker.failed": (f) =>
      state.sessions.has(f.session)
        ? Queue.offer(state.failures, f).pipe(Effect.as({ accepted: true }))
        : Effect.fail(new WorkerRejected({ reason: "UnknownWorker", detail: `no session ${f.session}` })),
    "blob.get": ({ hash, offset, length }) =>
      Effect.gen(function* () {
        state.blobGets++
        const bytes =
          state.tamperedBlobs.get(hash) ??
          (yield* state.blobs.get(hash).pipe(Effect.mapError(() => new NotFound({ what: "blob", id: hash }))))
        return { data: Buffer.from(bytes.subarray(offset, offset + length)).toString("base64"), size: bytes.length }
      }),
    "model.upload": notServed("model.upload"),
    "model.get": notServed("model.get"),
    "model.list": notServed("model.list"),
    "escrow.get": notServed("escrow.get"),
    "session.open": notServed("session.open"),
    infer: notServed("infer"),
    "infer.stream": () => Stream.dieMessage("infer.stream is not served by the test node"),
    "task.get": notServed("task.get"),
    "worker.list": () =>
      Effect.sync(() =>
        state.registrations.map(
          (r) =>
            new WorkerView({
              id: r.address,
              gpuClass: r.gpuClass,
              devices: r.devices,
              online: state.sessions.has(r.session),
              inFlight: 0,
              reputation: 500,
              endpoint: r.endpoint,
              tasksDone: 0
            })
        )
      )
  })

export interface FakeNode {
  readonly port: number
  readonly url: string
  readonly state: FakeNodeState
  /** Stop serving (connections drop). */
  readonly stop: Effect.Effect<void>
  /** Serve again on the same port; sessions are forgotten, as by a node restart. */
  readonly restart: Effect.Effect<void, unknown>
}

const serverLayer = (state: FakeNodeState, port: number) =>
  HttpLayerRouter.serve(
    RpcServer.layerHttpRouter({ group: ComputeNodeRpcs, path: WS_PATH, protocol: "websocket" }).pipe(
      Layer.provide(wsSerialization),
      Layer.provide([handlers(state), requestLimitsLayer()])
    ),
    { disableLogger: true, disableListenLog: true }
  ).pipe(Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" })))

/** A fake node on `port`, stopped when the caller's scope closes. */
export const startFakeNode = (state: FakeNodeState, port: number): Effect.Effect<FakeNode, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    let current: Scope.CloseableScope | undefined
    const start = Effect.gen(function* () {
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(serverLayer(state, port), scope).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
      current = scope
    })
    const stop = Effect.suspend(() => {
      const scope = current
      current = undefined
      return scope === undefined ? Effect.void : Scope.close(scope, Exit.void)
    })
    yield* start
    yield* Effect.addFinalizer(() => stop)
    return {
      port,
      url: `ws://127.0.0.1:${port}${WS_PATH}`,
      state,
      stop,
      restart: Effect.zipRight(
        stop,
        Effect.suspend(() => {
          state.sessions.clear()
          return start
        })
      )
    }
  })

/**
 * A stand-in for the node's side of the compute-node protocol, served over a
 * real WebSocket RPC server on localhost: `node.status`, `worker.register`
 * (checks the signature with verifyMessage), `worker.heartbeat`,
 * `worker.tasks` (a stream fed from a queue the test offers to),
 * `worker.result` and `worker.failed` (recorded), `blob.get` (served from a
 * real FsBlobStore), and `worker.list` (for the CLI). With `aiShard` set it
 * also keeps a stand-in AI shard: `worker.onChain`, `account.get` (nonces)
 * and `tx.submit`/`tx.get` for `worker.register` (decoded and its signature
 * recovered by the real codec; "included" at once, or rejected with
 * `refuseRegister`). Every other call dies: a compute node must not make it.
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
import { OnChainWorkerView, TaskAssignment, WorkerRejected, WorkerView } from "../../../src/api/AiRpcs.js"
import { AccountInfo, InvalidRequest, NodeStatus, NotFound, ShardStatus, SubmitResult, TransactionRejected, TxView } from "../../../src/api/NodeRpcs.js"
import { hexToBytes } from "../../../domain/chain/hex.js"
import { decodeTransaction } from "../../../domain/chain/transaction.js"
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
  readonly overrun?: { readonly kind: string; readonly millis: number; readonly limit: number; readonly signature: string } | undefined
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
  /** The stand-in AI shard's id; undefined: the node has no AI shard (status lists none). */
  aiShard: number | undefined
  /** The chain it names in `node.status` (a fresh one per node: set two equal for two nodes of one chain). */
  genesisHash: string
  /** Workers registered on the stand-in AI shard, by address. */
  readonly onChain: Map<string, { readonly publicKey: string; readonly gpuClass: string; readonly devices: number; readonly endpoint: string; readonly height: number }>
  /** Every worker.register submitted, in order (included or rejected). */
  readonly chainTxs: Array<{ readonly hash: string; readonly sender: string; readonly nonce: bigint; readonly fee: bigint; readonly status: "included" | "rejected"; readonly reason?: string | undefined; readonly raw: string }>
  /** Execution refuses every worker.register with this reason while set. */
  refuseRegister: string | undefined
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
      blobs,
      aiShard: undefined,
      genesisHash: `0x${randomBytes(32).toString("hex")}`,
      onChain: new Map(),
      chainTxs: [],
      refuseRegister: undefined
    }
  })

const notServed = (tag: string) => () => Effect.dieMessage(`${tag} is not served by the test node`)

const handlers = (state: FakeNodeState) =>
  ComputeNodeRpcs.toLayer({
    "node.status": () =>
      Effect.sync(
        () =>
          new NodeStatus({
            chainId: FAKE_CHAIN_ID,
            genesisHash: state.genesisHash,
            version: "test",
            shards:
              state.aiShard === undefined
                ? []
                : [new ShardStatus({ shard: state.aiShard, kind: "ai", height: state.chainTxs.length, lastBlockHash: "0x", pendingTransactions: 0 })],
            eventsPosition: 0
          })
      ),
    "worker.onChain": ({ address }) =>
      Effect.suspend(() => {
        const w = state.onChain.get(address)
        if (w === undefined) return Effect.fail(new NotFound({ what: "worker on chain", id: address }))
        const units = BigInt(w.devices) * 1_000n
        return Effect.succeed(
          new OnChainWorkerView({ worker: address, owner: address, publicKey: w.publicKey, gpuClass: w.gpuClass, gpuUnitsMilli: units, endpoint: w.endpoint, registeredHeight: w.height, bonded: 0n })
        )
      }),
    "account.get": ({ address, shard }) =>
      Effect.sync(() => {
        const nonce = BigInt(state.chainTxs.filter((t) => t.sender === address).length)
        return new AccountInfo({ address, shard: shard ?? 1, balance: 0n, nonce, pendingNonce: nonce })
      }),
    "tx.submit": ({ raw }) =>
      Effect.gen(function* () {
        const bytes = hexToBytes(raw)
        if (Either.isLeft(bytes)) return yield* new TransactionRejected({ reason: "Malformed", detail: bytes.left.message })
        const tx = decodeTransaction(bytes.right)
        if (Either.isLeft(tx)) return yield* new TransactionRejected({ reason: "Malformed", detail: tx.left.message })
        const t = tx.right
        const p = t.body.payload
        if (p.kind !== "worker.register") return yield* Effect.dieMessage(`the test node takes only worker.register, got ${p.kind}`)
        const expected = BigInt(state.chainTxs.filter((x) => x.sender === t.sender).length)
        if (t.body.nonce !== expected || t.body.chainId !== FAKE_CHAIN_ID) {
          return yield* new TransactionRejected({ reason: t.body.nonce < expected ? "NonceReused" : "NonceGap", detail: `nonce ${t.body.nonce}, expected ${expected}` })
        }
        const height = state.chainTxs.length + 1
        const refused = state.refuseRegister
        state.chainTxs.push({ hash: t.hash, sender: t.sender, nonce: t.body.nonce, fee: t.body.fee, status: refused === undefined ? "included" : "rejected", reason: refused, raw })
        if (refused === undefined) state.onChain.set(t.sender, { publicKey: t.publicKey.hex, gpuClass: p.gpuClass, devices: p.devices, endpoint: p.endpoint, height })
        return new SubmitResult({ hash: t.hash, shard: state.aiShard ?? 1, status: refused === undefined ? "included" : "rejected", blockHeight: height })
      }),
    "tx.get": ({ hash }) =>
      Effect.suspend(() => {
        const t = state.chainTxs.find((x) => x.hash === hash)
        if (t === undefined) return Effect.fail(new NotFound({ what: "transaction", id: hash }))
        return Effect.succeed(
          new TxView({ hash, shard: state.aiShard ?? 1, status: t.status, from: t.sender, kind: "worker.register", nonce: t.nonce, fee: t.fee, blockHeight: 1, reason: t.reason, raw: t.raw })
        )
      }),
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
    "usage.receipts": notServed("usage.receipts"),
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

/**
 * The AI shard on a node, as its RPC handlers see it: models (upload,
 * views), escrow, sessions and inference, tasks, and the compute-node
 * protocol. Assembles the model registry, the worker hub, the task runner,
 * the projection that feeds them from the chain, and settlement.
 */
import { Buffer } from "node:buffer"
import { Clock, Context, Effect, Either, HashMap, Layer, Schema, Stream } from "effect"
import type { ModelState } from "../../../domain/ai/model/state.js"
import { ModelManifest } from "../../../domain/ai/manifest.js"
import type { AiLedgerState, AiModel } from "../../../domain/ai/ledger/state.js"
import { BlobStore } from "../../../infra/blobstore/BlobStore.js"
import { SandboxedSmokeRun } from "../../../infra/inference/SandboxedSmokeRun.js"
import type { SignatureVerifier } from "../../../infra/crypto/SignatureVerifier.js"
import { EventStore } from "../../../infra/eventstore/EventStore.js"
import { InvalidRequest, NotFound } from "../../api/NodeRpcs.js"
import { BLOB_CHUNK_BYTES, EscrowView, InferenceRejected, ModelView, TaskProgress, TaskView, UploadRejected } from "../../api/AiRpcs.js"
import { escrowStream } from "../../../actors/EscrowActor.js"
import { taskStream } from "../../../actors/TaskActor.js"
import { escrowOf } from "../../../domain/ai/ledger/state.js"
import { verifyMessage, weightsChunkDigest } from "../../../domain/ai/signedMessages.js"
import { sha256 } from "../../../domain/chain/hash.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import type { Address } from "../../../domain/chain/keys.js"
import { ChainNode } from "../ChainNode.js"
import type { AiConfig } from "./AiConfig.js"
import { makeAiProjection } from "./AiProjection.js"
import { Economy } from "../economy/Economy.js"
import { makeModelAttestor } from "./ModelAttestor.js"
import { makeModelRegistry, ownVerdictOf } from "./ModelRegistry.js"
import { makeChallenger } from "./Challenger.js"
import { makeSettler } from "./Settler.js"
import { makeSharedReceipts } from "./SharedReceipts.js"
import { runLivenessReporter } from "./LivenessReporter.js"
import { makeWorkerBenchmarker } from "./WorkerBenchmarker.js"
import { makeTaskRunner, type SignedTaskRequest } from "./TaskRunner.js"
import { makeWorkerHub } from "./WorkerHub.js"
import type { RegisterRequest, ResultRequest } from "./WorkerHub.js"

const HASH = /^0x[0-9a-f]{64}$/
const ADDRESS = /^0x[0-9a-f]{40}$/

/** The base64 text of the largest chunk `model.upload` takes. */
const BLOB_CHUNK_BASE64_CHARS = 4 * Math.ceil(BLOB_CHUNK_BYTES / 3)

/**
 * Uploads in progress at once, per provider and on the node. Each holds its
 * whole file in memory (up to `modelBytesMax`, 256 MiB by default) until the
 * last chunk, so these bound what uploads can take: 4 × 256 MiB.
 */
export const UPLOADS_PER_PROVIDER_MAX = 2
export const UPLOADS_MAX = 4
/** An upload with no chunk for this long is dropped: a dead uploader does not hold a slot. */
export const UPLOAD_IDLE_MS = 60_000

/** `model.upload`: one chunk of a registered model's weights, signed by its provider. */
export interface UploadRequest {
  readonly weightsHash: string
  readonly sizeBytes: number
  readonly offset: number
  readonly data: string
  readonly publicKey: string
  readonly signature: string
}

const decodeManifest = Schema.decodeUnknownEither(Schema.parseJson(ModelManifest))

/**
 * A model as the AI ledger has it (status, price, reference fingerprint,
 * attestations), with the input and output signature from this node's own
 * verification when it has verified it.
 */
const modelView = (id: string, m: AiModel, own: ModelState | undefined, self: Address, refusal: string | undefined, weightsUploaded: boolean): ModelView | undefined => {
  const manifest = decodeManifest(m.manifest)
  if (Either.isLeft(manifest)) return undefined // the ledger registers only manifests that decode
  const verdict = own === undefined ? undefined : ownVerdictOf(own, self)
  const signature = verdict?._tag === "ModelAccepted" ? verdict.signature : undefined
  // Deprecated is a flag on the view: a deprecated model stays Verified if it was, else it ended unverified.
  const status = m.status === "Deprecated" ? (m.verified ? "Verified" : "Rejected") : m.status
  // The ledger's reason says who rejected it; the rejecting attestations say why.
  const why = [...new Set([...HashMap.values(m.attestations)].flatMap((a) => (a.reason === null ? [] : [a.reason])))]
  const reason =
    m.reason === null
      ? m.status === "Deprecated" && !m.verified
        ? "deprecated by its provider before it was verified"
        : m.status === "Pending"
          ? refusal
          : undefined
      : why.length === 0
        ? m.reason
        : `${m.reason}: ${why.join("; ")}`
  return new ModelView({
    id,
    provider: m.provider,
    status,
    deprecated: m.status === "Deprecated",
    name: manifest.right.name,
    version: manifest.right.version,
    price: m.price,
    minGpuClass: manifest.right.minGpuClass,
    license: manifest.right.license,
    description: manifest.right.description,
    weightsHash: m.weightsHash,
    sizeBytes: Number(m.sizeBytes),
    weightsUploaded,
    ...(reason === undefined ? {} : { reason }),
    ...(m.fingerprint === null ? {} : { referenceFingerprint: m.fingerprint }),
    attestations: HashMap.size(m.attestations),
    inputs: signature?.inputs.map((t) => ({ name: t.name, type: t.type, dims: [...(t.dims ?? [])] })) ?? [],
    outputs: signature?.outputs.map((t) => ({ name: t.name, type: t.type, dims: [...(t.dims ?? [])] })) ?? []
  })
}

/** The ledger's models in registration order. */
const ledgerModels = (ledger: AiLedgerState | null): ReadonlyArray<readonly [Hash32, AiModel]> =>
  ledger === null
    ? []
    : [...ledger.models].sort(([a, x], [b, y]) => x.registeredHeight - y.registeredHeight || (a < b ? -1 : a > b ? 1 : 0))

export const makeAiNode = (config: AiConfig) =>
  Effect.gen(function* () {
    const chain = yield* ChainNode
    const blobs = yield* BlobStore
    const store = yield* EventStore
    const chainId = (yield* chain.status).chainId
    const economy = yield* Economy
    const attestor = yield* makeModelAttestor(chain, config.attestorKey)
    const models = yield* makeModelRegistry(config, attestor)
    const hub = yield* makeWorkerHub(config, chainId, economy)
    const settler = yield* makeSettler(config, chainId, chain)
    const challenger = yield* makeChallenger(config, chainId, chain)
    const aiShard = (yield* chain.status).shards.find((s) => s.kind === "ai")?.shard
    /** The AI ledger's escrow of (developer, model): the money sessions and tasks are admitted against. */
    const ledgerEscrow = (developer: Address, model: Hash32) =>
      aiShard === undefined
        ? Effect.succeed(undefined)
        : chain.ledger(aiShard).pipe(
            Effect.map((l) => (l.ai === null ? undefined : escrowOf(l.ai, developer, model))),
            Effect.orElseSucceed(() => undefined)
          )
    // As a member of the AI committee, this node tells the ledger which workers it sees alive (online mining).
    if (aiShard !== undefined) yield* Effect.forkScoped(runLivenessReporter(attestor, hub.seen))
    // And it measures their GPU units with the seeded benchmark (its weights served to workers like a model's).
    const benchmarker = yield* makeWorkerBenchmarker(blobs, chainId, config.attestorKey)
    if (aiShard !== undefined) yield* Effect.forkScoped(benchmarker.run(attestor, hub))
    // The other members hold this gateway's receipts too (and it theirs): a gateway that never returns loses no paid work.
    const shared = yield* makeSharedReceipts(settler, chain, { peers: config.peers ?? [] })
    const runner = yield* makeTaskRunner(config, chainId, models, hub, economy, { settler, ledgerEscrow, challenger })
    yield* makeAiProjection(models, runner, hub, settler, aiShard, challenger, shared)
    // Every `settleEvery` this gateway's new receipts go to the other members, on a loop of its own
    // (a peer that hangs until the call's timeout does not hold up settlement).
    yield* shared.round.pipe(Effect.zipRight(Effect.sleep(config.settleEvery)), Effect.forever, Effect.forkScoped)
    // Validated tasks settle on chain in batches: every `settleEvery` the open receipts go in `usage.settle`,
    // and the wrong results they proved in `result.challenge`.
    yield* runner.rotateBatch.pipe(
      Effect.zipRight(settler.round),
      Effect.zipRight(challenger.round),
      Effect.zipRight(Effect.sleep(config.settleEvery)),
      Effect.forever,
      Effect.forkScoped
    )

    // Uploads in progress, by `${provider}:${weightsHash}`: the bytes, filled chunk by chunk.
    const uploads = new Map<string, { readonly provider: string; readonly bytes: Uint8Array; received: number; touchedAt: number }>()

    /** The models the AI ledger has registered that declare `weightsHash` (not rejected): an upload is for one of them, by its provider. */
    const declaring = (weightsHash: string) =>
      Effect.map(attestor.ledger, (ledger) =>
        ledger === null
          ? []
          : [...HashMap.values(ledger.models)]
              .filter((m) => m.weightsHash === weightsHash && m.status !== "Rejected")
              .map((m) => ({ provider: m.provider as string, sizeBytes: Number(m.sizeBytes) }))
      )

    const upload = (r: UploadRequest) =>
      Effect.gen(function* () {
        const hash = r.weightsHash.toLowerCase()
        const bad = (reason: UploadRejected["reason"], detail: string) => Effect.fail(new UploadRejected({ reason, detail }))
        if (!HASH.test(hash)) return yield* bad("BadChunk", "weightsHash must be 0x + 64 hex digits (the file's sha256)")
        if (!Number.isSafeInteger(r.sizeBytes) || r.sizeBytes <= 0 || r.sizeBytes > config.modelBytesMax) {
          return yield* bad("TooLarge", `sizeBytes must be from 1 to ${config.modelBytesMax}`)
        }
        if (!Number.isSafeInteger(r.offset) || r.offset < 0) return yield* bad("BadChunk", `offset must be a whole number ≥ 0, got ${r.offset}`)
        if (r.data.length > BLOB_CHUNK_BASE64_CHARS) return yield* bad("BadChunk", `a chunk is at most ${BLOB_CHUNK_BYTES} bytes`)
        const chunk = Buffer.from(r.data, "base64")
        const signer = verifyMessage(
          weightsChunkDigest({ chainId, weightsHash: hash, sizeBytes: r.sizeBytes, offset: r.offset, chunkHash: bytesToHex(sha256(chunk)) }),
          r.publicKey,
          r.signature
        )
        if (Either.isLeft(signer)) return yield* bad("BadSignature", `upload of ${hash}: ${signer.left}`)
        const provider = signer.right.address
        const registered = yield* declaring(hash)
        if (registered.length === 0) {
          return yield* bad("UnknownModel", `no model registered on chain declares weights ${hash}: submit model.register first, then upload`)
        }
        const mine = registered.find((m) => m.provider === provider)
        if (mine === undefined) return yield* bad("NotProvider", `${provider} registered no model with weights ${hash}`)
        if (mine.sizeBytes !== r.sizeBytes) {
          return yield* bad("BadChunk", `the registration declares ${mine.sizeBytes} bytes, the upload ${r.sizeBytes}`)
        }
        if (yield* blobs.has(hash).pipe(Effect.orElseSucceed(() => false))) return { received: r.sizeBytes, complete: true }
        const now = yield* Clock.currentTimeMillis
        const key = `${provider}:${hash}`
        let u = uploads.get(key)
        if (u === undefined && r.offset !== 0) return yield* bad("BadChunk", `no upload of ${hash} in progress: start at offset 0`)
        // A chunk at offset 0 starts the upload afresh: an uploader that died half-way must not block the next one.
        if (u === undefined || r.offset === 0) {
          for (const [k, other] of uploads) if (now - other.touchedAt > UPLOAD_IDLE_MS) uploads.delete(k)
          uploads.delete(key)
          const open = [...uploads.values()]
          if (open.filter((o) => o.provider === provider).length >= UPLOADS_PER_PROVIDER_MAX) {
            return yield* bad("TooManyUploads", `${provider} has ${UPLOADS_PER_PROVIDER_MAX} uploads in progress: finish one first`)
          }
          if (open.length >= UPLOADS_MAX) return yield* bad("TooManyUploads", `the node takes ${UPLOADS_MAX} uploads at a time: try again later`)
          uploads.set(key, (u = { provider, bytes: new Uint8Array(r.sizeBytes), received: 0, touchedAt: now }))
        }
        if (r.offset !== u.received || r.offset + chunk.length > r.sizeBytes) {
          return yield* bad("BadChunk", `expected the chunk at offset ${u.received}, got ${chunk.length} bytes at ${r.offset}`)
        }
        u.bytes.set(chunk, r.offset)
        u.received += chunk.length
        u.touchedAt = now
        if (u.received < r.sizeBytes) return { received: u.received, complete: false }
        uploads.delete(key)
        // Kept only when they are the declared weights: nothing else enters the blob store by this door.
        const actual = bytesToHex(sha256(u.bytes))
        if (actual !== hash) return yield* bad("HashMismatch", `the bytes hash to ${actual}, not ${hash}: nothing was kept`)
        yield* blobs.put(u.bytes).pipe(Effect.mapError((e) => new UploadRejected({ reason: "BadChunk", detail: e.message })))
        yield* Effect.logInfo(`weights ${hash} stored (${r.sizeBytes} bytes)`)
        yield* models.onWeightsStored(hash)
        return { received: r.sizeBytes, complete: true }
      })

    const viewOf = (id: Hash32, m: AiModel) =>
      Effect.gen(function* () {
        const own = models.known().includes(id) ? yield* models.own(id) : undefined
        const stored = yield* blobs.has(m.weightsHash).pipe(Effect.orElseSucceed(() => false))
        return modelView(id, m, own, models.validator, models.refusal(id), stored)
      })

    const model = (id: string) =>
      Effect.gen(function* () {
        const m = id.toLowerCase()
        const found = HASH.test(m) ? yield* attestor.model(m) : undefined
        const view = found === undefined ? undefined : yield* viewOf(m as Hash32, found)
        return view === undefined ? yield* new NotFound({ what: "model", id }) : view
      })

    const list = (provider: string | undefined) =>
      Effect.gen(function* () {
        const out: Array<ModelView> = []
        for (const [id, m] of ledgerModels(yield* attestor.ledger)) {
          if (provider !== undefined && m.provider !== provider.toLowerCase()) continue
          const v = yield* viewOf(id, m)
          if (v !== undefined) out.push(v)
        }
        return out
      })

    /** An escrow nobody deposited into is all zeros: read from the store, no actor is made for it. */
    const escrow = (developer: string, modelId: string) =>
      Effect.gen(function* () {
        const d = developer.toLowerCase()
        const m = modelId.toLowerCase()
        if (!ADDRESS.test(d)) return yield* new InvalidRequest({ detail: `developer must be 0x + 40 hex digits, got ${JSON.stringify(developer.slice(0, 80))}` })
        if (!HASH.test(m)) return yield* new InvalidRequest({ detail: `model must be 0x + 64 hex digits, got ${JSON.stringify(modelId.slice(0, 80))}` })
        const exists = (yield* store.head(escrowStream(d as Address, m as Hash32)).pipe(Effect.orElseSucceed(() => undefined))) !== undefined
        const totals = exists ? (yield* runner.escrowState(d, m)).totals : { deposited: 0n, available: 0n, reserved: 0n, captured: 0n }
        const onLedger = yield* ledgerEscrow(d as Address, m as Hash32)
        return new EscrowView({
          developer: d,
          model: m,
          deposited: totals.deposited,
          available: totals.available,
          reserved: totals.reserved,
          captured: totals.captured,
          ...(onLedger === undefined ? {} : { onLedger, unsettled: settler.unsettled(d, m) })
        })
      })

    const task = (id: string) =>
      Effect.gen(function* () {
        const t = id.toLowerCase()
        if (!HASH.test(t)) return yield* new NotFound({ what: "task", id })
        // An id no task has: answered from the store, without making an actor for it.
        const head = yield* store.head(taskStream(t)).pipe(Effect.orElseSucceed(() => undefined))
        if (head === undefined) return yield* new NotFound({ what: "task", id })
        const [s, revision] = yield* runner.taskState(t)
        if (s.request === null) return yield* new NotFound({ what: "task", id })
        const events = yield* store.readStream(`task-${t}`).pipe(Effect.orElseSucceed(() => []))
        return new TaskView({
          id: t,
          model: s.request.modelId,
          developer: s.request.developer,
          status: s.status,
          price: s.request.price,
          workers: [...s.assignees],
          ...(s.validation === null ? {} : { fingerprint: s.validation.fingerprint }),
          charged: s.charged > 0n,
          retries: s.retries,
          events: events.map((e) => ({ type: e.type, revision: e.revision })).slice(0, revision + 1)
        })
      })

    const inferStream = (session: string, inputs: unknown, signed: SignedTaskRequest): Stream.Stream<TaskProgress, InferenceRejected> =>
      Stream.asyncPush<TaskProgress, InferenceRejected>((emit) =>
        runner.inferWithProgress(session, inputs, signed, (p) => Effect.sync(() => emit.single(p))).pipe(
          Effect.matchEffect({
            onFailure: (e) => Effect.sync(() => emit.fail(e)),
            onSuccess: () => Effect.sync(() => emit.end())
          }),
          Effect.forkScoped
        )
      )

    /** Model weights only (task outputs are the paying developer's), at most a chunk a call. */
    const blob = (hash: string, offset: number, length: number) =>
      Effect.gen(function* () {
        const h = hash.toLowerCase()
        if (!Number.isSafeInteger(offset) || offset < 0) return yield* new InvalidRequest({ detail: `offset must be a whole number ≥ 0, got ${offset}` })
        if (!Number.isSafeInteger(length) || length < 1 || length > BLOB_CHUNK_BYTES) {
          return yield* new InvalidRequest({ detail: `length must be a whole number from 1 to ${BLOB_CHUNK_BYTES}, got ${length}` })
        }
        const notFound = new NotFound({ what: "blob", id: hash })
        if (!HASH.test(h) || (h !== benchmarker.weightsHash && (yield* declaring(h)).length === 0)) return yield* notFound
        const path = yield* blobs.path(h).pipe(Effect.mapError(() => notFound))
        const { openSync, readSync, closeSync, fstatSync } = yield* Effect.promise(() => import("node:fs"))
        return yield* Effect.try({
          try: () => {
            const fd = openSync(path, "r")
            try {
              const size = fstatSync(fd).size
              const n = Math.max(0, Math.min(length, size - offset))
              const buf = Buffer.alloc(n)
              readSync(fd, buf, 0, n, offset)
              return { data: buf.toString("base64"), size }
            } finally {
              closeSync(fd)
            }
          },
          catch: () => notFound
        })
      })

    return {
      upload,
      model,
      list,
      escrow,
      openSession: runner.openSession,
      infer: runner.infer,
      inferStream,
      task,
      workers: hub.list,
      workerOnChain: hub.onChainView,
      register: (r: RegisterRequest) => hub.register(r),
      heartbeat: hub.heartbeat,
      tasks: hub.tasks,
      result: (r: ResultRequest) => hub.result(r),
      failed: hub.failed,
      blob,
      shareReceipts: shared.accept
    }
  })

export type AiNodeShape = Effect.Effect.Success<ReturnType<typeof makeAiNode>>
export class AiNode extends Context.Tag("topai/AiNode")<AiNode, AiNodeShape>() {}

export const AiNodeLive = (
  config: AiConfig
): Layer.Layer<AiNode, never, ChainNode | Economy | EventStore | BlobStore | SandboxedSmokeRun | SignatureVerifier> =>
  Layer.scoped(AiNode, makeAiNode(config))

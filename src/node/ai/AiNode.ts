/**
 * The AI shard on a node, as its RPC handlers see it: models (upload,
 * views), escrow, sessions and inference, tasks, and the compute-node
 * protocol. Assembles the model registry, the worker hub, the task runner,
 * the projection that feeds them from the chain, and settlement.
 */
import { Context, Effect, Layer, Stream } from "effect"
import type { ModelState } from "../../../domain/ai/model/state.js"
import { BlobStore } from "../../../infra/blobstore/BlobStore.js"
import { SandboxedSmokeRun } from "../../../infra/inference/SandboxedSmokeRun.js"
import type { SignatureVerifier } from "../../../infra/crypto/SignatureVerifier.js"
import { EventStore } from "../../../infra/eventstore/EventStore.js"
import { NotFound } from "../../api/NodeRpcs.js"
import { EscrowView, InferenceRejected, ModelView, TaskProgress, TaskView, UploadRejected } from "../../api/AiRpcs.js"
import { ChainNode } from "../ChainNode.js"
import type { AiConfig } from "./AiConfig.js"
import { makeAiProjection } from "./AiProjection.js"
import { Economy } from "../economy/Economy.js"
import { makeModelRegistry } from "./ModelRegistry.js"
import type { ModelRegistry } from "./ModelRegistry.js"
import { makeTaskRunner } from "./TaskRunner.js"
import { makeWorkerHub } from "./WorkerHub.js"
import type { RegisterRequest, ResultRequest } from "./WorkerHub.js"

const HASH = /^0x[0-9a-f]{64}$/

const modelView = (id: string, s: ModelState, weightsUploaded: boolean): ModelView | undefined => {
  const u = s.upload
  if (u === null || s.status === "Absent") return undefined
  const accepted = s.attestations.find((a) => a.verdict._tag === "ModelAccepted")?.verdict
  const signature = accepted?._tag === "ModelAccepted" ? accepted.signature : undefined
  return new ModelView({
    id,
    provider: u.provider,
    status: s.status,
    deprecated: s.deprecated,
    name: u.manifest.name,
    version: u.manifest.version,
    price: s.price,
    minGpuClass: u.manifest.minGpuClass,
    license: u.manifest.license,
    description: u.manifest.description,
    weightsHash: u.weightsHash,
    sizeBytes: u.sizeBytes,
    weightsUploaded,
    ...(s.rejection === null ? {} : { reason: s.rejection.reason }),
    ...(s.referenceFingerprint === null ? {} : { referenceFingerprint: s.referenceFingerprint }),
    attestations: s.attestations.length,
    inputs: signature?.inputs.map((t) => ({ name: t.name, type: t.type, dims: [...(t.dims ?? [])] })) ?? [],
    outputs: signature?.outputs.map((t) => ({ name: t.name, type: t.type, dims: [...(t.dims ?? [])] })) ?? []
  })
}

/** A registration the model actor refused: executed on chain, never uploaded, so Rejected with the reason. */
const refusedView = (id: string, r: NonNullable<ReturnType<ModelRegistry["refusal"]>>, weightsUploaded: boolean): ModelView =>
  new ModelView({
    id,
    provider: r.registered.provider,
    status: "Rejected",
    deprecated: false,
    name: r.manifest.name,
    version: r.manifest.version,
    price: r.manifest.pricePerCall,
    minGpuClass: r.manifest.minGpuClass,
    license: r.manifest.license,
    description: r.manifest.description,
    weightsHash: r.registered.weightsHash,
    sizeBytes: Number(r.registered.sizeBytes),
    weightsUploaded,
    reason: `registration refused: ${r.reason}`,
    attestations: 0,
    inputs: [],
    outputs: []
  })

export const makeAiNode = (config: AiConfig) =>
  Effect.gen(function* () {
    const chain = yield* ChainNode
    const blobs = yield* BlobStore
    const store = yield* EventStore
    const chainId = (yield* chain.status).chainId
    const economy = yield* Economy
    const models = yield* makeModelRegistry(config)
    const hub = yield* makeWorkerHub(config, chainId, economy)
    const runner = yield* makeTaskRunner(config, chainId, models, hub, economy)
    yield* makeAiProjection(models, runner, hub)
    // Usage settles in receipt batches: every `settleEvery` the batch rotates and what is owed is paid.
    yield* economy.payOut(runner.rotateBatch).pipe(Effect.zipRight(Effect.sleep(config.settleEvery)), Effect.forever, Effect.forkScoped)

    // Uploads in progress: the bytes of each declared hash, filled chunk by chunk.
    const uploads = new Map<string, { readonly bytes: Uint8Array; received: number }>()

    const upload = (weightsHash: string, sizeBytes: number, offset: number, data: string) =>
      Effect.gen(function* () {
        const hash = weightsHash.toLowerCase()
        const bad = (reason: UploadRejected["reason"], detail: string) => Effect.fail(new UploadRejected({ reason, detail }))
        if (!HASH.test(hash)) return yield* bad("BadChunk", "weightsHash must be 0x + 64 hex digits (the file's sha256)")
        if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes > config.modelBytesMax) {
          return yield* bad("TooLarge", `sizeBytes must be from 1 to ${config.modelBytesMax}`)
        }
        if (yield* blobs.has(hash).pipe(Effect.orElseSucceed(() => false))) return { received: sizeBytes, complete: true }
        const chunk = Buffer.from(data, "base64")
        let u = uploads.get(hash)
        // A chunk at offset 0 starts the upload afresh: an uploader that died half-way must not block the next one.
        if (u === undefined || u.bytes.length !== sizeBytes || offset === 0) {
          uploads.set(hash, (u = { bytes: new Uint8Array(sizeBytes), received: 0 }))
        }
        if (!Number.isSafeInteger(offset) || offset !== u.received || offset + chunk.length > sizeBytes) {
          return yield* bad("BadChunk", `expected the chunk at offset ${u.received}, got ${chunk.length} bytes at ${offset}`)
        }
        u.bytes.set(chunk, offset)
        u.received += chunk.length
        if (u.received < sizeBytes) return { received: u.received, complete: false }
        uploads.delete(hash)
        const stored = yield* blobs.put(u.bytes).pipe(Effect.mapError((e) => new UploadRejected({ reason: "BadChunk", detail: e.message })))
        if (stored.hash !== hash) return yield* bad("HashMismatch", `the bytes hash to ${stored.hash}, not ${hash}`)
        yield* Effect.logInfo(`weights ${hash} stored (${sizeBytes} bytes)`)
        yield* models.onWeightsStored(hash)
        return { received: sizeBytes, complete: true }
      })

    const model = (id: string) =>
      Effect.gen(function* () {
        const m = id.toLowerCase()
        const s = HASH.test(m) && models.known().includes(m) ? yield* models.state(m) : undefined
        const refusal = models.refusal(m)
        const stored = (hash: string) => blobs.has(hash).pipe(Effect.orElseSucceed(() => false))
        const view =
          s === undefined || s.upload === null
            ? refusal === undefined
              ? undefined
              : refusedView(m, refusal, yield* stored(refusal.registered.weightsHash))
            : modelView(m, s, yield* stored(s.upload.weightsHash))
        return view === undefined ? yield* new NotFound({ what: "model", id }) : view
      })

    const list = (provider: string | undefined) =>
      Effect.gen(function* () {
        const out: Array<ModelView> = []
        for (const id of models.known()) {
          const s = yield* models.state(id)
          const refusal = models.refusal(id)
          const owner = s.upload?.provider ?? refusal?.registered.provider
          if (provider !== undefined && owner !== provider.toLowerCase()) continue
          const weights = s.upload?.weightsHash ?? refusal?.registered.weightsHash ?? ""
          const stored = yield* blobs.has(weights).pipe(Effect.orElseSucceed(() => false))
          const v = s.upload === null && refusal !== undefined ? refusedView(id, refusal, stored) : modelView(id, s, stored)
          if (v !== undefined) out.push(v)
        }
        return out
      })

    const escrow = (developer: string, modelId: string) =>
      runner.escrowState(developer.toLowerCase(), modelId.toLowerCase()).pipe(
        Effect.map(
          (s) =>
            new EscrowView({
              developer: developer.toLowerCase(),
              model: modelId.toLowerCase(),
              deposited: s.totals.deposited,
              available: s.totals.available,
              reserved: s.totals.reserved,
              captured: s.totals.captured
            })
        )
      )

    const task = (id: string) =>
      Effect.gen(function* () {
        const t = id.toLowerCase()
        if (!HASH.test(t)) return yield* new NotFound({ what: "task", id })
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

    const inferStream = (session: string, inputs: unknown): Stream.Stream<TaskProgress, InferenceRejected> =>
      Stream.asyncPush<TaskProgress, InferenceRejected>((emit) =>
        runner.inferWithProgress(session, inputs, (p) => Effect.sync(() => emit.single(p))).pipe(
          Effect.matchEffect({
            onFailure: (e) => Effect.sync(() => emit.fail(e)),
            onSuccess: () => Effect.sync(() => emit.end())
          }),
          Effect.forkScoped
        )
      )

    const blob = (hash: string, offset: number, length: number) =>
      Effect.gen(function* () {
        const path = yield* blobs.path(hash.toLowerCase()).pipe(Effect.mapError(() => new NotFound({ what: "blob", id: hash })))
        const { openSync, readSync, closeSync, fstatSync } = yield* Effect.promise(() => import("node:fs"))
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
      register: (r: RegisterRequest) => hub.register(r),
      heartbeat: hub.heartbeat,
      tasks: hub.tasks,
      result: (r: ResultRequest) => hub.result(r),
      failed: hub.failed,
      blob
    }
  })

export type AiNodeShape = Effect.Effect.Success<ReturnType<typeof makeAiNode>>
export class AiNode extends Context.Tag("topai/AiNode")<AiNode, AiNodeShape>() {}

export const AiNodeLive = (
  config: AiConfig
): Layer.Layer<AiNode, never, ChainNode | Economy | EventStore | BlobStore | SandboxedSmokeRun | SignatureVerifier> =>
  Layer.scoped(AiNode, makeAiNode(config))

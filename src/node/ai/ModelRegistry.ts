/**
 * Models on a node: their actors, the weights they wait for, and this node's
 * own verification of each. A model registered on chain waits (Pending) for
 * its weights; once they are in the blob store the node verifies them in a
 * sandbox and attests; the decider turns attestations (or the deadline) into
 * ModelVerified or ModelRejected — never a model stuck Pending.
 *
 * Weights uploaded to another node reach this one from its `peers`: a
 * model that waits for weights this node lacks is fetched by hash from them
 * (fetchWeights.ts), round after round with back-off while no peer has them
 * yet (the provider uploads after registering) and the model still wants
 * them (Pending or Verified); then it is verified as an upload is.
 *
 * Each verification is recorded (BeginVerification) before the sandbox
 * starts, so a verification that took the node down counts when it starts
 * again; after VERIFICATION_ATTEMPTS_MAX of them the decider attests a
 * rejection, "verification crashed", instead of letting it run once more.
 */
import type { RecordOverrun } from "../../../domain/ai/model/overruns.js"
import { Clock, Duration, Effect, Either, Schema } from "effect"
import type { Scope } from "effect"
import { ModelManifest } from "../../../domain/ai/manifest.js"
import { AttestModel, BeginVerification, DeprecateModel, ExpireVerification, UpdatePrice, UploadModel } from "../../../domain/ai/model/commands.js"
import type { ModelCommand, ModelRules } from "../../../domain/ai/model/commands.js"
import type { ModelState } from "../../../domain/ai/model/decide.js"
import type { ModelDeprecationRequested, ModelPriceRequested, ModelRegistered } from "../../../domain/chain/events.js"
import type { Address } from "../../../domain/chain/keys.js"
import { withCause } from "../../../actors/causation.js"
import { makeModelActors, modelStream } from "../../../actors/ModelActor.js"
import { BlobStore } from "../../../infra/blobstore/BlobStore.js"
import { SandboxedSmokeRun } from "../../../infra/inference/SandboxedSmokeRun.js"
import { DEFAULT_VERIFY_CONFIG, verifyModel } from "../../../infra/inference/verifyModel.js"
import type { EventStore } from "../../../infra/eventstore/EventStore.js"
import type { AiConfig } from "./AiConfig.js"
import { fetchWeightsFrom } from "./fetchWeights.js"

const decodeManifest = Schema.decodeUnknownEither(Schema.parseJson(ModelManifest))

/** Back-off between rounds over the peers while none has a model's weights. */
export const PEER_RETRY_INITIAL = Duration.millis(500)
export const PEER_RETRY_MAX = Duration.seconds(10)

/** How often Pending models are checked against their deadline. */
export const EXPIRY_CHECK_EVERY = "5 seconds"

export const makeModelRegistry = (config: AiConfig) =>
  Effect.gen(function* () {
    const validator = config.validatorKey.publicKey.address
    const rules: ModelRules = {
      validators: [validator],
      attestationQuorum: 1,
      verificationTimeoutMs: config.verificationTimeoutMs,
      gpuClasses: config.gpuClasses
    }
    const actors = yield* makeModelActors(rules)
    const blobs = yield* BlobStore
    const sandbox = yield* SandboxedSmokeRun
    const known = new Set<string>()
    /**
     * Registrations the model actor refused (a minimum GPU class not in the
     * table): executed on chain, so shown as rejected with the reason rather
     * than not at all. Rebuilt from the chain on every start.
     */
    const refused = new Map<string, { readonly registered: ModelRegistered; readonly manifest: ModelManifest; readonly reason: string }>()
    // One sandboxed verification at a time: each is a child process with a memory bound.
    const verifying = yield* Effect.makeSemaphore(1)
    const verifyConfig = { ...DEFAULT_VERIFY_CONFIG, ...config.verify }
    const scope = yield* Effect.scope
    const peers = config.peers ?? []
    const retryInitial = Duration.decode(config.peerFetch?.retryInitial ?? PEER_RETRY_INITIAL)
    const retryMax = Duration.decode(config.peerFetch?.retryMax ?? PEER_RETRY_MAX)
    /** Weights being fetched from peers: one fetch per hash, however many models declare it. */
    const fetching = new Set<string>()

    const state = (modelId: string): Effect.Effect<ModelState> =>
      actors.get(modelStream(modelId)).pipe(Effect.flatMap((a) => a.state))

    const ask = (modelId: string, command: ModelCommand) =>
      actors.get(modelStream(modelId)).pipe(Effect.flatMap((a) => a.ask(command)))

    /** Verify and attest, if the model waits for us and its weights are here. */
    const verifyIfReady = (modelId: string): Effect.Effect<void> =>
      Effect.gen(function* () {
        const s = yield* state(modelId)
        if (s.status !== "Pending" || s.upload === null) return
        if (s.attestations.some((a) => a.validator === validator)) return
        const upload = s.upload
        if (!(yield* blobs.has(upload.weightsHash).pipe(Effect.orElseSucceed(() => false)))) return
        const reply = yield* verifying.withPermits(1)(
          Effect.gen(function* () {
            // Another fiber may have verified it while this one waited for the permit.
            const now = yield* state(modelId)
            if (now.status !== "Pending" || now.attestations.some((a) => a.validator === validator)) return null
            // Recorded before the sandbox starts; after too many, the decider attests "verification crashed".
            const begun = yield* ask(modelId, new BeginVerification({ validator, at: yield* Clock.currentTimeMillis }))
            if (begun.events.some((e) => e._tag === "ModelAttested")) return begun
            const verdict = yield* blobs.get(upload.weightsHash).pipe(
              Effect.flatMap((bytes) => verifyModel(bytes, upload.manifest, upload.weightsHash, verifyConfig)),
              Effect.provideService(SandboxedSmokeRun, sandbox)
            )
            return yield* ask(modelId, new AttestModel({ validator, verdict, at: yield* Clock.currentTimeMillis }))
          })
        )
        if (reply === null) return
        const end = reply.events.find((e) => e._tag === "ModelVerified" || e._tag === "ModelRejected")
        if (end !== undefined) {
          yield* Effect.logInfo(
            end._tag === "ModelVerified"
              ? `model ${modelId} (${upload.manifest.name}) verified`
              : `model ${modelId} (${upload.manifest.name}) rejected: ${end.reason}`
          )
        }
      }).pipe(
        Effect.catchAll((e) => Effect.logWarning(`model ${modelId}: verification not recorded: ${e.message}`)),
        Effect.catchAllDefect((d) => Effect.logError(`model ${modelId}: verification failed`, d))
      )

    const onRegistered = (e: ModelRegistered, at: number) =>
      Effect.gen(function* () {
        known.add(e.txHash)
        const manifest = decodeManifest(e.manifest)
        if (Either.isLeft(manifest)) return yield* Effect.logError(`model ${e.txHash}: manifest undecodable on replay`)
        yield* ask(
          e.txHash,
          withCause(
            new UploadModel({
              modelId: e.txHash,
              provider: e.provider,
              manifest: manifest.right,
              weightsHash: e.weightsHash,
              sizeBytes: Number(e.sizeBytes),
              at
            }),
            e.txHash
          )
        ).pipe(
          Effect.catchAll((err) =>
            err._tag === "UploadRejected" && err.reason !== "AlreadyUploaded" // AlreadyUploaded: a replay
              ? Effect.sync(() => refused.set(e.txHash, { registered: e, manifest: manifest.right, reason: err.detail })).pipe(
                  Effect.zipRight(Effect.logInfo(`model ${e.txHash} refused: ${err.detail}`))
                )
              : Effect.void
          )
        )
        yield* Effect.forkDaemon(verifyIfReady(e.txHash))
        if (peers.length > 0) yield* fetchFromPeers(e.txHash, e.weightsHash, Number(e.sizeBytes))
      })

    /** Weights this node lacks that some model still wants (Pending: to verify; Verified: to serve). */
    const wanted = (weightsHash: string) =>
      Effect.gen(function* () {
        if (yield* blobs.has(weightsHash).pipe(Effect.orElseSucceed(() => true))) return false
        for (const id of known) {
          const s = yield* state(id)
          if ((s.status === "Pending" || s.status === "Verified") && s.upload?.weightsHash === weightsHash) return true
        }
        return false
      })

    /** Fetches a model's weights from the peers in the background, round after round, until stored or no longer wanted. */
    const fetchFromPeers = (modelId: string, weightsHash: string, sizeBytes: number) =>
      Effect.gen(function* () {
        if (fetching.has(weightsHash) || !(yield* wanted(weightsHash))) return
        fetching.add(weightsHash)
        yield* Effect.gen(function* () {
          let delay = retryInitial
          for (let round = 1; yield* wanted(weightsHash); round++) {
            const fetched = yield* Effect.either(fetchWeightsFrom(peers, weightsHash, sizeBytes, { sizeMax: config.modelBytesMax }).pipe(Effect.provideService(BlobStore, blobs)))
            if (Either.isRight(fetched)) {
              const f = fetched.right
              if (f.peer !== null) yield* Effect.logInfo(`weights ${weightsHash} of model ${modelId}: fetched ${sizeBytes} bytes from ${f.peer}, sha256 checked`)
              for (const s of f.skipped.filter((a) => a.reason === "HashMismatch" || a.reason === "SizeMismatch" || a.reason === "BadChunk")) {
                yield* Effect.logWarning(`weights ${weightsHash}: peer ${s.peer} served them wrong: ${s.reason}: ${s.detail}`)
              }
              return yield* onWeightsStored(weightsHash)
            }
            const e = fetched.left
            if (e.reason === "TooLarge" || e.reason === "BadHash") return yield* Effect.logWarning(`model ${modelId}: weights not fetched: ${e.message}`)
            // Usually the provider has not uploaded them anywhere yet: said once, then quietly asked again.
            if (round === 1) yield* Effect.logInfo(`model ${modelId}: no peer serves weights ${weightsHash} yet; asking again with back-off (${e.message})`)
            else yield* Effect.logDebug(`model ${modelId}: round ${round}: ${e.message}`)
            yield* Effect.sleep(delay)
            delay = Duration.min(Duration.times(delay, 2), retryMax)
          }
        }).pipe(
          Effect.ensuring(Effect.sync(() => fetching.delete(weightsHash))),
          Effect.catchAllDefect((d) => Effect.logError(`model ${modelId}: fetching weights from peers failed`, d)),
          Effect.forkIn(scope)
        )
      })

    const onPriceRequested = (e: ModelPriceRequested) =>
      ask(e.model, withCause(new UpdatePrice({ provider: e.provider, price: e.price }), e.txHash)).pipe(
        Effect.catchAll((err) => Effect.logInfo(`model ${e.model}: price change refused: ${err.message}`))
      )

    const onDeprecationRequested = (e: ModelDeprecationRequested) =>
      ask(e.model, withCause(new DeprecateModel({ provider: e.provider }), e.txHash)).pipe(
        Effect.catchAll((err) => Effect.logInfo(`model ${e.model}: deprecation refused: ${err.message}`))
      )

    /** New weights arrived: every Pending model waiting for them gets verified. */
    const onWeightsStored = (weightsHash: string) =>
      Effect.forEach(
        [...known],
        (id) =>
          state(id).pipe(
            Effect.flatMap((s) =>
              s.status === "Pending" && s.upload?.weightsHash === weightsHash ? Effect.forkDaemon(verifyIfReady(id)) : Effect.void
            )
          ),
        { discard: true }
      )

    const expireOverdue = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const id of known) {
        const s = yield* state(id)
        if (s.status === "Pending" && s.upload !== null && now >= s.upload.verificationDeadline) {
          yield* ask(id, new ExpireVerification({ at: now })).pipe(Effect.ignore)
        }
      }
    })
    yield* expireOverdue.pipe(Effect.zipRight(Effect.sleep(EXPIRY_CHECK_EVERY)), Effect.forever, Effect.forkScoped)

    return {
      state,
      known: (): ReadonlyArray<string> => [...known],
      /** Why the registration of `modelId` was refused, if it was. */
      refusal: (modelId: string) => refused.get(modelId),
      onRegistered,
      onPriceRequested,
      onDeprecationRequested,
      onWeightsStored,
      /** A task on the model overran its limits (serving, TaskRunner): counted, and the model suspended at the threshold. */
      recordOverrun: (modelId: string, command: RecordOverrun) => ask(modelId, command),
      validator: validator as Address
    }
  })

export type ModelRegistry = Effect.Effect.Success<ReturnType<typeof makeModelRegistry>>
export type ModelRegistryRequirements = EventStore | BlobStore | SandboxedSmokeRun | Scope.Scope

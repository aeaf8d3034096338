/**
 * Models on a node. The model's life — Pending, Verified, Rejected,
 * Deprecated, its price, its reference fingerprint, the attestations — is
 * the AI ledger's (`domain/ai/ledger/models.ts`), read through the
 * attestor. What this node keeps in its ModelActor (`model-{id}`) is its OWN
 * verification of the weights: the attempts, and its verdict with the
 * signature and smoke timing that serving needs. The actor's quorum is this
 * node alone, so its "Verified"/"Rejected" is this node's verdict, never the
 * model's status.
 *
 *   registered on chain (AiModelRegistered)  → recorded here; weights awaited
 *   weights here (uploaded, or from peers)   → verified in the sandbox; the
 *                                              verdict submitted as one signed
 *                                              `model.attest` while the ledger
 *                                              has the model Pending
 *   the ledger Verified it                   → served here only if this node's
 *                                              own verdict has the same
 *                                              reference fingerprint (a node
 *                                              that disagrees, or has not
 *                                              verified, does not serve it)
 *
 * A node that learns of a model the ledger already Verified still verifies
 * it (without attesting: the ledger takes attestations only while Pending),
 * since it serves only what it ran itself.
 *
 * Weights uploaded to another node reach this one from its `peers`: a
 * model that waits for weights this node lacks is fetched by hash from them
 * (fetchWeights.ts), round after round with back-off while no peer has them
 * yet (the provider uploads after registering) and the model still wants
 * them; then it is verified as an upload is.
 *
 * Each verification is recorded (BeginVerification) before the sandbox
 * starts, so a verification that took the node down counts when it starts
 * again; after VERIFICATION_ATTEMPTS_MAX of them the decider records a
 * rejection, "verification crashed", which this node attests instead of
 * letting it run once more.
 */
import type { RecordOverrun } from "../../../domain/ai/model/overruns.js"
import { Clock, Duration, Effect, Either, HashMap, Schema } from "effect"
import type { Scope } from "effect"
import { ModelManifest } from "../../../domain/ai/manifest.js"
import { AttestModel, BeginVerification, UploadModel } from "../../../domain/ai/model/commands.js"
import type { ModelCommand, ModelRules } from "../../../domain/ai/model/commands.js"
import type { ModelState } from "../../../domain/ai/model/decide.js"
import { ModelRejected } from "../../../domain/ai/model/events.js"
import type { ModelVerdict } from "../../../domain/ai/verdict.js"
import type { AiModelRegistered } from "../../../domain/ai/ledger/events.js"
import type { AiModel } from "../../../domain/ai/ledger/state.js"
import { DEADLINE_REASON } from "../../../domain/ai/ledger/models.js"
import { ATTEST_REASON_CHARS_MAX, type ModelAttestPayload } from "../../../domain/chain/transaction.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import type { Address } from "../../../domain/chain/keys.js"
import { withCause } from "../../../actors/causation.js"
import { makeModelActors, modelStream } from "../../../actors/ModelActor.js"
import { BlobStore } from "../../../infra/blobstore/BlobStore.js"
import { SandboxedSmokeRun } from "../../../infra/inference/SandboxedSmokeRun.js"
import { DEFAULT_VERIFY_CONFIG, verifyModel } from "../../../infra/inference/verifyModel.js"
import type { EventStore } from "../../../infra/eventstore/EventStore.js"
import type { AiConfig } from "./AiConfig.js"
import { fetchWeightsFrom } from "./fetchWeights.js"
import type { ModelAttestor } from "./ModelAttestor.js"

const decodeManifest = Schema.decodeUnknownEither(Schema.parseJson(ModelManifest))

/** Back-off between rounds over the peers while none has a model's weights. */
export const PEER_RETRY_INITIAL = Duration.millis(500)
export const PEER_RETRY_MAX = Duration.seconds(10)

/**
 * The local record's deadline: none that matters. The model's deadline is
 * the ledger's (ATTEST_DEADLINE_BLOCKS); this node may verify a model later
 * than that (one the ledger Verified before this node saw it) to serve it.
 */
const OWN_VERIFICATION_WINDOW_MS = 100 * 365 * 24 * 3600 * 1000

/** How long a model the AI shard's events registered may take to show in the node's ledger. */
const LEDGER_WAIT = Duration.seconds(10)

/** The `model.attest` a verdict makes. */
export const attestationOf = (model: string, v: ModelVerdict): ModelAttestPayload =>
  v._tag === "ModelAccepted"
    ? { kind: "model.attest", model: model as Hash32, verdict: "verified", fingerprint: v.referenceFingerprint }
    : { kind: "model.attest", model: model as Hash32, verdict: "rejected", reason: `${v.check}: ${v.reason}`.slice(0, ATTEST_REASON_CHARS_MAX) }

/** This node's own verdict on a model, if it has one. */
export const ownVerdictOf = (s: ModelState, self: Address): ModelVerdict | undefined => s.attestations.find((a) => a.validator === self)?.verdict

/**
 * What serving sees of a model (TaskRunner reads `isServable`, `price`,
 * the accepted attestation's signature): the ledger's status and price over
 * this node's own record. Verified only when the ledger says so AND this
 * node's own verdict has the ledger's reference fingerprint.
 */
export const servingStateOf = (own: ModelState, m: AiModel | undefined, self: Address): ModelState => {
  if (m === undefined) return { ...own, status: own.status === "Absent" ? "Absent" : "Pending" }
  const verdict = ownVerdictOf(own, self)
  const agrees = verdict?._tag === "ModelAccepted" && verdict.referenceFingerprint === m.fingerprint
  const base = { ...own, price: m.price, referenceFingerprint: m.fingerprint, deprecated: m.status === "Deprecated" }
  switch (m.status) {
    case "Pending":
      return { ...base, status: "Pending" }
    case "Rejected":
      return { ...base, status: "Rejected", rejection: ledgerRejection(m) }
    case "Verified":
    case "Deprecated":
      return { ...base, status: agrees ? "Verified" : verdict === undefined ? "Pending" : "Rejected" }
  }
}

const ledgerRejection = (m: AiModel): ModelRejected =>
  new ModelRejected({
    cause: m.reason === DEADLINE_REASON ? "TimedOut" : "Attested",
    check: null,
    reason: m.reason ?? "rejected",
    at: 0
  })

export const makeModelRegistry = (config: AiConfig, attestor: ModelAttestor) =>
  Effect.gen(function* () {
    const self = attestor.address
    const rules: ModelRules = {
      validators: [self],
      attestationQuorum: 1,
      verificationTimeoutMs: OWN_VERIFICATION_WINDOW_MS,
      gpuClasses: config.gpuClasses
    }
    const actors = yield* makeModelActors(rules)
    const blobs = yield* BlobStore
    const sandbox = yield* SandboxedSmokeRun
    const known = new Set<string>()
    /**
     * Registrations the model actor refused (a minimum GPU class not in the
     * genesis table): this node attests them rejected with the reason.
     * Rebuilt from the chain on every start.
     */
    const refused = new Map<string, string>()
    /** Models this node submitted its attestation of in this life: one `model.attest` each. */
    const attested = new Set<string>()
    // One sandboxed verification at a time: each is a child process with a memory bound.
    const verifying = yield* Effect.makeSemaphore(1)
    const verifyConfig = { ...DEFAULT_VERIFY_CONFIG, ...config.verify }
    const scope = yield* Effect.scope
    const peers = config.peers ?? []
    const retryInitial = Duration.decode(config.peerFetch?.retryInitial ?? PEER_RETRY_INITIAL)
    const retryMax = Duration.decode(config.peerFetch?.retryMax ?? PEER_RETRY_MAX)
    /** Weights being fetched from peers: one fetch per hash, however many models declare it. */
    const fetching = new Set<string>()

    /** This node's own record of the model. */
    const own = (modelId: string): Effect.Effect<ModelState> => actors.get(modelStream(modelId)).pipe(Effect.flatMap((a) => a.state))

    const ask = (modelId: string, command: ModelCommand) => actors.get(modelStream(modelId)).pipe(Effect.flatMap((a) => a.ask(command)))

    /** What serving sees: the ledger's status over this node's own verification. */
    const state = (modelId: string): Effect.Effect<ModelState> =>
      Effect.gen(function* () {
        return servingStateOf(yield* own(modelId), yield* attestor.model(modelId), self)
      })

    /** This node's verdict to the ledger, once, while the ledger has the model Pending and has none from this node. */
    const submitAttestation = (modelId: string, payload: ModelAttestPayload) =>
      Effect.gen(function* () {
        const m = yield* attestor.model(modelId)
        if (m === undefined || m.status !== "Pending" || attested.has(modelId)) return
        if (HashMap.has(m.attestations, self)) return
        attested.add(modelId)
        const hash = yield* attestor.attest(payload).pipe(Effect.tapError(() => Effect.sync(() => attested.delete(modelId))))
        yield* Effect.logInfo(`model ${modelId}: attested ${payload.verdict} (${hash})`)
      }).pipe(Effect.catchAll((e) => Effect.logWarning(`model ${modelId}: attestation not submitted: ${e.message}`)))

    /**
     * The ledger's model, once the chain node's ledger shows it: the AI
     * shard's events reach the projection as they are stored, a moment
     * before the ledger state they made is the node's.
     */
    const ledgerModel = (modelId: string) =>
      Effect.gen(function* () {
        const until = (yield* Clock.currentTimeMillis) + Duration.toMillis(LEDGER_WAIT)
        for (;;) {
          const m = yield* attestor.model(modelId)
          if (m !== undefined || (yield* Clock.currentTimeMillis) >= until) return m
          yield* Effect.sleep("20 millis")
        }
      })

    /** Verify, attest, or both, as far as the ledger and the weights allow. */
    const verifyIfReady = (modelId: string): Effect.Effect<void> =>
      Effect.gen(function* () {
        const m = yield* ledgerModel(modelId)
        if (m === undefined || m.status === "Rejected" || m.status === "Deprecated") return
        const refusal = refused.get(modelId)
        if (refusal !== undefined) {
          return yield* submitAttestation(modelId, { kind: "model.attest", model: modelId as Hash32, verdict: "rejected", reason: refusal.slice(0, ATTEST_REASON_CHARS_MAX) })
        }
        const s = yield* own(modelId)
        if (s.upload === null) return
        const mine = ownVerdictOf(s, self)
        if (mine !== undefined) return yield* submitAttestation(modelId, attestationOf(modelId, mine))
        const upload = s.upload
        if (!(yield* blobs.has(upload.weightsHash).pipe(Effect.orElseSucceed(() => false)))) return
        const verdict = yield* verifying.withPermits(1)(
          Effect.gen(function* () {
            // Another fiber may have verified it while this one waited for the permit.
            const now = yield* own(modelId)
            if (now.status !== "Pending" || ownVerdictOf(now, self) !== undefined) return undefined
            // Recorded before the sandbox starts; after too many, the decider records "verification crashed".
            const begun = yield* ask(modelId, new BeginVerification({ validator: self, at: yield* Clock.currentTimeMillis }))
            const crashed = begun.events.find((e) => e._tag === "ModelAttested")
            if (crashed !== undefined && crashed._tag === "ModelAttested") return crashed.verdict
            const verdict = yield* blobs.get(upload.weightsHash).pipe(
              Effect.flatMap((bytes) => verifyModel(bytes, upload.manifest, upload.weightsHash, verifyConfig)),
              Effect.provideService(SandboxedSmokeRun, sandbox)
            )
            yield* ask(modelId, new AttestModel({ validator: self, verdict, at: yield* Clock.currentTimeMillis }))
            return verdict
          })
        )
        if (verdict === undefined) {
          // Another fiber verified it meanwhile: only the attestation may be left.
          const mine = ownVerdictOf(yield* own(modelId), self)
          return mine === undefined ? undefined : yield* submitAttestation(modelId, attestationOf(modelId, mine))
        }
        yield* Effect.logInfo(
          verdict._tag === "ModelAccepted"
            ? `model ${modelId} (${upload.manifest.name}): this node verified it, fingerprint ${verdict.referenceFingerprint}`
            : `model ${modelId} (${upload.manifest.name}): this node rejects it: ${verdict.check}: ${verdict.reason}`
        )
        yield* submitAttestation(modelId, attestationOf(modelId, verdict))
      }).pipe(
        Effect.catchAll((e) => Effect.logWarning(`model ${modelId}: verification not recorded: ${e.message}`)),
        Effect.catchAllDefect((d) => Effect.logError(`model ${modelId}: verification failed`, d))
      )

    /** A model registered on chain (the AI shard's AiModelRegistered): recorded, then verified once its weights are here. */
    const onRegistered = (e: AiModelRegistered, at: number) =>
      Effect.gen(function* () {
        known.add(e.model)
        const manifest = decodeManifest(e.manifest)
        if (Either.isLeft(manifest)) return yield* Effect.logError(`model ${e.model}: manifest undecodable on replay`)
        yield* ask(
          e.model,
          withCause(
            new UploadModel({
              modelId: e.model,
              provider: e.provider,
              manifest: manifest.right,
              weightsHash: e.weightsHash,
              sizeBytes: Number(e.sizeBytes),
              at
            }),
            e.model
          )
        ).pipe(
          Effect.catchAll((err) =>
            err._tag === "UploadRejected" && err.reason !== "AlreadyUploaded" // AlreadyUploaded: a replay
              ? Effect.sync(() => refused.set(e.model, `registration refused: ${err.detail}`)).pipe(
                  Effect.zipRight(Effect.logInfo(`model ${e.model} refused: ${err.detail}`))
                )
              : Effect.void
          )
        )
        yield* Effect.forkIn(verifyIfReady(e.model), scope)
        if (peers.length > 0 && !refused.has(e.model)) yield* fetchFromPeers(e.model, e.weightsHash, Number(e.sizeBytes))
      })

    /** The ledger decided (AiModelVerified / AiModelRejected): a Verified model this node has not verified yet is verified to be served. */
    const onVerdict = (modelId: string) =>
      Effect.gen(function* () {
        if (!known.has(modelId)) return
        const m = yield* attestor.model(modelId)
        const s = yield* own(modelId)
        const mine = ownVerdictOf(s, self)
        if (m?.status === "Verified" && mine !== undefined) {
          const agrees = mine._tag === "ModelAccepted" && mine.referenceFingerprint === m.fingerprint
          if (!agrees) yield* Effect.logWarning(`model ${modelId} is Verified on chain (fingerprint ${m.fingerprint}); this node's own verdict disagrees: it does not serve it`)
          return
        }
        yield* Effect.forkIn(verifyIfReady(modelId), scope)
        if (peers.length > 0 && s.upload !== null) yield* fetchFromPeers(modelId, s.upload.weightsHash, s.upload.sizeBytes)
      })

    /** Weights this node lacks that some model still wants: the ledger has it Pending or Verified, and this node has no verdict on it. */
    const wanted = (weightsHash: string) =>
      Effect.gen(function* () {
        if (yield* blobs.has(weightsHash).pipe(Effect.orElseSucceed(() => true))) return false
        for (const id of known) {
          const s = yield* own(id)
          if (s.upload?.weightsHash !== weightsHash || ownVerdictOf(s, self) !== undefined) continue
          const m = yield* attestor.model(id)
          if (m?.status === "Pending" || m?.status === "Verified") return true
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

    /** New weights arrived: every model waiting for them gets verified. */
    const onWeightsStored = (weightsHash: string) =>
      Effect.forEach(
        [...known],
        (id) =>
          own(id).pipe(
            Effect.flatMap((s) => (s.upload?.weightsHash === weightsHash && ownVerdictOf(s, self) === undefined ? Effect.forkIn(verifyIfReady(id), scope) : Effect.void))
          ),
        { discard: true }
      )

    return {
      /** What serving sees (servingStateOf). */
      state,
      /** This node's own verification record. */
      own,
      known: (): ReadonlyArray<string> => [...known],
      /** Why this node refused the registration of `modelId`, if it did. */
      refusal: (modelId: string) => refused.get(modelId),
      onRegistered,
      onVerdict,
      onWeightsStored,
      /** A task on the model overran its limits (serving, TaskRunner): counted, and the model suspended at the threshold. */
      recordOverrun: (modelId: string, command: RecordOverrun) => ask(modelId, command),
      /** The ledger's models (AI shard), as this node applied them. */
      ledger: attestor.ledger,
      validator: self
    }
  })

export type ModelRegistry = Effect.Effect.Success<ReturnType<typeof makeModelRegistry>>
export type ModelRegistryRequirements = EventStore | BlobStore | SandboxedSmokeRun | Scope.Scope

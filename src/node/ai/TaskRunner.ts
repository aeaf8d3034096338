/**
 * Paid inference, request to validated result, without waiting for a block:
 * admit (session, servable model, inputs that fit its signature, the
 * developer's signed request for this very task — its id is the request's
 * digest, used once — escrow reserved), record the task, schedule, dispatch, and feed every worker's
 * result or failure into the TaskActor until it says Validated or Failed.
 * A validated task is captured from escrow at once and settled in the open
 * receipt batch; a failed one releases its reservation — the developer pays
 * exactly once, never for a failure.
 *
 * Serving is bounded by the manifest: inputs over the model's max shapes,
 * fixed inputs changed, or too many bytes are refused (`InputsOutOfBounds`)
 * before anything is reserved, and each run gets a deadline from the
 * model's verified cost (`runDeadlineMillis`). A worker's claim that its
 * engine stopped the run at its limits (deadline or memory) is only a
 * claim: the same inputs run on another worker under the same deadline.
 * Confirmed, the task is charged — the time was burned — and refused to the
 * developer as `Overran`, and it counts towards the model's suspension;
 * refuted by a result, the claimant is marked wrong and the developer gets
 * the result; with no worker to confirm it, the task fails uncharged.
 */
import { createHash, randomBytes } from "node:crypto"
import { Clock, Effect, Either, Fiber, Queue, Random, Schema } from "effect"
import { inputHash as hashInputs } from "../../../domain/ai/inputHash.js"
import { tensorMapToWire } from "../../../domain/ai/tensor.js"
import { decodeRequestInputs } from "../../../domain/ai/signature.js"
import { checkServingInputs, servingBounds } from "../../../domain/ai/servingBounds.js"
import { DEFAULT_RUN_DEADLINE_RULES, runDeadlineMillis } from "../../../domain/ai/runDeadline.js"
import { ClaimOverrun, describeOverrun, overrunRecordOf, refutationProvesLie } from "../../../domain/ai/task/overrun.js"
import { Capture, Release, Reserve } from "../../../domain/ai/escrow/commands.js"
import { pickWorkers } from "../../../domain/ai/scheduling/pickWorkers.js"
import { AbandonTask, AssignTask, RequestTask, ResolveDispute, SettleTask, SubmitResult, WorkerFailed } from "../../../domain/ai/task/commands.js"
import { isServable } from "../../../domain/ai/model/state.js"
import { PER_MILLION } from "../../../domain/ai/task/events.js"
import { isSampled, workersNeeded } from "../../../domain/ai/task/decide.js"
import { wrongResultProofs, type SignedResult } from "../../../domain/ai/task/wrongResultProofs.js"
import type { ValidationPolicy } from "../../../domain/ai/task/events.js"
import type { TaskState } from "../../../domain/ai/task/state.js"
import type { ModelManifest } from "../../../domain/ai/manifest.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import type { Address } from "../../../domain/chain/keys.js"
import { SignedGrant, USAGE_RESULTS_MAX, type OverranReceipt, type UsageReceipt } from "../../../domain/chain/transaction.js"
import { NONCE_PATTERN, sessionGrantDigest, taskIdOf, taskRequestDigest, verifyMessage } from "../../../domain/ai/signedMessages.js"
import { hexToBytes } from "../../../domain/chain/hex.js"
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from "../../../domain/chain/keys.js"
import { SignatureVerifier } from "../../../infra/crypto/SignatureVerifier.js"
import { makeEscrowActors, escrowStream } from "../../../actors/EscrowActor.js"
import { makeTaskActors, taskStream } from "../../../actors/TaskActor.js"
import { EventStore } from "../../../infra/eventstore/EventStore.js"
import { InferenceRejected, InferResult, TaskAssignment, TaskProgress, type WorkerOverrun } from "../../api/AiRpcs.js"
import type { AiConfig, AiEconomy } from "./AiConfig.js"
import type { ModelRegistry } from "./ModelRegistry.js"
import type { Challenger } from "./Challenger.js"
import type { Settler } from "./Settler.js"
import type { WorkerHub, WorkerOutcome } from "./WorkerHub.js"

interface Session {
  readonly developer: Address
  readonly model: string
  /** The grant exactly as the developer signed it: each task's usage receipt carries it. */
  readonly grant: SignedGrant
  readonly expiresAt: number
  /** The most this session may commit; `committed` counts tasks admitted and not failed. */
  readonly spendMax: bigint
  committed: bigint
  /** The grant's key as bytes: each task's request is verified against it. */
  readonly publicKeyBytes: Uint8Array
  /** Task ids this session admitted: a signed request runs once (its id names the grant, so no other session has it). */
  readonly tasks: Set<string>
}

/** The developer's request for one call, signed with the session grant's key (`signTaskRequest`). */
export interface SignedTaskRequest {
  readonly nonce: string
  readonly signature: string
  /** The id the client computed (optional): checked against the digest. */
  readonly task?: string | undefined
}

/**
 * The longest a session grant may live. A session id is a bearer credential
 * for its whole life: a day bounds what a leaked one can do, and how long
 * its grant's nonce must be remembered to refuse a replay.
 */
export const SESSION_LIFETIME_MAX_MS = 24 * 60 * 60_000

/**
 * Open sessions per developer. A session opens only against an escrow (a
 * deposit, a fee paid on chain), and each holds a little memory until it
 * expires: this bounds what one funded developer can make the node hold.
 */
export const SESSIONS_PER_DEVELOPER_MAX = 64

/**
 * A grant opens a session only if signed this close to the node's clock
 * (either side) and not before the node started: its nonce is remembered
 * for as long, so a replay is refused even across a restart (the memory of
 * nonces is lost, but grants signed before the start are refused).
 */
export const SESSION_GRANT_WINDOW_MS = 60_000

/** `session.open`: a developer's signed grant. */
export interface SessionGrantRequest {
  readonly publicKey: string
  readonly model: string
  readonly issuedAt: number
  readonly expiresAt: number
  readonly spendMax: bigint
  readonly nonce: string
  readonly signature: string
}

/** How often expired sessions and the nonces of expired grants are forgotten. */
export const SESSION_PRUNE_EVERY = "1 minute"

const MODEL_ID = /^0x[0-9a-f]{64}$/

const decodeGrant = Schema.validateEither(SignedGrant)

const sha256Hex = (text: string | Uint8Array) => `0x${createHash("sha256").update(text).digest("hex")}` as Hash32

/** A worker's deadline over its run's: weights to fetch, inputs to decode, the answer to send. */
const RUN_DEADLINE_SLACK_MS = 2_000

const reject = (reason: InferenceRejected["reason"], detail: string) => new InferenceRejected({ reason, detail })

export const policyOf = (manifest: ModelManifest): ValidationPolicy =>
  manifest.validation.kind === "quorum"
    ? { _tag: "Quorum", k: manifest.validation.k, n: manifest.validation.n }
    : { _tag: "Single", sampleRatePerMillion: manifest.validation.sampleRatePerMillion }

/**
 * The AI ledger's escrow for (developer, model), or undefined while the chain
 * has no AI ledger to ask (admission then rests on the local book alone).
 */
export type LedgerEscrow = (developer: Address, model: Hash32) => Effect.Effect<bigint | undefined>

export const makeTaskRunner = (
  config: AiConfig,
  chainId: bigint,
  models: ModelRegistry,
  hub: WorkerHub,
  economy?: AiEconomy,
  settlement?: { readonly settler: Settler; readonly ledgerEscrow: LedgerEscrow; readonly challenger?: Challenger }
) =>
  Effect.gen(function* () {
    const tasks = yield* makeTaskActors({ retriesMax: config.retriesMax })
    const escrows = yield* makeEscrowActors()
    const sessions = new Map<string, Session>()
    /** `${developer}:${nonce}` of every grant opened, with its issuedAt, for the window: a grant opens one session. */
    const grantNonces = new Map<string, number>()
    const startedAt = yield* Clock.currentTimeMillis
    const sessionsOf = new Map<string, number>()
    const store = yield* EventStore
    const verifier = yield* SignatureVerifier
    /** The receipt batch validated tasks settle into; Settlement closes it and opens the next. */
    let openBatch = sha256Hex(`batch:${randomBytes(16).toString("hex")}`)

    const openSession = ({ expiresAt, issuedAt, model, nonce, publicKey, signature, spendMax }: SessionGrantRequest) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        if (!Number.isSafeInteger(issuedAt) || Math.abs(now - issuedAt) > SESSION_GRANT_WINDOW_MS || issuedAt < startedAt) {
          return yield* reject(
            "StaleGrant",
            `signed at ${issuedAt}, the node's clock says ${now} (started ${startedAt}): a grant must be signed within ${SESSION_GRANT_WINDOW_MS} ms of it, since the node started`
          )
        }
        if (!Number.isSafeInteger(expiresAt) || expiresAt <= now) {
          return yield* reject("BadSession", `the grant expired at ${Number.isSafeInteger(expiresAt) ? new Date(expiresAt).toISOString() : expiresAt}`)
        }
        if (expiresAt - now > SESSION_LIFETIME_MAX_MS) {
          return yield* reject("BadSession", `the grant lives ${expiresAt - now} ms; a session lives at most ${SESSION_LIFETIME_MAX_MS} ms`)
        }
        if (spendMax <= 0n) return yield* reject("BadSession", `the grant's spending cap must be > 0, got ${spendMax}`)
        if (!NONCE_PATTERN.test(nonce)) return yield* reject("BadSession", "the grant's nonce must be 0x + 32 lowercase hex digits")
        const grantDigest = sessionGrantDigest({ chainId, model: model.toLowerCase(), issuedAt, expiresAt, spendMax, nonce })
        // Checked on the verifier's threads first: off the event loop, and remembered, so the ledger's check of this
        // grant in each of the session's usage receipts answers from the process's memo (keys.ts `verifyDigest`).
        const grantKey = hexToBytes(publicKey.toLowerCase(), PUBLIC_KEY_BYTES)
        const grantSignature = hexToBytes(signature.toLowerCase(), SIGNATURE_BYTES)
        if (Either.isRight(grantKey) && Either.isRight(grantSignature)) {
          yield* verifier.verifyDigest({ digest: grantDigest, publicKey: { bytes: grantKey.right }, signature: grantSignature.right })
        }
        const signer = verifyMessage(grantDigest, publicKey, signature)
        if (Either.isLeft(signer)) return yield* reject("BadSession", `session grant: ${signer.left}`)
        const developer = signer.right.address
        const grant = `${developer}:${nonce}`
        if (grantNonces.has(grant)) return yield* reject("ReplayedGrant", `the grant with nonce ${nonce} opened a session already: sign a new one`)
        const modelId = model.toLowerCase()
        if (!MODEL_ID.test(modelId)) return yield* reject("BadSession", `the model must be 0x + 64 hex digits, got ${JSON.stringify(model.slice(0, 80))}`)
        // No escrow, no session: nothing to spend, and the deposit's fee is what an open session costs its developer.
        const funded = (yield* store.head(escrowStream(developer, modelId as Hash32)).pipe(Effect.orElseSucceed(() => undefined))) !== undefined
        if (!funded) {
          return yield* reject("InsufficientEscrow", `${developer} has no escrow for model ${modelId}: deposit with \`topai escrow deposit ${modelId} AMOUNT\` first`)
        }
        // Kept as the ledger will check it: a grant that would not fit a usage receipt opens no session.
        const grantSigned = decodeGrant({
          chainId,
          model: modelId,
          issuedAt,
          expiresAt,
          spendMax,
          nonce,
          publicKey: publicKey.toLowerCase(),
          signature: signature.toLowerCase()
        })
        if (Either.isLeft(grantSigned)) return yield* reject("BadSession", `the grant cannot be settled on chain: ${grantSigned.left.message}`)
        const open = sessionsOf.get(developer) ?? 0
        if (open >= SESSIONS_PER_DEVELOPER_MAX) {
          return yield* reject("BadSession", `${developer} has ${open} sessions open, the most one developer may: let one expire`)
        }
        grantNonces.set(grant, issuedAt)
        sessionsOf.set(developer, open + 1)
        const session = randomBytes(16).toString("hex")
        sessions.set(session, {
          developer,
          model: modelId,
          grant: grantSigned.right,
          expiresAt,
          spendMax,
          committed: 0n,
          publicKeyBytes: signer.right.bytes,
          tasks: new Set()
        })
        return { session, developer: signer.right.address }
      })

    /** Expired sessions go, and the nonces of grants that can no longer be opened. */
    const prune = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const [id, s] of sessions) {
        if (s.expiresAt > now) continue
        sessions.delete(id)
        const left = (sessionsOf.get(s.developer) ?? 1) - 1
        if (left <= 0) sessionsOf.delete(s.developer)
        else sessionsOf.set(s.developer, left)
      }
      for (const [grant, issuedAt] of grantNonces) if (now - issuedAt > SESSION_GRANT_WINDOW_MS) grantNonces.delete(grant)
    })
    yield* prune.pipe(Effect.zipRight(Effect.sleep(SESSION_PRUNE_EVERY)), Effect.forever, Effect.forkScoped)

    const escrow = (developer: string, model: string) => escrows.get(escrowStream(developer as Address, model as Hash32))
    const task = (id: string) => tasks.get(taskStream(id))

    /**
     * `listener` hears each stage (infer.stream); a plain `infer` has none, and then no TaskProgress is
     * built at all (a Schema class validates its fields on construction: ~0.2 ms a request for nothing).
     */
    const run = (
      sessionId: string,
      inputsJson: unknown,
      req: SignedTaskRequest,
      listener: ((p: TaskProgress) => Effect.Effect<void>) | undefined
    ) => {
      /** What this task holds of its session's spending cap; given back if it fails. */
      let held: { readonly session: Session; readonly price: bigint } | undefined
      /** The task id this call took in its session, until the task is recorded (a call refused before that frees it). */
      let taken: { readonly session: Session; readonly taskId: string } | undefined
      return Effect.gen(function* () {
        const progress = (make: () => TaskProgress) => (listener === undefined ? Effect.void : listener(make()))
        const started = yield* Clock.currentTimeMillis
        const session = sessions.get(sessionId)
        if (session === undefined || session.expiresAt <= started) {
          return yield* reject("BadSession", "unknown or expired session: open one with session.open")
        }
        const model = yield* models.state(session.model)
        if (!isServable(model) || model.upload === null) {
          const why = model.deprecated
            ? "deprecated"
            : model.suspended
              ? `suspended: ${model.overranTasks.length} calls overran their limits (deadline or memory)`
              : model.status
          return yield* reject("ModelNotServable", `model ${session.model} is ${why}`)
        }
        if (economy?.isPaused(session.model) === true) {
          return yield* reject("ModelNotServable", `model ${session.model} is paused: its price no longer covers the computing fee (the provider must reprice it)`)
        }
        const accepted = model.attestations.find((a) => a.verdict._tag === "ModelAccepted")?.verdict
        if (accepted === undefined || accepted._tag !== "ModelAccepted") {
          return yield* reject("ModelNotServable", `model ${session.model} has no accepted attestation`)
        }
        const manifest = model.upload.manifest
        const bounds = servingBounds(accepted.signature, manifest)
        if (Either.isLeft(bounds)) return yield* reject("ModelNotServable", `model ${session.model}'s manifest does not bound its inputs: ${bounds.left.message}`)
        // Decoding stops at the bound's element count: a request over it is refused before it is allocated.
        const inputs = decodeRequestInputs(inputsJson, accepted.signature, { elementsMax: Math.max(1, bounds.right.elementsMax) })
        if (Either.isLeft(inputs)) {
          return yield* inputs.left._tag === "TensorJsonError" && inputs.left.reason === "TooLarge"
            ? reject("InputsOutOfBounds", `${inputs.left.message} (the model's max shapes allow at most ${bounds.right.elementsMax} elements in one input)`)
            : reject("BadInputs", inputs.left.message)
        }
        const inBounds = checkServingInputs(inputs.right, bounds.right)
        if (Either.isLeft(inBounds)) return yield* reject("InputsOutOfBounds", inBounds.left.message)
        let requestBytes = 0
        for (const name of Object.keys(inputs.right)) requestBytes += inputs.right[name]!.data.byteLength
        const runDeadlineMs = runDeadlineMillis(accepted.smoke.runMillis, bounds.right.smokeBytes, requestBytes, config.runDeadline ?? DEFAULT_RUN_DEADLINE_RULES)
        // Over the decoded bytes: megabytes of input are not turned back into JSON text to be hashed.
        const inputHash = hashInputs(inputs.right)
        // The developer asked for exactly this task: its id is the digest of the signed request (chain, model, the
        // grant's nonce, these inputs, the call's nonce), and the grant's key signed it. Workers and the ledger check it again.
        if (!NONCE_PATTERN.test(req.nonce)) return yield* reject("BadRequestSignature", "the request's nonce must be 0x + 32 lowercase hex digits")
        const request = { chainId, model: session.model as Hash32, grantNonce: session.grant.nonce, inputHash, nonce: req.nonce }
        const taskId = taskIdOf(request)
        if (req.task !== undefined && req.task.toLowerCase() !== taskId) {
          return yield* reject(
            "TaskIdMismatch",
            `the request names task ${req.task.slice(0, 80)}, its digest (chain ${chainId}, model ${session.model}, grant nonce ${session.grant.nonce}, inputs ${inputHash}, nonce ${req.nonce}) is ${taskId}: the inputs or the nonce are not what was signed`
          )
        }
        const requestSignature = hexToBytes(req.signature.toLowerCase(), SIGNATURE_BYTES)
        if (Either.isLeft(requestSignature)) return yield* reject("BadRequestSignature", `the request's signature: ${requestSignature.left.message}`)
        // The ECDSA check runs on the verifier's threads, not on the node's event loop.
        const signedByDeveloper = yield* verifier.verifyDigest({
          digest: taskRequestDigest(request),
          publicKey: { bytes: session.publicKeyBytes },
          signature: requestSignature.right
        })
        if (!signedByDeveloper) {
          return yield* reject("BadRequestSignature", `the request for task ${taskId} is not signed by the session grant's key ${session.grant.publicKey}`)
        }
        if (session.tasks.has(taskId)) return yield* reject("ReplayedTask", `task ${taskId} was requested in this session already: sign a new request (a fresh nonce)`)
        session.tasks.add(taskId)
        taken = { session, taskId }
        const price = model.price
        if (session.committed + price > session.spendMax) {
          return yield* reject(
            "SessionSpendExceeded",
            `the session has committed ${session.committed} of its ${session.spendMax}; a call costs ${price}: open a new session`
          )
        }
        session.committed += price
        held = { session, price }
        yield* (yield* escrow(session.developer, session.model)).ask(new Reserve({ taskId, price })).pipe(
          Effect.catchAll((e) =>
            Effect.fail(
              e._tag === "ReserveRejected" && e.reason === "InsufficientFunds"
                ? reject("InsufficientEscrow", `${e.message}: deposit with \`topai escrow deposit ${session.model} AMOUNT\``)
                : reject("InsufficientEscrow", e.message)
            )
          )
        )
        // A failover: the developer's same request, served by a gateway that went silent, whose receipt the ledger
        // settled already. Its price is paid (this gateway's receipt will be refused AlreadySettled), so the
        // escrow left on the ledger does not have to cover it again.
        const paidOnLedger = settlement === undefined ? false : yield* settlement.settler.settledOnLedger(taskId)
        if (settlement !== undefined && !paidOnLedger) {
          // The ledger's escrow is the money; what this node holds (reserved, or captured and not yet
          // settled on chain) comes off it. Checked after the reservation, so concurrent calls see each other.
          const onLedger = yield* settlement.ledgerEscrow(session.developer, session.model as Hash32)
          if (onLedger !== undefined) {
            const book = yield* (yield* escrow(session.developer, session.model)).state
            const free = onLedger - book.totals.reserved - settlement.settler.unsettled(session.developer, session.model)
            if (free < 0n) {
              yield* (yield* escrow(session.developer, session.model)).ask(new Release({ taskId })).pipe(Effect.ignore)
              return yield* reject(
                "InsufficientEscrow",
                `${session.developer} has ${onLedger} in escrow for model ${session.model} on the AI ledger, ${onLedger - free + price} of it held by calls in progress or not yet settled; a call costs ${price}: deposit with \`topai escrow deposit ${session.model} AMOUNT\``
              )
            }
          }
        }
        const t = yield* task(taskId)
        const policy = policyOf(model.upload.manifest)
        const at0 = yield* Clock.currentTimeMillis
        yield* t
          .ask(new RequestTask({ taskId, developer: session.developer, modelId: session.model as Hash32, price, inputHash, policy, at: at0 }))
          .pipe(Effect.orDie)
        taken = undefined // recorded: its stream names it for good
        yield* progress(() => new TaskProgress({ task: taskId, stage: "requested", detail: `price ${price}` }))

        const assignment = new TaskAssignment({
          task: taskId,
          model: session.model,
          request: { publicKey: session.grant.publicKey, grantNonce: session.grant.nonce, nonce: req.nonce, signature: req.signature.toLowerCase() },
          weightsHash: model.upload.weightsHash,
          sizeBytes: model.upload.sizeBytes,
          outputTolerance: model.upload.manifest.outputTolerance,
          // The decoded tensors' bytes (no copy): a bin in binary frames, base64 only for a JSON-framed worker.
          inputs: tensorMapToWire(inputs.right),
          // The worker gets its run's deadline plus time for weights and the round trip.
          deadlineMs: Math.max(config.workerDeadlineMs, runDeadlineMs + RUN_DEADLINE_SLACK_MS),
          runDeadlineMs
        })
        const outcomes = yield* Queue.unbounded<{ readonly worker: string; readonly referee: boolean; readonly outcome: WorkerOutcome }>()
        /** Each submitter's outputs (the decoded tensors' wire form). */
        const outputs = new Map<string, unknown>()
        /** Each submitter's signed result: what the usage receipt carries for the validated ones. */
        const signed = new Map<string, SignedResult>()
        /** Each worker's signed overrun claim: a confirmed overrun's receipt carries the claimant's and the confirmer's. */
        const claims = new Map<string, WorkerOverrun>()
        /** Proofs of the wrong results among `signed` (against the validated fingerprint), for `result.challenge`. */
        const proofsOf = (fingerprint: string, wrong: ReadonlyArray<string>) =>
          wrongResultProofs({ grant: session.grant, taskId, model: session.model as Hash32, fingerprint, results: signed, wrong })
        const launch = (worker: string, referee: boolean) =>
          hub.dispatch(worker, assignment).pipe(
            Effect.flatMap((outcome) => Queue.offer(outcomes, { worker, referee, outcome })),
            Effect.forkDaemon
          )
        const involved = (s: TaskState) => new Set<string>([...s.assignees, ...s.replaced, ...s.submissions.map((x) => x.worker)])
        const pick = (count: number, exclude: ReadonlySet<string>) =>
          hub.schedulable.pipe(
            Effect.map((views) =>
              pickWorkers(config.gpuClasses, views, { count, minGpuClass: model.upload!.manifest.minGpuClass, exclude: exclude as ReadonlySet<never> })
            )
          )

        /** The task has ended: its actor's work is done (its stream stays; `task.get` replays it). */
        const finished = tasks.release(taskStream(taskId))

        const giveUp = (cause: "NoWorkerAvailable" | "TimedOut", detail: string) =>
          Effect.gen(function* () {
            yield* t.ask(new AbandonTask({ cause, detail, at: yield* Clock.currentTimeMillis })).pipe(Effect.ignore)
            yield* (yield* escrow(session.developer, session.model)).ask(new Release({ taskId })).pipe(Effect.ignore)
            yield* progress(() => new TaskProgress({ task: taskId, stage: "failed", detail }))
            yield* finished
            return yield* reject(cause === "NoWorkerAvailable" ? "NoWorkerAvailable" : "TimedOut", detail)
          })

        /** Results of assignees still running when the task was validated, each against the validated fingerprint. */
        const judgeLate = (late: ReadonlyArray<string>, fingerprint: string) =>
          Effect.gen(function* () {
            const waiting = new Set(late)
            while (waiting.size > 0) {
              const { worker, outcome } = yield* Queue.take(outcomes)
              if (!waiting.delete(worker) || outcome.kind !== "result") continue
              yield* hub.recordOutcome(worker, taskId, outcome.fingerprint === fingerprint, false)
              if (outcome.fingerprint !== fingerprint) {
                yield* Effect.logWarning(`task ${taskId}: ${worker}'s late result disagrees with the validated ${fingerprint}: marked wrong`)
                // Proven on chain too (kept in memory only: the task's TaskSettled was written before this result came).
                signed.set(worker, { fingerprint: outcome.fingerprint, signature: outcome.signature, execMs: outcome.execMs })
                for (const proof of proofsOf(fingerprint, [worker])) yield* settlement?.challenger?.add(proof) ?? Effect.void
              }
            }
          })

        let draw = yield* Random.nextIntBetween(0, PER_MILLION)
        let chosen = yield* pick(workersNeeded(policy, draw), new Set())
        if (Either.isLeft(chosen) && isSampled(policy, draw)) {
          // Sampled for re-execution but only one eligible worker: run it once rather than refuse the
          // developer. The draw recorded says "not sampled", so the task's stream tells what happened.
          yield* Effect.logDebug(`task ${taskId}: sampled, but one eligible worker: no re-execution`)
          draw = PER_MILLION - 1
          chosen = yield* pick(1, new Set())
        }
        if (Either.isLeft(chosen)) return yield* giveUp("NoWorkerAvailable", chosen.left.message)
        const workers = chosen.right.map((w) => w.id)
        yield* t.ask(new AssignTask({ workers, sampleDraw: draw, at: yield* Clock.currentTimeMillis })).pipe(Effect.orDie)
        yield* progress(() => new TaskProgress({ task: taskId, stage: "assigned", detail: workers.join(", ") }))
        for (const w of workers) yield* launch(w, false)

        // Feed outcomes to the actor until it ends the task.
        /** What the last failed worker said (an onnxruntime error on these inputs, a timeout, a refused result). */
        let lastReport: string | undefined
        /** Refuted overrun claimants already marked. */
        let liarsMarked = 0
        for (;;) {
          const { worker, referee, outcome } = yield* Queue.take(outcomes)
          const at = yield* Clock.currentTimeMillis
          let state: TaskState | undefined
          if (outcome.kind === "result") {
            // Hashed once where the hub decoded them (their canonical bytes): no JSON text of megabytes here.
            outputs.set(worker, outcome.outputs)
            signed.set(worker, { fingerprint: outcome.fingerprint, signature: outcome.signature, execMs: outcome.execMs })
            const outputHash = outcome.outputHash
            const command = referee
              ? new ResolveDispute({ referee: worker as never, fingerprint: outcome.fingerprint as Hash32, outputHash, signature: outcome.signature, at })
              : new SubmitResult({ worker: worker as never, fingerprint: outcome.fingerprint as Hash32, outputHash, signature: outcome.signature, at })
            const reply = yield* t.ask(command).pipe(Effect.either)
            if (Either.isLeft(reply)) continue // late or duplicate: the task moved on
            state = reply.right.state
            yield* progress(() => new TaskProgress({ task: taskId, stage: "result", detail: `${worker} in ${outcome.millis} ms` }))
            // A result within the limits refuted a pending overrun claim: a deadline claim was a lie, marked wrong.
            for (const r of state.refuted.slice(liarsMarked)) {
              const lied = refutationProvesLie(r.kind)
              yield* Effect.logWarning(`task ${taskId}: ${r.claimant} claimed a ${r.kind} overrun, ${worker} ran the same inputs within the limits${lied ? ": marked wrong" : ""}`)
              if (lied) yield* hub.recordOutcome(r.claimant, taskId, false, false)
            }
            liarsMarked = state.refuted.length
            if (state.status === "Disputed") {
              const refereePick = yield* pick(1, involved(state))
              if (Either.isLeft(refereePick)) return yield* giveUp("NoWorkerAvailable", `no referee for the dispute: ${refereePick.left.message}`)
              yield* progress(() => new TaskProgress({ task: taskId, stage: "retrying", detail: `dispute: re-executing on ${refereePick.right[0]!.id}` }))
              yield* launch(refereePick.right[0]!.id, true)
            }
          } else {
            if (outcome.kind === "overrun" && !referee) {
              // A claim is confirmed by a second worker before anything is charged (task/overrun.ts).
              const o = outcome.overrun
              claims.set(worker, o)
              const confirmer = yield* pick(1, involved(yield* t.state))
              const claim = new ClaimOverrun({
                worker: worker as never,
                kind: o.kind,
                millis: o.millis,
                limit: o.limit,
                confirmer: (Either.isRight(confirmer) ? confirmer.right[0]!.id : null) as never,
                at
              })
              const claimed = yield* t.ask(claim).pipe(Effect.either)
              if (Either.isRight(claimed)) {
                const after = claimed.right.state
                const record = overrunRecordOf(after)
                if (after.status === "Overran" && record !== null) {
                  // Two workers burned their time on these inputs: charged like a result, and counted against the model.
                  const overran = after.overrun!
                  const batch = openBatch
                  // Charged on chain by the two workers' signed claims (`usage.overran`), each paid its burned ms.
                  const claimOf = (w: string) => {
                    const c = claims.get(w)!
                    return { worker: w as Address, kind: c.kind, millis: c.millis, limit: c.limit, signature: c.signature.toLowerCase() }
                  }
                  const receipt: OverranReceipt = {
                    grant: session.grant,
                    taskId,
                    model: session.model as Hash32,
                    price,
                    claims: [claimOf(overran.claimant), claimOf(overran.worker)],
                    request: { inputHash, nonce: req.nonce, signature: req.signature.toLowerCase() }
                  }
                  yield* (yield* escrow(session.developer, session.model)).ask(new Capture({ taskId, receiptBatchId: batch })).pipe(Effect.orDie)
                  yield* t.ask(new SettleTask({ receiptBatchId: batch, at: yield* Clock.currentTimeMillis, overran: receipt })).pipe(Effect.orDie)
                  // Pending from its TaskSettled (replayed after a restart), as a validated task's receipt.
                  if (settlement !== undefined) yield* settlement.settler.add(receipt, session.developer)
                  yield* models
                    .recordOverrun(session.model, record)
                    .pipe(Effect.tapError((e) => Effect.logWarning(`task ${taskId}: overrun not recorded on the model: ${e.message}`)), Effect.ignore)
                  const detail = `${describeOverrun(overran)} on ${overran.claimant}, confirmed on ${overran.worker}; charged ${price}`
                  yield* progress(() => new TaskProgress({ task: taskId, stage: "failed", detail }))
                  yield* finished
                  return yield* reject("Overran", detail)
                }
                lastReport = `${worker}: ${outcome.detail}`
                state = after
                if (after.claim !== null && after.status === "Running") {
                  const next = after.claim.confirmer
                  yield* Effect.logInfo(`task ${taskId}: ${worker} claims ${describeOverrun(o)}; confirming on ${next}`)
                  yield* progress(() => new TaskProgress({ task: taskId, stage: "retrying", detail: `${worker} claims an overrun; confirming on ${next}` }))
                  yield* launch(next, false)
                  continue
                }
              }
              // Refused (another worker ran these inputs within the limits): a failed worker, replaced as usual.
            }
          }
          if (outcome.kind !== "result" && state === undefined) {
            const reason = outcome.kind === "failed" ? outcome.reason : "died"
            lastReport = `${worker}: ${outcome.detail}`
            const current = yield* t.state
            const replacement = yield* pick(1, involved(current))
            const next = Either.isRight(replacement) ? replacement.right[0]!.id : null
            const reply = yield* t
              .ask(new WorkerFailed({ worker: worker as never, reason, replacement: next as never, at }))
              .pipe(Effect.either)
            if (Either.isLeft(reply)) continue
            state = reply.right.state
            if (state.status !== "Failed" && next !== null) {
              yield* progress(() => new TaskProgress({ task: taskId, stage: "retrying", detail: `${worker} ${reason}: ${outcome.detail}; now ${next}` }))
              yield* launch(next, referee)
            }
          }
          if (state === undefined) continue
          if (state.status === "Failed") {
            yield* (yield* escrow(session.developer, session.model)).ask(new Release({ taskId })).pipe(Effect.ignore)
            // The task's own words say which worker failed; the worker's say why (often the inputs).
            const failure = state.failure?.detail ?? "the task failed"
            const detail = lastReport === undefined ? failure : `${failure}; last report, ${lastReport}`
            yield* progress(() => new TaskProgress({ task: taskId, stage: "failed", detail }))
            yield* finished
            return yield* reject("TaskFailed", `${detail} (nothing was charged)`)
          }
          if (state.status === "Validated" && state.validation !== null) {
            const v = state.validation
            // A correct submitter's outputs, or the referee's after a dispute.
            const winner = [...v.correct, worker].find((w) => outputs.has(w))!
            const result = outputs.get(winner)!
            const batch = openBatch
            const receipt: UsageReceipt = {
              grant: session.grant,
              taskId,
              model: session.model as Hash32,
              price,
              results: [...signed]
                .filter(([, r]) => r.fingerprint === v.fingerprint)
                .slice(0, USAGE_RESULTS_MAX)
                .map(([w, r]) => ({ worker: w as Address, fingerprint: r.fingerprint as Hash32, execMs: r.execMs, signature: r.signature.toLowerCase() })),
              request: { inputHash, nonce: req.nonce, signature: req.signature.toLowerCase() }
            }
            yield* (yield* escrow(session.developer, session.model)).ask(new Capture({ taskId, receiptBatchId: batch })).pipe(Effect.orDie)
            // The wrong results, proven by two agreeing ones: slashed on chain once the Challenger sends them.
            const challenges = proofsOf(v.fingerprint, v.wrong)
            yield* t.ask(new SettleTask({ receiptBatchId: batch, at: yield* Clock.currentTimeMillis, receipt, challenges })).pipe(Effect.orDie)
            // Pending from its TaskSettled (the projection replays it after a restart): settled in the next round.
            if (settlement !== undefined) yield* settlement.settler.add(receipt, session.developer)
            for (const proof of challenges) yield* settlement?.challenger?.add(proof) ?? Effect.void
            for (const w of v.correct) yield* hub.recordOutcome(w, taskId, true, v.disputed)
            for (const w of v.wrong) yield* hub.recordOutcome(w, taskId, false, v.disputed)
            // Quorum validates at k agreeing results; the other assignees' results come later and the task
            // refuses them. Judge them anyway, after the reply: a worker that lies after the quorum formed
            // is marked wrong in its stream (an honest one is recorded correct), so a liar cannot hide
            // behind being slow. Each outcome comes within the dispatch deadline.
            const late = state.assignees.filter((w) => !state.submissions.some((s) => s.worker === w))
            if (late.length > 0) yield* judgeLate(late, v.fingerprint).pipe(Effect.forkDaemon)
            // Outputs are the developer's, returned here and not stored: nothing reads them back (`task.get` shows
            // the outputHash), so megabytes are not written to disk per request.
            const inferResult = new InferResult({
              task: taskId,
              outputs: result,
              fingerprint: v.fingerprint,
              workers: v.correct,
              charged: price,
              millis: (yield* Clock.currentTimeMillis) - started
            })
            yield* progress(() => new TaskProgress({ task: taskId, stage: "validated", detail: v.fingerprint, result: inferResult }))
            yield* finished
            return inferResult
          }
        }
      }).pipe(
        // A task that failed cost nothing: what it held of the session's cap is free again.
        Effect.tapError(() =>
          Effect.sync(() => {
            if (held !== undefined) held.session.committed -= held.price
            // Refused before it was recorded (escrow, the cap): nothing ran, so the session does not keep its id.
            if (taken !== undefined) taken.session.tasks.delete(taken.taskId)
          })
        )
      )
    }

    /**
     * A task runs on its own fiber, not the caller's: a client that goes away
     * (a closed connection interrupts its RPC handler) must not leave the task
     * Running for ever with its escrow reserved. It still ends Validated and
     * settled, or Failed and released; `task.get` shows which.
     */
    const detached = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> => Effect.forkDaemon(effect).pipe(Effect.flatMap(Fiber.join))

    return {
      openSession,
      infer: (session: string, inputs: unknown, signed: SignedTaskRequest) => detached(run(session, inputs, signed, undefined)),
      inferWithProgress: (session: string, inputs: unknown, signed: SignedTaskRequest, progress: (p: TaskProgress) => Effect.Effect<void>) =>
        detached(run(session, inputs, signed, progress)),
      /** A task's state; an ended task's actor is released again after the read. */
      taskState: (id: string) =>
        task(id).pipe(
          Effect.flatMap((a) => Effect.all([a.state, a.revision])),
          Effect.tap(([s]) => (s.status === "Settled" || s.status === "Failed" ? tasks.release(taskStream(id)) : Effect.void))
        ),
      escrowState: (developer: string, model: string) => escrow(developer, model).pipe(Effect.flatMap((a) => a.state)),
      escrows,
      tasks,
      /** Closes the open receipt batch and returns its id. */
      rotateBatch: Effect.sync(() => {
        const closed = openBatch
        openBatch = sha256Hex(`batch:${randomBytes(16).toString("hex")}`)
        return closed
      })
    }
  })

export type TaskRunner = Effect.Effect.Success<ReturnType<typeof makeTaskRunner>>

/**
 * Compute nodes connected to this node: their actors (registration,
 * heartbeats, record), their live connections (a queue of assignments each
 * one streams from `worker.tasks`), and the hand-off of a task to a worker
 * and of its result back. A worker that disconnects or misses its deadline
 * is reported as failed, so the task moves on to another worker.
 *
 * The chain decides who is a worker: a connection is accepted only for a
 * key registered on the AI shard (`worker.register`, signed by that key)
 * with the class it declares there, and the scheduler sees only workers
 * registered on chain and bonded at least the genesis `minWorkerStake`
 * (what usage.settle pays), with the class and units the LEDGER computed —
 * never the connection's word.
 */
import { randomBytes } from "node:crypto"
import { Clock, Deferred, Duration, Effect, Either, Option, Queue, Stream } from "effect"
import { Heartbeat, MarkOffline, RecordDispute, RecordTaskResult, RegisterWorker } from "../../../domain/ai/worker/commands.js"
import type { WorkerRules } from "../../../domain/ai/worker/commands.js"
import { reputationScore } from "../../../domain/ai/worker/state.js"
import type { WorkerView as SchedulerView } from "../../../domain/ai/scheduling/pickWorkers.js"
import type { WorkerId } from "../../../domain/ai/worker/events.js"
import { execMsOf, NONCE_PATTERN, overrunDigest, resultDigest, verifyMessage, workerRegistrationDigest } from "../../../domain/ai/signedMessages.js"
import { outputFingerprint } from "../../../domain/ai/fingerprint.js"
import { outputHash } from "../../../domain/ai/outputHash.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { decodeTensorMapJson, tensorMapToWire } from "../../../domain/ai/tensor.js"
import { makeWorkerActors, workerStream } from "../../../actors/GpuWorkerActor.js"
import { OnChainWorkerView, TaskAssignment, WorkerRejected, WorkerView, type WorkerOverrun } from "../../api/AiRpcs.js"
import { hexToBytes } from "../../../domain/chain/hex.js"
import { SIGNATURE_BYTES } from "../../../domain/chain/keys.js"
import { SignatureVerifier } from "../../../infra/crypto/SignatureVerifier.js"
import { bondedOf } from "../../../domain/economics/state.js"
import { workerOf, type AiLedgerState } from "../../../domain/ai/ledger/state.js"
import { coefficientOf } from "../../../domain/ai/worker/gpuClass.js"
import type { Address } from "../../../domain/chain/keys.js"
import { InvalidRequest, NotFound } from "../../api/NodeRpcs.js"
import { ChainNode } from "../ChainNode.js"
import type { AiConfig, AiEconomy } from "./AiConfig.js"

/** What came back from a worker for one task. */
export type WorkerOutcome =
  | {
      readonly kind: "result"
      readonly outputs: unknown
      readonly fingerprint: string
      /** sha256 of the outputs' canonical bytes (outputHash.ts), computed where they were decoded. */
      readonly outputHash: Hash32
      readonly signature: string
      readonly millis: number
      /** `execMsOf(millis)`: the units the signature covers (a usage receipt's `execMs`). */
      readonly execMs: number
    }
  | { readonly kind: "failed"; readonly reason: "died" | "timeout"; readonly detail: string }
  /** The worker's engine stopped the run at a limit (its claim; the task decides whether it stands). */
  | { readonly kind: "overrun"; readonly overrun: WorkerOverrun; readonly detail: string }

interface Connection {
  readonly worker: WorkerId
  readonly publicKey: string
  /** The registered key, decoded once: every result's signature is checked against it. */
  readonly publicKeyBytes: Uint8Array
  readonly session: string
  readonly queue: Queue.Queue<TaskAssignment>
  inFlight: number
  streaming: boolean
}

export interface RegisterRequest {
  readonly publicKey: string
  readonly gpuClass: string
  readonly devices: number
  readonly stake: bigint
  readonly endpoint: string
  readonly at: number
  readonly nonce: string
  readonly signature: string
}

export interface ResultRequest {
  readonly session: string
  readonly task: string
  readonly outputs: unknown
  readonly fingerprint: string
  readonly millis: number
  readonly signature: string
}

const rejected = (reason: WorkerRejected["reason"], detail: string) => new WorkerRejected({ reason, detail })

const FINGERPRINT = /^0x[0-9a-f]{64}$/

/**
 * The result's outputs, decoded once, or why it cannot count: its fingerprint is well formed and is
 * the fingerprint of its outputs. What goes on is the decoded tensors' wire form (bytes, no copy),
 * with the hash of their canonical bytes (the task records it; nothing hashes them again).
 */
const resultOutputs = (r: ResultRequest, tolerance: number): Either.Either<{ readonly wire: unknown; readonly hash: Hash32 }, string> => {
  if (!FINGERPRINT.test(r.fingerprint)) return Either.left(`the fingerprint must be 0x + 64 lowercase hex, got ${JSON.stringify(r.fingerprint.slice(0, 80))}`)
  const outputs = decodeTensorMapJson(r.outputs)
  if (Either.isLeft(outputs)) return Either.left(`the outputs are not tensors: ${outputs.left.message}`)
  const actual = outputFingerprint(outputs.right, tolerance)
  return actual === r.fingerprint
    ? Either.right({ wire: tensorMapToWire(outputs.right), hash: outputHash(outputs.right) })
    : Either.left(`the outputs' fingerprint is ${actual}, not the signed ${r.fingerprint}`)
}

/** The most often a worker's liveness is written to its stream (online time for rewards comes from these). */
export const HEARTBEAT_RECORD_EVERY_MS = 60_000

/**
 * A registration is accepted only if its signed `at` is this close to the
 * node's clock (either side): room for clock skew and transit, and the
 * longest a captured registration could be replayed, were it not for its
 * nonce (nonces are remembered for as long).
 */
export const REGISTRATION_WINDOW_MS = 60_000

/** The longest endpoint a worker may declare: a URL, stored in its stream and shown by `worker.list`. */
export const ENDPOINT_CHARS_MAX = 256

/** What of a worker's own words on a failure is passed on (into the task's failure, to the developer). */
export const WORKER_DETAIL_CHARS_MAX = 500
/** Rounding between a worker's measured run and the node's clock (whole ms on both sides). */
export const EXEC_MS_SLACK = 1

/** How many queued assignments a connection holds before dispatch waits. */
const CONNECTION_QUEUE_CAPACITY = 1024

export const makeWorkerHub = (config: AiConfig, chainId: bigint, _economy?: AiEconomy) =>
  Effect.gen(function* () {
    const verifier = yield* SignatureVerifier
    const chain = yield* ChainNode
    const aiShard = (yield* chain.status).shards.find((x) => x.kind === "ai")?.shard
    /** The AI shard's ledger as this node applied it (undefined on a chain without one). */
    const aiLedger: Effect.Effect<AiLedgerState | undefined> =
      aiShard === undefined
        ? Effect.succeed(undefined)
        : chain.ledger(aiShard).pipe(
            Effect.map((l) => l.ai ?? undefined),
            Effect.orElseSucceed(() => undefined)
          )
    /** The worker's registration on chain and its bond, or undefined. */
    const onChain = (worker: string) =>
      Effect.map(aiLedger, (ai) => {
        const w = ai === undefined ? undefined : workerOf(ai, worker as Address)
        return ai === undefined || w === undefined ? undefined : { ...w, worker, bonded: bondedOf(ai.economy, worker as Address) }
      })
    const rules: WorkerRules = { gpuClasses: config.gpuClasses, heartbeatGraceMs: config.heartbeatGraceMs, stakeMin: config.stakeMin }
    const actors = yield* makeWorkerActors(rules)
    const connections = new Map<string, Connection>() // by worker id
    const sessions = new Map<string, Connection>()
    /** Dispatches waiting for their worker, by `${task}:${worker}`, with the model's output tolerance. */
const pending = new Map<
      string,
      { readonly done: Deferred.Deferred<WorkerOutcome>; readonly tolerance: number; readonly sentAt: number }
    >()
    const known = new Set<string>()
    const key = (task: string, worker: string) => `${task}:${worker}`
    // Liveness is kept in memory; the worker's stream records a heartbeat at most every
    // HEARTBEAT_RECORD_EVERY_MS (and on every change of status), not one event per ping.
    const lastSeen = new Map<string, number>()
    const lastRecorded = new Map<string, number>()

    const actor = (worker: string) => actors.get(workerStream(worker))

    const connectionOf = (session: string) =>
      Effect.suspend(() => {
        const c = sessions.get(session)
        return c === undefined ? Effect.fail(rejected("UnknownWorker", "no such worker session: register again")) : Effect.succeed(c)
      })

    /** Fails every task waiting on a worker: it is gone. */
    const dropPending = (worker: string, detail: string) =>
      Effect.forEach(
        [...pending.entries()].filter(([k]) => k.endsWith(`:${worker}`)),
        ([k, p]) => Effect.suspend(() => (pending.delete(k), Deferred.succeed(p.done, { kind: "failed", reason: "died", detail }))),
        { discard: true }
      )

    /**
     * Nonces of registrations accepted within the window, with their `at`: a replay is refused.
     * They are lost on a restart, so a registration signed before this node started is refused too.
     */
    const registrationNonces = new Map<string, number>()
    const startedAt = yield* Clock.currentTimeMillis

    const register = (r: RegisterRequest) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        if (r.endpoint.length > ENDPOINT_CHARS_MAX) {
          return yield* rejected("BadRegistration", `the endpoint is ${r.endpoint.length} characters; at most ${ENDPOINT_CHARS_MAX}`)
        }
        if (!NONCE_PATTERN.test(r.nonce)) return yield* rejected("BadRegistration", "the nonce must be 0x + 32 lowercase hex digits")
        if (!Number.isSafeInteger(r.at) || Math.abs(now - r.at) > REGISTRATION_WINDOW_MS || r.at < startedAt) {
          return yield* rejected(
            "StaleRegistration",
            `signed at ${r.at}, the node's clock says ${now} (started ${startedAt}): a registration must be signed within ${REGISTRATION_WINDOW_MS} ms of it, since the node started`
          )
        }
        const signer = verifyMessage(
          workerRegistrationDigest({ chainId, gpuClass: r.gpuClass, devices: r.devices, stake: r.stake, endpoint: r.endpoint, at: r.at, nonce: r.nonce }),
          r.publicKey,
          r.signature
        )
        if (Either.isLeft(signer)) return yield* rejected("BadSignature", `registration: ${signer.left}`)
        const worker = signer.right.address
        const record = yield* onChain(worker)
        if (record === undefined) {
          return yield* rejected(
            "NotOnChain",
            `${worker} is not registered on the AI shard${aiShard === undefined ? "" : ` (shard ${aiShard})`}: submit worker.register signed by the worker's key first (a compute node does when it starts), then connect`
          )
        }
        if (record.gpuClass !== r.gpuClass) {
          return yield* rejected(
            "ClassMismatch",
            `${worker} declares ${r.gpuClass} here, but its registration on chain says ${record.gpuClass}: register on chain again (worker.register) with the class it has`
          )
        }
        for (const [nonce, at] of registrationNonces) if (now - at > REGISTRATION_WINDOW_MS) registrationNonces.delete(nonce)
        if (registrationNonces.has(r.nonce)) {
          return yield* rejected("ReplayedRegistration", `a registration with nonce ${r.nonce} was already accepted: sign a new one`)
        }
        registrationNonces.set(r.nonce, r.at)
        const a = yield* actor(worker)
        const before = yield* a.state
        if (before.status === "Unregistered") {
          yield* a
            // The stake bonded on chain counts, not the one declared.
            .ask(new RegisterWorker({ workerId: worker, owner: worker, gpuClass: r.gpuClass, devices: r.devices, stake: record.bonded, endpoint: r.endpoint, at: now }))
            .pipe(Effect.mapError((e) => rejected("BadRegistration", e.message)))
        } else if (before.status === "Deregistered") {
          return yield* rejected("BadRegistration", `${worker} deregistered; register with a new key`)
        } else {
          yield* a.ask(new Heartbeat({ at: now })).pipe(Effect.ignore) // a reconnect
        }
        known.add(worker)
        const old = connections.get(worker)
        if (old !== undefined) {
          sessions.delete(old.session)
          yield* Queue.shutdown(old.queue)
          yield* dropPending(worker, "the worker reconnected")
        }
        const session = randomBytes(16).toString("hex")
        const connection: Connection = {
          worker,
          publicKey: r.publicKey.toLowerCase(),
          publicKeyBytes: signer.right.bytes,
          session,
          queue: yield* Queue.bounded<TaskAssignment>(CONNECTION_QUEUE_CAPACITY),
          inFlight: 0,
          streaming: false
        }
        connections.set(worker, connection)
        sessions.set(session, connection)
        lastSeen.set(worker, now)
        yield* Effect.logInfo(`worker ${worker} (${r.gpuClass} × ${r.devices}) connected`)
        return { worker, session }
      })

    const heartbeat = (session: string) =>
      Effect.gen(function* () {
        const c = yield* connectionOf(session)
        const now = yield* Clock.currentTimeMillis
        lastSeen.set(c.worker, now)
        const a = yield* actor(c.worker)
        const s = yield* a.state
        if (s.status !== "Online" || now - (lastRecorded.get(c.worker) ?? s.lastHeartbeatAt) >= HEARTBEAT_RECORD_EVERY_MS) {
          yield* a.ask(new Heartbeat({ at: now })).pipe(Effect.ignore)
          lastRecorded.set(c.worker, now)
        }
        return { online: (yield* a.state).status === "Online" }
      })

    /** The worker's stream of assignments; when it ends the worker is gone. */
    const tasks = (session: string) =>
      Stream.unwrap(
        connectionOf(session).pipe(
          Effect.map((c) => {
            c.streaming = true
            return Stream.fromQueue(c.queue).pipe(
              Stream.ensuring(
                Effect.suspend(() => {
                  c.streaming = false
                  return dropPending(c.worker, "the worker disconnected")
                })
              )
            )
          })
        )
      )

    const result = (r: ResultRequest) =>
      Effect.gen(function* () {
        const c = yield* connectionOf(r.session)
        const waiting = pending.get(key(r.task, c.worker))
        if (waiting === undefined) return { accepted: false } // late: the task moved on
        // The ECDSA check (~1 ms) runs on the verifier's threads, not on the node's event loop.
        const signature = hexToBytes(r.signature.toLowerCase(), SIGNATURE_BYTES)
        if (Either.isLeft(signature)) return yield* rejected("BadSignature", `result of ${r.task}: ${signature.left.message}`)
        const valid = yield* verifier.verifyDigest({
          digest: resultDigest(r.task, r.fingerprint, execMsOf(r.millis)),
          publicKey: { bytes: c.publicKeyBytes },
          signature: signature.right
        })
        if (!valid) return yield* rejected("BadSignature", `result of ${r.task}: the signature does not verify`)
        if (pending.get(key(r.task, c.worker)) !== waiting) return { accepted: false } // timed out meanwhile
        pending.delete(key(r.task, c.worker))
        // The signature covers the fingerprint, not the outputs: a result counts only if its outputs are
        // tensors whose fingerprint is the signed one (else quorum and sampling would vouch for numbers
        // nobody checked). It is refused and the task moves on to another worker.
        // The signed execMs is what the worker is paid for: it can not be more than the time this node saw pass
        // since it handed the task over (1 ms of rounding allowed), else a worker would bill the provider at will.
        const seen = (yield* Clock.currentTimeMillis) - waiting.sentAt
        const outputs =
          execMsOf(r.millis) > seen + EXEC_MS_SLACK
            ? Either.left(`it claims ${execMsOf(r.millis)} ms of computing; ${seen} ms passed since the node assigned the task`)
            : resultOutputs(r, waiting.tolerance)
        if (Either.isLeft(outputs)) {
          const problem = outputs.left
          yield* Deferred.succeed(waiting.done, { kind: "failed", reason: "died", detail: `its result was refused: ${problem}` })
          return yield* rejected("BadResult", `result of ${r.task}: ${problem}`)
        }
        yield* Deferred.succeed(waiting.done, {
          kind: "result",
          outputs: outputs.right.wire,
          fingerprint: r.fingerprint,
          outputHash: outputs.right.hash,
          signature: r.signature.toLowerCase(),
          millis: r.millis,
          execMs: execMsOf(r.millis)
        })
        return { accepted: true }
      })

    const failed = (session: string, task: string, detail: string, overrun?: WorkerOverrun) =>
      Effect.gen(function* () {
        const c = yield* connectionOf(session)
        const waiting = pending.get(key(task, c.worker))
        if (waiting === undefined) return { accepted: false }
        if (overrun !== undefined) {
          // A claim is charged on chain once confirmed (`usage.overran`), its ms paid: signed like a result, checked like one.
          const signature = hexToBytes(overrun.signature.toLowerCase(), SIGNATURE_BYTES)
          if (Either.isLeft(signature)) return yield* rejected("BadSignature", `overrun claim of ${task}: ${signature.left.message}`)
          const valid = yield* verifier.verifyDigest({
            digest: overrunDigest(task, overrun.kind, overrun.millis, overrun.limit),
            publicKey: { bytes: c.publicKeyBytes },
            signature: signature.right
          })
          if (!valid) return yield* rejected("BadSignature", `overrun claim of ${task}: the signature does not verify`)
          if (pending.get(key(task, c.worker)) !== waiting) return { accepted: false } // timed out meanwhile
          const seen = (yield* Clock.currentTimeMillis) - waiting.sentAt
          if (overrun.millis > seen + EXEC_MS_SLACK) {
            pending.delete(key(task, c.worker))
            const problem = `it claims ${overrun.millis} ms of computing; ${seen} ms passed since the node assigned the task`
            yield* Deferred.succeed(waiting.done, { kind: "failed", reason: "died", detail: `its overrun claim was refused: ${problem}` })
            return yield* rejected("BadResult", `overrun claim of ${task}: ${problem}`)
          }
        }
        pending.delete(key(task, c.worker))
        const said = detail.length > WORKER_DETAIL_CHARS_MAX ? `${detail.slice(0, WORKER_DETAIL_CHARS_MAX)}…` : detail
        yield* Deferred.succeed(
          waiting.done,
          overrun === undefined ? { kind: "failed", reason: "died", detail: `the worker reported: ${said}` } : { kind: "overrun", overrun, detail: said }
        )
        return { accepted: true }
      })

    /** Hand a task to a worker and wait for its outcome (a result, or why there is none). */
    const dispatch = (worker: string, assignment: TaskAssignment): Effect.Effect<WorkerOutcome> =>
      Effect.gen(function* () {
        const c = connections.get(worker)
        if (c === undefined || !c.streaming) return { kind: "failed", reason: "died", detail: "not connected" } as const
        const done = yield* Deferred.make<WorkerOutcome>()
        pending.set(key(assignment.task, worker), { done, tolerance: assignment.outputTolerance, sentAt: yield* Clock.currentTimeMillis })
        c.inFlight++
        yield* Queue.offer(c.queue, assignment)
        const outcome = yield* Deferred.await(done).pipe(
          Effect.timeoutTo({
            duration: Duration.millis(assignment.deadlineMs),
            onSuccess: (o) => o,
            onTimeout: (): WorkerOutcome => ({ kind: "failed", reason: "timeout", detail: `no result within ${assignment.deadlineMs} ms` })
          }),
          Effect.ensuring(Effect.sync(() => (c.inFlight--, pending.delete(key(assignment.task, worker)))))
        )
        return outcome
      })

    const recordOutcome = (worker: string, taskId: string, correct: boolean, disputed: boolean) =>
      Effect.gen(function* () {
        const at = yield* Clock.currentTimeMillis
        const outcome = correct ? "correct" : "wrong"
        const cmd = disputed
          ? new RecordDispute({ taskId: taskId as never, outcome, at })
          : new RecordTaskResult({ taskId: taskId as never, outcome, at })
        yield* (yield* actor(worker)).ask(cmd).pipe(Effect.ignore)
      })

    /**
     * The devices the worker registered on chain: its class's units ÷ the coefficient (not its measured units, which
     * price its work; a worker measured below one device's units still runs tasks).
     */
    const ledgerDevices = (classUnits: bigint, coefficient: bigint): number => Number(classUnits / coefficient)

    /**
     * Workers the scheduler may pick: connected, streaming, Online in their
     * actor, registered on chain and bonded at least `minWorkerStake` there
     * (else usage.settle would refuse their receipts). Class and devices are
     * the ledger's: devices = its GPU units ÷ the class's coefficient.
     */
    const schedulable = Effect.gen(function* () {
      const out: Array<SchedulerView> = []
      const ai = yield* aiLedger
      if (ai === undefined) return out
      for (const c of connections.values()) {
        if (!c.streaming) continue
        const record = workerOf(ai, c.worker as Address)
        if (record === undefined || bondedOf(ai.economy, c.worker as Address) < config.stakeMin) continue
        const coefficient = coefficientOf(config.gpuClasses, record.gpuClass)
        if (coefficient === undefined) continue
        const s = yield* (yield* actor(c.worker)).state
        if (s.status !== "Online" || s.registration === null) continue
        out.push({
          id: c.worker,
          gpuClass: record.gpuClass,
          devices: ledgerDevices(record.classUnitsMilli, coefficient),
          online: true,
          inFlight: c.inFlight,
          price: 0n,
          reputation: reputationScore(s.reputation)
        })
      }
      return out
    })

    /** Workers this node sees alive: connected, streaming and Online (heartbeats within the grace). What it reports to the AI ledger. */
    const seen = Effect.gen(function* () {
      const out = new Set<Address>()
      for (const c of connections.values()) {
        if (!c.streaming) continue
        if ((yield* (yield* actor(c.worker)).state).status === "Online") out.add(c.worker as Address)
      }
      return out as ReadonlySet<Address>
    })

    /** Known workers; class and devices as the ledger has them (what scheduling uses), else as they declared. */
    const list = Effect.gen(function* () {
      const out: Array<WorkerView> = []
      const ai = yield* aiLedger
      for (const worker of [...known].sort()) {
        const s = yield* (yield* actor(worker)).state
        if (s.registration === null) continue
        const c = connections.get(worker)
        const record = ai === undefined ? undefined : workerOf(ai, worker as Address)
        const coefficient = record === undefined ? undefined : coefficientOf(config.gpuClasses, record.gpuClass)
        out.push(
          new WorkerView({
            id: worker,
            gpuClass: record?.gpuClass ?? s.registration.gpuClass,
            devices: record === undefined || coefficient === undefined ? s.registration.devices : ledgerDevices(record.classUnitsMilli, coefficient),
            online: s.status === "Online" && c?.streaming === true,
            inFlight: c?.inFlight ?? 0,
            reputation: reputationScore(s.reputation),
            endpoint: s.registration.endpoint,
            tasksDone: s.reputation.correct + s.reputation.wrong + s.reputation.disputesWon + s.reputation.disputesLost
          })
        )
      }
      return out
    })

    // Missed heartbeats: the decider decides whether the grace period has passed.
    const watchdog = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const worker of known) {
        const a = yield* actor(worker)
        const s = yield* a.state
        if (s.status === "Online" && now - (lastSeen.get(worker) ?? s.lastHeartbeatAt) > config.heartbeatGraceMs) {
          yield* a.ask(new MarkOffline({ at: now })).pipe(Effect.ignore)
          yield* Effect.logWarning(`worker ${worker} missed its heartbeats: offline`)
        }
      }
    })
    yield* watchdog.pipe(
      Effect.zipRight(Effect.sleep(Duration.millis(Math.max(1_000, config.heartbeatGraceMs / 3)))),
      Effect.forever,
      Effect.forkScoped
    )

    return {
      register,
      heartbeat,
      tasks,
      result,
      failed,
      dispatch,
      recordOutcome,
      schedulable,
      seen,
      list,
      /** Workers known from their streams (for a restart: the index replays them). */
      remember: (worker: string) => Effect.sync(() => void known.add(worker)),
      /** `worker.onChain`: the worker's registration on the AI shard's ledger. */
      onChainView: (address: string) =>
        Effect.gen(function* () {
          const worker = address.trim().toLowerCase()
          if (!/^0x[0-9a-f]{40}$/.test(worker)) return yield* new InvalidRequest({ detail: `address must be 0x and 40 hex digits, got ${JSON.stringify(address.slice(0, 60))}` })
          const record = yield* onChain(worker)
          if (record === undefined) return yield* new NotFound({ what: "worker on chain", id: worker })
          return new OnChainWorkerView({
            worker,
            owner: record.owner,
            publicKey: record.publicKey,
            gpuClass: record.gpuClass,
            gpuUnitsMilli: record.gpuUnitsMilli,
            endpoint: record.endpoint,
            registeredHeight: record.registeredHeight,
            bonded: record.bonded
          })
        }),
      publicKeyOf: (worker: string) => Option.fromNullable(connections.get(worker)?.publicKey)
    }
  })

export type WorkerHub = Effect.Effect.Success<ReturnType<typeof makeWorkerHub>>

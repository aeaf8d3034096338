/**
 * This node's measurements of the workers' GPU units, as an AI committee
 * member: it runs the seeded benchmark (`domain/ai/worker/benchmark.ts`) on
 * a worker it sees at its registration and at a random time each epoch
 * (`benchmarksDue`; the times and seeds from the Random service), checks the
 * outputs against its own computation, and submits `worker.measure` with the
 * units the time it saw stands for. The ledger takes the stake-weighted
 * median, capped by the worker's class.
 */
import { randomBytes } from "node:crypto"
import { Clock, Effect, Either, Random } from "effect"
import type { Address, PrivateKey } from "../../../domain/chain/keys.js"
import { BENCHMARK_TOLERANCE, benchmarkInputs, benchmarkMismatch, benchmarkModel, measuredUnitsMilli } from "../../../domain/ai/worker/benchmark.js"
import { benchmarksDue } from "../../../domain/ai/worker/benchmarkSchedule.js"
import { inputHash } from "../../../domain/ai/inputHash.js"
import { signTaskRequest } from "../../../domain/ai/signedMessages.js"
import { decodeTensorMapJson, tensorMapToJson } from "../../../domain/ai/tensor.js"
import { keccakHex } from "../../../domain/chain/hash.js"
import { utf8 } from "../../../domain/chain/hex.js"
import type { BlobStoreShape } from "../../../infra/blobstore/BlobStore.js"
import { TaskAssignment } from "../../api/AiRpcs.js"
import type { ModelAttestor } from "./ModelAttestor.js"
import type { WorkerHub } from "./WorkerHub.js"

/** How often the due benchmarks are looked for. */
export const BENCHMARK_ROUND_MS = 1_000
/** A failed benchmark is tried again this much later. */
export const BENCHMARK_RETRY_MS = 30_000
/** Timed runs per measurement (their fastest counts). */
export const TIMED_RUNS = 3
/** A run may take this long before it counts as failed. */
export const BENCHMARK_DEADLINE_MS = 30_000
/** The spread of the random times in the first epoch seen (later: the last epoch's length). */
const FIRST_EPOCH_SPREAD_MS = 10_000

/** The benchmark's id as a task's model (it is no registered model: only its weights hash matters to a worker). */
export const BENCHMARK_MODEL = keccakHex(utf8("topai/benchmark"))

const freshNonce = (): string => `0x${randomBytes(16).toString("hex")}`

/**
 * `key` is this member's: it requests each benchmark run itself (a worker runs
 * only a signed request, `checkTaskRequest`), under a grant nonce of its own
 * that no ledger knows, so no benchmark run can ever be settled as paid work.
 */
export const makeWorkerBenchmarker = (blobs: BlobStoreShape, chainId: bigint, key: PrivateKey) =>
  Effect.gen(function* () {
    const bytes = benchmarkModel()
    const { hash } = yield* blobs.put(bytes).pipe(Effect.orDie)

    /** Workers that ran the benchmark once here: they hold its weights (a first run's time includes fetching them). */
    const warmed = new Set<Address>()

    /**
     * TIMED_RUNS runs on `worker` (after an untimed first one): the units of the fastest, or why one does not count.
     * The fastest, since a run may wait behind the worker's tasks from any node: the time measures capacity, not load.
     */
    const measure = (hub: WorkerHub, worker: Address): Effect.Effect<Either.Either<{ unitsMilli: bigint; ms: number }, string>> =>
      Effect.gen(function* () {
        if (!warmed.has(worker)) {
          const first = yield* runOnce(hub, worker)
          if (Either.isLeft(first)) return Either.left(first.left)
          warmed.add(worker)
        }
        let fastest = Number.POSITIVE_INFINITY
        for (let i = 0; i < TIMED_RUNS; i++) {
          const r = yield* runOnce(hub, worker)
          if (Either.isLeft(r)) return Either.left(r.left)
          fastest = Math.min(fastest, r.right)
        }
        return Either.right({ unitsMilli: measuredUnitsMilli(fastest), ms: fastest })
      })

    /** One run: the ms the gateway saw it take, or why it does not count. */
    const runOnce = (hub: WorkerHub, worker: Address): Effect.Effect<Either.Either<number, string>> =>
      Effect.gen(function* () {
        const seed = yield* Random.nextIntBetween(0, 0x7fffffff)
        const inputs = benchmarkInputs(seed)
        const grantNonce = freshNonce()
        const request = signTaskRequest(key, { chainId, model: BENCHMARK_MODEL, grantNonce, inputHash: inputHash(inputs), nonce: freshNonce() })
        const assignment = new TaskAssignment({
          task: request.task,
          model: BENCHMARK_MODEL,
          request: { publicKey: key.publicKey.hex, grantNonce, nonce: request.nonce, signature: request.signature },
          weightsHash: hash,
          sizeBytes: bytes.length,
          outputTolerance: BENCHMARK_TOLERANCE, // the fingerprint's quantum (a worker refuses 0); the check below is the gateway's own
          inputs: tensorMapToJson(inputs),
          deadlineMs: BENCHMARK_DEADLINE_MS
        })
        const sentAt = yield* Clock.currentTimeMillis
        const outcome = yield* hub.dispatch(worker, assignment)
        const ms = (yield* Clock.currentTimeMillis) - sentAt
        if (outcome.kind !== "result") return Either.left(`${outcome.kind}: ${outcome.detail}`)
        const outputs = decodeTensorMapJson(outcome.outputs)
        if (Either.isLeft(outputs)) return Either.left(`outputs: ${outputs.left.message}`)
        const mismatch = benchmarkMismatch(outputs.right, seed)
        return mismatch === undefined ? Either.right(ms) : Either.left(`wrong outputs: ${mismatch}`)
      })

    const run = (member: ModelAttestor, hub: WorkerHub) =>
      Effect.gen(function* () {
        const scheduled = new Map<Address, number>()
        let epoch = -1
        let epochStartedAt = 0
        let spreadMs = FIRST_EPOCH_SPREAD_MS
        const round = Effect.gen(function* () {
          const ledger = yield* member.ledgerAsMember
          if (ledger === null) return
          const now = yield* Clock.currentTimeMillis
          const sees = yield* hub.seen
          if (ledger.economy.epoch !== epoch) {
            if (epoch !== -1) spreadMs = Math.max(1, now - epochStartedAt)
            epoch = ledger.economy.epoch
            epochStartedAt = now
            for (const w of sees) scheduled.set(w, now + (yield* Random.nextIntBetween(0, spreadMs)))
          }
          for (const worker of benchmarksDue(ledger, member.address, sees, scheduled, now)) {
            const r = yield* measure(hub, worker)
            if (Either.isLeft(r)) {
              scheduled.set(worker, now + BENCHMARK_RETRY_MS)
              yield* Effect.logWarning(`benchmark of worker ${worker} does not count: ${r.left}`)
              continue
            }
            scheduled.delete(worker)
            yield* member.submit({ kind: "worker.measure", worker, unitsMilli: r.right.unitsMilli })
            yield* Effect.logInfo(`measured worker ${worker}: ${r.right.unitsMilli} milli-units (${r.right.ms} ms)`)
          }
        })
        yield* round.pipe(
          Effect.catchAll((e) => Effect.logWarning(`worker benchmark: ${e.message}`)),
          Effect.zipRight(Effect.sleep(BENCHMARK_ROUND_MS)),
          Effect.forever
        )
      })

    return { weightsHash: hash, run }
  })

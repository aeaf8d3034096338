/**
 * SignatureVerifier: the node's one place for transaction signature checks
 * (the costly step of admission and of voting on a proposal).
 *
 * Why noble and not node:crypto. Our signatures cover a keccak-256 digest.
 * Node 20's `crypto.verify` (OpenSSL 3.0) always hashes its input itself with
 * an OpenSSL digest: `null` means SHA-256 for EC keys, and OpenSSL 3.0 has no
 * KECCAK-256 (added in 3.2). There is no raw-digest ECDSA verify in Node 20
 * (`crypto.verifyDigest` is nodejs/node#62345, not released). Verifying
 * sha256(keccak(body)) would be a different signature scheme, so it is out.
 * We tried the one exact transform that fits OpenSSL's API — a key with
 * explicit curve parameters whose generator is (e/h)·G, so that OpenSSL's
 * check over h = sha256(constant) equals ours over e — and measured 1,292/s
 * against noble's 1,016/s: the per-signature point multiplication and key
 * import eat the gain. So signatures are verified with noble, the same code
 * as `verifyTransactionSignature`, spread over worker threads, so the work
 * runs in parallel and off the actors' event loop.
 */
import { Context, Effect, Either, Layer } from "effect"
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { HASH_BYTES } from "../../domain/chain/hash.js"
import { PUBLIC_KEY_BYTES, PublicKey, SIGNATURE_BYTES, verifyDigest } from "../../domain/chain/keys.js"
import { verifyTransactionSignature, type Transaction } from "../../domain/chain/transaction.js"

/** What a signature check needs: a Transaction is one, so is a worker's signed result. */
export interface SignedDigest {
  readonly digest: Uint8Array
  readonly publicKey: { readonly bytes: Uint8Array }
  readonly signature: Uint8Array
}

export interface SignatureVerifierService {
  /** Whether `signature` (compact, low-s) over `digest` verifies for the compressed public key. */
  readonly verifyDigest: (signed: SignedDigest) => Effect.Effect<boolean>
  /** Whether the transaction's signature is valid for its public key (compact, low-s, over its digest). */
  readonly verify: (tx: Transaction) => Effect.Effect<boolean>
  /** The same for many, in order, spread over the threads. */
  readonly verifyBatch: (txs: ReadonlyArray<Transaction>) => Effect.Effect<ReadonlyArray<boolean>>
}

export class SignatureVerifier extends Context.Tag("topai/SignatureVerifier")<SignatureVerifier, SignatureVerifierService>() {}

/** In the calling thread: for tests and tools. */
export const SignatureVerifierInThread: Layer.Layer<SignatureVerifier> = Layer.succeed(SignatureVerifier, {
  verifyDigest: (signed) =>
    Effect.sync(() => {
      const key = PublicKey.fromBytes(signed.publicKey.bytes)
      return Either.isRight(key) && verifyDigest(signed.signature, signed.digest, key.right)
    }),
  verify: (tx) => Effect.sync(() => verifyTransactionSignature(tx)),
  verifyBatch: (txs) => Effect.sync(() => txs.map(verifyTransactionSignature))
})

/** Below this a batch goes to one worker: a message round trip costs about a tenth of a verification. */
const CHUNK_MIN = 16

interface Job {
  readonly resolve: (results: Uint8Array) => void
  readonly fail: (error: unknown) => void
}

interface Slot {
  worker: Worker
  inflight: number
  readonly jobs: Map<number, Job>
}

const WORKER_URL = new URL("./verifyWorker.mjs", import.meta.url)

const pack = (txs: ReadonlyArray<SignedDigest>) => {
  const digests = new Uint8Array(txs.length * HASH_BYTES)
  const publicKeys = new Uint8Array(txs.length * PUBLIC_KEY_BYTES)
  const signatures = new Uint8Array(txs.length * SIGNATURE_BYTES)
  txs.forEach((tx, i) => {
    digests.set(tx.digest, i * HASH_BYTES)
    publicKeys.set(tx.publicKey.bytes, i * PUBLIC_KEY_BYTES)
    signatures.set(tx.signature, i * SIGNATURE_BYTES)
  })
  return { count: txs.length, digests, publicKeys, signatures }
}

const makeWorkerPool = (threads: number) =>
  Effect.gen(function* () {
    let nextId = 0
    let closed = false
    const spawn = (slot: Slot): Worker => {
      const worker = new Worker(WORKER_URL)
      worker.on("message", ({ id, results }: { id: number; results: Uint8Array }) => {
        const job = slot.jobs.get(id)
        if (job === undefined) return // interrupted meanwhile
        slot.jobs.delete(id)
        slot.inflight--
        job.resolve(results)
      })
      // A dead worker fails its jobs as defects and is replaced.
      const die = (error: unknown) => {
        for (const job of slot.jobs.values()) job.fail(error)
        slot.jobs.clear()
        slot.inflight = 0
        if (!closed) slot.worker = spawn(slot)
      }
      worker.on("error", die)
      worker.on("exit", (code) => {
        if (!closed && slot.worker === worker) die(new Error(`signature worker exited with code ${code}`))
      })
      return worker
    }
    const slots = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Array.from({ length: threads }, () => {
          const slot: Slot = { worker: undefined as unknown as Worker, inflight: 0, jobs: new Map() }
          slot.worker = spawn(slot)
          return slot
        })
      ),
      (slots) =>
        Effect.promise(() => {
          closed = true
          return Promise.all(slots.map((s) => s.worker.terminate()))
        })
    )

    const run = (txs: ReadonlyArray<SignedDigest>): Effect.Effect<Uint8Array> =>
      Effect.async<Uint8Array>((resume) => {
        const slot = slots.reduce((a, b) => (b.inflight < a.inflight ? b : a))
        const id = nextId++
        const message = pack(txs)
        slot.jobs.set(id, {
          resolve: (results) => resume(Effect.succeed(results)),
          fail: (error) => resume(Effect.die(error))
        })
        slot.inflight++
        slot.worker.postMessage({ id, ...message }, [
          message.digests.buffer,
          message.publicKeys.buffer,
          message.signatures.buffer
        ])
        // Interrupted: the worker finishes anyway, its answer is dropped.
        return Effect.sync(() => {
          if (slot.jobs.delete(id)) slot.inflight--
        })
      })

    const verifyBatch = (txs: ReadonlyArray<Transaction>): Effect.Effect<ReadonlyArray<boolean>> => {
      if (txs.length === 0) return Effect.succeed([])
      const size = Math.max(CHUNK_MIN, Math.ceil(txs.length / threads))
      const chunks: Array<ReadonlyArray<Transaction>> = []
      for (let i = 0; i < txs.length; i += size) chunks.push(txs.slice(i, i + size))
      return Effect.forEach(chunks, run, { concurrency: "unbounded" }).pipe(
        Effect.map((parts) => parts.flatMap((p) => Array.from(p, (r) => r === 1)))
      )
    }

    return SignatureVerifier.of({
      verifyDigest: (signed) =>
        signed.digest.length === HASH_BYTES && signed.publicKey.bytes.length === PUBLIC_KEY_BYTES && signed.signature.length === SIGNATURE_BYTES
          ? run([signed]).pipe(Effect.map((r) => r[0] === 1))
          : Effect.succeed(false),
      verify: (tx) => run([tx]).pipe(Effect.map((r) => r[0] === 1)),
      verifyBatch
    })
  })

/** noble on `threads` worker threads (default: one per core). */
export const SignatureVerifierWorkers = (options?: { readonly threads?: number }): Layer.Layer<SignatureVerifier> =>
  Layer.scoped(SignatureVerifier, makeWorkerPool(Math.max(1, options?.threads ?? availableParallelism())))

/** What the node runs. */
export const SignatureVerifierLive: Layer.Layer<SignatureVerifier> = SignatureVerifierWorkers()

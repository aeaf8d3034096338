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
 *
 * Checks are memoized by their exact bytes (`verifiedCache.ts`): the seats of
 * one process (every validator verifies every transaction) verify a signature
 * once, and a request for a signature already being checked waits for that
 * check. SignatureVerifierLive and SignatureVerifierInThread share the
 * process's memo; `SignatureVerifierWorkers` makes its own unless told.
 */
import { Context, Effect, Either, Layer } from "effect"
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { HASH_BYTES } from "../../domain/chain/hash.js"
import { PUBLIC_KEY_BYTES, PublicKey, SIGNATURE_BYTES, verifyDigest } from "../../domain/chain/keys.js"
import type { Transaction } from "../../domain/chain/transaction.js"
import { hasSignatureShape, makeVerifiedCache, processVerifiedCache, verifiedKeyOf } from "./verifiedCache.js"
import type { VerifiedCache, Waiter } from "./verifiedCache.js"

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

/** Which memo of checked signatures a verifier uses: the process's, its own, or none. */
export type VerifierCache = "process" | "own" | "none" | VerifiedCache

const cacheOf = (cache: VerifierCache | undefined, fallback: "process" | "own"): VerifiedCache | undefined => {
  const choice = cache ?? fallback
  if (choice === "none") return undefined
  if (choice === "process") return processVerifiedCache
  if (choice === "own") return makeVerifiedCache()
  return choice
}

const checkInThread = (signed: SignedDigest): boolean => {
  if (!hasSignatureShape(signed)) return false
  const key = PublicKey.fromBytes(signed.publicKey.bytes)
  return Either.isRight(key) && verifyDigest(signed.signature, signed.digest, key.right)
}

/** In the calling thread (tests and tools), with the given memo (default: the process's). */
export const SignatureVerifierInThreadWith = (options?: { readonly cache?: VerifierCache }): Layer.Layer<SignatureVerifier> =>
  Layer.sync(SignatureVerifier, () => {
    const cache = cacheOf(options?.cache, "process")
    // Synchronous: no check is ever under way when another starts, so the memo alone suffices.
    const check = (signed: SignedDigest): boolean => {
      if (cache === undefined || !hasSignatureShape(signed)) return checkInThread(signed)
      const key = verifiedKeyOf(signed)
      const known = cache.get(key)
      if (known !== undefined) return known
      const valid = checkInThread(signed)
      cache.join(key, () => {})
      cache.settle(key, valid)
      return valid
    }
    return {
      verifyDigest: (signed) => Effect.sync(() => check(signed)),
      verify: (tx) => Effect.sync(() => check(tx)),
      verifyBatch: (txs) => Effect.sync(() => txs.map(check))
    }
  })

/** In the calling thread: for tests and tools (the process's memo). */
export const SignatureVerifierInThread: Layer.Layer<SignatureVerifier> = SignatureVerifierInThreadWith()

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

/** Only for parts of the right lengths (`hasSignatureShape`). */
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

const makeWorkerPool = (threads: number, cache: VerifiedCache | undefined) =>
  Effect.gen(function* () {
    let nextId = 0
    let closed = false
    const spawn = (slot: Slot): Worker => {
      const worker = new Worker(WORKER_URL)
      worker.on("message", ({ id, results }: { id: number; results: Uint8Array }) => {
        const job = slot.jobs.get(id)
        if (job === undefined) return
        slot.jobs.delete(id)
        slot.inflight--
        job.resolve(results)
      })
      // A dead worker fails its jobs as defects and is replaced.
      const die = (error: unknown) => {
        const jobs = [...slot.jobs.values()]
        slot.jobs.clear()
        slot.inflight = 0
        if (!closed) slot.worker = spawn(slot)
        for (const job of jobs) job.fail(error)
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

    /**
     * Post one batch to the least busy worker. The job runs to its end even
     * if every caller stopped waiting (a worker cannot be stopped mid-batch),
     * so a check other callers joined always settles.
     */
    const post = (txs: ReadonlyArray<SignedDigest>, job: Job): void => {
      const slot = slots.reduce((a, b) => (b.inflight < a.inflight ? b : a))
      const id = nextId++
      const message = pack(txs)
      slot.jobs.set(id, job)
      slot.inflight++
      slot.worker.postMessage({ id, ...message }, [message.digests.buffer, message.publicKeys.buffer, message.signatures.buffer])
    }

    /** Check `items` (memoized, checks under way joined), in order, spread over the threads. */
    const check = (items: ReadonlyArray<SignedDigest>): Effect.Effect<ReadonlyArray<boolean>> =>
      Effect.suspend(() => {
        const results = new Array<boolean>(items.length)
        // Known at once: malformed parts and remembered outcomes. The rest is run or joined below.
        const open: Array<number> = []
        const keys: Array<string | undefined> = []
        items.forEach((item, i) => {
          if (!hasSignatureShape(item)) {
            results[i] = false
            return
          }
          const key = cache === undefined ? undefined : verifiedKeyOf(item)
          const known = key === undefined ? undefined : cache!.get(key)
          if (known !== undefined) {
            results[i] = known
            return
          }
          open.push(i)
          keys.push(key)
        })
        if (open.length === 0) return Effect.succeed(results)
        return Effect.async<ReadonlyArray<boolean>>((resume) => {
          let remaining = open.length
          let over = false
          const answer =
            (i: number): Waiter =>
            (result) => {
              if (over) return
              if (typeof result !== "boolean") {
                over = true
                return resume(Effect.die(result.error))
              }
              results[i] = result
              if (--remaining === 0) {
                over = true
                resume(Effect.succeed(results))
              }
            }
          // The checks this call runs itself: without a memo, every open one; with it, those not under way.
          const fresh: Array<SignedDigest> = []
          const settlers: Array<Waiter> = []
          open.forEach((i, k) => {
            const key = keys[k]
            if (key === undefined) {
              fresh.push(items[i]!)
              settlers.push(answer(i))
            } else if (!cache!.join(key, answer(i))) {
              fresh.push(items[i]!)
              settlers.push((result) => (typeof result === "boolean" ? cache!.settle(key, result) : cache!.fail(key, result.error)))
            }
          })
          const size = fresh.length < CHUNK_MIN * 2 ? fresh.length : Math.max(CHUNK_MIN, Math.ceil(fresh.length / threads))
          for (let start = 0; start < fresh.length; start += size) {
            const end = Math.min(fresh.length, start + size)
            post(fresh.slice(start, end), {
              resolve: (r) => {
                for (let k = start; k < end; k++) settlers[k]!(r[k - start] === 1)
              },
              fail: (error) => {
                for (let k = start; k < end; k++) settlers[k]!({ error })
              }
            })
          }
          // Interrupted: stop waiting; the checks go on and settle for whoever else waits.
          return Effect.sync(() => {
            over = true
          })
        })
      })

    return SignatureVerifier.of({
      verifyDigest: (signed) => check([signed]).pipe(Effect.map((r) => r[0]!)),
      verify: (tx) => check([tx]).pipe(Effect.map((r) => r[0]!)),
      verifyBatch: (txs) => (txs.length === 0 ? Effect.succeed([]) : check(txs))
    })
  })

/**
 * noble on `threads` worker threads (default: one per core), with a memo of
 * checked signatures (default: its own; "process" shares the process's).
 */
export const SignatureVerifierWorkers = (options?: {
  readonly threads?: number
  readonly cache?: VerifierCache
}): Layer.Layer<SignatureVerifier> =>
  Layer.scoped(
    SignatureVerifier,
    Effect.suspend(() => makeWorkerPool(Math.max(1, options?.threads ?? availableParallelism()), cacheOf(options?.cache, "own")))
  )

/** What the node runs: worker threads over every core, the process's memo. */
export const SignatureVerifierLive: Layer.Layer<SignatureVerifier> = SignatureVerifierWorkers({ cache: "process" })

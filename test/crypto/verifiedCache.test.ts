/**
 * The memo of checked secp256k1 signatures (infra/crypto/verifiedCache.ts)
 * behind SignatureVerifier: negative tests first. A remembered outcome is for
 * exactly one (digest, key, signature): a valid signature on record must
 * never make another signature over the same digest pass, nor the same
 * signature under another key, nor a tampered digest — whichever was checked
 * first, through every layer that uses a memo.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { devKey, verifyDigest } from "../../domain/chain/keys.js"
import { Transaction, TransactionBody, verifyTransactionSignature } from "../../domain/chain/transaction.js"
import {
  SignatureVerifier,
  SignatureVerifierInThreadWith,
  SignatureVerifierWorkers
} from "../../infra/crypto/SignatureVerifier.js"
import type { SignatureVerifierService, VerifierCache } from "../../infra/crypto/SignatureVerifier.js"
import { makeVerifiedCache, processVerifiedCache, verifiedKeyOf } from "../../infra/crypto/verifiedCache.js"
import type { VerifiedCache } from "../../infra/crypto/verifiedCache.js"
import { transfer } from "../chain/helpers.js"

const to = devKey(9).publicKey.address

const signed = (i: number, keyIndex = i % 4) =>
  transfer(devKey(keyIndex), { to, amount: BigInt(i + 1), nonce: BigInt(i) })

/** A valid transaction and its forgeries that share all but one part with it. */
const forgeries = (i: number) => {
  const tx = signed(i)
  const other = signed(i + 100) // another valid signature, by the same key, over another body
  return {
    tx,
    otherSignature: Transaction.make(tx.body, tx.publicKey, other.signature), // same digest, another signature
    otherKey: Transaction.make(tx.body, devKey((i % 4) + 4).publicKey, tx.signature), // same signature, another key
    otherBody: Transaction.make(new TransactionBody({ ...tx.body, fee: tx.body.fee + 1n }), tx.publicKey, tx.signature) // another digest
  }
}

/** Counts the checks a memo saw announced (each one is run once, by whoever announced it). */
const countingCache = (): { readonly cache: VerifiedCache; readonly runs: () => number } => {
  const inner = makeVerifiedCache(1_000)
  let runs = 0
  return {
    runs: () => runs,
    cache: {
      ...inner,
      join: (key, waiter) => {
        const joined = inner.join(key, waiter)
        if (!joined) runs++
        return joined
      }
    }
  }
}

type MakeLayer = (cache: VerifierCache) => ReturnType<typeof SignatureVerifierInThreadWith>

const suite = (name: string, make: MakeLayer) =>
  describe(name, () => {
    /** Run `body` with a verifier of its own (the layer, and its worker threads, live as long as the body). */
    const using = <A>(cache: VerifierCache, body: (verifier: SignatureVerifierService) => Effect.Effect<A>) =>
      Effect.flatMap(SignatureVerifier, body).pipe(Effect.provide(make(cache)))
    it.effect("a remembered valid signature never makes another signature, key or digest pass", () =>
      Effect.gen(function* () {
        for (let i = 0; i < 4; i++) {
          const f = forgeries(i)
          expect(verifyTransactionSignature(f.tx)).toBe(true)
          yield* using(makeVerifiedCache(100), (verifier) => Effect.gen(function* () {
          // The valid one first: it is remembered...
          expect(yield* verifier.verify(f.tx)).toBe(true)
          expect(yield* verifier.verify(f.tx)).toBe(true)
          // ...and lends nothing to its forgeries, singly, in a batch or as digests.
          expect(yield* verifier.verify(f.otherSignature)).toBe(false)
          expect(yield* verifier.verify(f.otherKey)).toBe(false)
          expect(yield* verifier.verify(f.otherBody)).toBe(false)
          expect(yield* verifier.verifyBatch([f.tx, f.otherSignature, f.otherKey, f.otherBody, f.tx])).toEqual([true, false, false, false, true])
          expect(yield* verifier.verifyDigest({ digest: f.tx.digest, publicKey: f.tx.publicKey, signature: f.otherSignature.signature })).toBe(false)
          expect(yield* verifier.verifyDigest({ digest: f.tx.digest, publicKey: f.otherKey.publicKey, signature: f.tx.signature })).toBe(false)
          }))
        }
      }))

    it.effect("a remembered refusal never makes the valid signature fail", () =>
      Effect.gen(function* () {
        const f = forgeries(7)
        yield* using(makeVerifiedCache(100), (verifier) => Effect.gen(function* () {
          expect(yield* verifier.verifyBatch([f.otherSignature, f.otherKey, f.otherBody])).toEqual([false, false, false])
          expect(yield* verifier.verify(f.tx)).toBe(true)
          expect(yield* verifier.verify(f.otherSignature)).toBe(false)
        }))
      }))

    it.effect("many seats asking at once for one signature: one check, the same answer for all", () =>
      Effect.gen(function* () {
        const txs = Array.from({ length: 20 }, (_, i) => forgeries(i + 20))
        const { cache, runs } = countingCache()
        const asks = txs.flatMap((f) => [f.tx, f.otherSignature, f.tx, f.otherKey, f.tx, f.otherSignature])
        yield* using(cache, (verifier) => Effect.gen(function* () {
          const answers = yield* Effect.forEach(asks, verifier.verify, { concurrency: "unbounded" })
          expect(answers).toEqual(asks.map(verifyTransactionSignature))
          expect(runs()).toBe(txs.length * 3) // the valid one and its two forgeries, each once
          const again = yield* verifier.verifyBatch(asks)
          expect(again).toEqual(answers)
          expect(runs()).toBe(txs.length * 3)
        }))
      }))

    it.effect("without a memo, every request is checked", () =>
      Effect.gen(function* () {
        const f = forgeries(3)
        const answers = yield* using("none", (verifier) => verifier.verifyBatch([f.tx, f.otherSignature, f.tx, f.otherKey]))
        expect(answers).toEqual([true, false, true, false])
      }))
  })

describe("verified-signature memo", () => {
  suite("in thread", (cache) => SignatureVerifierInThreadWith({ cache }))
  suite("worker threads", (cache) => SignatureVerifierWorkers({ threads: 2, cache }))

  it("keys are the exact bytes: any one part differing makes another key", () => {
    const f = forgeries(1)
    const keys = [f.tx, f.otherSignature, f.otherKey, f.otherBody].map(verifiedKeyOf)
    expect(new Set(keys).size).toBe(4)
    expect(keys[0]!.length).toBe(32 + 33 + 64)
    expect(verifiedKeyOf(f.tx)).toBe(keys[0])
  })

  it("is bounded: the oldest entries go first", () => {
    const cache = makeVerifiedCache(3)
    for (let i = 0; i < 5; i++) {
      expect(cache.join(`k${i}`, () => {})).toBe(false)
      cache.settle(`k${i}`, i % 2 === 0)
    }
    expect(cache.size()).toBe(3)
    expect(cache.get("k0")).toBeUndefined()
    expect(cache.get("k1")).toBeUndefined()
    expect(cache.get("k4")).toBe(true)
    expect(cache.get("k3")).toBe(false)
  })

  it("a check that could not run is not remembered, and its waiters hear why", () => {
    const cache = makeVerifiedCache(3)
    const heard: Array<unknown> = []
    expect(cache.join("k", (r) => heard.push(r))).toBe(false)
    expect(cache.join("k", (r) => heard.push(r))).toBe(true)
    cache.fail("k", "worker died")
    expect(heard).toEqual([{ error: "worker died" }, { error: "worker died" }])
    expect(cache.get("k")).toBeUndefined()
    expect(cache.join("k", () => {})).toBe(false) // a later request checks afresh
  })

  layer(SignatureVerifierWorkers({ threads: 1, cache: "own" }))("an interrupted caller", (it) => {
    it.effect("does not stop the check the others joined", () =>
      Effect.gen(function* () {
        const verifier = yield* SignatureVerifier
        const f = forgeries(40)
        const first = yield* Effect.fork(verifier.verify(f.tx))
        const second = yield* Effect.fork(verifier.verify(f.tx))
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(first)
        expect(yield* Fiber.join(second)).toBe(true)
      }))
  })
})

describe("verifyDigest answers from the process's memo (useKnownVerifications)", () => {
  it("for exactly the bytes a verifier checked through the process memo; any other bytes are verified by noble", async () => {
    const tx = signed(900)
    const { otherBody, otherKey, otherSignature } = forgeries(900)
    const live = SignatureVerifierInThreadWith({ cache: "process" })
    const verifier = await Effect.runPromise(SignatureVerifier.pipe(Effect.provide(live)))
    expect(await Effect.runPromise(verifier.verify(tx))).toBe(true)
    expect(processVerifiedCache.get(verifiedKeyOf(tx))).toBe(true)
    // The memo answers for those very bytes: a false record of them (never made by a check) would be believed ...
    processVerifiedCache.join(verifiedKeyOf(tx), () => {})
    processVerifiedCache.settle(verifiedKeyOf(tx), false)
    expect(verifyDigest(tx.signature, tx.digest, tx.publicKey)).toBe(false)
    // ... and nothing else: the forgeries, never checked, are verified here and fail.
    for (const f of [otherSignature, otherKey, otherBody]) expect(verifyDigest(f.signature, f.digest, f.publicKey)).toBe(false)
    processVerifiedCache.clear()
    expect(verifyDigest(tx.signature, tx.digest, tx.publicKey)).toBe(true)
  })
})

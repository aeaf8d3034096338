import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { devKey } from "../../domain/chain/keys.js"
import { Transaction, TransactionBody, verifyTransactionSignature } from "../../domain/chain/transaction.js"
import {
  SignatureVerifier,
  SignatureVerifierInThread,
  SignatureVerifierWorkers
} from "../../infra/crypto/SignatureVerifier.js"
import { transfer } from "./helpers.js"

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const to = devKey(9).publicKey.address

/** Valid, tampered, wrong-key and high-s transactions, interleaved. */
const corpus = (): ReadonlyArray<Transaction> => {
  const out: Array<Transaction> = []
  for (let i = 0; i < 12; i++) {
    const key = devKey(i % 4)
    const tx = transfer(key, { to, amount: BigInt(i + 1), nonce: BigInt(i) })
    out.push(tx)
    const flipped = Uint8Array.from(tx.signature)
    flipped[i * 5] = flipped[i * 5]! ^ 0x40
    out.push(Transaction.make(tx.body, tx.publicKey, flipped)) // tampered signature
    out.push(Transaction.make(new TransactionBody({ ...tx.body, fee: tx.body.fee + 1n }), tx.publicKey, tx.signature)) // tampered body
    out.push(Transaction.make(tx.body, devKey((i % 4) + 4).publicKey, tx.signature)) // wrong key
    const s = BigInt("0x" + Buffer.from(tx.signature.subarray(32)).toString("hex"))
    const highS = Uint8Array.from(tx.signature)
    highS.set(Buffer.from((SECP256K1_N - s).toString(16).padStart(64, "0"), "hex"), 32)
    out.push(Transaction.make(tx.body, tx.publicKey, highS)) // the malleable twin
    out.push(Transaction.make(tx.body, tx.publicKey, new Uint8Array(64))) // r = s = 0
  }
  return out
}

const txs = corpus()
const expected = txs.map(verifyTransactionSignature)

const agreement = (name: string, verifierLayer: typeof SignatureVerifierInThread) =>
  layer(verifierLayer)(name, (it) => {
    it.effect("agrees with noble on valid, tampered, wrong-key and high-s signatures", () =>
      Effect.gen(function* () {
        const verifier = yield* SignatureVerifier
        expect(expected.filter(Boolean).length).toBe(12)
        expect(yield* verifier.verifyBatch(txs)).toEqual(expected)
        const singles = yield* Effect.forEach(txs, verifier.verify, { concurrency: 8 })
        expect(singles).toEqual(expected)
        expect(yield* verifier.verifyBatch([])).toEqual([])
        // The same checks through verifyDigest, the form a worker's signed result takes.
        const digests = yield* Effect.forEach(txs, (tx) => verifier.verifyDigest(tx), { concurrency: 8 })
        expect(digests).toEqual(expected)
        const truncated = { digest: txs[0]!.digest, publicKey: txs[0]!.publicKey, signature: txs[0]!.signature.subarray(0, 63) }
        expect(yield* verifier.verifyDigest(truncated)).toBe(false)
      }))
  })

describe("SignatureVerifier", () => {
  agreement("in thread", SignatureVerifierInThread)
  agreement("worker threads", SignatureVerifierWorkers({ threads: 2 }))
  agreement("one worker thread", SignatureVerifierWorkers({ threads: 1 }))
})


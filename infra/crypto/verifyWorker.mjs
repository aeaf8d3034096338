// A worker thread of SignatureVerifier: verifies batches of secp256k1
// signatures with noble. Plain JavaScript so that node runs it as is, under
// tsx or vitest alike. Must verify exactly as domain/chain/keys.ts
// `verifyDigest` does (compact r‖s, low-s only, digest not re-hashed); the
// verifier's test checks the two agree.
import { parentPort } from "node:worker_threads"
import { secp256k1 } from "@noble/curves/secp256k1.js"

const DIGEST_BYTES = 32
const PUBLIC_KEY_BYTES = 33
const SIGNATURE_BYTES = 64
const OPTIONS = { prehash: false, lowS: true, format: "compact" }

parentPort.on("message", ({ id, count, digests, publicKeys, signatures }) => {
  const results = new Uint8Array(count)
  for (let i = 0; i < count; i++) {
    try {
      const ok = secp256k1.verify(
        signatures.subarray(i * SIGNATURE_BYTES, (i + 1) * SIGNATURE_BYTES),
        digests.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES),
        publicKeys.subarray(i * PUBLIC_KEY_BYTES, (i + 1) * PUBLIC_KEY_BYTES),
        OPTIONS
      )
      results[i] = ok ? 1 : 0
    } catch {
      results[i] = 0 // r or s out of range: not a signature
    }
  }
  parentPort.postMessage({ id, results }, [results.buffer])
})

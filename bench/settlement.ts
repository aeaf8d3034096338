/**
 * Settlement on the AI shard: receipts settled per second by one
 * `usage.settle` of 256 receipts (decoded from its bytes as a member gets it,
 * then decided by the AI ledger, `decideAi`) against what the same core can
 * verify — the baseline verifies the same number of ECDSA signatures the
 * receipts carry (grant, request, result: 3 each), measured in the same run.
 * The ratio says how much of a settle is anything but signature checks.
 */
import { performance } from "node:perf_hooks"
import { Either } from "effect"
import { keccakHex } from "../domain/chain/hash.js"
import { utf8 } from "../domain/chain/hex.js"
import { verifyDigest } from "../domain/chain/keys.js"
import { decodeTransaction, type UsageReceipt } from "../domain/chain/transaction.js"
import { decideAi } from "../domain/ai/ledger/decide.js"
import { resultDigest, sessionGrantDigest, taskRequestDigest } from "../domain/ai/signedMessages.js"
import {
  accept,
  ctxAt,
  developer,
  escrowReceipt,
  settleTx,
  usageReceipt,
  withVerifiedModel,
  withWorkers,
  worker1
} from "../test/ai/ledger/support.js"
import type { BenchModule } from "./lib.js"
import { compare, report } from "./lib.js"

const RECEIPTS = 256
const SIGNATURES_PER_RECEIPT = 3
const REPEATS = 5

export const run: BenchModule["run"] = async () => {
  const { state: verified, model } = withVerifiedModel()
  const state = accept(withWorkers(verified), ctxAt(3), escrowReceipt(developer, model, 1_000n * BigInt(RECEIPTS)))
  const receipts: ReadonlyArray<UsageReceipt> = Array.from({ length: RECEIPTS }, (_, i) => usageReceipt(keccakHex(utf8(`bench-task-${i}`)), model))
  const bytes = settleTx(...receipts).encoded
  const ctx = ctxAt(10)

  const settleOnce = () => {
    const tx = decodeTransaction(bytes)
    if (Either.isLeft(tx)) throw new Error(`the bench's settle does not decode: ${tx.left.message}`)
    const decided = decideAi(state, ctx, { _tag: "Tx", tx: tx.right })
    if (Either.isLeft(decided)) throw new Error(`the bench's settle was refused: ${decided.left.detail}`)
    const settled = decided.right.filter((e) => e._tag === "UsageSettled").length
    if (settled !== RECEIPTS) throw new Error(`${settled} of ${RECEIPTS} receipts settled`)
  }

  // The baseline checks exactly the signatures the settle checks.
  const checks = receipts.flatMap((r) => {
    const grant = { chainId: r.grant.chainId, model: r.grant.model, issuedAt: r.grant.issuedAt, expiresAt: r.grant.expiresAt, spendMax: r.grant.spendMax, nonce: r.grant.nonce }
    const request = { chainId: r.grant.chainId, model: r.model, grantNonce: r.grant.nonce, inputHash: r.request.inputHash, nonce: r.request.nonce }
    const result = r.results[0]!
    return [
      { digest: sessionGrantDigest(grant), signature: r.grant.signature, key: developer.publicKey },
      { digest: taskRequestDigest(request), signature: r.request.signature, key: developer.publicKey },
      { digest: resultDigest(r.taskId, result.fingerprint, result.execMs), signature: result.signature, key: worker1.publicKey }
    ].map((c) => ({ ...c, signature: Buffer.from(c.signature.slice(2), "hex") }))
  })
  const verifyAll = () => {
    for (const c of checks) if (!verifyDigest(c.signature, c.digest, c.key)) throw new Error("a bench signature does not verify")
  }

  const timed = (fn: () => void) => async () => {
    const start = performance.now()
    fn()
    return (RECEIPTS * 1_000) / (performance.now() - start)
  }
  const result = await compare(REPEATS, timed(settleOnce), timed(verifyAll), { warmups: 1 })
  return [
    report({
      name: "settlement-256-receipts",
      unit: "receipts",
      subject: result.subject,
      baseline: result.baseline,
      target: { ratio: 0.8 },
      details: {
        receiptsPerSettle: RECEIPTS,
        signaturesPerReceipt: SIGNATURES_PER_RECEIPT,
        settleBytes: bytes.length,
        baselineVerificationsPerSecond: result.baseline.median * SIGNATURES_PER_RECEIPT
      }
    })
  ]
}

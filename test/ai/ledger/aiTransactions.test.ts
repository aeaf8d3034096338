import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { bytesToHex, utf8 } from "../../../domain/chain/hex.js"
import { encodeRlp, type RlpInput } from "../../../domain/chain/rlp.js"
import {
  decodeTransaction,
  MAX_TRANSACTION_BYTES,
  MAX_USAGE_SETTLE_BYTES,
  maxBytesOf,
  USAGE_RECEIPTS_MAX,
  USAGE_SIGNATURES_MAX,
  type TransactionPayload
} from "../../../domain/chain/transaction.js"
import { hashBytes } from "../../../domain/chain/hash.js"
import { developer, hashOf, settleTx, signed, usageReceipt, worker1 } from "./support.js"

const decodeReason = (bytes: Uint8Array): string => {
  const r = decodeTransaction(bytes)
  return Either.isRight(r) ? "decoded" : r.left._tag === "MalformedTransaction" ? `Malformed: ${r.left.detail}` : `Oversized ${r.left.max}`
}

const model = hashOf("m")
const payloads: ReadonlyArray<TransactionPayload> = [
  { kind: "model.attest", model, verdict: "verified", fingerprint: hashOf("fp") },
  { kind: "model.attest", model, verdict: "rejected", reason: "outputs differ from the reference ✗" },
  { kind: "worker.register", gpuClass: "H100", devices: 8, endpoint: "ws://10.0.0.1:7000" },
  { kind: "escrow.withdraw", model, amount: 12_345n },
  { kind: "usage.settle", receipts: [usageReceipt(hashOf("t1"), model), usageReceipt(hashOf("t2"), model, { price: 0n })] }
]

/** A request's fields as RLP (input hash, nonce, signature), shape only. */
const REQUEST: RlpInput = [hashBytes(model), new Uint8Array(16), new Uint8Array(64)]
const requestItem = (r: { readonly request: { readonly inputHash: string; readonly nonce: string; readonly signature: string } }): RlpInput => [
  Buffer.from(r.request.inputHash.slice(2), "hex"),
  Buffer.from(r.request.nonce.slice(2), "hex"),
  Buffer.from(r.request.signature.slice(2), "hex")
]

/** A signed-shaped transaction with a hand-made payload (decoding checks the shape, not the signature). */
const raw = (kind: string, payload: RlpInput): Uint8Array =>
  encodeRlp([1n, 0n, 0n, utf8(kind), payload, developer.publicKey.bytes, new Uint8Array(64).fill(1)])

describe("the AI shard's transaction kinds", () => {
  it.each(payloads.map((p) => [p.kind, p] as const))("%s: encode → decode is the identity", (_, payload) => {
    const tx = signed(developer, payload)
    const back = Either.getOrThrow(decodeTransaction(tx.encoded))
    expect(back.body.payload).toEqual(tx.body.payload)
    expect(back.hash).toBe(tx.hash)
  })

  it.each<[string, () => Uint8Array, string]>([
    ["an unknown verdict", () => raw("model.attest", [hashBytes(model), utf8("maybe"), new Uint8Array(32)]), "model.attest.verdict must be one of"],
    ["a verified verdict without a 32-byte fingerprint", () => raw("model.attest", [hashBytes(model), utf8("verified"), new Uint8Array(31)]), "model.attest.fingerprint must be 32 bytes"],
    ["an empty rejection reason", () => raw("model.attest", [hashBytes(model), utf8("rejected"), new Uint8Array(0)]), "model.attest.reason must be 1 to 200 characters"],
    ["a rejection reason of 201 characters", () => raw("model.attest", [hashBytes(model), utf8("rejected"), utf8("x".repeat(201))]), "must be 1 to 200 characters, got 201"],
    ["a reason that is not UTF-8", () => raw("model.attest", [hashBytes(model), utf8("rejected"), Uint8Array.of(0xff)]), "model.attest.reason is not UTF-8"],
    ["zero devices", () => raw("worker.register", [utf8("H100"), 0n, utf8("ws://x")]), "worker.register.devices must be at least 1"],
    ["1025 devices", () => raw("worker.register", [utf8("H100"), 1025n, utf8("ws://x")]), "worker.register.devices must be at most 1024"],
    ["an empty GPU class", () => raw("worker.register", [new Uint8Array(0), 1n, utf8("ws://x")]), "worker.register.gpuClass must be 1 to 32"],
    ["a zero withdrawal", () => raw("escrow.withdraw", [hashBytes(model), 0n]), "escrow.withdraw.amount must be positive"],
    ["no receipts", () => raw("usage.settle", []), "usage.settle.receipts must hold 1 to 256 items, got 0"],
    ["a receipt without results", () => raw("usage.settle", [[[1n, hashBytes(model), 0n, 1n, 1n, new Uint8Array(16), developer.publicKey.bytes, new Uint8Array(64)], hashBytes(model), hashBytes(model), 1n, [], REQUEST]]), "results must hold 1 to 16 items, got 0"],
    ["a receipt without its request", () => raw("usage.settle", [[[1n, hashBytes(model), 0n, 1n, 1n, new Uint8Array(16), developer.publicKey.bytes, new Uint8Array(64)], hashBytes(model), hashBytes(model), 1n, [[new Uint8Array(20), hashBytes(model), 1n, new Uint8Array(64)]]]]), "usage.settle.receipts[0] payload must be a list of 6"],
    ["a request nonce of 15 bytes", () => raw("usage.settle", [[[1n, hashBytes(model), 0n, 1n, 1n, new Uint8Array(16), developer.publicKey.bytes, new Uint8Array(64)], hashBytes(model), hashBytes(model), 1n, [[new Uint8Array(20), hashBytes(model), 1n, new Uint8Array(64)]], [hashBytes(model), new Uint8Array(15), new Uint8Array(64)]]]), "request.nonce must be 16 bytes, got 15"],
    ["a grant nonce of 15 bytes", () => raw("usage.settle", [[[1n, hashBytes(model), 0n, 1n, 1n, new Uint8Array(15), developer.publicKey.bytes, new Uint8Array(64)], hashBytes(model), hashBytes(model), 1n, [], REQUEST]]), "grant.nonce must be 16 bytes, got 15"],
    ["an issuedAt past 2^53", () => raw("usage.settle", [[[1n, hashBytes(model), 1n << 53n, 1n, 1n, new Uint8Array(16), developer.publicKey.bytes, new Uint8Array(64)], hashBytes(model), hashBytes(model), 1n, [], REQUEST]]), "grant.issuedAt must be at most"]
  ])("rejects %s: Malformed", (_, make, detail) => {
    const reason = decodeReason(make())
    expect(reason.startsWith("Malformed")).toBe(true)
    expect(reason).toContain(detail)
  })

  it(`more than ${USAGE_RECEIPTS_MAX} receipts is Malformed`, () => {
    const r = usageReceipt(hashOf("many"), model)
    const item = [
      [r.grant.chainId, hashBytes(r.grant.model), BigInt(r.grant.issuedAt), BigInt(r.grant.expiresAt), r.grant.spendMax,
        Buffer.from(r.grant.nonce.slice(2), "hex"), Buffer.from(r.grant.publicKey.slice(2), "hex"), Buffer.from(r.grant.signature.slice(2), "hex")],
      hashBytes(r.taskId), hashBytes(r.model), r.price,
      r.results.map((x) => [Buffer.from(x.worker.slice(2), "hex"), hashBytes(x.fingerprint), BigInt(x.execMs), Buffer.from(x.signature.slice(2), "hex")]),
      requestItem(r)
    ]
    const reason = decodeReason(raw("usage.settle", Array.from({ length: USAGE_RECEIPTS_MAX + 1 }, () => item)))
    expect(reason).toContain(`must hold 1 to ${USAGE_RECEIPTS_MAX} items, got ${USAGE_RECEIPTS_MAX + 1}`)
  })

  it(`more than ${USAGE_SIGNATURES_MAX} signatures (grant + request + 4 results per receipt: 171 receipts = 1026) is Malformed`, () => {
    const r = usageReceipt(hashOf("sigs"), model)
    const result = r.results[0]!
    const resultItem = [Buffer.from(result.worker.slice(2), "hex"), hashBytes(result.fingerprint), BigInt(result.execMs), Buffer.from(result.signature.slice(2), "hex")]
    const item = [
      [r.grant.chainId, hashBytes(r.grant.model), BigInt(r.grant.issuedAt), BigInt(r.grant.expiresAt), r.grant.spendMax,
        Buffer.from(r.grant.nonce.slice(2), "hex"), Buffer.from(r.grant.publicKey.slice(2), "hex"), Buffer.from(r.grant.signature.slice(2), "hex")],
      hashBytes(r.taskId), hashBytes(r.model), r.price, [resultItem, resultItem, resultItem, resultItem], requestItem(r)
    ]
    expect(decodeReason(raw("usage.settle", Array.from({ length: 171 }, () => item)))).toContain(`carries 1026 signatures, at most ${USAGE_SIGNATURES_MAX}`)
    expect(decodeReason(raw("usage.settle", Array.from({ length: 170 }, () => item)))).toBe("decoded") // 170 × 6 = 1020
  })

  it("the size limit is per kind: a usage.settle of 64 receipts (> 4096 bytes) decodes; any other kind that big is Oversized", () => {
    expect(maxBytesOf("usage.settle")).toBe(MAX_USAGE_SETTLE_BYTES)
    expect(maxBytesOf("transfer")).toBe(MAX_TRANSACTION_BYTES)
    const big = settleTx(...Array.from({ length: 64 }, (_, i) => usageReceipt(hashOf(`big-${i}`), model)))
    expect(big.size).toBeGreaterThan(MAX_TRANSACTION_BYTES)
    expect(decodeReason(big.encoded)).toBe("decoded")
    const padded = raw("model.attest", [hashBytes(model), utf8("rejected"), utf8("x".repeat(MAX_TRANSACTION_BYTES))])
    expect(decodeReason(padded)).toBe(`Oversized ${MAX_TRANSACTION_BYTES}`)
    expect(decodeReason(new Uint8Array(MAX_TRANSACTION_BYTES + 1))).toBe(`Oversized ${MAX_TRANSACTION_BYTES}`)
    expect(decodeReason(new Uint8Array(MAX_USAGE_SETTLE_BYTES + 1))).toBe(`Oversized ${MAX_USAGE_SETTLE_BYTES}`)
  })

  it("never throws on a mangled usage.settle; whatever decodes is canonical", () => {
    const valid = settleTx(usageReceipt(hashOf("fuzz"), model)).encoded
    fc.assert(
      fc.property(fc.nat({ max: valid.length }), fc.nat({ max: 8 }), fc.uint8Array({ maxLength: 8 }), (at, cut, insert) => {
        const bytes = Uint8Array.from([...valid.subarray(0, at), ...insert, ...valid.subarray(at + cut)])
        const r = decodeTransaction(bytes)
        if (Either.isRight(r)) expect(bytesToHex(r.right.encoded)).toBe(bytesToHex(bytes))
      }),
      { seed: 17, numRuns: 1000 }
    )
  })

  it("worker1's registration carries its own key: the sender is the worker", () => {
    const tx = signed(worker1, { kind: "worker.register", gpuClass: "GPU", devices: 1, endpoint: "ws://w" })
    expect(Either.getOrThrow(decodeTransaction(tx.encoded)).sender).toBe(worker1.publicKey.address)
  })
})

/** The `usage.overran` payload's RLP: a round trip, and malformed payloads refused with a reason (never a throw). */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { sha256, type Hash32 } from "../../domain/chain/hash.js"
import { bytesToHex, utf8 } from "../../domain/chain/hex.js"
import { devKey } from "../../domain/chain/keys.js"
import { decodeRlp, encodeRlp, type RlpInput, type RlpItem } from "../../domain/chain/rlp.js"
import {
  decodeTransaction,
  signTransaction,
  TransactionBody,
  USAGE_RECEIPTS_MAX,
  type OverranReceipt
} from "../../domain/chain/transaction.js"
import { CHAIN_ID } from "./helpers.js"

const member = devKey(0)
const hash = (label: string): Hash32 => bytesToHex(sha256(label)) as Hash32
const hex = (byte: number, n: number) => "0x" + byte.toString(16).padStart(2, "0").repeat(n)

const receiptOf = (i: number, kinds: readonly ["Deadline" | "LoadDeadline" | "Memory", "Deadline" | "LoadDeadline" | "Memory"], millis: number): OverranReceipt => ({
  grant: {
    chainId: CHAIN_ID,
    model: hash("model"),
    issuedAt: 1_800_000_000_000,
    expiresAt: 1_800_003_600_000,
    spendMax: 10n ** 20n,
    nonce: hex(0xab, 16),
    publicKey: "0x02" + "11".repeat(32),
    signature: hex(0x22, 64)
  },
  taskId: hash(`task-${i}`),
  model: hash("model"),
  price: 1_000n + BigInt(i),
  claims: [
    { worker: devKey(1).publicKey.address, kind: kinds[0], millis, limit: 400, signature: hex(0x33, 64) },
    { worker: devKey(2).publicKey.address, kind: kinds[1], millis: millis + 1, limit: 1 << 30, signature: hex(0x44, 64) }
  ],
  request: { inputHash: hash(`inputs-${i}`), nonce: hex(0xcd, 16), signature: hex(0x55, 64) }
})

const txOf = (receipts: ReadonlyArray<OverranReceipt>) =>
  signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce: 0n, fee: 0n, payload: { kind: "usage.overran", receipts } }), member)

const decodeReason = (bytes: Uint8Array): string => {
  const r = decodeTransaction(bytes)
  return Either.isRight(r) ? "decoded" : r.left._tag === "MalformedTransaction" ? `Malformed: ${r.left.detail}` : "Oversized"
}

/** A valid tx's signed fields with its payload item replaced by `payload`. */
const withPayload = (change: (payload: Array<RlpItem>) => RlpInput): Uint8Array => {
  const fields = Either.getOrThrow(decodeRlp(txOf([receiptOf(0, ["Deadline", "Memory"], 500)]).encoded)) as ReadonlyArray<RlpItem>
  const f = [...fields] as Array<RlpInput>
  f[4] = change([...(fields[4] as ReadonlyArray<RlpItem>)])
  return encodeRlp(f)
}
/** The first receipt's fields, changed by `change`. */
const withReceipt = (change: (receipt: Array<RlpItem>) => void) =>
  withPayload((p) => {
    const r = [...(p[0] as ReadonlyArray<RlpItem>)]
    change(r)
    return [r, ...p.slice(1)]
  })
const withClaim = (change: (claim: Array<RlpItem>) => void) =>
  withReceipt((r) => {
    const claims = [...(r[4] as ReadonlyArray<RlpItem>)]
    const c = [...(claims[0] as ReadonlyArray<RlpItem>)]
    change(c)
    claims[0] = c
    r[4] = claims
  })

const KIND = fc.constantFrom("Deadline" as const, "LoadDeadline" as const, "Memory" as const)

describe("usage.overran codec", () => {
  it("encode → decode is the identity (receipts, claims, kinds, millis)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), KIND, KIND, fc.integer({ min: 0, max: 2 ** 40 }), (n, a, b, millis) => {
        const receipts = Array.from({ length: n }, (_, i) => receiptOf(i, [a, b], millis))
        const tx = txOf(receipts)
        const back = Either.getOrThrow(decodeTransaction(tx.encoded))
        expect(back.hash).toBe(tx.hash)
        expect(back.body.payload).toEqual({ kind: "usage.overran", receipts })
      }),
      { seed: 5, numRuns: 30 }
    )
  })

  it("a tx of many receipts may pass the default 4 KiB limit (like usage.settle)", () => {
    const tx = txOf(Array.from({ length: 40 }, (_, i) => receiptOf(i, ["Deadline", "Deadline"], 10)))
    expect(tx.encoded.length).toBeGreaterThan(4096)
    expect(decodeReason(tx.encoded)).toBe("decoded")
  })

  const cases: ReadonlyArray<[string, () => Uint8Array, RegExp]> = [
    ["no receipts", () => withPayload(() => []), /usage\.overran\.receipts must hold 1 to/],
    ["too many receipts", () => withPayload((p) => Array.from({ length: USAGE_RECEIPTS_MAX + 1 }, () => p[0]!)), /must hold 1 to 256 items, got 257/],
    ["one claim (an overrun needs two)", () => withReceipt((r) => (r[4] = [(r[4] as ReadonlyArray<RlpItem>)[0]!])), /claims payload must be a list of 2/],
    ["three claims", () => withReceipt((r) => (r[4] = [...(r[4] as ReadonlyArray<RlpItem>), (r[4] as ReadonlyArray<RlpItem>)[0]!])), /claims payload must be a list of 2/],
    ["a receipt of five fields", () => withReceipt((r) => r.pop()), /payload must be a list of 6/],
    ["an unknown overrun kind", () => withClaim((c) => (c[1] = utf8("Forever"))), /kind must be one of Deadline, LoadDeadline, Memory/],
    ["a kind as a list", () => withClaim((c) => (c[1] = [])), /kind must be a string/],
    ["a short claim signature", () => withClaim((c) => (c[4] = new Uint8Array(63))), /signature must be 64 bytes, got 63/],
    ["a worker of 19 bytes", () => withClaim((c) => (c[0] = new Uint8Array(19))), /worker/],
    ["millis over 2^53", () => withClaim((c) => (c[2] = encodeRlpInt(2n ** 60n))), /millis must be at most/],
    ["a task id of 31 bytes", () => withReceipt((r) => (r[1] = new Uint8Array(31))), /taskId must be 32 bytes/]
  ]
  for (const [what, bytes, detail] of cases) {
    it(`refuses ${what}: Malformed with a reason`, () => {
      const reason = decodeReason(bytes())
      expect(reason.startsWith("Malformed: ")).toBe(true)
      expect(reason).toMatch(detail)
    })
  }

  it("never throws on mangled bytes of a valid usage.overran tx", () => {
    const encoded = txOf([receiptOf(0, ["Deadline", "Memory"], 500), receiptOf(1, ["Memory", "Memory"], 7)]).encoded
    fc.assert(
      fc.property(fc.integer({ min: 0, max: encoded.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: encoded.length }), (i, b, cut) => {
        const flipped = Uint8Array.from(encoded)
        flipped[i] = b
        expect(() => decodeTransaction(flipped)).not.toThrow()
        expect(() => decodeTransaction(encoded.slice(0, cut))).not.toThrow()
      }),
      { seed: 9, numRuns: 200 }
    )
  })
})

/** An RLP integer item (bigint → minimal big-endian bytes). */
function encodeRlpInt(n: bigint): Uint8Array {
  return Either.getOrThrow(decodeRlp(encodeRlp(n))) as Uint8Array
}

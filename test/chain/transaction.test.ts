import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import fc from "fast-check"
import { bytesToHex, utf8 } from "../../domain/chain/hex.js"
import { devKey, type Address } from "../../domain/chain/keys.js"
import { encodeRlp, type RlpInput } from "../../domain/chain/rlp.js"
import {
  decodeTransaction,
  MAX_TRANSACTION_BYTES,
  Transaction,
  TransactionBody,
  TransactionFromHex,
  verifyTransactionSignature
} from "../../domain/chain/transaction.js"
import { CHAIN_ID, transfer } from "./helpers.js"

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const alice = devKey(0)
const bob = devKey(1).publicKey.address
const valid = transfer(alice, { to: bob, amount: 500n, nonce: 3n, fee: 7n })

const decodeReason = (bytes: Uint8Array): string => {
  const r = decodeTransaction(bytes)
  return Either.isRight(r) ? "decoded" : r.left._tag === "MalformedTransaction" ? `Malformed: ${r.left.detail}` : "Oversized"
}

/** The signed fields of `valid`, to corrupt one at a time. */
const fields = (): Array<RlpInput> => [
  valid.body.chainId, valid.body.nonce, valid.body.fee, utf8("transfer"),
  [Buffer.from(bob.slice(2), "hex"), 500n], valid.publicKey.bytes, valid.signature
]
const withField = (i: number, value: RlpInput): Uint8Array => {
  const f = fields()
  f[i] = value
  return encodeRlp(f)
}

const uint = fc.bigInt({ min: 0n, max: (1n << 256n) - 1n })
const bodyArb = fc.record({
  chainId: uint, nonce: uint, fee: uint,
  to: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => bytesToHex(b) as Address),
  amount: fc.bigInt({ min: 1n, max: (1n << 256n) - 1n }),
  signer: fc.integer({ min: 0, max: 5 })
})

describe("transaction codec", () => {
  it("encode → decode is the identity, hash and sender included", () => {
    fc.assert(fc.property(bodyArb, ({ signer, to, amount, ...rest }) => {
      const tx = transfer(devKey(signer), { ...rest, to, amount })
      const back = Either.getOrThrow(decodeTransaction(tx.encoded))
      expect(back.hash).toBe(tx.hash)
      expect(back.sender).toBe(devKey(signer).publicKey.address)
      expect(back.body).toEqual(tx.body)
      expect(bytesToHex(back.signature)).toBe(bytesToHex(tx.signature))
      expect(verifyTransactionSignature(back)).toBe(true)
    }), { seed: 11, numRuns: 40 })
  })
  it("the JSON wire form is the signed RLP as hex", () => {
    const hex = Schema.encodeSync(TransactionFromHex)(valid)
    expect(hex).toBe(bytesToHex(valid.encoded))
    expect(Schema.decodeSync(TransactionFromHex)(hex).hash).toBe(valid.hash)
    expect(Either.isLeft(Schema.decodeUnknownEither(TransactionFromHex)(hex.toUpperCase()))).toBe(true)
    expect(Either.isLeft(Schema.decodeUnknownEither(TransactionFromHex)("0x" + hex.slice(4)))).toBe(true)
  })
  it("never throws on mangled input (spliced, truncated, extended)", () => {
    fc.assert(fc.property(fc.nat({ max: valid.encoded.length }), fc.nat({ max: 8 }), fc.uint8Array({ maxLength: 8 }), (at, cut, insert) => {
      const bytes = Uint8Array.from([...valid.encoded.subarray(0, at), ...insert, ...valid.encoded.subarray(at + cut)])
      const r = decodeTransaction(bytes)
      if (Either.isRight(r)) expect(bytesToHex(r.right.encoded)).toBe(bytesToHex(bytes))
    }), { seed: 13, numRuns: 2000 })
  })
  it("rejects oversized input before decoding", () => {
    expect(decodeReason(new Uint8Array(MAX_TRANSACTION_BYTES + 1))).toBe("Oversized")
  })
  it.each<[string, () => Uint8Array, string]>([
    ["not RLP", () => Uint8Array.of(0x83, 0x01), "Truncated"],
    ["trailing byte", () => Uint8Array.from([...valid.encoded, 0]), "TrailingBytes"],
    ["not a list", () => encodeRlp(utf8("transfer")), "must be a list"],
    ["six fields", () => encodeRlp(fields().slice(0, 6)), "expected 7 fields, got 6"],
    ["eight fields", () => encodeRlp([...fields(), new Uint8Array(0)]), "expected 7 fields, got 8"],
    ["nonce with a leading zero", () => withField(1, Uint8Array.of(0, 3)), "nonce has a leading zero"],
    ["chainId over 256 bits", () => withField(0, new Uint8Array(33).fill(1)), "chainId has 33 bytes"],
    ["fee as a list", () => withField(2, []), "fee must be an integer"],
    ["unknown kind", () => withField(3, utf8("mint")), 'unknown kind "mint"'],
    ["payload not a pair", () => withField(4, [Buffer.from(bob.slice(2), "hex")]), "transfer payload must be [to, amount]"],
    ["19-byte recipient", () => withField(4, [new Uint8Array(19), 5n]), "transfer.to must be 20 bytes"],
    ["zero amount", () => withField(4, [Buffer.from(bob.slice(2), "hex"), 0n]), "transfer.amount must be positive"],
    ["public key not a point", () => withField(5, Uint8Array.of(5, ...valid.publicKey.bytes.subarray(1))), "InvalidPublicKey"],
    ["uncompressed public key", () => withField(5, new Uint8Array(65).fill(4)), "InvalidPublicKey"],
    ["short signature", () => withField(6, valid.signature.subarray(0, 63)), "signature must be 64 bytes, got 63"]
  ])("rejects %s", (_, make, detail) => {
    const reason = decodeReason(make())
    expect(reason.startsWith("Malformed")).toBe(true)
    expect(reason).toContain(detail)
  })
})

describe("transaction signatures", () => {
  it("a valid signature verifies", () => {
    expect(verifyTransactionSignature(valid)).toBe(true)
  })
  it.each<[string, Partial<ConstructorParameters<typeof TransactionBody>[0]>]>([
    ["chainId", { chainId: CHAIN_ID + 1n }],
    ["nonce", { nonce: 4n }],
    ["fee", { fee: 8n }],
    ["recipient", { payload: { kind: "transfer", to: devKey(2).publicKey.address, amount: 500n } }],
    ["amount", { payload: { kind: "transfer", to: bob, amount: 501n } }]
  ])("changing %s breaks the signature", (_, change) => {
    const body = new TransactionBody({ ...valid.body, ...change })
    expect(verifyTransactionSignature(Transaction.make(body, valid.publicKey, valid.signature))).toBe(false)
  })
  it("another key's signature does not verify (wrong key)", () => {
    const mallory = transfer(devKey(5), { to: bob, amount: 500n, nonce: 3n, fee: 7n })
    expect(verifyTransactionSignature(Transaction.make(valid.body, valid.publicKey, mallory.signature))).toBe(false)
    expect(verifyTransactionSignature(Transaction.make(valid.body, devKey(5).publicKey, valid.signature))).toBe(false)
  })
  it("the high-s twin is rejected", () => {
    const s = BigInt(bytesToHex(valid.signature.subarray(32)))
    const twin = Uint8Array.from(valid.signature)
    twin.set(Buffer.from((SECP256K1_N - s).toString(16).padStart(64, "0"), "hex"), 32)
    const tx = Transaction.make(valid.body, valid.publicKey, twin)
    expect(tx.hash).not.toBe(valid.hash)
    expect(verifyTransactionSignature(tx)).toBe(false)
  })
  it("any corrupted byte: decode fails or the signature does not verify", () => {
    for (let i = 0; i < valid.encoded.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bytes = Uint8Array.from(valid.encoded)
        bytes[i] = bytes[i]! ^ mask
        const tx = decodeTransaction(bytes)
        if (Either.isRight(tx)) expect(verifyTransactionSignature(tx.right), `byte ${i} mask ${mask}`).toBe(false)
      }
    }
  })
})

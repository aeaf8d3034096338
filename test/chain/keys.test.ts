import { describe, expect, it } from "@effect/vitest"
import { secp256k1 } from "@noble/curves/secp256k1.js"
import { Either, Schema } from "effect"
import { keccak256 } from "../../domain/chain/hash.js"
import { bytesToHex, hexToBytes, utf8 } from "../../domain/chain/hex.js"
import { Address, devKey, PrivateKey, PublicKey, verifyDigest } from "../../domain/chain/keys.js"

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const be32 = (n: bigint) => Either.getOrThrow(hexToBytes("0x" + n.toString(16).padStart(64, "0")))

describe("hex", () => {
  it.each([
    ["ab", "MissingPrefix"],
    ["0xabc", "OddLength"],
    ["0xAB", "InvalidCharacter"],
    ["0xzz", "InvalidCharacter"]
  ])("%s → %s", (input, reason) => {
    const r = hexToBytes(input)
    expect(Either.isLeft(r) && r.left.reason).toBe(reason)
  })
  it("checks length and round trips", () => {
    const r = hexToBytes("0x0102", 3)
    expect(Either.isLeft(r) && r.left.reason).toBe("WrongLength")
    expect(bytesToHex(Either.getOrThrow(hexToBytes("0x00ff10")))).toBe("0x00ff10")
  })
})

describe("keys", () => {
  it("private key 1 has the well-known Ethereum address", () => {
    const key = Either.getOrThrow(PrivateKey.fromBytes(be32(1n)))
    expect(key.publicKey.address).toBe("0x7e5f4552091a69125d5dfcb7b8c2659029395bdf")
    expect(key.publicKey.bytes.length).toBe(33)
  })
  it.each([
    ["zero", be32(0n)],
    ["n", be32(SECP256K1_N)],
    ["31 bytes", new Uint8Array(31).fill(1)]
  ])("rejects private key %s", (_, bytes) => {
    const r = PrivateKey.fromBytes(bytes)
    expect(Either.isLeft(r) && r.left.reason).toBe("InvalidPrivateKey")
  })
  it("rejects public keys that are not compressed points", () => {
    const key = devKey(0).publicKey.bytes
    const notOnCurve = Uint8Array.from(key)
    notOnCurve[0] = 0x05
    for (const bytes of [notOnCurve, key.subarray(1), secp256k1.getPublicKey(devKey(0).exportBytes(), false)]) {
      const r = PublicKey.fromBytes(bytes)
      expect(Either.isLeft(r) && r.left.reason).toBe("InvalidPublicKey")
    }
  })
  it("never prints a private key", () => {
    const key = devKey(1)
    expect(String(key)).toBe("PrivateKey(<redacted>)")
    expect(JSON.stringify({ key })).toBe('{"key":"PrivateKey(<redacted>)"}')
  })
  it("dev keys are deterministic, distinct and valid", () => {
    const addresses = new Set(Array.from({ length: 50 }, (_, i) => devKey(i).publicKey.address))
    expect(addresses.size).toBe(50)
    expect(devKey(3).publicKey.address).toBe(devKey(3).publicKey.address)
    expect(bytesToHex(devKey(0).exportBytes())).toBe(bytesToHex(keccak256(utf8("topai-dev-account-0"))))
  })
  it("Address schema is 0x + 40 lowercase hex", () => {
    const decode = Schema.decodeUnknownEither(Address)
    expect(Either.isRight(decode("0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"))).toBe(true)
    expect(Either.isLeft(decode("0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"))).toBe(true)
    expect(Either.isLeft(decode("0x7e5f"))).toBe(true)
  })
  it("signs low-s and verifies; rejects high-s, wrong key, wrong digest", () => {
    const key = devKey(2)
    const digest = keccak256(utf8("hello"))
    const sig = key.signDigest(digest)
    expect(verifyDigest(sig, digest, key.publicKey)).toBe(true)
    const s = BigInt(bytesToHex(sig.subarray(32)))
    expect(s <= SECP256K1_N / 2n).toBe(true)
    const highS = new Uint8Array(64)
    highS.set(sig.subarray(0, 32))
    highS.set(be32(SECP256K1_N - s), 32)
    expect(verifyDigest(highS, digest, key.publicKey)).toBe(false)
    expect(verifyDigest(sig, digest, devKey(3).publicKey)).toBe(false)
    expect(verifyDigest(sig, keccak256(utf8("hellO")), key.publicKey)).toBe(false)
    expect(verifyDigest(new Uint8Array(64), digest, key.publicKey)).toBe(false) // r = s = 0
  })
})

/**
 * BLS12-381's process-wide memos (domain/consensus/bls.ts: messages hashed
 * to G2, decoded signatures, aggregate outcomes), negative tests: whatever
 * was checked or made before, a signature over another digest, a tampered
 * signature, another signer set or another committee's keys still fail.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { ShardId } from "../../domain/chain/sharding.js"
import { blsKeyFromSeed, blsQuorumCrypto } from "../../domain/consensus/bls.js"
import { voteDigest } from "../../domain/consensus/digests.js"
import type { QuorumError } from "../../domain/consensus/quorum.js"
import type { Hash32 } from "../../domain/chain/hash.js"

const SHARD = 1 as ShardId
const keysOf = (salt: number) => [0, 1, 2, 3].map((i) => blsKeyFromSeed(new Uint8Array(32).fill(i + 1 + salt)))
const digestOf = (view: number) => voteDigest(SHARD, 0, view, `0x${view.toString(16).padStart(64, "0")}` as Hash32)
const reasonOf = (e: Either.Either<unknown, QuorumError>) => (Either.isLeft(e) ? e.left.reason : "ok")

const certify = (keys: ReturnType<typeof keysOf>, signers: ReadonlyArray<number>, digest: Uint8Array) => {
  const verifier = Either.getOrThrow(blsQuorumCrypto.verifierFor(keys.map((k) => k.publicKey)))
  const partials = signers.map((i) => blsQuorumCrypto.sign(keys[i]!.secretKey, digest))
  return { verifier, partials, aggregate: Either.getOrThrow(verifier.aggregate(partials)) }
}

describe("BLS memos", () => {
  it("a verified aggregate lends nothing to another digest, signer set, signature or committee", () => {
    const keys = keysOf(0)
    const d1 = digestOf(1)
    const d2 = digestOf(2)
    const a = certify(keys, [0, 1, 2], d1)
    const b = certify(keys, [0, 1, 2], d2)
    // Both verify, twice (the second time from the memo).
    for (let round = 0; round < 2; round++) {
      expect(reasonOf(a.verifier.verifyAggregate([0, 1, 2], d1, a.aggregate))).toBe("ok")
      expect(reasonOf(b.verifier.verifyAggregate([0, 1, 2], d2, b.aggregate))).toBe("ok")
    }
    // Swapped digests, another signer set, a missing signer: refused.
    expect(reasonOf(a.verifier.verifyAggregate([0, 1, 2], d2, a.aggregate))).toBe("BadSignature")
    expect(reasonOf(a.verifier.verifyAggregate([0, 1, 2], d1, b.aggregate))).toBe("BadSignature")
    expect(reasonOf(a.verifier.verifyAggregate([0, 1, 3], d1, a.aggregate))).toBe("BadSignature")
    expect(reasonOf(a.verifier.verifyAggregate([0, 1], d1, a.aggregate))).toBe("BadSignature")
    // Another committee, same signer indices, same digest and signature: refused.
    const other = Either.getOrThrow(blsQuorumCrypto.verifierFor(keysOf(10).map((k) => k.publicKey)))
    expect(reasonOf(other.verifyAggregate([0, 1, 2], d1, a.aggregate))).toBe("BadSignature")
    // And the memo did not turn: the right ones still pass.
    expect(reasonOf(a.verifier.verifyAggregate([0, 1, 2], d1, a.aggregate))).toBe("ok")
  })

  it("single signatures: the hashed-message memo keeps digests apart, a tampered signature fails", () => {
    const keys = keysOf(20)
    const verifier = Either.getOrThrow(blsQuorumCrypto.verifierFor(keys.map((k) => k.publicKey)))
    const d1 = digestOf(7)
    const d2 = digestOf(8)
    const s1 = blsQuorumCrypto.sign(keys[0]!.secretKey, d1)
    const s2 = blsQuorumCrypto.sign(keys[0]!.secretKey, d2)
    expect(s1).not.toEqual(s2)
    expect(blsQuorumCrypto.sign(keys[0]!.secretKey, d1)).toEqual(s1) // deterministic, memo or not
    expect(verifier.verifyOne(0, d1, s1)).toBe(true)
    expect(verifier.verifyOne(0, d2, s2)).toBe(true)
    expect(verifier.verifyOne(0, d2, s1)).toBe(false)
    expect(verifier.verifyOne(1, d1, s1)).toBe(false) // another signer's key
    for (const bit of [0, 5, 47, 95]) {
      const tampered = Uint8Array.from(s1)
      tampered[bit] = tampered[bit]! ^ 0x01
      expect(verifier.verifyOne(0, d1, tampered)).toBe(false)
      expect(reasonOf(verifier.verifyAggregate([0], d1, tampered))).not.toBe("ok")
    }
  })

  it("an aggregate with a tampered partial is refused, however many good ones were seen", () => {
    const keys = keysOf(30)
    const d = digestOf(9)
    const good = certify(keys, [0, 1, 2], d)
    expect(reasonOf(good.verifier.verifyAggregate([0, 1, 2], d, good.aggregate))).toBe("ok")
    const forged = [good.partials[0]!, good.partials[1]!, blsQuorumCrypto.sign(keys[2]!.secretKey, digestOf(10))]
    const aggregate = good.verifier.aggregate(forged)
    expect(Either.isRight(aggregate)).toBe(true)
    expect(reasonOf(good.verifier.verifyAggregate([0, 1, 2], d, Either.getOrThrow(aggregate)))).toBe("BadSignature")
  })
})

/**
 * Quorum certificates, negative tests first (helios' habit: take a good
 * certificate, corrupt one thing, expect exactly that error). The same suite
 * runs against BLS12-381 (what nodes use) and the simulator's keyed sha256,
 * so the stand-in refuses everything the real scheme refuses.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { ShardId } from "../../domain/chain/sharding.js"
import {
  BLS_PUBLIC_KEY_BYTES,
  BLS_SIGNATURE_BYTES,
  blsKeyFromSeed,
  blsQuorumCrypto,
  proofOfPossession,
  verifyProofOfPossession
} from "../../domain/consensus/bls.js"
import { type Committee, makeCommittee } from "../../domain/consensus/committee.js"
import { timeoutDigest, voteDigest } from "../../domain/consensus/digests.js"
import {
  assembleCertificate,
  assembleTimeoutCertificate,
  badSigners,
  badTimeoutSigners,
  maxHighQcView,
  verifyTimeoutCertificate,
  bitmapOf,
  type Certificate,
  type CommitteeVerifier,
  type QuorumCrypto,
  type QuorumError,
  signersOf,
  verifyCertificate
} from "../../domain/consensus/quorum.js"
import { MacKeyring, macKeyFromSeed, macQuorumCrypto } from "../simulation/macCrypto.js"
import { ZERO_HASH } from "../../domain/chain/hash.js"
import type { TimeoutCertificate } from "../../domain/consensus/types.js"

const SHARD = 1 as ShardId
const seedOf = (i: number) => new Uint8Array(32).fill(i + 1)

interface Scheme {
  readonly name: string
  readonly crypto: QuorumCrypto
  readonly keys: ReadonlyArray<{ readonly secretKey: Uint8Array; readonly publicKey: Uint8Array }>
  readonly signatureBytes: number
}

const blsScheme = (): Scheme => ({
  name: "BLS12-381",
  crypto: blsQuorumCrypto,
  keys: [0, 1, 2, 3].map((i) => blsKeyFromSeed(seedOf(i))),
  signatureBytes: BLS_SIGNATURE_BYTES
})

const macScheme = (): Scheme => {
  const keyring = new MacKeyring()
  const keys = [0, 1, 2, 3].map((i) => macKeyFromSeed(`quorum-test/${i}`))
  for (const k of keys) keyring.add(k)
  return { name: "keyed sha256 (simulator)", crypto: macQuorumCrypto(keyring), keys, signatureBytes: 32 }
}

/** Stakes 1, 1, 1, 2 (total 5): more than 2/3 is at least 4, e.g. {0, 1, 3} or {0, 1, 2, 3}, never {0, 1, 2}. */
const STAKES = [1n, 1n, 1n, 2n]

const reasonOf = (e: Either.Either<unknown, QuorumError>): string | undefined =>
  Either.isLeft(e) ? e.left.reason : undefined

const quorumSuite = (make: () => Scheme) => {
  const scheme = make()
  const committee: Committee = Either.getOrThrow(
    makeCommittee(
      SHARD,
      0,
      scheme.keys.map((k, i) => ({ validator: `v${i}`, stake: STAKES[i]!, publicKey: k.publicKey }))
    )
  )
  const verifier: CommitteeVerifier = Either.getOrThrow(scheme.crypto.verifierFor(scheme.keys.map((k) => k.publicKey)))
  const digest = voteDigest(SHARD, 0, 7, ZERO_HASH)
  const sig = (i: number, d = digest) => scheme.crypto.sign(scheme.keys[i]!.secretKey, d)
  const partials = (signers: ReadonlyArray<number>, d = digest) => signers.map((i) => ({ signer: i, signature: sig(i, d) }))
  const good: Certificate = Either.getOrThrow(assembleCertificate(committee, verifier, digest, partials([0, 1, 3])))
  const verify = (cert: Certificate, d = digest) => verifyCertificate(committee, verifier, d, cert)

  describe(scheme.name, () => {
    it("a certificate of more than 2/3 of the stake verifies, with exactly its signers in the bitmap", () => {
      expect(Either.isRight(verify(good))).toBe(true)
      expect(Either.getOrThrow(signersOf(4, good.signers))).toEqual([0, 1, 3])
      expect(good.signature.length).toBe(scheme.signatureBytes)
    })

    it("refuses a certificate over another message (a vote replayed as a timeout, another view)", () => {
      expect(reasonOf(verify(good, voteDigest(SHARD, 0, 8, ZERO_HASH)))).toBe("BadSignature")
      expect(reasonOf(verify(good, timeoutDigest(SHARD, 0, 7, 6)))).toBe("BadSignature")
      expect(reasonOf(verify(good, voteDigest(2 as ShardId, 0, 7, ZERO_HASH)))).toBe("BadSignature")
    })

    it("refuses a bitmap that leaves out a signer whose signature is in the aggregate", () => {
      const all = Either.getOrThrow(assembleCertificate(committee, verifier, digest, partials([0, 1, 2, 3])))
      expect(reasonOf(verify({ ...all, signers: bitmapOf(4, [0, 1, 3]) }))).toBe("BadSignature")
    })

    it("refuses a bitmap that claims a member who did not sign", () => {
      expect(reasonOf(verify({ ...good, signers: bitmapOf(4, [0, 1, 2, 3]) }))).toBe("BadSignature")
    })

    it("refuses signers below the threshold, before any signature check", () => {
      const low = Either.getOrThrow(verifier.aggregate(partials([0, 1, 2]).map((p) => p.signature)))
      expect(reasonOf(verify({ signers: bitmapOf(4, [0, 1, 2]), signature: low }))).toBe("BelowThreshold") // stake 3 of 5
      expect(reasonOf(assembleCertificate(committee, verifier, digest, partials([0, 1, 2])))).toBe("BelowThreshold")
      expect(reasonOf(verify({ signers: bitmapOf(4, []), signature: good.signature }))).toBe("BelowThreshold")
    })

    it("refuses a signer counted twice: in assembly, and as a signature aggregated twice", () => {
      const twice = [...partials([0, 1, 3]), { signer: 3, signature: sig(3) }]
      expect(reasonOf(assembleCertificate(committee, verifier, digest, twice))).toBe("DuplicateSigner")
      // Member 3's signature twice stands in for member 2's: the aggregate does not verify for {0, 1, 2, 3}.
      const doubled = Either.getOrThrow(verifier.aggregate([sig(0), sig(1), sig(3), sig(3)]))
      expect(reasonOf(verify({ signers: bitmapOf(4, [0, 1, 2, 3]), signature: doubled }))).toBe("BadSignature")
    })

    it("refuses malformed bytes with typed errors, never a throw", () => {
      expect(reasonOf(verify({ ...good, signers: new Uint8Array(2) }))).toBe("MalformedBitmap")
      expect(reasonOf(verify({ ...good, signers: Uint8Array.of(0b1011_0011) }))).toBe("SignerOutOfRange")
      expect(reasonOf(verify({ ...good, signature: good.signature.slice(1) }))).toBe("MalformedSignature")
      expect(reasonOf(verify({ ...good, signature: new Uint8Array() }))).toBe("MalformedSignature")
      const outOfRange = [{ signer: 4, signature: sig(0) }, ...partials([0, 1, 3])]
      expect(reasonOf(assembleCertificate(committee, verifier, digest, outOfRange))).toBe("SignerOutOfRange")
    })

    it("finds the bad vote after an aggregate fails", () => {
      const spoiled = [...partials([0, 1]), { signer: 3, signature: sig(2) }]
      expect(reasonOf(assembleCertificate(committee, verifier, digest, spoiled))).toBe("BadSignature")
      expect(badSigners(verifier, digest, spoiled)).toEqual([3])
    })

    describe("timeout certificates: one aggregate over each signer's (view, high-QC view)", () => {
      const view = 9
      const tPartials = (hqcs: ReadonlyArray<readonly [number, number]>) =>
        hqcs.map(([signer, highQcView]) => ({
          signer,
          highQcView,
          signature: sig(signer, timeoutDigest(SHARD, 0, view, highQcView))
        }))
      const tc = Either.getOrThrow(assembleTimeoutCertificate(committee, verifier, view, tPartials([[3, 5], [0, 7], [1, 5]])))
      const verifyTc = (t: TimeoutCertificate) => verifyTimeoutCertificate(committee, verifier, t)

      it("verifies with the signers' high-QC views in signer order; the highest is what a block must reach", () => {
        expect(tc.highQcViews).toEqual([7, 5, 5])
        expect(Either.getOrThrow(signersOf(4, tc.signers))).toEqual([0, 1, 3])
        expect(Either.isRight(verifyTc(tc))).toBe(true)
        expect(maxHighQcView(tc)).toBe(7)
        const same = Either.getOrThrow(assembleTimeoutCertificate(committee, verifier, view, tPartials([[0, 4], [1, 4], [3, 4]])))
        expect(Either.isRight(verifyTc(same))).toBe(true) // one message: the multi-pairing degenerates to one check
      })

      it("refuses a forged high-QC view (a leader lowering or raising what a signer reported)", () => {
        expect(reasonOf(verifyTc({ ...tc, highQcViews: [5, 5, 5] }))).toBe("BadSignature")
        expect(reasonOf(verifyTc({ ...tc, highQcViews: [7, 7, 5] }))).toBe("BadSignature")
        expect(reasonOf(verifyTc({ ...tc, highQcViews: [5, 7, 5] }))).toBe("BadSignature") // swapped between signers
        expect(reasonOf(verifyTc({ ...tc, view: 10 }))).toBe("BadSignature")
      })

      it("refuses views that do not fit its signers: too few, too many, not below the view, not numbers", () => {
        expect(reasonOf(verifyTc({ ...tc, highQcViews: [7, 5] }))).toBe("MalformedBitmap")
        expect(reasonOf(verifyTc({ ...tc, highQcViews: [7, 5, 5, 5] }))).toBe("MalformedBitmap")
        expect(reasonOf(verifyTc({ ...tc, highQcViews: undefined as unknown as Array<number> }))).toBe("MalformedBitmap")
        expect(reasonOf(verifyTc({ ...tc, highQcViews: [9, 5, 5] }))).toBe("MalformedSignature")
        expect(reasonOf(verifyTc({ ...tc, highQcViews: [-1, 5, 5] }))).toBe("MalformedSignature")
        expect(reasonOf(verifyTc({ ...tc, highQcViews: ["7", 5, 5] as unknown as Array<number> }))).toBe("MalformedSignature")
      })

      it("refuses a TC below the threshold, and finds the bad timeout after an aggregate fails", () => {
        expect(reasonOf(verifyTc({ ...tc, signers: bitmapOf(4, [0, 1, 2]) }))).toBe("BelowThreshold")
        const spoiled = [...tPartials([[0, 7], [1, 5]]), { signer: 3, highQcView: 5, signature: sig(3, timeoutDigest(SHARD, 0, view, 6)) }]
        expect(reasonOf(assembleTimeoutCertificate(committee, verifier, view, spoiled))).toBe("BadSignature")
        expect(badTimeoutSigners(committee, verifier, view, spoiled)).toEqual([3])
      })
    })
  })
}

quorumSuite(macScheme)
quorumSuite(blsScheme)

describe("BLS12-381 specifics", () => {
  it("refuses signature bytes that are not a point, and public keys that are not keys", () => {
    const keys = [0, 1, 2, 3].map((i) => blsKeyFromSeed(seedOf(i)))
    const verifier = Either.getOrThrow(blsQuorumCrypto.verifierFor(keys.map((k) => k.publicKey)))
    const notAPoint = new Uint8Array(BLS_SIGNATURE_BYTES).fill(0xff)
    expect(reasonOf(verifier.verifyAggregate([0, 1, 3], new Uint8Array(32), notAPoint))).toBe("MalformedSignature")
    expect(reasonOf(verifier.aggregate([notAPoint]))).toBe("MalformedSignature")
    expect(verifier.verifyOne(0, new Uint8Array(32), notAPoint)).toBe(false)
    const badKey = new Uint8Array(BLS_PUBLIC_KEY_BYTES).fill(0xff)
    expect(reasonOf(blsQuorumCrypto.verifierFor([keys[0]!.publicKey, badKey]))).toBe("MalformedPublicKey")
    expect(reasonOf(blsQuorumCrypto.verifierFor([keys[0]!.publicKey.slice(1)]))).toBe("MalformedPublicKey")
    const infinity = new Uint8Array(BLS_PUBLIC_KEY_BYTES)
    infinity[0] = 0xc0 // the compressed point at infinity
    expect(reasonOf(blsQuorumCrypto.verifierFor([infinity]))).toBe("MalformedPublicKey")
  })

  it("a proof of possession verifies for its own key only (the rogue-key defence at registration)", () => {
    const a = blsKeyFromSeed(seedOf(10))
    const b = blsKeyFromSeed(seedOf(11))
    const proof = proofOfPossession(a.secretKey)
    expect(verifyProofOfPossession(a.publicKey, proof)).toBe(true)
    expect(verifyProofOfPossession(b.publicKey, proof)).toBe(false)
    expect(verifyProofOfPossession(a.publicKey, proof.slice(1))).toBe(false)
  })
})

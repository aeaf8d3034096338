/**
 * BLS12-381 quorum signatures (@noble/curves 2.x, "long signatures": 48-byte
 * G1 public keys, 96-byte G2 signatures, the Ethereum layout).
 *
 * In a QC all members sign the same digest, so it verifies with one
 * pairing check: e(G1, aggSig) = e(Σ pk_i, H(digest)). In a TC each signer
 * signs (view, its high-QC view): the aggregate is over distinct messages and
 * verifies with one multi-pairing, signers grouped by message:
 * e(G1, aggSig) = Π_g e(Σ_{i∈g} pk_i, H(m_g)) — one pairing per distinct
 * high-QC view (a handful) plus one, sharing one final exponentiation. The committee's keys
 * are decoded and subgroup-checked once (`verifierFor`); a certificate then
 * costs point additions plus one pairing check (~15–40 ms on this hardware).
 *
 * Same-message aggregation is open to rogue keys (a key chosen as
 * pk_evil - pk_honest) unless every key proved possession of its secret when
 * it registered: the beacon must check `verifyProofOfPossession` when a
 * validator stakes; committees are made of such keys only (Ethereum's POP
 * scheme, with its domain tags).
 *
 * Nothing here throws on bad bytes: noble's decoding errors become
 * `QuorumError`s.
 *
 * Memos, process-wide and bounded, each keyed by exact bytes (so a hit is the
 * very same input): the hash of a message to G2 (every member signs the same
 * vote digest and every verifier hashes it again: ~6 ms each), signatures
 * decoded and subgroup-checked (a point this module made — a signature, an
 * aggregate — is known valid without the check), and the outcome of
 * aggregate checks, keyed by the committee's keys too (the seats of one
 * process check each certificate once).
 */
import { bls12_381 } from "@noble/curves/bls12-381.js"
import { Either } from "effect"
import { sha256 } from "../chain/hash.js"
import { bytesToHex, concatBytes } from "../chain/hex.js"
import type { CommitteeVerifier, QuorumCrypto, SignerGroup } from "./quorum.js"
import { QuorumError } from "./quorum.js"
import type { NodeIndex } from "./types.js"

const bls = bls12_381.longSignatures
const G1 = bls12_381.G1.Point

/** Ethereum consensus' signature and proof-of-possession domain tags. */
export const BLS_SIGNATURE_DST = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
export const BLS_POP_DST = "BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"

export const BLS_SECRET_KEY_BYTES = 32
export const BLS_PUBLIC_KEY_BYTES = 48
export const BLS_SIGNATURE_BYTES = 96

/** How many verified (or refused) aggregates the process remembers. */
const VERIFIED_CACHE_MAX = 1024
/** How many messages hashed to G2, and signatures decoded, the process remembers. */
const HASHED_CACHE_MAX = 256
const DECODED_CACHE_MAX = 1024

/** A bounded map that forgets its least recently used entry. */
class Lru<V> {
  readonly #entries = new Map<string, V>()
  constructor(readonly max: number) {}
  get(key: string): V | undefined {
    const value = this.#entries.get(key)
    if (value !== undefined) {
      this.#entries.delete(key)
      this.#entries.set(key, value)
    }
    return value
  }
  set(key: string, value: V): void {
    this.#entries.delete(key)
    if (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value!)
    this.#entries.set(key, value)
  }
}

export interface BlsKeyPair {
  readonly secretKey: Uint8Array
  readonly publicKey: Uint8Array
}

/** noble's keygen wants 48 bytes of seed material (hashed to a scalar). */
const KEYGEN_SEED_BYTES = 48

/** A key pair from a seed of any length (deterministic: dev keys and tests). */
export const blsKeyFromSeed = (seed: Uint8Array): BlsKeyPair => {
  const material = concatBytes(sha256("topai/bls/keygen/0", seed), sha256("topai/bls/keygen/1", seed))
  const { secretKey } = bls.keygen(material.slice(0, KEYGEN_SEED_BYTES))
  return { secretKey, publicKey: bls.getPublicKey(secretKey).toBytes(true) }
}

/** The validator's proof that it holds the secret of its public key. */
export const proofOfPossession = (secretKey: Uint8Array): Uint8Array => {
  const publicKey = bls.getPublicKey(secretKey).toBytes(true)
  return bls.Signature.toBytes(bls.sign(bls.hash(publicKey, BLS_POP_DST), secretKey))
}

export const verifyProofOfPossession = (publicKey: Uint8Array, proof: Uint8Array): boolean => {
  try {
    return bls.verify(proof, bls.hash(publicKey, BLS_POP_DST), publicKey)
  } catch {
    return false
  }
}

type G1Point = ReturnType<typeof G1.fromBytes>
type G2Point = ReturnType<typeof bls.Signature.fromBytes>

/** H(digest) on G2 under the signature tag, memoized by digest (the same digest, the same point). */
const hashedMessages = new Lru<G2Point>(HASHED_CACHE_MAX)
const hashMessage = (digest: Uint8Array): G2Point => {
  const key = bytesToHex(digest)
  let point = hashedMessages.get(key)
  if (point === undefined) {
    point = bls.hash(digest, BLS_SIGNATURE_DST)
    hashedMessages.set(key, point)
  }
  return point
}

/** Valid G2 points (on the curve, in the subgroup, not the identity) by their exact encoding. */
const decodedSignatures = new Lru<G2Point>(DECODED_CACHE_MAX)

/** Encode a point known to be a valid signature (made here) and remember it decoded. */
const encodeSignature = (point: G2Point): Uint8Array => {
  const bytes = bls.Signature.toBytes(point) // checks validity again (cheap next to making it)
  decodedSignatures.set(bytesToHex(bytes), point)
  return bytes
}

const decodeSignature = (bytes: Uint8Array): Either.Either<G2Point, QuorumError> => {
  if (bytes.length !== BLS_SIGNATURE_BYTES) {
    return Either.left(new QuorumError({ reason: "MalformedSignature", detail: `${bytes.length} bytes` }))
  }
  const key = bytesToHex(bytes)
  const known = decodedSignatures.get(key)
  if (known !== undefined) return Either.right(known)
  try {
    // fromBytes checks the point: on the curve and in the G2 subgroup (noble's assertValidity).
    const point = bls.Signature.fromBytes(bytes)
    decodedSignatures.set(key, point)
    return Either.right(point)
  } catch (e) {
    return Either.left(new QuorumError({ reason: "MalformedSignature", detail: String(e) }))
  }
}

/** Outcomes of aggregate checks: committee keys, signer groups, digests and signature, as exact bytes. */
const verifiedAggregates = new Lru<boolean>(VERIFIED_CACHE_MAX)

const decodePublicKey = (bytes: Uint8Array, index: number): Either.Either<G1Point, QuorumError> => {
  if (bytes.length !== BLS_PUBLIC_KEY_BYTES) {
    return Either.left(new QuorumError({ reason: "MalformedPublicKey", detail: `member ${index}: ${bytes.length} bytes` }))
  }
  try {
    const point = G1.fromBytes(bytes)
    point.assertValidity()
    if (point.is0()) throw new Error("the identity is not a key")
    return Either.right(point)
  } catch (e) {
    return Either.left(new QuorumError({ reason: "MalformedPublicKey", detail: `member ${index}: ${String(e)}` }))
  }
}

const makeVerifier = (keys: ReadonlyArray<G1Point>, committeeId: string): CommitteeVerifier => {
  const check = (publicKey: G1Point, digest: Uint8Array, signature: G2Point): boolean => {
    try {
      return bls.verify(signature, hashMessage(digest), publicKey)
    } catch {
      return false
    }
  }
  return {
    verifyOne: (signer, digest, signature) => {
      const key = keys[signer]
      if (key === undefined) return false
      const sig = decodeSignature(signature)
      return Either.isRight(sig) && check(key, digest, sig.right)
    },
    aggregate: (signatures) => {
      if (signatures.length === 0) return Either.left(new QuorumError({ reason: "BelowThreshold", detail: "no signatures" }))
      let sum: G2Point | undefined
      for (const bytes of signatures) {
        const sig = decodeSignature(bytes)
        if (Either.isLeft(sig)) return Either.left(sig.left)
        sum = sum === undefined ? sig.right : sum.add(sig.right)
      }
      return Either.right(encodeSignature(sum!)) // a sum of valid points is one
    },
    verifyAggregate: (signers: ReadonlyArray<NodeIndex>, digest, signature) =>
      verifyGroups([{ signers, digest }], signature),
    verifyAggregateMulti: (groups, signature) => verifyGroups(groups, signature)
  }
  function verifyGroups(groups: ReadonlyArray<SignerGroup>, signature: Uint8Array): Either.Either<void, QuorumError> {
    if (groups.length === 0 || groups.some((g) => g.signers.length === 0)) {
      return Either.left(new QuorumError({ reason: "BelowThreshold", detail: "no signers" }))
    }
    const memo = `${committeeId}|${groups.map((g) => `${g.signers.join(",")}|${bytesToHex(g.digest)}`).join(";")}|${bytesToHex(signature)}`
    let ok = verifiedAggregates.get(memo)
    if (ok === undefined) {
      const sig = decodeSignature(signature)
      if (Either.isLeft(sig)) return Either.left(sig.left)
      const combined: Array<{ key: G1Point; digest: Uint8Array }> = []
      for (const g of groups) {
        let aggregateKey: G1Point | undefined
        for (const i of g.signers) {
          const key = keys[i]
          if (key === undefined) {
            return Either.left(new QuorumError({ reason: "SignerOutOfRange", detail: `signer ${i} of ${keys.length}` }))
          }
          aggregateKey = aggregateKey === undefined ? key : aggregateKey.add(key)
        }
        combined.push({ key: aggregateKey!, digest: g.digest })
      }
      ok =
        combined.length === 1
          ? check(combined[0]!.key, combined[0]!.digest, sig.right)
          : checkMulti(combined, sig.right)
      verifiedAggregates.set(memo, ok)
    }
    const signerCount = groups.reduce((n, g) => n + g.signers.length, 0)
    return ok
      ? Either.void
      : Either.left(new QuorumError({ reason: "BadSignature", detail: `aggregate of ${signerCount} signers` }))
  }
}

/** e(G1, sig) = Π e(key_g, H(digest_g)): one multi-pairing (noble's `verifyBatch`, one item per group). */
const checkMulti = (groups: ReadonlyArray<{ key: G1Point; digest: Uint8Array }>, signature: G2Point): boolean => {
  try {
    return bls.verifyBatch(
      signature,
      groups.map((g) => ({ message: hashMessage(g.digest), publicKey: g.key }))
    )
  } catch {
    return false
  }
}

export const blsQuorumCrypto: QuorumCrypto = {
  name: "bls12-381",
  sign: (secretKey, digest) => encodeSignature(bls.sign(hashMessage(digest), secretKey)),
  verifierFor: (publicKeys) => {
    const keys: Array<G1Point> = []
    for (const [i, bytes] of publicKeys.entries()) {
      const key = decodePublicKey(bytes, i)
      if (Either.isLeft(key)) return Either.left(key.left)
      keys.push(key.right)
    }
    return Either.right(makeVerifier(keys, bytesToHex(concatBytes(...publicKeys))))
  }
}

/**
 * secp256k1 accounts, Ethereum style: a 20-byte address is the last 20 bytes
 * of keccak256 of the uncompressed public key without its 0x04 prefix.
 * Signatures are 64-byte compact r‖s over a 32-byte keccak digest, low-s
 * only (a high-s twin of a valid signature would give a transaction a
 * second hash). Key material comes in from the caller: nothing here draws
 * randomness.
 */
import { secp256k1 } from "@noble/curves/secp256k1.js"
import { Either, Schema } from "effect"
import { keccak256, HASH_BYTES } from "./hash.js"
import { bytesToHex, fixedHex, hexToBytes, utf8 } from "./hex.js"

export const PRIVATE_KEY_BYTES = 32
export const PUBLIC_KEY_BYTES = 33 // SEC1 compressed
export const SIGNATURE_BYTES = 64 // r ‖ s
export const ADDRESS_BYTES = 20
const UNCOMPRESSED_PREFIX_BYTES = 1 // the 0x04 tag, not hashed into the address

/** `0x` + 40 lowercase hex. */
export const Address = fixedHex(ADDRESS_BYTES).pipe(Schema.brand("Address"))
export type Address = typeof Address.Type

/** The 20 bytes of an address (the brand guarantees the spelling). */
export const addressBytes = (a: Address): Uint8Array => Either.getOrThrow(hexToBytes(a, ADDRESS_BYTES))

export class KeyError extends Schema.TaggedError<KeyError>()("KeyError", {
  reason: Schema.Literal("InvalidPrivateKey", "InvalidPublicKey"),
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}

/** A secret scalar. Never printed: `toString`/`toJSON` are redacted. */
export class PrivateKey {
  readonly #bytes: Uint8Array
  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes
  }
  /** 32 bytes that must be a scalar in [1, n-1]. */
  static fromBytes(bytes: Uint8Array): Either.Either<PrivateKey, KeyError> {
    if (bytes.length !== PRIVATE_KEY_BYTES || !secp256k1.utils.isValidSecretKey(bytes)) {
      return Either.left(new KeyError({ reason: "InvalidPrivateKey", detail: `not a secp256k1 scalar (${bytes.length} bytes)` }))
    }
    return Either.right(new PrivateKey(Uint8Array.from(bytes)))
  }
  /** The raw scalar, for a keystore. */
  exportBytes(): Uint8Array {
    return Uint8Array.from(this.#bytes)
  }
  #publicKey: PublicKey | undefined
  /** Derived once: a point multiplication and a keccak. */
  get publicKey(): PublicKey {
    return (this.#publicKey ??= Either.getOrThrow(PublicKey.fromBytes(secp256k1.getPublicKey(this.#bytes, true))))
  }
  /** Compact low-s signature over a 32-byte digest; deterministic (RFC 6979, no extra entropy). */
  signDigest(digest: Uint8Array): Uint8Array {
    if (digest.length !== HASH_BYTES) throw new RangeError(`digest must be ${HASH_BYTES} bytes`)
    return secp256k1.sign(digest, this.#bytes, { prehash: false, lowS: true, extraEntropy: false })
  }
  toString(): string {
    return "PrivateKey(<redacted>)"
  }
  toJSON(): string {
    return this.toString()
  }
}

const COMPRESSED_EVEN = 0x02
const COMPRESSED_ODD = 0x03
/** Senders repeat: remembering decoded keys saves a square root and a keccak per transaction. */
const PUBLIC_KEY_CACHE_MAX = 8192
const publicKeyCache = new Map<string, PublicKey>()

/** A compressed public key with its address, derived once. Treat `bytes` as read-only (keys are shared). */
export class PublicKey {
  private constructor(
    readonly bytes: Uint8Array,
    readonly address: Address
  ) {}
  static fromBytes(bytes: Uint8Array): Either.Either<PublicKey, KeyError> {
    const invalid = () =>
      Either.left(new KeyError({ reason: "InvalidPublicKey", detail: `not a compressed secp256k1 point (${bytes.length} bytes)` }))
    if (bytes.length !== PUBLIC_KEY_BYTES || (bytes[0] !== COMPRESSED_EVEN && bytes[0] !== COMPRESSED_ODD)) return invalid()
    const hex = bytesToHex(bytes)
    const cached = publicKeyCache.get(hex)
    if (cached !== undefined) return Either.right(cached)
    let uncompressed: Uint8Array
    try {
      uncompressed = secp256k1.Point.fromBytes(bytes).toBytes(false) // validates: on the curve, not infinity
    } catch {
      return invalid()
    }
    const digest = keccak256(uncompressed.subarray(UNCOMPRESSED_PREFIX_BYTES))
    const key = new PublicKey(Uint8Array.from(bytes), bytesToHex(digest.subarray(HASH_BYTES - ADDRESS_BYTES)) as Address)
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_MAX) publicKeyCache.delete(publicKeyCache.keys().next().value!)
    publicKeyCache.set(hex, key)
    return Either.right(key)
  }
  get hex(): string {
    return bytesToHex(this.bytes)
  }
}

/** The outcome the process's checks gave for these exact bytes, if it has one. */
export type KnownVerification = (signature: Uint8Array, digest: Uint8Array, publicKey: Uint8Array) => boolean | undefined

let knownVerification: KnownVerification | undefined

/**
 * Lets `verifyDigest` answer from the signature checks this process made already, by their exact bytes
 * (infra's memo, filled by the SignatureVerifier off the event loop): the ledger then does not check again
 * on the event loop what the gateway's threads checked (a usage receipt's request and results). A hit is the
 * answer of the same check over the very same digest, key and signature, so no outcome changes.
 */
export const useKnownVerifications = (lookup: KnownVerification | undefined): void => {
  knownVerification = lookup
}

/** noble verification of a compact low-s signature over a 32-byte digest. */
export const verifyDigest = (signature: Uint8Array, digest: Uint8Array, publicKey: PublicKey): boolean => {
  if (signature.length !== SIGNATURE_BYTES || digest.length !== HASH_BYTES) return false
  const known = knownVerification?.(signature, digest, publicKey.bytes)
  if (known !== undefined) return known
  try {
    return secp256k1.verify(signature, digest, publicKey.bytes, { prehash: false, lowS: true, format: "compact" })
  } catch {
    return false // r or s out of range: not a signature
  }
}

const DEV_ACCOUNT_SEED = "topai-dev-account-"
const DEV_PROPOSER_SEED = "topai-dev-proposer-"

/** keccak256(seed), re-hashed until it is a valid scalar (a miss has probability ~2^-128). */
export const devKeyFromSeed = (seed: string): PrivateKey => {
  let candidate = keccak256(utf8(seed))
  for (;;) {
    const key = PrivateKey.fromBytes(candidate)
    if (Either.isRight(key)) return key.right
    candidate = keccak256(candidate)
  }
}

/** The deterministic, public (so: insecure) dev accounts of a devnet genesis. */
export const devKey = (index: number): PrivateKey => devKeyFromSeed(DEV_ACCOUNT_SEED + index)

/** The deterministic devnet proposer key of one shard. */
export const devProposerKey = (shard: number): PrivateKey => devKeyFromSeed(DEV_PROPOSER_SEED + shard)

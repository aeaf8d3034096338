/**
 * The off-chain messages of the AI shard and what their signatures cover.
 * Each digest is keccak256 of a domain-separated text, so a signature made
 * for one purpose (or one chain) can never pass for another.
 */
import { Either } from "effect"
import { keccak256 } from "../chain/hash.js"
import { bytesToHex, hexToBytes, utf8 } from "../chain/hex.js"
import { PUBLIC_KEY_BYTES, PublicKey, SIGNATURE_BYTES, verifyDigest } from "../chain/keys.js"
import type { PrivateKey } from "../chain/keys.js"

export interface SessionGrant {
  readonly chainId: bigint
  readonly model: string
  /** ms since the epoch. */
  readonly expiresAt: number
}

export interface WorkerRegistration {
  readonly chainId: bigint
  readonly gpuClass: string
  readonly devices: number
  readonly stake: bigint
  readonly endpoint: string
  readonly at: number
}

export const sessionGrantDigest = (g: SessionGrant): Uint8Array =>
  keccak256(utf8(`topai-session\n${g.chainId}\n${g.model}\n${g.expiresAt}`))

export const workerRegistrationDigest = (r: WorkerRegistration): Uint8Array =>
  keccak256(utf8(`topai-worker\n${r.chainId}\n${r.gpuClass}\n${r.devices}\n${r.stake}\n${r.endpoint}\n${r.at}`))

export const resultDigest = (task: string, fingerprint: string): Uint8Array =>
  keccak256(utf8(`topai-result\n${task}\n${fingerprint}`))

export const signMessage = (digest: Uint8Array, key: PrivateKey): string => bytesToHex(key.signDigest(digest))

/** The signer's public key if `signature` (0x-hex, 64 bytes) over `digest` verifies for `publicKeyHex`. */
export const verifyMessage = (
  digest: Uint8Array,
  publicKeyHex: string,
  signature: string
): Either.Either<PublicKey, string> => {
  const key = Either.flatMap(
    Either.mapLeft(hexToBytes(publicKeyHex.toLowerCase(), PUBLIC_KEY_BYTES), (e) => e.message),
    (bytes) => Either.mapLeft(PublicKey.fromBytes(bytes), (e) => e.message)
  )
  if (Either.isLeft(key)) return Either.left(`public key: ${key.left}`)
  const sig = hexToBytes(signature.toLowerCase(), SIGNATURE_BYTES)
  if (Either.isLeft(sig)) return Either.left(`signature: ${sig.left.message}`)
  return verifyDigest(sig.right, digest, key.right) ? Either.right(key.right) : Either.left("the signature does not verify")
}

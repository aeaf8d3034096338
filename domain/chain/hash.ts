/**
 * The chain's hashes and `Hash32`, their in-memory and wire form: `0x` + 64
 * lowercase hex, so hashes compare with `===` and serve as map keys.
 *
 * keccak-256 (as in Ethereum) names things a signature or another chain sees:
 * transactions, their signing digests, block headers, receipt ids. sha256
 * builds the merkle trees (tx, receipt and events roots): it is the bulk of
 * the hashing a block does, and node:crypto's sha256 runs ~100x faster here
 * than a JS keccak (OpenSSL 3.0 has no keccak-256). Hashing is computation,
 * not I/O: the domain stays pure.
 */
import { createHash } from "node:crypto"
import { keccak_256 } from "@noble/hashes/sha3.js"
import { Either, Schema } from "effect"
import { bytesToHex, fixedHex, hexToBytes } from "./hex.js"

export const HASH_BYTES = 32

export const Hash32 = fixedHex(HASH_BYTES).pipe(Schema.brand("Hash32"))
export type Hash32 = typeof Hash32.Type

export const keccak256 = (bytes: Uint8Array): Uint8Array => keccak_256(bytes)

/** sha256 (OpenSSL) of the concatenated parts. */
export const sha256 = (...parts: ReadonlyArray<Uint8Array | string>): Uint8Array => {
  const h = createHash("sha256")
  for (const part of parts) h.update(part)
  return h.digest()
}

/** keccak-256 as a `Hash32`. */
export const keccakHex = (bytes: Uint8Array): Hash32 => bytesToHex(keccak_256(bytes)) as Hash32

/** The bytes of a `Hash32` (always 32: the brand guarantees the spelling). */
export const hashBytes = (hash: Hash32): Uint8Array => Either.getOrThrow(hexToBytes(hash, HASH_BYTES))

/** All-zero hash: the parent of nothing. */
export const ZERO_HASH = bytesToHex(new Uint8Array(HASH_BYTES)) as Hash32

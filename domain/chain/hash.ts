/**
 * keccak-256, the chain's one hash (as in Ethereum), and `Hash32`, its
 * in-memory and wire form: `0x` + 64 lowercase hex, so hashes compare with
 * `===` and serve as map keys.
 */
import { keccak_256 } from "@noble/hashes/sha3.js"
import { Either, Schema } from "effect"
import { bytesToHex, fixedHex, hexToBytes } from "./hex.js"

export const HASH_BYTES = 32

export const Hash32 = fixedHex(HASH_BYTES).pipe(Schema.brand("Hash32"))
export type Hash32 = typeof Hash32.Type

export const keccak256 = (bytes: Uint8Array): Uint8Array => keccak_256(bytes)

/** keccak-256 as a `Hash32`. */
export const keccakHex = (bytes: Uint8Array): Hash32 => bytesToHex(keccak_256(bytes)) as Hash32

/** The bytes of a `Hash32` (always 32: the brand guarantees the spelling). */
export const hashBytes = (hash: Hash32): Uint8Array => Either.getOrThrow(hexToBytes(hash, HASH_BYTES))

/** All-zero hash: the parent of nothing. */
export const ZERO_HASH = bytesToHex(new Uint8Array(HASH_BYTES)) as Hash32

/**
 * Binary sha256 merkle root over 32-byte leaves (tx hashes, receipt hashes,
 * event hashes). Leaves and inner nodes are hashed under different one-byte
 * prefixes (as RFC 6962 does) so an inner node can never pass for a leaf; an
 * odd node at the end of a level moves up unchanged, so no leaf is ever
 * duplicated (the Bitcoin CVE-2012-2459 mutation).
 */
import { HASH_BYTES, sha256, type Hash32 } from "./hash.js"
import { bytesToHex } from "./hex.js"

const LEAF = Uint8Array.of(0x00)
const NODE = Uint8Array.of(0x01)

/** Root of no leaves: sha256 of the empty string. */
export const EMPTY_ROOT = bytesToHex(sha256(new Uint8Array(0))) as Hash32

const leafHash = (leaf: Uint8Array): Uint8Array => {
  if (leaf.length !== HASH_BYTES) throw new RangeError(`merkle leaves are ${HASH_BYTES} bytes, got ${leaf.length}`)
  return sha256(LEAF, leaf)
}

const nodeHash = (left: Uint8Array, right: Uint8Array): Uint8Array => {
  return sha256(NODE, left, right)
}

export const merkleRoot = (leaves: ReadonlyArray<Uint8Array>): Hash32 => {
  if (leaves.length === 0) return EMPTY_ROOT
  let level = leaves.map(leafHash)
  while (level.length > 1) {
    const next: Array<Uint8Array> = []
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!))
    if (level.length % 2 === 1) next.push(level[level.length - 1]!)
    level = next
  }
  return bytesToHex(level[0]!) as Hash32
}

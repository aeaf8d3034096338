/**
 * Binary keccak merkle root over 32-byte leaves (tx hashes, receipt hashes,
 * event hashes). Leaves and inner nodes are hashed under different one-byte
 * prefixes (as RFC 6962 does) so an inner node can never pass for a leaf; an
 * odd node at the end of a level moves up unchanged, so no leaf is ever
 * duplicated (the Bitcoin CVE-2012-2459 mutation).
 */
import { HASH_BYTES, keccak256, keccakHex, type Hash32 } from "./hash.js"
import { bytesToHex } from "./hex.js"

const LEAF_PREFIX = 0x00
const NODE_PREFIX = 0x01

/** Root of no leaves: keccak256 of the empty string. */
export const EMPTY_ROOT = keccakHex(new Uint8Array(0))

const leafHash = (leaf: Uint8Array): Uint8Array => {
  if (leaf.length !== HASH_BYTES) throw new RangeError(`merkle leaves are ${HASH_BYTES} bytes, got ${leaf.length}`)
  const buf = new Uint8Array(1 + HASH_BYTES)
  buf[0] = LEAF_PREFIX
  buf.set(leaf, 1)
  return keccak256(buf)
}

const nodeHash = (left: Uint8Array, right: Uint8Array): Uint8Array => {
  const buf = new Uint8Array(1 + 2 * HASH_BYTES)
  buf[0] = NODE_PREFIX
  buf.set(left, 1)
  buf.set(right, 1 + HASH_BYTES)
  return keccak256(buf)
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

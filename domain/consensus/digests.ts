/**
 * What gets hashed and signed in consensus. Each digest starts with its own
 * domain tag, so a vote can never be replayed as a timeout or a block hash,
 * and binds the shard and epoch, so a signature in one committee means
 * nothing in another.
 *
 *   blockHash     = sha256("topai/consensus/block/v1"   ‖ shard u32 ‖ epoch u64 ‖ view u64 ‖ height u64
 *                          ‖ parentHash ‖ justify.view u64 ‖ justify.blockHash ‖ proposer u32
 *                          ‖ count u32 ‖ (len u32 ‖ utf8 txId)*)
 *   voteDigest    = sha256("topai/consensus/vote/v1"    ‖ shard u32 ‖ epoch u64 ‖ view u64 ‖ blockHash)
 *   timeoutDigest = sha256("topai/consensus/timeout/v2" ‖ shard u32 ‖ epoch u64 ‖ view u64 ‖ highQcView u64)
 *
 * A timeout signs its sender's highest QC view with the view it gives up
 * on (Jolteon / DiemBFT v4): a TC then proves, signer by signer, how high
 * each one's QC was, and a leader cannot make those views up.
 *
 * sha256 (OpenSSL) rather than keccak: these hashes are consensus-internal
 * and computed on every message; keccak names what other chains see.
 */
import { type Hash32, hashBytes, sha256 } from "../chain/hash.js"
import { bytesToHex } from "../chain/hex.js"
import type { ShardId } from "../chain/sharding.js"
import type { Block, NodeIndex, QuorumCertificate, TxId, View } from "./types.js"

const BLOCK_TAG = "topai/consensus/block/v1"
const VOTE_TAG = "topai/consensus/vote/v1"
const TIMEOUT_TAG = "topai/consensus/timeout/v2"

const u32 = (n: number): Uint8Array => {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, n)
  return out
}
const u64 = (n: number): Uint8Array => {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt(n))
  return out
}

const utf8 = new TextEncoder()

/** The fields a block hash covers (a block without its hash). */
export interface BlockFields {
  readonly shard: ShardId
  readonly epoch: number
  readonly view: View
  readonly height: number
  readonly parentHash: Hash32
  readonly justify: QuorumCertificate
  readonly proposer: NodeIndex
  readonly payload: ReadonlyArray<TxId>
}

export const blockHashOf = (b: BlockFields): Hash32 => {
  const parts: Array<Uint8Array | string> = [
    BLOCK_TAG,
    u32(b.shard),
    u64(b.epoch),
    u64(b.view),
    u64(b.height),
    hashBytes(b.parentHash),
    u64(b.justify.view),
    hashBytes(b.justify.blockHash),
    u32(b.proposer),
    u32(b.payload.length)
  ]
  for (const tx of b.payload) {
    const bytes = utf8.encode(tx)
    parts.push(u32(bytes.length), bytes)
  }
  return bytesToHex(sha256(...parts)) as Hash32
}

/** A block with its hash filled in. */
export const makeBlock = (fields: BlockFields): Block => ({ ...fields, hash: blockHashOf(fields) })

/**
 * Blocks whose hash was checked, by identity. A block object is immutable
 * data, so its check never changes: when one decoded block reaches several
 * state machines (the simulator, or a node relaying), it is hashed once.
 */
const checkedHashes = new WeakSet<Block>()

/** Whether `block.hash` is the hash of its fields. */
export const hasValidHash = (block: Block): boolean => {
  if (checkedHashes.has(block)) return true
  const ok = blockHashOf(block) === block.hash
  if (ok) checkedHashes.add(block)
  return ok
}

export const voteDigest = (shard: ShardId, epoch: number, view: View, blockHash: Hash32): Uint8Array =>
  sha256(VOTE_TAG, u32(shard), u64(epoch), u64(view), hashBytes(blockHash))

export const timeoutDigest = (shard: ShardId, epoch: number, view: View, highQcView: View): Uint8Array =>
  sha256(TIMEOUT_TAG, u32(shard), u64(epoch), u64(view), u64(highQcView))

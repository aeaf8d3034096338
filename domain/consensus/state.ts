/**
 * One node's consensus state for one shard committee and epoch, its
 * configuration, and recovery from what it persisted.
 *
 * The state splits in two:
 * - safety: `lastVotedView`, `lockedQc` (the highest QC), the committed head. Every change to
 *   them is emitted as a `Persist` output before any message that depends on
 *   it, and `recover(records)` rebuilds them. A node that restarts from its
 *   records never votes twice in a view and never unlocks.
 * - liveness: the current view, the highest QC and TC seen, the back-off,
 *   the block tree, votes and timeouts being collected, the mempool. Lost on
 *   a crash; rebuilt from peers (block sync, timeouts carrying high QCs).
 *
 * The block tree and the committed transaction set grow with the chain, so
 * they are persistent maps (effect's HashMap / HashSet): `step` returns a new
 * state without copying them.
 */
import { HashMap, HashSet } from "effect"
import { type Hash32, ZERO_HASH } from "../chain/hash.js"
import type { Committee } from "./committee.js"
import { makeBlock } from "./digests.js"
import type { CommitteeVerifier, QuorumCrypto } from "./quorum.js"
import { emptyBitmap } from "./quorum.js"
import type { Block, NodeIndex, QuorumCertificate, SafetyRecord, TimeoutCertificate, TxId, View } from "./types.js"

/** A collected timeout: the signature over (view, highQcView). */
export interface TimeoutSignature {
  readonly highQcView: View
  readonly signature: Uint8Array
}

export interface PacemakerTiming {
  /** The first timeout of a view after progress. */
  readonly baseTimeoutMs: number
  /** The timeout doubles with each consecutive timeout, up to base × 2^backoffExponentMax. */
  readonly backoffExponentMax: number
}

export interface ConsensusConfig {
  readonly committee: Committee
  /** This node's seat, or `OBSERVER`: it follows the committee's chain without voting. */
  readonly self: NodeIndex
  readonly secretKey: Uint8Array
  readonly crypto: QuorumCrypto
  /** `crypto.verifierFor(committee's keys)`, made once per committee and shared by its nodes. */
  readonly verifier: CommitteeVerifier
  /** The block every node of this committee starts from (`genesisBlock`). */
  readonly genesis: Block
  readonly timing: PacemakerTiming
  /** Most transactions in one block. */
  readonly blockTxsMax: number
  /** Most blocks in one sync response. */
  readonly syncBlocksMax: number
  /** Most verified blocks held while their ancestors are fetched. */
  readonly detachedBlocksMax: number
}

/** The `self` of a node outside the committee: it checks and commits what the members certify, and never signs. */
export const OBSERVER: NodeIndex = -1

export const TIMING_DEFAULT: PacemakerTiming = { baseTimeoutMs: 1_000, backoffExponentMax: 6 }
export const BLOCK_TXS_MAX_DEFAULT = 4096
export const SYNC_BLOCKS_MAX_DEFAULT = 16
export const DETACHED_BLOCKS_MAX_DEFAULT = 1024

export interface ConsensusState {
  // --- safety: persisted, rebuilt by `recover`
  /** The highest view this node voted or timed out in; it never votes in a view ≤ this. */
  readonly lastVotedView: View
  /**
   * The 2-chain lock: the highest QC this node has seen (persisted each time
   * it rises). Its timeouts report at least this view, which is what makes a
   * TC-justified block safe to vote for (see `step.ts`). Always `highQc`'s view.
   */
  readonly lockedQc: QuorumCertificate
  readonly committedHeight: number
  readonly committedHash: Hash32
  // --- liveness: volatile
  readonly view: View
  readonly highQc: QuorumCertificate
  readonly lastTc: TimeoutCertificate | undefined
  /** Consecutive timeouts since the last QC; the timer is base × 2^backoff. */
  readonly backoff: number
  /** The highest view this node broadcast a timeout for. */
  readonly timeoutSentView: View
  /** Blocks connected to the committed chain's tree (every ancestor known and checked). */
  readonly blocks: HashMap.HashMap<Hash32, Block>
  /** The verified QC of each certified block. */
  readonly certified: HashMap.HashMap<Hash32, QuorumCertificate>
  /** Verified blocks whose ancestors are still being fetched. */
  readonly detached: ReadonlyMap<Hash32, Block>
  /** Votes this node collects as leader of the next view, by `${view}:${blockHash}`. */
  readonly votes: ReadonlyMap<string, ReadonlyMap<NodeIndex, Uint8Array>>
  /** Timeout signatures by view, each with the high-QC view it signed. */
  readonly timeouts: ReadonlyMap<View, ReadonlyMap<NodeIndex, TimeoutSignature>>
  readonly mempool: ReadonlyArray<TxId>
  readonly committedTxs: HashSet.HashSet<TxId>
}

/** The genesis block of a committee's chain: view 0, height 0, no transactions. */
export const genesisBlock = (committee: Committee): Block => epochGenesisBlock(committee, ZERO_HASH, 0)

/**
 * Where a committee's chain starts: view 0 at `height`, no transactions. The
 * first epoch's starts the shard (`ZERO_HASH`, height 0); a later epoch's
 * follows the block that handed over to it, so its hash binds that block and
 * heights go on across epochs.
 */
export const epochGenesisBlock = (committee: Committee, parentHash: Hash32, height: number): Block =>
  makeBlock({
    shard: committee.shard,
    epoch: committee.epoch,
    view: 0,
    height,
    parentHash,
    justify: { view: 0, blockHash: ZERO_HASH, signers: emptyBitmap(committee.members.length), signature: new Uint8Array() },
    proposer: 0,
    payload: []
  })

/** The one QC without signers: genesis is certified by definition. */
export const genesisQc = (config: ConsensusConfig): QuorumCertificate => ({
  view: 0,
  blockHash: config.genesis.hash,
  signers: emptyBitmap(config.committee.members.length),
  signature: new Uint8Array()
})

export const initialState = (config: ConsensusConfig): ConsensusState => {
  const qc = genesisQc(config)
  return {
    lastVotedView: 0,
    lockedQc: qc,
    committedHeight: config.genesis.height,
    committedHash: config.genesis.hash,
    view: 1,
    highQc: qc,
    lastTc: undefined,
    backoff: 0,
    timeoutSentView: 0,
    blocks: HashMap.make([config.genesis.hash, config.genesis]),
    certified: HashMap.make([config.genesis.hash, qc]),
    detached: new Map(),
    votes: new Map(),
    timeouts: new Map(),
    mempool: [],
    committedTxs: HashSet.empty()
  }
}

/**
 * The state of a node restarted from its persisted records: the safety part
 * exactly as it was, the committed blocks known, everything else empty. The
 * view resumes after the highest QC it knows and not before its last vote.
 */
export const recover = (config: ConsensusConfig, records: Iterable<SafetyRecord>): ConsensusState => {
  const start = initialState(config)
  let { lastVotedView, lockedQc, committedHeight, committedHash, blocks, certified, committedTxs, highQc } = start
  const voted: Array<Block> = []
  for (const r of records) {
    switch (r._tag) {
      case "Voted":
        if (r.block !== undefined) voted.push(r.block)
        if (r.view > lastVotedView) lastVotedView = r.view
        break
      case "TimedOut":
        if (r.view > lastVotedView) lastVotedView = r.view
        break
      case "Locked":
        if (r.qc.view > lockedQc.view) lockedQc = r.qc
        break
      case "Committed":
        blocks = HashMap.set(blocks, r.block.hash, r.block)
        certified = HashMap.set(certified, r.block.hash, r.qc)
        committedHeight = r.block.height
        committedHash = r.block.hash
        for (const tx of r.block.payload) committedTxs = HashSet.add(committedTxs, tx)
        if (r.qc.view > highQc.view) highQc = r.qc
        break
    }
  }
  if (lockedQc.view > highQc.view) highQc = lockedQc
  if (highQc.view > lockedQc.view) lockedQc = highQc // records of the 3-chain protocol (locked one QC back)
  certified = HashMap.set(certified, lockedQc.blockHash, lockedQc)
  // The blocks it voted for above the committed head, back in the tree where their parents are (oldest
  // first); the others wait, detached, for the ancestors block sync brings. Their QCs were checked when
  // they first arrived; each one's parent certificate is its own justify.
  const detached = new Map<Hash32, Block>()
  for (const b of voted.sort((x, y) => x.height - y.height)) {
    if (b.height <= committedHeight || HashMap.has(blocks, b.hash)) continue
    if (HashMap.has(blocks, b.parentHash)) {
      blocks = HashMap.set(blocks, b.hash, b)
      certified = HashMap.set(certified, b.justify.blockHash, b.justify)
    } else if (detached.size < config.detachedBlocksMax) detached.set(b.hash, b)
  }
  return {
    ...start,
    lastVotedView,
    lockedQc,
    committedHeight,
    committedHash,
    view: Math.max(highQc.view + 1, lastVotedView, 1),
    highQc,
    blocks,
    certified,
    detached,
    committedTxs
  }
}

/** What a node must never forget: compared between a live node and one rebuilt from its records. */
export interface SafetyState {
  readonly lastVotedView: View
  readonly lockedView: View
  readonly lockedHash: Hash32
  readonly committedHeight: number
  readonly committedHash: Hash32
}

export const safetyOf = (s: ConsensusState): SafetyState => ({
  lastVotedView: s.lastVotedView,
  lockedView: s.lockedQc.view,
  lockedHash: s.lockedQc.blockHash,
  committedHeight: s.committedHeight,
  committedHash: s.committedHash
})

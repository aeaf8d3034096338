/**
 * Chained HotStuff's data: blocks, certificates, the messages nodes exchange,
 * and the inputs and outputs of the state machine (`step.ts`).
 *
 * Everything here is plain readonly data. Messages carry no transport
 * signature: the network layer authenticates the sender (`from`), and the
 * quorum signatures inside votes, timeouts and certificates are checked by
 * `QuorumCrypto` (see `quorum.ts`).
 *
 * A node is named by its seat in the committee (`NodeIndex`), not by an
 * address: bitmaps, leader rotation and stake all index the committee's
 * member list.
 */
import type { Hash32 } from "../chain/hash.js"
import type { ShardId } from "../chain/sharding.js"

/** A HotStuff view (round). Genesis is view 0; the first proposal is view 1. */
export type View = number
/** A seat in the committee's member list. */
export type NodeIndex = number
/** A transaction as consensus sees it: an opaque id (a tx hash on the chain). */
export type TxId = string

/**
 * A quorum certificate: more than 2/3 of the committee's stake signed
 * `voteDigest(shard, epoch, view, blockHash)`. `signers` is a bitmap over
 * the committee (bit i = byte[i >> 3] & (1 << (i & 7))); `signature` is the
 * aggregate of their signatures. Genesis has the one QC with no signers.
 */
export interface QuorumCertificate {
  readonly view: View
  readonly blockHash: Hash32
  readonly signers: Uint8Array
  readonly signature: Uint8Array
}

/**
 * A timeout certificate: more than 2/3 of the stake gave up on `view`, each
 * signer i signing `timeoutDigest(shard, epoch, view, highQcViews[k])` where
 * k is i's rank among the signers (bitmap order) and `highQcViews[k]` the view
 * of i's highest QC when it timed out. The aggregate is over these distinct
 * messages (BLS: one multi-pairing, one pairing per distinct view plus one).
 * It moves the pacemaker to `view + 1`, and it is what lets the next leader's
 * block skip views: honest nodes vote for a block of view `view + 1` whose QC
 * is at least `max(highQcViews)` (the 2-chain voting rule, see `step.ts`).
 */
export interface TimeoutCertificate {
  readonly view: View
  readonly signers: Uint8Array
  /** One per signer, in signer (bitmap) order; each below `view`. */
  readonly highQcViews: ReadonlyArray<View>
  readonly signature: Uint8Array
}

/**
 * A block of one shard's chain. Its parent is always the block its `justify`
 * QC certifies (DiemBFT's shape), so `height = parent.height + 1` and
 * `view > justify.view`. The hash covers the justify's (view, blockHash) but
 * not its signer set: two QCs on one block give one block hash.
 */
export interface Block {
  readonly hash: Hash32
  readonly shard: ShardId
  readonly epoch: number
  readonly view: View
  readonly height: number
  readonly parentHash: Hash32
  readonly justify: QuorumCertificate
  readonly proposer: NodeIndex
  readonly payload: ReadonlyArray<TxId>
}

// ---------------------------------------------------------------------------
// Messages between nodes

/** The leader of `block.view` proposes it; `tc` justifies the view when `justify.view < block.view - 1`. */
export interface Proposal {
  readonly _tag: "Proposal"
  readonly block: Block
  readonly tc: TimeoutCertificate | undefined
}

/** A vote for a block, sent to the leader of the next view. */
export interface Vote {
  readonly _tag: "Vote"
  readonly view: View
  readonly blockHash: Hash32
  readonly voter: NodeIndex
  readonly signature: Uint8Array
}

/**
 * "I give up on `view`", broadcast, with the sender's highest QC (and last TC)
 * so others catch up. `signature` is over `timeoutDigest(.., view, highQc.view)`.
 */
export interface Timeout {
  readonly _tag: "Timeout"
  readonly view: View
  readonly voter: NodeIndex
  readonly signature: Uint8Array
  readonly highQc: QuorumCertificate
  readonly lastTc: TimeoutCertificate | undefined
}

/** Block sync: ask a peer for a block (and some of its ancestors). */
export interface BlockRequest {
  readonly _tag: "BlockRequest"
  readonly blockHash: Hash32
}

/** Block sync: the requested block first, then its ancestors, newest first. */
export interface BlockResponse {
  readonly _tag: "BlockResponse"
  readonly blocks: ReadonlyArray<Block>
}

export type Message = Proposal | Vote | Timeout | BlockRequest | BlockResponse

// ---------------------------------------------------------------------------
// State machine inputs

/** Boot or restart: arm the timer for the current view (and propose if this node leads it). */
export interface Start {
  readonly _tag: "Start"
}
/** A message from `from` (authenticated by the transport). */
export interface Received {
  readonly _tag: "Received"
  readonly from: NodeIndex
  readonly message: Message
}
/** The timer set by `SetTimer(view)` fired. Stale views are ignored. */
export interface TimerFired {
  readonly _tag: "TimerFired"
  readonly view: View
}
/** Transactions to include in a coming block (already admitted by the mempool's rules). */
export interface NewPayload {
  readonly _tag: "NewPayload"
  readonly txs: ReadonlyArray<TxId>
}

export type Input = Start | Received | TimerFired | NewPayload

// ---------------------------------------------------------------------------
// State machine outputs, in the order the driver must carry them out

/**
 * Write `record` durably before carrying out any later output of the same
 * step: a vote or timeout is sent only once its record is on disk, so a
 * restarted node never votes twice in one view.
 */
export interface Persist {
  readonly _tag: "Persist"
  readonly record: SafetyRecord
}
export interface Send {
  readonly _tag: "Send"
  readonly to: NodeIndex
  readonly message: Message
}
/** Send to every other member of the committee. */
export interface Broadcast {
  readonly _tag: "Broadcast"
  readonly message: Message
}
/** Arm the node's one timer: it replaces any earlier one. */
export interface SetTimer {
  readonly _tag: "SetTimer"
  readonly view: View
  readonly durationMs: number
}
/** `block` is final; `qc` certifies it. Commits come in height order, each extending the last. */
export interface Commit {
  readonly _tag: "Commit"
  readonly block: Block
  readonly qc: QuorumCertificate
  /** On the last block of a commit: what proves it committed (its ancestors follow by their hash chain). */
  readonly proof?: CommitProof | undefined
}

/** Why a block is committed (the 2-chain rule): its child of the next view, certified by `qc`. */
export interface CommitProof {
  readonly child: Block
  readonly qc: QuorumCertificate
}
/** Block sync: fetch `blockHash` (the driver sends a `BlockRequest` to `from`, or to any peer). */
export interface RequestBlock {
  readonly _tag: "RequestBlock"
  readonly blockHash: Hash32
  readonly from: NodeIndex
}

export type Output = Persist | Send | Broadcast | SetTimer | Commit | RequestBlock

// ---------------------------------------------------------------------------
// What a node persists (its `consensus-{shard}-{node}` stream)

/**
 * Voted in `view` (a proposer's own proposal counts as its vote), for
 * `block`. The block is kept because nobody else may keep it: until it
 * commits it lives only in memory, and if every node restarts, the block
 * their locks point at must still be somewhere (more than 2/3 voted for it).
 */
export interface Voted {
  readonly _tag: "Voted"
  readonly view: View
  readonly blockHash: Hash32
  /** Absent in records written before blocks were kept. */
  readonly block?: Block | undefined
}
/** Timed out in `view`: no vote in it from now on. */
export interface TimedOut {
  readonly _tag: "TimedOut"
  readonly view: View
}
/** The highest QC this node has seen is now `qc` (the 2-chain protocol's lock: its timeouts report at least this view). */
export interface Locked {
  readonly _tag: "Locked"
  readonly qc: QuorumCertificate
}
/** Committed `block`, certified by `qc`. */
export interface Committed {
  readonly _tag: "Committed"
  readonly block: Block
  readonly qc: QuorumCertificate
  /** The commit proof, on the last block of a commit (absent in records written before proofs were kept). */
  readonly proof?: CommitProof | undefined
}

export type SafetyRecord = Voted | TimedOut | Locked | Committed

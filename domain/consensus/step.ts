/**
 * Chained HotStuff with the 2-chain commit rule as a pure state machine: `step(config, state, input)`
 * returns the next state and the outputs the driver must carry out, in
 * order (persist, send, arm the timer, commit, fetch). Nothing here reads a
 * clock, randomness or the network; time arrives as `TimerFired`.
 *
 * A node outside the committee (`self` = `OBSERVER`) runs the same step: it
 * checks proposals and their certificates, syncs blocks and commits by the
 * same rule, but never votes, times out, proposes or arms a timer.
 *
 * The protocol: chained HotStuff (Yin et al. 2019) with DiemBFT's shape (a
 * block's parent is the block its QC certifies) and the 2-chain commit and
 * voting rules of Jolteon / DiemBFT v4 (Gelashvili et al., "Jolteon and
 * Ditto", FC 2022):
 *
 * - Views and leaders. The leader of view v is `leaderOf(committee, v)`. It
 *   proposes in v once it holds a QC for view v-1 (from the votes it
 *   collected), or a TC for v-1 and a QC at least as high as every high-QC
 *   view in that TC; it extends the block of its highest QC.
 * - Lock. A node's lock is the highest QC it has seen (`lockedQc` = `highQc`,
 *   persisted each time it rises, before any vote or timeout that follows).
 * - Voting. A node votes for a block B of its current view v if v is above
 *   every view it voted or timed out in (`lastVotedView`: never twice in one
 *   view, never after timing out) and either B's QC is of view v-1 (a direct
 *   extension), or it holds a TC for view v-1 and B's QC view is at least the
 *   highest high-QC view in that TC. Votes go to the leader of v+1, who
 *   aggregates more than 2/3 of the stake into a QC.
 * - Committing. On a QC for B' whose parent B has view B'.view - 1 (a
 *   2-chain with consecutive views), commit B and its uncommitted ancestors.
 * - Why it is safe (f < n/3). Say B of view r commits: more than 2/3 voted
 *   for B' in r+1, and each of them had seen QC(B) (B' carries it), so its
 *   highest QC is ≥ r from then on. One vote per view makes QC(B) and
 *   QC(B') the only QCs of views r and r+1. By induction every QC of a view
 *   > r certifies a block extending B: a direct extension's QC is of the
 *   view before; a TC for a view ≥ r+1 has more than 2/3 of the stake, so
 *   an honest B'-voter signed it — after its vote, as nobody votes in a view
 *   it timed out in — with a high-QC view ≥ r, so the block's QC is ≥ r.
 *   The high-QC views are signed with the timeout (`timeoutDigest` binds
 *   (view, highQcView)), so a leader cannot lower them.
 * - Pacemaker. Entering a view arms a timer of base × 2^backoff. When it
 *   fires the node stops voting in that view and broadcasts a timeout
 *   carrying its highest QC; the back-off doubles. More than 1/3 of the
 *   stake timing out in a view makes the others join (one of them is
 *   honest); more than 2/3 form a TC, and every node with the TC moves to the
 *   next view. A QC resets the back-off.
 * - Sync. A block whose ancestors are unknown waits in `detached` while the
 *   node fetches them from the peer that sent it (`RequestBlock`); a peer
 *   answers a `BlockRequest` with the block and its ancestors.
 *
 * Certificates are verified once: a QC is checked with one aggregate
 * verification the first time it is seen for its block, then recognised by
 * `certified`. Votes are never verified one by one unless an aggregate
 * fails. Messages are assumed decoded to their types by the network layer;
 * anything else wrong with them (wrong leader, bad hash, bad certificate,
 * stale view) is dropped, never thrown on. Broken invariants (a commit that
 * does not extend the committed chain) throw: they are bugs or a broken
 * quorum assumption, and a node must stop rather than go on.
 */
import { Either, HashMap, HashSet, Option } from "effect"
import { type Assert, invariantsOf } from "../assert.js"
import type { Hash32 } from "../chain/hash.js"
import { exceeds, hasQuorum, leaderOf, ONE_HONEST } from "./committee.js"
import { hasValidHash, makeBlock, timeoutDigest, voteDigest } from "./digests.js"
import {
  assembleCertificate,
  assembleTimeoutCertificate,
  badSigners,
  badTimeoutSigners,
  maxHighQcView,
  stakeOf,
  verifyCertificate,
  verifyTimeoutCertificate
} from "./quorum.js"
import type { ConsensusConfig, ConsensusState } from "./state.js"
import type {
  Block,
  BlockResponse,
  CommitProof,
  Input,
  Message,
  NodeIndex,
  Output,
  Proposal,
  QuorumCertificate,
  TimeoutCertificate,
  Timeout,
  TxId,
  View,
  Vote
} from "./types.js"

const assert: Assert = invariantsOf("consensus")

/**
 * How far ahead of its view a node keeps votes and timeouts. Bounds what a
 * faulty member can make it hold (one entry per view it names); a node
 * further behind catches up through the QCs that timeouts and proposals
 * carry, not through these.
 */
const VIEWS_AHEAD_MAX = 64

export interface StepResult {
  readonly state: ConsensusState
  readonly outputs: ReadonlyArray<Output>
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** One step's working copy: `s` starts as a shallow copy of the input state, which is never mutated. */
interface Ctx {
  readonly config: ConsensusConfig
  readonly s: Mutable<ConsensusState>
  readonly out: Array<Output>
  /** Messages this node sends to itself (its vote when it leads the next view), handled within the step. */
  readonly self: Array<Message>
}

export const step = (config: ConsensusConfig, state: ConsensusState, input: Input): StepResult => {
  const ctx: Ctx = { config, s: { ...state }, out: [], self: [] }
  switch (input._tag) {
    case "Start":
      armTimer(ctx)
      // A node restarted in a view it already voted or timed out in can do nothing more there (its own
      // proposal, if it led, may be lost with the crash): it gives the view up now, not a timeout later.
      if (isMember(config, config.self) && ctx.s.view >= 1 && ctx.s.lastVotedView >= ctx.s.view) sendTimeout(ctx, ctx.s.view)
      maybePropose(ctx)
      break
    case "Received":
      if (isMember(config, input.from)) onMessage(ctx, input.from, input.message)
      break
    case "TimerFired":
      onTimer(ctx, input.view)
      break
    case "NewPayload":
      onPayload(ctx, input.txs)
      break
  }
  for (let i = 0; i < ctx.self.length; i++) onMessage(ctx, config.self, ctx.self[i]!)
  return { state: ctx.s, outputs: ctx.out }
}

const isMember = (config: ConsensusConfig, i: NodeIndex): boolean =>
  Number.isInteger(i) && i >= 0 && i < config.committee.members.length

export const isView = (v: View): boolean => Number.isSafeInteger(v) && v >= 0

const send = (ctx: Ctx, to: NodeIndex, message: Message): void => {
  if (to === ctx.config.self) ctx.self.push(message)
  else ctx.out.push({ _tag: "Send", to, message })
}

const onMessage = (ctx: Ctx, from: NodeIndex, message: Message): void => {
  switch (message._tag) {
    case "Proposal":
      return onProposal(ctx, from, message)
    case "Vote":
      return onVote(ctx, from, message)
    case "Timeout":
      return onTimeout(ctx, from, message)
    case "BlockRequest":
      return onBlockRequest(ctx, from, message.blockHash)
    case "BlockResponse":
      return onBlockResponse(ctx, from, message)
  }
}

// ---------------------------------------------------------------------------
// Certificates

const qcDigest = (config: ConsensusConfig, qc: { view: View; blockHash: Hash32 }): Uint8Array =>
  voteDigest(config.committee.shard, config.committee.epoch, qc.view, qc.blockHash)

/**
 * The verified QC for `qc`'s block and view, or undefined if `qc` is not a
 * valid certificate. A QC already known is not checked again, and the known
 * one is returned (a forwarded copy with a garbled signature never spreads).
 */
const acceptQc = (ctx: Ctx, qc: QuorumCertificate): QuorumCertificate | undefined => {
  if (!isView(qc.view)) return undefined
  const known = HashMap.get(ctx.s.certified, qc.blockHash)
  if (Option.isSome(known) && known.value.view === qc.view) return known.value
  if (qc.view === 0) return undefined // the genesis QC is known from the start; no other QC has view 0
  const ok = verifyCertificate(ctx.config.committee, ctx.config.verifier, qcDigest(ctx.config, qc), qc)
  if (Either.isLeft(ok)) return undefined
  ctx.s.certified = HashMap.set(ctx.s.certified, qc.blockHash, qc)
  return qc
}

/** Whether `tc` is a valid TC (its signers' high-QC views included); only checked when it is news (`isNewsTc`). */
const acceptTc = (ctx: Ctx, tc: TimeoutCertificate): boolean =>
  isView(tc.view) && tc.view >= 1 && Either.isRight(verifyTimeoutCertificate(ctx.config.committee, ctx.config.verifier, tc))

/**
 * Whether `tc` would change anything: a later view than the last TC, or the
 * same view with a lower highest high-QC view (any valid TC for a view proves
 * the same; the lowest one lets this node vote for more blocks).
 */
const isNewsTc = (ctx: Ctx, tc: TimeoutCertificate): boolean => {
  const last = ctx.s.lastTc
  if (!isView(tc.view) || !Array.isArray(tc.highQcViews)) return false
  return last === undefined || tc.view > last.view || (tc.view === last.view && maxHighQcView(tc) < maxHighQcView(last))
}

/** A verified QC: raise the high QC (the lock, persisted), commit along its chain, move to the next view. */
const processQc = (ctx: Ctx, qc: QuorumCertificate): void => {
  const { s } = ctx
  const higher = qc.view > s.highQc.view
  if (higher) {
    s.highQc = qc
    s.lockedQc = qc
    ctx.out.push({ _tag: "Persist", record: { _tag: "Locked", qc } })
  }
  updateChain(ctx, qc)
  if (qc.view >= s.view) enterView(ctx, qc.view + 1, "qc")
  // A leader holding a TC may have waited for a QC as high as the TC's.
  else if (higher) maybePropose(ctx)
}

/** A verified TC: keep it (see `isNewsTc`), move to the view after it. */
const processTc = (ctx: Ctx, tc: TimeoutCertificate): void => {
  const { s } = ctx
  if (isNewsTc(ctx, tc)) s.lastTc = tc
  if (tc.view >= s.view) enterView(ctx, tc.view + 1, "tc")
}

const blockOf = (ctx: Ctx, hash: Hash32): Block | undefined => Option.getOrUndefined(HashMap.get(ctx.s.blocks, hash))

/** The 2-chain commit rule: a QC on B' whose parent B is of view B'.view - 1 commits B (and its ancestors). */
const updateChain = (ctx: Ctx, qc: QuorumCertificate): void => {
  const { s } = ctx
  const b2 = blockOf(ctx, qc.blockHash)
  if (b2 === undefined || b2.hash === ctx.config.genesis.hash) return
  const b1 = blockOf(ctx, b2.parentHash)
  if (b1 === undefined || b1.height <= s.committedHeight) return
  if (b2.view === b1.view + 1) commitUpTo(ctx, b1, b2.justify, { child: b2, qc })
}

/**
 * Commit `b0` (certified by `qc0`) and its uncommitted ancestors, oldest first. `b0` carries its commit
 * proof (its child of the next view and that child's QC): what a peer catching up checks (`catchUp.ts`).
 */
const commitUpTo = (ctx: Ctx, b0: Block, qc0: QuorumCertificate, proof: CommitProof): void => {
  const { s } = ctx
  const chain: Array<{ block: Block; qc: QuorumCertificate }> = []
  let cursor: Block | undefined = b0
  let certifying = qc0
  while (cursor !== undefined && cursor.height > s.committedHeight) {
    chain.push({ block: cursor, qc: certifying })
    certifying = cursor.justify
    cursor = blockOf(ctx, cursor.parentHash)
  }
  assert(cursor !== undefined, "a connected block's ancestors are known")
  assert(cursor.hash === s.committedHash, `the block at height ${cursor.height} to commit extends the committed chain`)
  for (let i = chain.length - 1; i >= 0; i--) {
    const { block, qc } = chain[i]!
    assert(qc.blockHash === block.hash, "a commit's QC certifies its block")
    const withProof = i === 0 ? { proof } : {}
    ctx.out.push({ _tag: "Persist", record: { _tag: "Committed", block, qc, ...withProof } })
    ctx.out.push({ _tag: "Commit", block, qc, ...withProof })
    s.committedHeight = block.height
    s.committedHash = block.hash
    for (const tx of block.payload) s.committedTxs = HashSet.add(s.committedTxs, tx)
  }
  s.mempool = s.mempool.filter((tx) => !HashSet.has(s.committedTxs, tx))
}

// ---------------------------------------------------------------------------
// Pacemaker

const timeoutMsOf = (ctx: Ctx): number =>
  ctx.config.timing.baseTimeoutMs * 2 ** Math.min(ctx.s.backoff, ctx.config.timing.backoffExponentMax)

const armTimer = (ctx: Ctx): void => {
  if (!isMember(ctx.config, ctx.config.self)) return
  ctx.out.push({ _tag: "SetTimer", view: ctx.s.view, durationMs: timeoutMsOf(ctx) })
}

const enterView = (ctx: Ctx, view: View, cause: "qc" | "tc" | "join"): void => {
  const { s } = ctx
  if (view <= s.view) return
  s.view = view
  if (cause === "qc") s.backoff = 0
  s.votes = pruned(s.votes, (key) => viewOfVoteKey(key) >= view - 1)
  s.timeouts = pruned(s.timeouts, (v) => v >= view)
  armTimer(ctx)
  maybePropose(ctx)
}

const pruned = <K, V>(m: ReadonlyMap<K, V>, keep: (k: K) => boolean): ReadonlyMap<K, V> => {
  let out: Map<K, V> | undefined
  for (const k of m.keys()) {
    if (keep(k)) continue
    out ??= new Map(m)
    out.delete(k)
  }
  return out ?? m
}

const onTimer = (ctx: Ctx, view: View): void => {
  const { s } = ctx
  if (view !== s.view || !isMember(ctx.config, ctx.config.self)) return // stale, or an observer: it never times out
  s.backoff = Math.min(s.backoff + 1, ctx.config.timing.backoffExponentMax)
  sendTimeout(ctx, view)
  armTimer(ctx) // re-broadcast if still stuck: timeouts may be lost
}

/** Stop voting in `view` and tell everyone, with the highest QC and TC this node has. */
const sendTimeout = (ctx: Ctx, view: View): void => {
  const { s, config } = ctx
  if (view > s.lastVotedView) {
    s.lastVotedView = view
    ctx.out.push({ _tag: "Persist", record: { _tag: "TimedOut", view } })
  }
  if (view > s.timeoutSentView) s.timeoutSentView = view
  const highQcView = s.highQc.view
  const digest = timeoutDigest(config.committee.shard, config.committee.epoch, view, highQcView)
  const signature = config.crypto.sign(config.secretKey, digest)
  const timeout: Timeout = { _tag: "Timeout", view, voter: config.self, signature, highQc: s.highQc, lastTc: s.lastTc }
  ctx.out.push({ _tag: "Broadcast", message: timeout })
  addTimeout(ctx, view, config.self, highQcView, signature)
}

const onTimeout = (ctx: Ctx, from: NodeIndex, t: Timeout): void => {
  const { s } = ctx
  if (t.voter !== from || !isView(t.view) || !isView(t.highQc.view) || t.highQc.view >= t.view) return
  if (t.highQc.view > s.highQc.view) {
    const qc = acceptQc(ctx, t.highQc)
    if (qc === undefined) return
    if (blockOf(ctx, qc.blockHash) === undefined) requestMissing(ctx, qc.blockHash, from)
    processQc(ctx, qc)
  } else if (t.highQc.view === s.highQc.view && blockOf(ctx, s.highQc.blockHash) === undefined) {
    // Its high QC's block is still missing (a restart keeps the QC, not the block; a fetch may have been
    // lost): ask this peer, which holds the same QC. Without it this node cannot lead (nothing to extend).
    requestMissing(ctx, s.highQc.blockHash, from)
  }
  if (t.lastTc !== undefined && t.lastTc.view >= s.view - 1 && isNewsTc(ctx, t.lastTc) && acceptTc(ctx, t.lastTc)) {
    processTc(ctx, t.lastTc)
  }
  if (t.view < s.view || t.view > s.view + VIEWS_AHEAD_MAX) return
  addTimeout(ctx, t.view, from, t.highQc.view, t.signature)
}

const addTimeout = (ctx: Ctx, view: View, signer: NodeIndex, highQcView: View, signature: Uint8Array): void => {
  const { s, config } = ctx
  if (!isMember(config, config.self)) return // an observer learns views from the certificates that proposals carry
  const { committee } = config
  const collected = s.timeouts.get(view)
  if (collected?.has(signer)) return
  const next = new Map(collected ?? [])
  next.set(signer, { highQcView, signature })
  const timeouts = new Map(s.timeouts)
  timeouts.set(view, next)
  s.timeouts = timeouts
  const stake = stakeOf(committee, next.keys())
  if (view >= s.view && s.timeoutSentView < view && exceeds(committee, stake, ONE_HONEST)) {
    // More than 1/3 of the stake gave up on `view`: at least one honest node did. Join it.
    enterView(ctx, view, "join")
    sendTimeout(ctx, view) // adds our own timeout, which may complete the TC below
    return
  }
  if (!hasQuorum(committee, stake) || (s.lastTc !== undefined && s.lastTc.view >= view)) return
  const partials = [...next].map(([i, t]) => ({ signer: i, highQcView: t.highQcView, signature: t.signature }))
  const certificate = assembleTimeoutCertificate(committee, config.verifier, view, partials)
  if (Either.isLeft(certificate)) {
    dropBadSignatures(ctx, "timeouts", view, badTimeoutSigners(committee, config.verifier, view, partials))
    return
  }
  processTc(ctx, certificate.right)
}

const dropBadSignatures = (
  ctx: Ctx,
  which: "timeouts" | "votes",
  key: View | string,
  bad: ReadonlyArray<NodeIndex>
): void => {
  if (which === "timeouts") {
    const collected = new Map(ctx.s.timeouts.get(key as View))
    for (const i of bad) collected.delete(i)
    const timeouts = new Map(ctx.s.timeouts)
    timeouts.set(key as View, collected)
    ctx.s.timeouts = timeouts
  } else {
    const collected = new Map(ctx.s.votes.get(key as string))
    for (const i of bad) collected.delete(i)
    const votes = new Map(ctx.s.votes)
    votes.set(key as string, collected)
    ctx.s.votes = votes
  }
}

// ---------------------------------------------------------------------------
// Proposing and voting

const maybePropose = (ctx: Ctx): void => {
  const { s, config } = ctx
  const view = s.view
  if (leaderOf(config.committee, view) !== config.self || view <= s.lastVotedView) return
  const byQc = s.highQc.view === view - 1
  // The 2-chain voting rule, for the leader's own vote too: the QC must be as high as the TC's highest.
  const byTc = s.lastTc !== undefined && s.lastTc.view === view - 1 && s.highQc.view >= maxHighQcView(s.lastTc)
  if (!byQc && !byTc) return
  const parent = blockOf(ctx, s.highQc.blockHash)
  if (parent === undefined) return // fetched when the QC arrived; the timer covers the wait
  const uncommitted = walkUncommitted(ctx, parent)
  if (uncommitted === undefined) return // the high QC is on a dead fork: nothing to build on
  const payload: Array<TxId> = []
  for (const tx of s.mempool) {
    if (payload.length >= config.blockTxsMax) break
    if (!uncommitted.has(tx) && !HashSet.has(s.committedTxs, tx)) payload.push(tx)
  }
  const block = makeBlock({
    shard: config.committee.shard,
    epoch: config.committee.epoch,
    view,
    height: parent.height + 1,
    parentHash: parent.hash,
    justify: s.highQc,
    proposer: config.self,
    payload
  })
  s.blocks = HashMap.set(s.blocks, block.hash, block)
  castVote(ctx, block) // persists the vote first: a restarted leader never proposes twice in a view
  ctx.out.push({ _tag: "Broadcast", message: { _tag: "Proposal", block, tc: byQc ? undefined : s.lastTc } })
}

/**
 * The transactions of `block` and its ancestors above the committed height,
 * or undefined if that chain does not reach the committed block (a fork
 * below it) or repeats a transaction.
 */
const walkUncommitted = (ctx: Ctx, block: Block): Set<TxId> | undefined => {
  const { s } = ctx
  const txs = new Set<TxId>()
  let cursor: Block | undefined = block
  while (cursor !== undefined && cursor.height > s.committedHeight) {
    for (const tx of cursor.payload) {
      if (txs.has(tx) || HashSet.has(s.committedTxs, tx)) return undefined
      txs.add(tx)
    }
    cursor = blockOf(ctx, cursor.parentHash)
  }
  if (cursor === undefined || cursor.hash !== s.committedHash) return undefined
  return txs
}

/**
 * The 2-chain voting rule (Jolteon's safe-to-vote): the block's QC is of the
 * view just before it, or this node holds a TC for that view and the block's
 * QC is at least as high as every high-QC view the TC's signers reported.
 */
const isSafe = (ctx: Ctx, block: Block): boolean => {
  if (block.justify.view + 1 === block.view) return true
  const tc = ctx.s.lastTc
  return tc !== undefined && tc.view + 1 === block.view && block.justify.view >= maxHighQcView(tc)
}

const tryVote = (ctx: Ctx, block: Block): void => {
  const { s } = ctx
  if (block.view !== s.view || block.view <= s.lastVotedView || !isSafe(ctx, block)) return
  if (!isMember(ctx.config, ctx.config.self)) return
  castVote(ctx, block)
}

const castVote = (ctx: Ctx, block: Block): void => {
  const { s, config } = ctx
  assert(block.view > s.lastVotedView, `one vote per view (view ${block.view}, last voted ${s.lastVotedView})`)
  s.lastVotedView = block.view
  ctx.out.push({ _tag: "Persist", record: { _tag: "Voted", view: block.view, blockHash: block.hash, block } })
  const signature = config.crypto.sign(config.secretKey, qcDigest(config, { view: block.view, blockHash: block.hash }))
  const vote: Vote = { _tag: "Vote", view: block.view, blockHash: block.hash, voter: config.self, signature }
  send(ctx, leaderOf(config.committee, block.view + 1), vote)
}

const voteKey = (view: View, blockHash: Hash32): string => `${view}:${blockHash}`
const viewOfVoteKey = (key: string): View => Number(key.slice(0, key.indexOf(":")))

const onVote = (ctx: Ctx, from: NodeIndex, vote: Vote): void => {
  const { s, config } = ctx
  const { committee } = config
  if (vote.voter !== from || !isView(vote.view) || vote.view < 1) return
  if (leaderOf(committee, vote.view + 1) !== config.self) return
  if (vote.view < s.view - 1 || vote.view > s.view + VIEWS_AHEAD_MAX) return
  const known = HashMap.get(s.certified, vote.blockHash)
  if (Option.isSome(known) && known.value.view === vote.view) return // already certified
  const key = voteKey(vote.view, vote.blockHash)
  const collected = s.votes.get(key)
  if (collected?.has(from)) return
  const next = new Map(collected ?? [])
  next.set(from, vote.signature)
  const votes = new Map(s.votes)
  votes.set(key, next)
  s.votes = votes
  if (!hasQuorum(committee, stakeOf(committee, next.keys()))) return
  const partials = [...next].map(([i, sig]) => ({ signer: i, signature: sig }))
  const digest = qcDigest(config, vote)
  const certificate = assembleCertificate(committee, config.verifier, digest, partials)
  if (Either.isLeft(certificate)) {
    dropBadSignatures(ctx, "votes", key, badSigners(config.verifier, digest, partials))
    return
  }
  const qc: QuorumCertificate = { view: vote.view, blockHash: vote.blockHash, ...certificate.right }
  s.certified = HashMap.set(s.certified, qc.blockHash, qc)
  // The votes outran the proposal (or it was lost): fetch the block from a voter, who has it.
  if (blockOf(ctx, qc.blockHash) === undefined && !s.detached.has(qc.blockHash)) requestMissing(ctx, qc.blockHash, from)
  processQc(ctx, qc)
}

// ---------------------------------------------------------------------------
// Blocks: proposals and sync

/** What every block must satisfy on its own, before any certificate is checked. */
/** A block's form, its leader and its hash: checked before its QC (no pairing for a block that fails these). */
export const hasValidShape = (config: ConsensusConfig, b: Block): boolean =>
  b.shard === config.committee.shard &&
  b.epoch === config.committee.epoch &&
  isView(b.view) &&
  b.view >= 1 &&
  Number.isSafeInteger(b.height) &&
  b.height >= 1 &&
  b.proposer === leaderOf(config.committee, b.view) &&
  b.parentHash === b.justify.blockHash &&
  b.view > b.justify.view &&
  b.payload.length <= config.blockTxsMax &&
  hasValidHash(b)

const onProposal = (ctx: Ctx, from: NodeIndex, p: Proposal): void => {
  const { s, config } = ctx
  const b = p.block
  if (b.proposer !== from || !hasValidShape(config, b)) return
  const qc = acceptQc(ctx, b.justify)
  if (qc === undefined) return
  processQc(ctx, qc)
  // The TC that justifies the block's view (kept if it is news: it may let this node vote).
  if (p.tc !== undefined && p.tc.view === b.view - 1 && isNewsTc(ctx, p.tc) && acceptTc(ctx, p.tc)) processTc(ctx, p.tc)
  if (blockOf(ctx, b.hash) !== undefined) return
  addDetached(ctx, { ...b, justify: qc })
  connectDetached(ctx)
  if (s.detached.has(b.hash)) requestMissing(ctx, b.hash, from)
}

const onBlockRequest = (ctx: Ctx, from: NodeIndex, blockHash: Hash32): void => {
  const blocks = blocksFor(ctx.config, ctx.s, blockHash)
  if (blocks.length > 0) send(ctx, from, { _tag: "BlockResponse", blocks })
}

/** A block sync answer: `blockHash`'s block and its ancestors above genesis, newest first, at most `syncBlocksMax`. */
export const blocksFor = (config: ConsensusConfig, state: ConsensusState, blockHash: Hash32): ReadonlyArray<Block> => {
  const blocks: Array<Block> = []
  let cursor = Option.getOrUndefined(HashMap.get(state.blocks, blockHash))
  while (cursor !== undefined && cursor.height > config.genesis.height && blocks.length < config.syncBlocksMax) {
    blocks.push(cursor)
    cursor = Option.getOrUndefined(HashMap.get(state.blocks, cursor.parentHash))
  }
  return blocks
}

const onBlockResponse = (ctx: Ctx, from: NodeIndex, response: BlockResponse): void => {
  const { config } = ctx
  let newest: Block | undefined
  for (const b of response.blocks.slice(0, config.syncBlocksMax)) {
    if (blockOf(ctx, b.hash) !== undefined || ctx.s.detached.has(b.hash)) continue
    if (!hasValidShape(config, b)) continue
    const qc = acceptQc(ctx, b.justify)
    if (qc === undefined) continue
    addDetached(ctx, { ...b, justify: qc })
    newest ??= b
  }
  connectDetached(ctx)
  if (newest !== undefined && ctx.s.detached.has(newest.hash)) requestMissing(ctx, newest.hash, from)
}

const addDetached = (ctx: Ctx, block: Block): void => {
  const detached = new Map(ctx.s.detached)
  detached.set(block.hash, block)
  while (detached.size > ctx.config.detachedBlocksMax) detached.delete(detached.keys().next().value!)
  ctx.s.detached = detached
}

/** Ask `from` for the deepest ancestor of `hash` that is neither connected nor waiting. */
const requestMissing = (ctx: Ctx, hash: Hash32, from: NodeIndex): void => {
  let missing = hash
  for (;;) {
    const waiting = ctx.s.detached.get(missing)
    if (waiting === undefined) break
    missing = waiting.parentHash
  }
  if (blockOf(ctx, missing) !== undefined) return
  ctx.out.push({ _tag: "RequestBlock", blockHash: missing, from })
}

/** Connect every waiting block whose parent is connected, then act on each: its QC, its certification, a vote. */
const connectDetached = (ctx: Ctx): void => {
  const { s } = ctx
  let progress = true
  while (progress && s.detached.size > 0) {
    progress = false
    for (const block of s.detached.values()) {
      const parent = blockOf(ctx, block.parentHash)
      if (parent === undefined) continue
      const detached = new Map(s.detached)
      detached.delete(block.hash)
      s.detached = detached
      progress = true
      if (canConnect(ctx, block, parent)) {
        s.blocks = HashMap.set(s.blocks, block.hash, block)
        afterConnect(ctx, block)
      }
      break // the map changed: iterate afresh
    }
  }
}

/** A block extends its parent in height and view, its QC is of its parent's view, and it repeats no transaction. */
const canConnect = (ctx: Ctx, block: Block, parent: Block): boolean => {
  if (block.height !== parent.height + 1 || block.justify.view !== parent.view) return false
  if (block.height <= ctx.s.committedHeight) return false
  const ancestors = walkUncommitted(ctx, parent)
  if (ancestors === undefined) return false
  const own = new Set<TxId>()
  for (const tx of block.payload) {
    if (own.has(tx) || ancestors.has(tx) || HashSet.has(ctx.s.committedTxs, tx)) return false
    own.add(tx)
  }
  return true
}

const afterConnect = (ctx: Ctx, block: Block): void => {
  processQc(ctx, block.justify)
  const qc = HashMap.get(ctx.s.certified, block.hash)
  if (Option.isSome(qc)) updateChain(ctx, qc.value)
  tryVote(ctx, block)
  // A leader whose QC arrived before the block it certifies proposes once the block is here.
  if (block.hash === ctx.s.highQc.blockHash) maybePropose(ctx)
}

// ---------------------------------------------------------------------------
// Payload

const onPayload = (ctx: Ctx, txs: ReadonlyArray<TxId>): void => {
  const { s } = ctx
  const pending = new Set(s.mempool)
  const added: Array<TxId> = []
  for (const tx of txs) {
    if (pending.has(tx) || HashSet.has(s.committedTxs, tx)) continue
    pending.add(tx)
    added.push(tx)
  }
  if (added.length > 0) s.mempool = [...s.mempool, ...added]
}

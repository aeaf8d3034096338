/**
 * The state checker (TigerBeetle's `state_checker.zig`): sees every commit of
 * every node and holds the run to the invariants.
 *
 * - No two different blocks are committed at one height of one shard by
 *   honest nodes (twins are Byzantine: their commits are not held to it).
 * - Every committed block carries a QC that certifies it and verifies with
 *   more than 2/3 of the committee's stake — checked against the real quorum
 *   even when a broken variant runs the nodes on a weaker one.
 * - Each node's commits extend its own previous commit, height by height.
 * - Every transaction is committed at most once per shard.
 * - No QC conflicts with a commit: a QC of view ≥ v, seen in any proposal,
 *   certifies a block extending the block honest nodes committed last at or
 *   below view v (the lemma the 2-chain rule's safety rests on; it breaks
 *   before two commits conflict, so a broken voting rule shows sooner).
 * - Epochs: the commits of a shard form one chain across epochs. A block
 *   naming a handover names the committee the beacon elected for the next
 *   epoch (`invalid-handover`); a node's first commit after its epoch's
 *   handover block is the new epoch's first block, on that epoch's genesis
 *   (`epochGenesisBlock` over the handover block: nothing the old committee
 *   committed after the handover is applied, `post-handover-commit`), and
 *   every block's QC verifies under the committee of its epoch, the one the
 *   handover chain names from the genesis committee on. The simulator adds:
 *   no node signs in an epoch whose committee it is not in
 *   (`observer-signed`).
 * - (in the simulator) replaying a node's records gives its safety state in
 *   each epoch, and honest nodes make progress after GST (with epochs, past
 *   a handover made after GST).
 */
import { Either } from "effect"
import { sha256 } from "../../domain/chain/hash.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import type { Committee } from "../../domain/consensus/committee.js"
import { voteDigest } from "../../domain/consensus/digests.js"
import { type CommitteeVerifier, verifyCertificate } from "../../domain/consensus/quorum.js"
import { epochGenesisBlock } from "../../domain/consensus/state.js"
import type { Block, QuorumCertificate, TxId } from "../../domain/consensus/types.js"
import type { SimNode, SimShard } from "./simulator.js"

/** The simulator's handover entry: `c:<epoch>:<digest>`, the node's format over a simulator-specific committee digest. */
export const HANDOVER_PREFIX = "c:"
export const isHandoverEntry = (tx: TxId): boolean => tx.startsWith(HANDOVER_PREFIX)

export type ViolationKind =
  | "conflicting-commit"
  | "conflicting-qc"
  | "invalid-qc"
  | "commit-order"
  | "double-commit-tx"
  | "invalid-handover"
  | "post-handover-commit"
  | "observer-signed"
  | "replay"
  | "liveness"
  | "assertion"

/** One epoch of a shard's chain as the checker derives it: genesis committee, then each committed handover's. */
interface CheckedEpoch {
  readonly epoch: number
  /** The committee with the real quorum. */
  readonly committee: Committee
  readonly verifier: CommitteeVerifier
  readonly genesis: Block
  /** The handover entry the beacon elected to end it. */
  readonly nextEntry: TxId
}

interface Head {
  readonly height: number
  readonly hash: string
  readonly epoch: CheckedEpoch
  /** This block carried its epoch's handover: the node's next commit is the next epoch's first block. */
  readonly handover: boolean
}

export interface Violation {
  readonly kind: ViolationKind
  readonly detail: string
}

interface ShardHistory {
  readonly shard: SimShard
  /** Height → the block honest nodes committed there, and who did first. */
  readonly blocks: Map<number, { readonly block: Block; readonly by: string }>
  /** Transaction → the block that committed it. */
  readonly txs: Map<TxId, Hash32>
  /** Certificates already verified: `${blockHash}/${signers}`. */
  readonly verifiedQcs: Set<string>
  /** Each node's last commit. */
  readonly heads: Map<number, Head>
  /** Epochs after the genesis one, by `${epoch}:${handover block hash}`. */
  readonly epochs: Map<string, CheckedEpoch>
  readonly epoch0: CheckedEpoch
  /** The height each epoch of the honest history starts at (its genesis's). */
  readonly epochStart: Map<number, number>
  /** Every block seen in a proposal or a commit, for ancestry. */
  readonly seen: Map<Hash32, Block>
  /** QCs already held to the commits: `${view}/${blockHash}`. */
  readonly checkedQcs: Set<string>
}

export class StateChecker {
  violation: Violation | undefined
  commitCount = 0
  /** Handovers in the honest history. */
  handoverCount = 0
  private readonly histories = new Map<number, ShardHistory>()

  addShard(shard: SimShard): void {
    const { honestCommittee, verifier, genesis } = shard.epoch0
    this.histories.set(shard.shard, {
      shard,
      blocks: new Map(),
      txs: new Map(),
      verifiedQcs: new Set(),
      heads: new Map(),
      epochs: new Map(),
      epoch0: { epoch: 0, committee: honestCommittee, verifier, genesis, nextEntry: shard.beacon(1, genesis.parentHash).entry },
      epochStart: new Map([[0, 0]]),
      seen: new Map(),
      checkedQcs: new Set()
    })
  }

  /** The epoch a handover block of `prev` starts: the committee its entry names, from its genesis. */
  private epochAfter(history: ShardHistory, prev: CheckedEpoch, handover: { height: number; hash: string }): CheckedEpoch {
    const key = `${prev.epoch + 1}:${handover.hash}`
    let next = history.epochs.get(key)
    if (next === undefined) {
      const elected = history.shard.beacon(prev.epoch + 1, prev.genesis.parentHash)
      const genesis = epochGenesisBlock(elected.committee, handover.hash as Hash32, handover.height)
      next = {
        epoch: prev.epoch + 1,
        committee: elected.committee,
        verifier: elected.verifier,
        genesis,
        nextEntry: history.shard.beacon(prev.epoch + 2, genesis.parentHash).entry
      }
      history.epochs.set(key, next)
    }
    return next
  }

  fail(kind: ViolationKind, detail: string): void {
    this.violation ??= { kind, detail }
  }

  onCommit(node: SimNode, block: Block, qc: QuorumCertificate): void {
    const history = this.histories.get(node.shard.shard)!
    const head = history.heads.get(node.id) ?? { height: 0, hash: history.epoch0.genesis.hash, epoch: history.epoch0, handover: false }
    // The chain across epochs: after its epoch's handover a node's next block is the next epoch's first.
    const epoch = head.handover ? this.epochAfter(history, head.epoch, head) : head.epoch
    const parent = head.handover ? epoch.genesis.hash : head.hash
    if (block.epoch !== epoch.epoch) {
      return head.handover && block.epoch === head.epoch.epoch
        ? this.fail("post-handover-commit", `${node.name} committed h${block.height} ${block.hash} of epoch ${block.epoch} after that epoch's handover at h${head.height} ${head.hash}`)
        : this.fail("commit-order", `${node.name} committed h${block.height} ${block.hash} of epoch ${block.epoch} on top of h${head.height} ${head.hash} (epoch ${head.epoch.epoch}${head.handover ? ", a handover" : ""})`)
    }
    if (block.height !== head.height + 1 || block.parentHash !== parent) {
      return this.fail("commit-order", `${node.name} committed h${block.height} ${block.hash} on top of h${head.height} ${head.hash}${head.handover ? ` (the handover: the parent must be epoch ${epoch.epoch}'s genesis ${parent})` : ""}`)
    }
    let handover = false
    for (const tx of block.payload) {
      if (!isHandoverEntry(tx)) continue
      if (handover || tx !== epoch.nextEntry) {
        return this.fail("invalid-handover", `${node.name} committed h${block.height} ${block.hash} of epoch ${epoch.epoch} naming ${tx}${handover ? " (a second handover)" : `, the beacon elected ${epoch.nextEntry}`}`)
      }
      handover = true
    }
    history.heads.set(node.id, { height: block.height, hash: block.hash, epoch, handover })
    history.seen.set(block.hash, block)
    if (!this.checkQc(history, node, block, qc, epoch)) return
    if (node.twin) return
    this.commitCount++
    const earlier = history.blocks.get(block.height)
    if (earlier !== undefined) {
      if (earlier.block.hash !== block.hash) {
        this.fail(
          "conflicting-commit",
          `shard ${node.shard.shard} height ${block.height}: ${earlier.by} committed ${earlier.block.hash} (epoch ${earlier.block.epoch} view ${earlier.block.view}), ${node.name} committed ${block.hash} (epoch ${block.epoch} view ${block.view})`
        )
      }
      return
    }
    history.blocks.set(block.height, { block, by: node.name })
    if (!history.epochStart.has(block.epoch)) history.epochStart.set(block.epoch, block.height - 1)
    if (handover) this.handoverCount++
    for (const tx of block.payload) {
      const first = history.txs.get(tx)
      if (first !== undefined && first !== block.hash) {
        return this.fail("double-commit-tx", `shard ${node.shard.shard}: ${tx} committed in ${first} and again in ${block.hash} (h${block.height}) by ${node.name}`)
      }
      history.txs.set(tx, block.hash)
    }
  }

  /** A proposal sent by `node`: remember its block, and hold its QC to the honest commits of its epoch. */
  onProposal(node: SimNode, block: Block): void {
    const history = this.histories.get(node.shard.shard)!
    history.seen.set(block.hash, block)
    const qc = block.justify
    const key = `${block.epoch}/${qc.view}/${qc.blockHash}`
    if (qc.view === 0 || history.checkedQcs.has(key)) return
    history.checkedQcs.add(key)
    // The highest honest commit of the block's epoch of view ≤ qc.view (views rise with height within an epoch;
    // the epoch's blocks are a run of heights from its start, later epochs above them).
    const start = history.epochStart.get(block.epoch)
    if (start === undefined) return
    let lo = start + 1
    let hi = history.blocks.size
    let committed: Block | undefined
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const b = history.blocks.get(mid)?.block
      if (b === undefined) break
      if (b.epoch === block.epoch && b.view <= qc.view) {
        committed = b
        lo = mid + 1
      } else hi = mid - 1
    }
    if (committed === undefined) return
    let cursor = history.seen.get(qc.blockHash)
    while (cursor !== undefined && cursor.height > committed.height) cursor = history.seen.get(cursor.parentHash)
    if (cursor === undefined || cursor.height !== committed.height) return // ancestry unknown here
    if (cursor.hash !== committed.hash) {
      this.fail(
        "conflicting-qc",
        `shard ${node.shard.shard} epoch ${block.epoch}: a QC of view ${qc.view} on ${qc.blockHash} (in ${node.name}'s proposal of view ${block.view}) does not extend h${committed.height} ${committed.hash} (view ${committed.view}) committed by ${history.blocks.get(committed.height)!.by}`
      )
    }
  }

  private checkQc(history: ShardHistory, node: SimNode, block: Block, qc: QuorumCertificate, epoch: CheckedEpoch): boolean {
    const key = `${block.hash}/${bytesToHex(qc.signers)}`
    if (history.verifiedQcs.has(key)) return true
    const { committee: honestCommittee, verifier } = epoch
    const problem =
      qc.blockHash !== block.hash
        ? `certifies ${qc.blockHash}`
        : qc.view !== block.view
          ? `is of view ${qc.view}, the block of view ${block.view}`
          : Either.match(
              verifyCertificate(
                honestCommittee,
                verifier,
                voteDigest(honestCommittee.shard, honestCommittee.epoch, qc.view, qc.blockHash),
                qc
              ),
              { onLeft: (e) => `${e.reason}: ${e.detail}`, onRight: () => undefined }
            )
    if (problem !== undefined) {
      this.fail("invalid-qc", `${node.name} committed h${block.height} ${block.hash} (epoch ${epoch.epoch}) with a QC that ${problem}`)
      return false
    }
    history.verifiedQcs.add(key)
    return true
  }

  highestHonestHeight(shard: SimShard): number {
    let height = 0
    for (const node of shard.nodes) if (!node.twin && node.ledger.length > height) height = node.ledger.length
    return height
  }

  blockCount(): number {
    let n = 0
    for (const h of this.histories.values()) n += h.blocks.size
    return n
  }

  txCount(): number {
    let n = 0
    for (const h of this.histories.values()) n += h.txs.size
    return n
  }

  /** sha256 over every shard's committed history, height by height. */
  historyHash(): string {
    const lines: Array<string> = []
    for (const [shard, h] of [...this.histories].sort((a, b) => a[0] - b[0])) {
      for (const height of [...h.blocks.keys()].sort((a, b) => a - b)) {
        lines.push(`${shard}:${height}:${h.blocks.get(height)!.block.hash}`)
      }
    }
    return bytesToHex(sha256(lines.join("\n"))).slice(2, 18)
  }
}

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
 * - (in the simulator) replaying a node's records gives its safety state,
 *   and honest nodes make progress after GST.
 */
import { Either } from "effect"
import { sha256 } from "../../domain/chain/hash.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { voteDigest } from "../../domain/consensus/digests.js"
import { verifyCertificate } from "../../domain/consensus/quorum.js"
import type { Block, QuorumCertificate, TxId } from "../../domain/consensus/types.js"
import type { SimNode, SimShard } from "./simulator.js"

export type ViolationKind = "conflicting-commit" | "conflicting-qc" | "invalid-qc" | "commit-order" | "double-commit-tx" | "replay" | "liveness" | "assertion"

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
  readonly heads: Map<number, { height: number; hash: Hash32 }>
  /** Every block seen in a proposal or a commit, for ancestry. */
  readonly seen: Map<Hash32, Block>
  /** QCs already held to the commits: `${view}/${blockHash}`. */
  readonly checkedQcs: Set<string>
}

export class StateChecker {
  violation: Violation | undefined
  commitCount = 0
  private readonly histories = new Map<number, ShardHistory>()

  addShard(shard: SimShard): void {
    this.histories.set(shard.shard, {
      shard,
      blocks: new Map(),
      txs: new Map(),
      verifiedQcs: new Set(),
      heads: new Map(),
      seen: new Map(),
      checkedQcs: new Set()
    })
  }

  fail(kind: ViolationKind, detail: string): void {
    this.violation ??= { kind, detail }
  }

  onCommit(node: SimNode, block: Block, qc: QuorumCertificate): void {
    const history = this.histories.get(node.shard.shard)!
    const head = history.heads.get(node.id) ?? { height: 0, hash: node.config.genesis.hash }
    if (block.height !== head.height + 1 || block.parentHash !== head.hash) {
      return this.fail("commit-order", `${node.name} committed h${block.height} ${block.hash} on top of h${head.height} ${head.hash}`)
    }
    history.heads.set(node.id, { height: block.height, hash: block.hash })
    history.seen.set(block.hash, block)
    if (!this.checkQc(history, node, block, qc)) return
    if (node.twin) return
    this.commitCount++
    const earlier = history.blocks.get(block.height)
    if (earlier !== undefined) {
      if (earlier.block.hash !== block.hash) {
        this.fail(
          "conflicting-commit",
          `shard ${node.shard.shard} height ${block.height}: ${earlier.by} committed ${earlier.block.hash} (view ${earlier.block.view}), ${node.name} committed ${block.hash} (view ${block.view})`
        )
      }
      return
    }
    history.blocks.set(block.height, { block, by: node.name })
    for (const tx of block.payload) {
      const first = history.txs.get(tx)
      if (first !== undefined && first !== block.hash) {
        return this.fail("double-commit-tx", `shard ${node.shard.shard}: ${tx} committed in ${first} and again in ${block.hash} (h${block.height}) by ${node.name}`)
      }
      history.txs.set(tx, block.hash)
    }
  }

  /** A proposal sent by `node`: remember its block, and hold its QC to the honest commits. */
  onProposal(node: SimNode, block: Block): void {
    const history = this.histories.get(node.shard.shard)!
    history.seen.set(block.hash, block)
    const qc = block.justify
    const key = `${qc.view}/${qc.blockHash}`
    if (qc.view === 0 || history.checkedQcs.has(key)) return
    history.checkedQcs.add(key)
    // The highest honest commit of view ≤ qc.view (views rise with height along the committed chain).
    let lo = 1
    let hi = history.blocks.size
    let committed: Block | undefined
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const b = history.blocks.get(mid)?.block
      if (b === undefined) break
      if (b.view <= qc.view) {
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
        `shard ${node.shard.shard}: a QC of view ${qc.view} on ${qc.blockHash} (in ${node.name}'s proposal of view ${block.view}) does not extend h${committed.height} ${committed.hash} (view ${committed.view}) committed by ${history.blocks.get(committed.height)!.by}`
      )
    }
  }

  private checkQc(history: ShardHistory, node: SimNode, block: Block, qc: QuorumCertificate): boolean {
    const key = `${block.hash}/${bytesToHex(qc.signers)}`
    if (history.verifiedQcs.has(key)) return true
    const { honestCommittee, verifier } = history.shard
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
      this.fail("invalid-qc", `${node.name} committed h${block.height} ${block.hash} with a QC that ${problem}`)
      return false
    }
    history.verifiedQcs.add(key)
    return true
  }

  highestHonestHeight(shard: SimShard): number {
    let height = 0
    for (const node of shard.nodes) if (!node.twin && node.state.committedHeight > height) height = node.state.committedHeight
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

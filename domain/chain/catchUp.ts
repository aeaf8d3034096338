/**
 * Catch-up from peers' ledgers, on commit evidence. A node that fell an
 * epoch behind applies the ledger blocks its peers applied. A block's own
 * certificate proves only that it was certified, and a certified block can
 * still be abandoned; what proves it committed is the 2-chain rule: its
 * child of the next view, certified (`domain/consensus/step.ts`). So an
 * answer carries blocks from the height asked up to one the peer can prove
 * committed, and that proof: the certificates of the consensus blocks
 * after the last one, each extending the one before, up to a certified
 * direct child of the next view (commonly just the last one's child). Every
 * block before the last is its ancestor (consensus parent hashes), so
 * committed too. The answer stops at the first handover (what follows is
 * another committee's).
 *
 * The answering side finds the proof in its own ledger (the next block,
 * when it is the direct child of the next view) or among the proofs its
 * consensus kept when it committed (`commitProofs`, `proofOf`).
 */
import { Either, Schema } from "effect"
import type { Block } from "./block.js"
import { BftCertificate, CertificateQc } from "./bftCertificate.js"
import { committeeVerifier, consensusCommitteeOf, type ShardCommittee } from "./committees.js"
import type { Hash32 } from "./hash.js"
import type { ShardId } from "./sharding.js"
import { blockHashOf, voteDigest } from "../consensus/digests.js"
import { verifyCertificate } from "../consensus/quorum.js"
import type * as C from "../consensus/types.js"

export class CatchUpRefused extends Schema.TaggedError<CatchUpRefused>()("CatchUpRefused", {
  reason: Schema.Literal(
    /** The blocks are not the heights asked for, one after the other. */
    "WrongHeight",
    /** A block lacks a certificate, is of another shard or epoch, does not extend the one before, or follows a handover. */
    "Unlinked",
    /** Blocks without a proof that the last one committed. */
    "NoCommitProof",
    /** The proof is not a certified child of the last block in the next view. */
    "BadCommitProof"
  ),
  detail: Schema.String
}) {
  override get message() {
    return `catch-up answer refused (${this.reason}): ${this.detail}`
  }
}

/** The certificate of consensus block `block`, which `qc` certifies: what a ledger block carries. */
export const certificateOf = (block: C.Block, qc: C.QuorumCertificate): BftCertificate =>
  new BftCertificate({
    blockHash: block.hash,
    epoch: block.epoch,
    view: block.view,
    height: block.height,
    parentHash: block.parentHash,
    justifyView: block.justify.view,
    justifyHash: block.justify.blockHash,
    proposer: block.proposer,
    payload: block.payload,
    qc: new CertificateQc({ view: qc.view, signers: qc.signers, signature: qc.signature })
  })

/** Whether `child` is `parent`'s direct child of the next view (its QC then commits `parent`). */
const directChild = (parent: BftCertificate, child: BftCertificate): boolean =>
  child.epoch === parent.epoch &&
  child.parentHash === parent.blockHash &&
  child.justifyHash === parent.blockHash &&
  child.justifyView === parent.view &&
  child.view === parent.view + 1

/** The blocks up to and with the first handover (after it, another committee certifies). */
const upToHandover = (blocks: ReadonlyArray<Block>): ReadonlyArray<Block> => {
  const i = blocks.findIndex((b) => b.committee !== undefined)
  return i < 0 ? blocks : blocks.slice(0, i + 1)
}

/**
 * What a node answers a catch-up request with: of `blocks` (what it applied
 * from the height asked, read one beyond `max` so the last can be proven by
 * its successor), the longest prefix of at most `max` it can prove committed,
 * and the proof of its last block. No provable block: an empty answer.
 */
export const provableAnswer = (
  blocks: ReadonlyArray<Block>,
  max: number,
  proofOf: (consensusHash: Hash32) => CommitProof | undefined
): { readonly blocks: ReadonlyArray<Block>; readonly proof: CommitProof } => {
  const run = upToHandover(blocks.slice(0, max))
  for (let j = run.length - 1; j >= 0; j--) {
    const cert = run[j]!.certificate
    if (cert === undefined) continue
    const next = run[j]!.committee === undefined ? blocks[j + 1]?.certificate : undefined
    const proof = next !== undefined && directChild(cert, next) ? [next] : proofOf(cert.blockHash)
    if (proof !== undefined) return { blocks: run.slice(0, j + 1), proof }
  }
  return { blocks: [], proof: [] }
}

/** Most certificates in a commit proof (a commit that followed a run of timeouts may need a few). */
export const COMMIT_PROOF_MAX = 16

/** The certificates after a block up to a certified direct child of the next view (see the module comment). */
export type CommitProof = ReadonlyArray<BftCertificate>

/**
 * The proofs of one commit of the state machine (`batch`: its blocks oldest
 * first, each with its QC; `proof`: the last one's child and its QC) worth
 * keeping: the last block's, and each handover's (after a handover the
 * ledger holds no successor to prove it by).
 */
export const commitProofs = (
  batch: ReadonlyArray<{ readonly block: C.Block; readonly qc: C.QuorumCertificate }>,
  proof: C.CommitProof
): ReadonlyArray<{ readonly blockHash: Hash32; readonly handover: boolean; readonly proof: CommitProof }> => {
  const certs = [...batch.slice(1).map((c) => certificateOf(c.block, c.qc)), certificateOf(proof.child, proof.qc)]
  const out: Array<{ readonly blockHash: Hash32; readonly handover: boolean; readonly proof: CommitProof }> = []
  batch.forEach(({ block }, i) => {
    const handover = block.payload[1]?.startsWith("c:") === true
    const last = i === batch.length - 1
    const chain = certs.slice(i)
    if ((handover || last) && chain.length <= COMMIT_PROOF_MAX) out.push({ blockHash: block.hash, handover, proof: chain })
  })
  return out
}

const refuse = (reason: CatchUpRefused["reason"], detail: string) => Either.left(new CatchUpRefused({ reason, detail }))

/**
 * A catch-up answer against the committee the asking node's ledger holds:
 * the blocks are the heights from `fromHeight` on, of this shard and epoch,
 * each extending the one before, at most the last a handover, and the proof
 * leads from the last one to a certified child of the next view, whose QC
 * holds more than 2/3 of the committee's stake (the one pairing check,
 * last). The ledger then checks each block as it applies it.
 */
export const verifyCatchUp = (
  committee: ShardCommittee,
  shard: ShardId,
  fromHeight: number,
  blocks: ReadonlyArray<Block>,
  proof: CommitProof
): Either.Either<ReadonlyArray<Block>, CatchUpRefused> => {
  if (blocks.length === 0) return Either.right(blocks)
  let previous: BftCertificate | undefined
  for (const [i, block] of blocks.entries()) {
    if (block.header.height !== fromHeight + i) return refuse("WrongHeight", `block ${block.header.height} where ${fromHeight + i} was due`)
    const cert = block.certificate
    if (cert === undefined) return refuse("Unlinked", `block ${block.header.height} carries no certificate`)
    if (block.header.shard !== shard || cert.epoch !== committee.epoch) {
      return refuse("Unlinked", `block ${block.header.height} is of shard ${block.header.shard} epoch ${cert.epoch}, not shard ${shard} epoch ${committee.epoch}`)
    }
    if (previous !== undefined && cert.parentHash !== previous.blockHash) {
      return refuse("Unlinked", `block ${block.header.height} does not extend block ${block.header.height - 1}`)
    }
    if (block.committee !== undefined && i !== blocks.length - 1) return refuse("Unlinked", `blocks after the handover at ${block.header.height}`)
    previous = cert
  }
  const height = blocks[blocks.length - 1]!.header.height
  if (proof.length === 0) return refuse("NoCommitProof", `nothing proves block ${height} committed`)
  if (proof.length > COMMIT_PROOF_MAX) return refuse("BadCommitProof", `a proof of ${proof.length} certificates`)
  let parent = previous!
  for (const [i, cert] of proof.entries()) {
    const justify = { view: cert.justifyView, blockHash: cert.justifyHash, signers: new Uint8Array(), signature: new Uint8Array() }
    const fields = { shard, epoch: cert.epoch, view: cert.view, height: cert.height, parentHash: cert.parentHash, justify, proposer: cert.proposer, payload: cert.payload }
    if (blockHashOf(fields) !== cert.blockHash) return refuse("BadCommitProof", `certificate ${i} of the proof does not hash to ${cert.blockHash}`)
    if (cert.epoch !== committee.epoch || cert.parentHash !== parent.blockHash || cert.justifyHash !== parent.blockHash || cert.justifyView !== parent.view) {
      return refuse("BadCommitProof", `certificate ${i} of the proof (view ${cert.view}) does not extend the block before it`)
    }
    if (i < proof.length - 1) parent = cert
  }
  const child = proof[proof.length - 1]!
  if (!directChild(parent, child)) {
    return refuse("BadCommitProof", `the proof ends in view ${child.view}, not in the view after its parent's (${parent.view})`)
  }
  if (child.qc.view !== child.view) return refuse("BadCommitProof", `a QC of view ${child.qc.view} for a block of view ${child.view}`)
  const verifier = committeeVerifier(committee.members)
  if (Either.isLeft(verifier)) return refuse("BadCommitProof", `the committee's keys: ${verifier.left}`)
  const qc = { view: child.qc.view, blockHash: child.blockHash, signers: child.qc.signers, signature: child.qc.signature }
  const ok = verifyCertificate(consensusCommitteeOf(committee), verifier.right, voteDigest(shard, child.epoch, child.view, child.blockHash), qc)
  if (Either.isLeft(ok)) return refuse("BadCommitProof", `the proof's QC: ${ok.left.reason}: ${ok.left.detail}`)
  return Either.right(blocks)
}

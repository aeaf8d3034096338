/**
 * BFT blocks: a ledger block made from a block that chained HotStuff
 * committed (`domain/consensus`), certified by that block's quorum
 * certificate instead of one proposer's signature.
 *
 * Consensus orders opaque ids (`TxId`); a block's payload is, in order:
 *
 *   "t:<ms>"              exactly one, first: the leader's clock when it proposed
 *   "c:<epoch>:<digest>"  at most one: the handover to the committee the beacon
 *                         elected for `epoch` (`committeeDigest`)
 *   "r:<receiptId>"       cross-shard receipts to credit, in the order to credit them
 *   "<txHash>"            transactions, in the order to execute them
 *
 * Every node turns a committed consensus block into the same ledger block:
 * height and parent from the ledger, eventsRoot the ledger's last,
 * timestamp max(parent's, t), the payload's transactions and the receipts
 * not yet credited, the proposer the leader's secp256k1 address, and the
 * `BftCertificate`: the consensus block's fields and its QC. The ledger
 * checks that certificate (`verifyCertifiedBlock`): the block hash it
 * recomputes from those fields is the one the QC signed, the QC holds more
 * than 2/3 of the committee's stake (one BLS pairing check), the payload is
 * exactly this block's body, and the consensus parent is the previous
 * certified block. A QC proves the block was certified, not that it was
 * committed (a 2-chain proof would add its child); the ledger takes blocks
 * only from its own node's commits.
 *
 * Epochs. The ledger holds the committee that certifies its next block. A
 * block whose payload names a handover carries the new committee in full
 * (`committee`); once it is applied, the next block must be of that epoch,
 * certified by that committee, and extend that epoch's consensus genesis
 * (`epochGenesisHash`: it binds the handover block). Blocks the old committee
 * certified after the handover are never applied (every node stops its epoch
 * at the same block, the first committed handover).
 */
import { Either } from "effect"
import type { Block } from "./block.js"
import { BlockRejected } from "./block.js"
import type { Hash32 } from "./hash.js"
import { ZERO_HASH } from "./hash.js"
import type { ShardId } from "./sharding.js"
import { committeeDigest, committeeVerifier, consensusCommitteeOf, type ShardCommittee } from "./committees.js"
import { blockHashOf, voteDigest } from "../consensus/digests.js"
import { epochGenesisBlock } from "../consensus/state.js"
import { verifyCertificate } from "../consensus/quorum.js"
import type { TxId } from "../consensus/types.js"
export { BftCertificate, BytesHex, CertificateQc } from "./bftCertificate.js"

// ---------------------------------------------------------------- payload entries

export const TIMESTAMP_PREFIX = "t:"
export const HANDOVER_PREFIX = "c:"
export const RECEIPT_PREFIX = "r:"
const TX_ID = /^0x[0-9a-f]{64}$/
const TIMESTAMP = /^t:(0|[1-9][0-9]{0,15})$/
const HANDOVER = /^c:([1-9][0-9]{0,8}):(0x[0-9a-f]{64})$/

export const timestampEntry = (ms: number): TxId => `${TIMESTAMP_PREFIX}${ms}`
export const receiptEntry = (receiptId: Hash32): TxId => `${RECEIPT_PREFIX}${receiptId}`
export const handoverEntry = (committee: ShardCommittee): TxId =>
  `${HANDOVER_PREFIX}${committee.epoch}:${committeeDigest(committee)}`

export interface Handover {
  readonly epoch: number
  readonly digest: Hash32
}

export interface ParsedPayload {
  readonly timestamp: number
  readonly handover: Handover | undefined
  readonly receiptIds: ReadonlyArray<Hash32>
  readonly txHashes: ReadonlyArray<Hash32>
}

/** The payload's parts, or why it is not a well-formed payload (see the module comment for the order). */
export const parsePayload = (payload: ReadonlyArray<TxId>): Either.Either<ParsedPayload, string> => {
  const first = payload[0]
  const t = first === undefined ? null : TIMESTAMP.exec(first)
  if (t === null) return Either.left(`the payload does not start with a timestamp (${first ?? "empty"})`)
  const timestamp = Number(t[1])
  if (!Number.isSafeInteger(timestamp)) return Either.left(`timestamp ${t[1]} out of range`)
  const receiptIds: Array<Hash32> = []
  const txHashes: Array<Hash32> = []
  let handover: Handover | undefined
  let i = 1
  const c = payload[1] === undefined ? null : HANDOVER.exec(payload[1])
  if (c !== null) {
    handover = { epoch: Number(c[1]), digest: c[2] as Hash32 }
    i = 2
  }
  for (; i < payload.length; i++) {
    const entry = payload[i]!
    if (entry.startsWith(HANDOVER_PREFIX)) return Either.left(`handover entry ${entry.slice(0, 80)} not right after the timestamp`)
    if (entry.startsWith(RECEIPT_PREFIX)) {
      const id = entry.slice(RECEIPT_PREFIX.length)
      if (txHashes.length > 0) return Either.left(`receipt ${id} after transactions`)
      if (!TX_ID.test(id)) return Either.left(`malformed receipt entry ${entry}`)
      receiptIds.push(id as Hash32)
    } else if (TX_ID.test(entry)) {
      txHashes.push(entry as Hash32)
    } else {
      return Either.left(`malformed payload entry ${entry.slice(0, 80)}`)
    }
  }
  return Either.right({ timestamp, handover, receiptIds, txHashes })
}

/**
 * Where a committee's consensus chain starts (`epochGenesisBlock`): the first
 * epoch's at height 0 (`parent` ZERO_HASH), a later one's on the block that
 * handed over to it (its consensus hash and height).
 */
export const epochGenesisHash = (committee: ShardCommittee, parent: Hash32, height: number): Hash32 =>
  epochGenesisBlock(consensusCommitteeOf(committee), parent, height).hash

/** The first epoch's consensus genesis hash of a shard: the first certified block's parent. */
export const consensusGenesisHash = (committee: ShardCommittee): Hash32 => epochGenesisHash(committee, ZERO_HASH, 0)

// ---------------------------------------------------------------- verification

const reject = (reason: BlockRejected["reason"], detail: string) => Either.left(new BlockRejected({ reason, detail }))

export interface CertifiedParent {
  /** The consensus hash of the last certified block, or the consensus genesis' at height 0. */
  readonly consensusHash: Hash32
  readonly lastTimestamp: number
  readonly isReceived: (receiptId: Hash32) => boolean
}

/**
 * A BFT block against its committee, in order: the certificate is there,
 * its fields hash to its block hash, that block extends the last certified
 * one at the same height, the leader is the header's proposer, the payload
 * is this block's body and time, and the QC verifies (last: the costly check).
 */
export const verifyCertifiedBlock = (
  committee: ShardCommittee,
  parent: CertifiedParent,
  block: Block
): Either.Either<void, BlockRejected> => {
  const c = block.certificate
  const h = block.header
  if (c === undefined) return reject("CertificateMissing", `block ${h.height} of a BFT chain carries no certificate`)
  const shard = h.shard
  if (c.epoch !== committee.epoch) return reject("BadCertificate", `epoch ${c.epoch}; this shard's committee is of epoch ${committee.epoch}`)
  const justify = { view: c.justifyView, blockHash: c.justifyHash, signers: new Uint8Array(), signature: new Uint8Array() }
  const recomputed = blockHashOf({
    shard,
    epoch: c.epoch,
    view: c.view,
    height: c.height,
    parentHash: c.parentHash,
    justify,
    proposer: c.proposer,
    payload: c.payload
  })
  if (recomputed !== c.blockHash) return reject("BadCertificate", `fields hash to ${recomputed}, certificate names ${c.blockHash}`)
  if (c.height !== h.height) return reject("BadCertificate", `consensus height ${c.height} for block ${h.height}`)
  if (c.parentHash !== parent.consensusHash || c.justifyHash !== c.parentHash || c.justifyView >= c.view) {
    return reject("BadCertificate", `consensus parent ${c.parentHash}, expected ${parent.consensusHash}`)
  }
  const leader = committee.members[c.proposer]
  if (leader === undefined || leader.address !== h.proposer) {
    return reject("BadCertificate", `seat ${c.proposer} is not proposer ${h.proposer}`)
  }
  const payload = parsePayload(c.payload)
  if (Either.isLeft(payload)) return reject("BadCertificate", payload.left)
  const { timestamp, handover, receiptIds, txHashes } = payload.right
  const next = block.committee
  if (handover === undefined && next !== undefined) return reject("BadCertificate", "a committee without a handover in the payload")
  if (handover !== undefined) {
    if (next === undefined) return reject("BadCertificate", `the handover to epoch ${handover.epoch} carries no committee`)
    if (handover.epoch !== committee.epoch + 1 || next.epoch !== handover.epoch || next.shard !== shard) {
      return reject("BadCertificate", `a handover from epoch ${committee.epoch} to epoch ${handover.epoch} (committee of shard ${next.shard}, epoch ${next.epoch})`)
    }
    const digest = committeeDigest(next)
    if (digest !== handover.digest) return reject("BadCertificate", `the committee hashes to ${digest}, the payload names ${handover.digest}`)
    if (Either.isLeft(committeeVerifier(next.members))) return reject("BadCertificate", "the next committee's keys are unusable")
  }
  if (h.timestamp !== Math.max(parent.lastTimestamp, timestamp)) {
    return reject("BadCertificate", `timestamp ${h.timestamp}, the payload's time gives ${Math.max(parent.lastTimestamp, timestamp)}`)
  }
  if (txHashes.length !== block.transactions.length || txHashes.some((tx, i) => block.transactions[i]!.hash !== tx)) {
    return reject("BadCertificate", "the transactions are not the payload's")
  }
  const receipts = creditableReceipts(receiptIds, parent.isReceived)
  if (receipts.length !== block.receipts.length || receipts.some((id, i) => block.receipts[i]!.receiptId !== id)) {
    return reject("BadCertificate", "the receipts are not the payload's")
  }
  if (c.qc.view !== c.view) return reject("BadCertificate", `QC of view ${c.qc.view} for a block of view ${c.view}`)
  const verifier = committeeVerifier(committee.members)
  if (Either.isLeft(verifier)) return reject("BadCertificate", `the committee's keys: ${verifier.left}`)
  const ok = verifyCertificate(consensusCommitteeOf(committee), verifier.right, voteDigest(shard, c.epoch, c.view, c.blockHash), c.qc)
  if (Either.isLeft(ok)) return reject("BadCertificate", `QC: ${ok.left.reason}: ${ok.left.detail}`)
  return Either.void
}

/**
 * The receipts a block credits: the payload's, first time each, less those
 * the shard already credited. The same on every node, because the ledger
 * state before the block is.
 */
export const creditableReceipts = (
  receiptIds: ReadonlyArray<Hash32>,
  isReceived: (receiptId: Hash32) => boolean
): ReadonlyArray<Hash32> => {
  const seen = new Set<Hash32>()
  const out: Array<Hash32> = []
  for (const id of receiptIds) {
    if (seen.has(id) || isReceived(id)) continue
    seen.add(id)
    out.push(id)
  }
  return out
}

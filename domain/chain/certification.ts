/**
 * BFT blocks: a ledger block made from a block that chained HotStuff
 * committed (`domain/consensus`), certified by that block's quorum
 * certificate instead of one proposer's signature.
 *
 * Consensus orders opaque ids (`TxId`); a block's payload is, in order:
 *
 *   "t:<ms>"            exactly one, first: the leader's clock when it proposed
 *   "r:<receiptId>"     cross-shard receipts to credit, in the order to credit them
 *   "<txHash>"          transactions, in the order to execute them
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
 * committed (a 3-chain proof would add its two descendants); the ledger
 * takes blocks only from its own node's commits.
 */
import { Either } from "effect"
import type { Block } from "./block.js"
import { BlockRejected } from "./block.js"
import type { Hash32 } from "./hash.js"
import { ZERO_HASH } from "./hash.js"
import type { ShardId } from "./sharding.js"
import type { GenesisValidator } from "./validators.js"
import { COMMITTEE_EPOCH, committeeOf, committeeVerifierOf } from "./validators.js"
import { blockHashOf, voteDigest } from "../consensus/digests.js"
import { verifyCertificate } from "../consensus/quorum.js"
import type { TxId } from "../consensus/types.js"
export { BftCertificate, BytesHex, CertificateQc } from "./bftCertificate.js"

// ---------------------------------------------------------------- payload entries

export const TIMESTAMP_PREFIX = "t:"
export const RECEIPT_PREFIX = "r:"
const TX_ID = /^0x[0-9a-f]{64}$/
const TIMESTAMP = /^t:(0|[1-9][0-9]{0,15})$/

export const timestampEntry = (ms: number): TxId => `${TIMESTAMP_PREFIX}${ms}`
export const receiptEntry = (receiptId: Hash32): TxId => `${RECEIPT_PREFIX}${receiptId}`

export interface ParsedPayload {
  readonly timestamp: number
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
  for (let i = 1; i < payload.length; i++) {
    const entry = payload[i]!
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
  return Either.right({ timestamp, receiptIds, txHashes })
}

/** The consensus genesis block's hash of a shard (`genesisBlock` of `domain/consensus/state.ts`): the first certified block's parent. */
export const consensusGenesisHash = (shard: ShardId): Hash32 =>
  blockHashOf({
    shard,
    epoch: COMMITTEE_EPOCH,
    view: 0,
    height: 0,
    parentHash: ZERO_HASH,
    justify: { view: 0, blockHash: ZERO_HASH, signers: new Uint8Array(), signature: new Uint8Array() },
    proposer: 0,
    payload: []
  })

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
  validators: ReadonlyArray<GenesisValidator>,
  parent: CertifiedParent,
  block: Block
): Either.Either<void, BlockRejected> => {
  const c = block.certificate
  const h = block.header
  if (c === undefined) return reject("CertificateMissing", `block ${h.height} of a BFT chain carries no certificate`)
  const shard = h.shard
  if (c.epoch !== COMMITTEE_EPOCH) return reject("BadCertificate", `epoch ${c.epoch}; committees have epoch ${COMMITTEE_EPOCH}`)
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
  const leader = validators[c.proposer]
  if (leader === undefined || leader.address !== h.proposer) {
    return reject("BadCertificate", `seat ${c.proposer} is not proposer ${h.proposer}`)
  }
  const payload = parsePayload(c.payload)
  if (Either.isLeft(payload)) return reject("BadCertificate", payload.left)
  const { timestamp, receiptIds, txHashes } = payload.right
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
  const verifier = committeeVerifierOf(validators)
  if (Either.isLeft(verifier)) return reject("BadCertificate", `the committee's keys: ${verifier.left}`)
  const committee = committeeOf(validators, shard)
  const ok = verifyCertificate(committee, verifier.right, voteDigest(shard, c.epoch, c.view, c.blockHash), c.qc)
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

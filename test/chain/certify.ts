/**
 * A ledger's next BFT block, certified the way consensus would certify it:
 * a consensus block on the ledger's last certified one, signed by chosen
 * seats of a committee (the ledger's own by default), turned into the ledger
 * block every node builds. Tests of certificates and handovers use it to
 * make good blocks and, by their options, bad ones.
 */
import { Either } from "effect"
import { BftCertificate, CertificateQc } from "../../domain/chain/bftCertificate.js"
import { type Block, buildCertifiedBlock } from "../../domain/chain/block.js"
import { receiptEntry, timestampEntry } from "../../domain/chain/certification.js"
import { committeeVerifier, type ShardCommittee } from "../../domain/chain/committees.js"
import type { LedgerState } from "../../domain/chain/ledgerState.js"
import type { CrossShardReceipt } from "../../domain/chain/receipt.js"
import type { Transaction } from "../../domain/chain/transaction.js"
import { devValidatorKeys, devValidators } from "../../domain/chain/validators.js"
import { blsQuorumCrypto } from "../../domain/consensus/bls.js"
import { makeBlock, voteDigest } from "../../domain/consensus/digests.js"
import { bitmapOf } from "../../domain/consensus/quorum.js"

/** The BLS secret key of each of the first dev validators, by address. */
const DEV_KEYS = 8
const secretByAddress = new Map(devValidators(DEV_KEYS).map((v, i) => [v.address as string, devValidatorKeys(i).bls.secretKey]))

export interface CertifyOptions {
  /** Seats that sign (default: every member). Below the quorum the QC is aggregated by hand, as a forger would. */
  readonly signers?: ReadonlyArray<number>
  /** The committee that signs (default: the one the ledger expects). */
  readonly committee?: ShardCommittee
  /** Payload entries between the timestamp and the receipts (a handover's). */
  readonly extra?: ReadonlyArray<string>
  /** The committee the block carries (a handover's). */
  readonly next?: ShardCommittee
  readonly receipts?: ReadonlyArray<CrossShardReceipt>
  /** The leader's seat (default 0). */
  readonly proposer?: number
}

export const certifiedBlock = (state: LedgerState, txs: ReadonlyArray<Transaction> = [], options: CertifyOptions = {}): Block => {
  const committee = options.committee ?? state.committee!
  const { shard } = state
  const epoch = committee.epoch
  const height = state.height + 1
  // Views restart with each epoch's chain; one block a view.
  const view = height - (state.committeeStart?.height ?? 0)
  const proposer = options.proposer ?? 0
  const signers = options.signers ?? committee.members.map((_, i) => i)
  const parentHash = state.lastCertifiedHash!
  const timestamp = state.lastTimestamp + 1_000
  const receipts = options.receipts ?? []
  const payload = [timestampEntry(timestamp), ...(options.extra ?? []), ...receipts.map((r) => receiptEntry(r.receiptId)), ...txs.map((t) => t.hash)]
  const justify = { view: view - 1, blockHash: parentHash, signers: new Uint8Array(), signature: new Uint8Array() }
  const block = makeBlock({ shard, epoch, view, height, parentHash, justify, proposer, payload })
  const digest = voteDigest(shard, epoch, view, block.hash)
  const signatures = signers.map((i) => blsQuorumCrypto.sign(secretByAddress.get(committee.members[i]!.address)!, digest))
  const signature = Either.getOrThrow(Either.getOrThrow(committeeVerifier(committee.members)).aggregate(signatures))
  const certificate = new BftCertificate({
    blockHash: block.hash,
    epoch,
    view,
    height,
    parentHash,
    justifyView: view - 1,
    justifyHash: parentHash,
    proposer,
    payload,
    qc: new CertificateQc({ view, signers: bitmapOf(committee.members.length, signers), signature })
  })
  return buildCertifiedBlock({
    chainId: state.chain!.chainId,
    shard,
    height,
    parentHash: state.lastBlockHash,
    eventsRoot: state.lastEventsRoot,
    timestamp,
    proposer: committee.members[proposer]!.address,
    transactions: txs,
    receipts,
    certificate,
    committee: options.next
  })
}

/**
 * BFT blocks on the ledger: a block made from a certified consensus block is
 * applied; one whose QC, payload, parent or proposer is wrong is refused
 * with the reason, and a single-producer block is refused on a BFT chain.
 */
import { describe, expect, it } from "vitest"
import { Either } from "effect"
import { Block, buildCertifiedBlock } from "../../domain/chain/block.js"
import { BftCertificate, CertificateQc } from "../../domain/chain/bftCertificate.js"
import { consensusGenesisHash, epochGenesisHash, handoverEntry } from "../../domain/chain/certification.js"
import { committeeDigest, genesisCommittee, ShardCommittee } from "../../domain/chain/committees.js"
import { GenesisConfig, genesisCommand } from "../../domain/chain/genesis.js"
import { ApplyBlock, makeLedger } from "../../domain/chain/ledger.js"
import type { LedgerState } from "../../domain/chain/ledger.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { devValidators } from "../../domain/chain/validators.js"
import type { Transaction } from "../../domain/chain/transaction.js"
import { certifiedBlock, type CertifyOptions } from "./certify.js"
import { accountsOn, CHAIN_ID, dev, GENESIS_TIME, nextBlock, transfer } from "./helpers.js"

const validators = devValidators(4)
const config = new GenesisConfig({ chainId: CHAIN_ID, timestamp: GENESIS_TIME, devAccountCount: 24, devBalance: 1_000_000n, validators })
const shard = 1 as ShardId
const ledger = makeLedger(shard)
const genesisState = (): LedgerState => {
  const events = Either.getOrThrow(ledger.decide(ledger.initialState, genesisCommand(config, shard)))
  return events.reduce(ledger.evolve, ledger.initialState)
}

/** Certified by 3 of 4 unless told otherwise, led by seat 1. */
const certified = (state: LedgerState, txs: ReadonlyArray<Transaction>, options: CertifyOptions = {}) =>
  certifiedBlock(state, txs, { signers: [0, 1, 2], proposer: 1, ...options })

const apply = (state: LedgerState, block: ReturnType<typeof certified>): LedgerState =>
  Either.getOrThrow(ledger.decide(state, new ApplyBlock({ block }))).reduce(ledger.evolve, state)

const reason = (state: LedgerState, block: ReturnType<typeof certified>) => {
  const r = ledger.decide(state, new ApplyBlock({ block }))
  return Either.isLeft(r) ? r.left.reason : "applied"
}

describe("BFT blocks on the ledger", () => {
  const state = genesisState()
  const sender = accountsOn(shard)[0]!
  const tx = transfer(sender.key, { to: dev[1]!.address, amount: 5n, nonce: 0n })
  const good = certified(state, [tx])

  it("applies a block certified by 3 of 4 validators", () => {
    expect(reason(state, good)).toBe("applied")
  })

  it("refuses a QC below the quorum, a forged QC, another payload, another proposer, a single producer's block", () => {
    expect(reason(state, certified(state, [tx], { signers: [0, 1] }))).toBe("BadCertificate")
    const sig = Uint8Array.from(good.certificate!.qc.signature)
    sig[10]! ^= 1
    const forgedQc = new BftCertificate({ ...good.certificate!, qc: new CertificateQc({ ...good.certificate!.qc, signature: sig }) })
    expect(reason(state, new Block({ ...good, certificate: forgedQc }))).toBe("BadCertificate")
    const otherBody = certified(state, [])
    expect(reason(state, buildCertifiedBlock({ ...paramsOf(good), transactions: [], certificate: good.certificate! }))).toBe("BadCertificate")
    expect(reason(state, buildCertifiedBlock({ ...paramsOf(good), proposer: validators[2]!.address }))).toBe("BadCertificate")
    expect(reason(state, buildCertifiedBlock({ ...paramsOf(good), timestamp: GENESIS_TIME + 6 }))).toBe("BadCertificate")
    expect(reason(state, otherBody)).toBe("applied")
    expect(reason(state, nextBlock(state, [tx]))).toBe("CertificateMissing")
  })
})

const paramsOf = (b: ReturnType<typeof certified>) => ({
  chainId: b.header.chainId,
  shard: b.header.shard,
  height: b.header.height,
  parentHash: b.header.parentHash,
  eventsRoot: b.header.eventsRoot,
  timestamp: b.header.timestamp,
  proposer: b.header.proposer,
  transactions: b.transactions,
  receipts: b.receipts,
  certificate: b.certificate!
})

describe("handover to the next epoch's committee", () => {
  const state = genesisState()
  // Epoch 1: validator 0 left, validator 4 joined, in the election's seat order.
  const all = devValidators(6)
  const next = new ShardCommittee({ shard, epoch: 1, members: [all[4]!, all[2]!, all[1]!, all[3]!] })
  const handover = certified(state, [], { extra: [handoverEntry(next)], next })

  it("starts from the genesis validators, on the first epoch's consensus genesis", () => {
    expect(state.committee).toEqual(genesisCommittee(validators, shard))
    expect(state.lastCertifiedHash).toBe(consensusGenesisHash(genesisCommittee(validators, shard)))
  })

  it("a certified handover installs the committee; the next block is its, on its epoch genesis", () => {
    const after = apply(state, handover)
    expect(after.committee).toEqual(next)
    expect(after.lastCertifiedHash).toBe(epochGenesisHash(next, handover.certificate!.blockHash, 1))
    const block2 = certified(after, [])
    expect(block2.certificate!.epoch).toBe(1)
    expect(reason(after, block2)).toBe("applied")
    // The old committee can no longer certify: its epoch is over, even with a valid QC of its own.
    expect(reason(after, certified(after, [], { committee: state.committee! }))).toBe("BadCertificate")
    // Nor can a QC of the old members under the new epoch's number (different keys sign the seats).
    const oldKeys = new ShardCommittee({ ...next, members: validators as [typeof validators[0], ...typeof validators] })
    expect(reason(after, certified(after, [], { committee: oldKeys }))).toBe("BadCertificate")
  })

  it("refuses a handover whose committee is missing, differs from the digest, skips an epoch or is another shard's", () => {
    expect(reason(state, certified(state, [], { extra: [handoverEntry(next)] }))).toBe("BadCertificate")
    expect(reason(state, certified(state, [], { next }))).toBe("BadCertificate")
    const swapped = new ShardCommittee({ ...next, members: [all[2]!, all[4]!, all[1]!, all[3]!] })
    expect(committeeDigest(swapped)).not.toBe(committeeDigest(next)) // seat order is part of the committee
    expect(reason(state, certified(state, [], { extra: [handoverEntry(next)], next: swapped }))).toBe("BadCertificate")
    const skip = new ShardCommittee({ ...next, epoch: 2 })
    expect(reason(state, certified(state, [], { extra: [handoverEntry(skip)], next: skip }))).toBe("BadCertificate")
    const otherShard = new ShardCommittee({ ...next, shard: 2 as ShardId })
    expect(reason(state, certified(state, [], { extra: [handoverEntry(otherShard)], next: otherShard }))).toBe("BadCertificate")
    expect(reason(state, handover)).toBe("applied")
  })

  it("a handover entry anywhere but right after the timestamp is a malformed payload", () => {
    const tx = transfer(accountsOn(shard)[0]!.key, { to: dev[1]!.address, amount: 5n, nonce: 0n })
    const late = certified(state, [], { extra: [`r:${tx.hash}`, handoverEntry(next)], next })
    expect(reason(state, late)).toBe("BadCertificate")
  })
})

/**
 * BFT blocks on the ledger: a block made from a certified consensus block is
 * applied; one whose QC, payload, parent or proposer is wrong is refused
 * with the reason, and a single-producer block is refused on a BFT chain.
 */
import { describe, expect, it } from "vitest"
import { Either } from "effect"
import { Block, buildCertifiedBlock } from "../../domain/chain/block.js"
import { BftCertificate, CertificateQc } from "../../domain/chain/bftCertificate.js"
import { consensusGenesisHash, timestampEntry } from "../../domain/chain/certification.js"
import { GenesisConfig, genesisCommand } from "../../domain/chain/genesis.js"
import { ApplyBlock, makeLedger } from "../../domain/chain/ledger.js"
import type { LedgerState } from "../../domain/chain/ledger.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { committeeOf, committeeVerifierOf, devValidatorKeys, devValidators } from "../../domain/chain/validators.js"
import { blsQuorumCrypto } from "../../domain/consensus/bls.js"
import { makeBlock, voteDigest } from "../../domain/consensus/digests.js"
import { assembleCertificate, bitmapOf } from "../../domain/consensus/quorum.js"
import type { Transaction } from "../../domain/chain/transaction.js"
import { accountsOn, CHAIN_ID, dev, GENESIS_TIME, nextBlock, transfer } from "./helpers.js"

const validators = devValidators(4)
const config = new GenesisConfig({ chainId: CHAIN_ID, timestamp: GENESIS_TIME, devAccountCount: 24, devBalance: 1_000_000n, validators })
const shard = 1 as ShardId
const ledger = makeLedger(shard)
const genesisState = (): LedgerState => {
  const events = Either.getOrThrow(ledger.decide(ledger.initialState, genesisCommand(config, shard)))
  return events.reduce(ledger.evolve, ledger.initialState)
}

/** A consensus block on the genesis, certified by seats `signers`, as the ledger block every node builds. */
const certified = (state: LedgerState, txs: ReadonlyArray<Transaction>, signers: ReadonlyArray<number> = [0, 1, 2]) => {
  const committee = committeeOf(validators, shard)
  const genesisHash = consensusGenesisHash(shard)
  const payload = [timestampEntry(GENESIS_TIME + 5), ...txs.map((t) => t.hash)]
  const justify = { view: 0, blockHash: genesisHash, signers: new Uint8Array(1), signature: new Uint8Array() }
  const block = makeBlock({ shard, epoch: 0, view: 1, height: 1, parentHash: genesisHash, justify, proposer: 1, payload })
  const digest = voteDigest(shard, 0, 1, block.hash)
  const verifier = Either.getOrThrow(committeeVerifierOf(validators))
  const partials = signers.map((i) => ({ signer: i, signature: blsQuorumCrypto.sign(devValidatorKeys(i).bls.secretKey, digest) }))
  // Below the quorum `assembleCertificate` refuses: aggregate by hand, as a forger would.
  const qc =
    signers.length >= 3
      ? Either.getOrThrow(assembleCertificate(committee, verifier, digest, partials))
      : { signers: bitmapOf(4, signers), signature: Either.getOrThrow(verifier.aggregate(partials.map((p) => p.signature))) }
  const certificate = new BftCertificate({
    blockHash: block.hash,
    epoch: 0,
    view: 1,
    height: 1,
    parentHash: genesisHash,
    justifyView: 0,
    justifyHash: genesisHash,
    proposer: 1,
    payload,
    qc: new CertificateQc({ view: 1, signers: qc.signers, signature: qc.signature })
  })
  return buildCertifiedBlock({
    chainId: CHAIN_ID,
    shard,
    height: 1,
    parentHash: state.lastBlockHash,
    eventsRoot: state.lastEventsRoot,
    timestamp: GENESIS_TIME + 5,
    proposer: validators[1]!.address,
    transactions: txs,
    receipts: [],
    certificate
  })
}

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
    expect(reason(state, certified(state, [tx], [0, 1]))).toBe("BadCertificate")
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

/**
 * Catch-up answers on commit evidence: blocks from a peer's ledger are taken
 * only with the certified child of the last one in the next view; anything
 * else is refused with its reason, and the answering side proves what it
 * sends from its own ledger or from the proofs its consensus kept.
 */
import { describe, expect, it } from "vitest"
import { Either } from "effect"
import { Block } from "../../domain/chain/block.js"
import { BftCertificate, CertificateQc } from "../../domain/chain/bftCertificate.js"
import { certificateOf, commitProofs, provableAnswer, verifyCatchUp } from "../../domain/chain/catchUp.js"
import { genesisCommittee } from "../../domain/chain/committees.js"
import { GenesisConfig, genesisCommand } from "../../domain/chain/genesis.js"
import { ApplyBlock, makeLedger } from "../../domain/chain/ledger.js"
import type { LedgerState } from "../../domain/chain/ledger.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { devValidators } from "../../domain/chain/validators.js"
import { makeBlock } from "../../domain/consensus/digests.js"
import { certifiedBlock, type CertifyOptions } from "./certify.js"
import { CHAIN_ID, GENESIS_TIME } from "./helpers.js"

const validators = devValidators(4)
const config = new GenesisConfig({ chainId: CHAIN_ID, timestamp: GENESIS_TIME, devAccountCount: 4, validators })
const shard = 1 as ShardId
const ledger = makeLedger(shard)
const genesis: LedgerState = Either.getOrThrow(ledger.decide(ledger.initialState, genesisCommand(config, shard))).reduce(
  ledger.evolve,
  ledger.initialState
)
const committee = genesis.committee!

const certified = (state: LedgerState, options: CertifyOptions = {}) => certifiedBlock(state, [], { signers: [0, 1, 2], proposer: 1, ...options })
const apply = (state: LedgerState, block: Block): LedgerState =>
  Either.getOrThrow(ledger.decide(state, new ApplyBlock({ block }))).reduce(ledger.evolve, state)

/** Four certified blocks of consecutive views on genesis (each the direct child of the one before). */
const chain: Array<Block> = []
for (let state = genesis, i = 0; i < 4; i++) {
  const block = certified(state)
  chain.push(block)
  state = apply(state, block)
}
const [b1, b2, b3, b4] = chain as [Block, Block, Block, Block]
const cert = (b: Block) => b.certificate!

const refusal = (blocks: ReadonlyArray<Block>, proof: ReadonlyArray<BftCertificate>, fromHeight = 1) => {
  const r = verifyCatchUp(committee, shard, fromHeight, blocks, proof)
  return Either.isLeft(r) ? r.left.reason : "accepted"
}

describe("catch-up answers on commit evidence", () => {
  it("accepts blocks whose last one's direct child of the next view is certified by the committee", () => {
    expect(refusal([b1, b2], [cert(b3)])).toBe("accepted")
    expect(refusal([b1], [cert(b2)])).toBe("accepted")
    // A proof through a certified descendant: b2, then b3 (the direct child of b2) proves b1 via b2.
    expect(refusal([b1], [cert(b2), cert(b3)])).toBe("accepted")
    expect(refusal([], [])).toBe("accepted")
  })

  it("refuses blocks without a proof, or with a proof that is not a certified direct child of the last one", () => {
    expect(refusal([b1, b2], [])).toBe("NoCommitProof")
    // The child of another block.
    expect(refusal([b1], [cert(b3)])).toBe("BadCommitProof")
    // Its child, but certified by 2 of 4 (below the quorum, aggregated by hand as a forger would).
    const weak = certified(apply(genesis, b1), { signers: [0, 1] })
    expect(refusal([b1], [cert(weak)])).toBe("BadCommitProof")
    // Its child with a flipped bit in the aggregate signature.
    const sig = Uint8Array.from(cert(b2).qc.signature)
    sig[7]! ^= 1
    expect(refusal([b1], [new BftCertificate({ ...cert(b2), qc: new CertificateQc({ ...cert(b2).qc, signature: sig }) })])).toBe("BadCommitProof")
    // Its child claiming another view (the fields no longer hash to the block the QC signed).
    expect(refusal([b1], [new BftCertificate({ ...cert(b2), view: cert(b2).view + 1 })])).toBe("BadCommitProof")
    // Signed by other validators.
    const other = genesisCommittee(devValidators(8).slice(4), shard)
    expect(refusal([b1], [cert(certified(apply(genesis, b1), { committee: other }))])).toBe("BadCommitProof")
  })

  it("refuses blocks that are not the heights asked, or do not extend each other", () => {
    expect(refusal([b2], [cert(b3)])).toBe("WrongHeight")
    expect(refusal([b1, b3], [cert(b4)])).toBe("WrongHeight")
    // A block without a certificate (as a peer's bytes can decode: the field is optional).
    expect(refusal([b1, { ...b2, certificate: undefined } as unknown as Block], [cert(b3)])).toBe("Unlinked")
    const unlinked = new Block({ ...b2, certificate: new BftCertificate({ ...cert(b2), parentHash: cert(b3).blockHash }) })
    expect(refusal([b1, unlinked], [cert(b3)])).toBe("Unlinked")
    expect(refusal([b2], [cert(b3)], 2)).toBe("accepted")
  })

  it("the answering side sends the longest prefix it can prove, and its proof", () => {
    const none = () => undefined
    // Read one beyond the answer: the last answered block is proven by its successor.
    expect(provableAnswer(chain, 3, none)).toEqual({ blocks: [b1, b2, b3], proof: [cert(b4)] })
    // The ledger's tip has no successor: proven only by a kept proof.
    expect(provableAnswer(chain, 16, none)).toEqual({ blocks: [b1, b2, b3], proof: [cert(b4)] })
    const kept = [cert(b4)]
    const tipProof = provableAnswer(chain, 16, (h) => (h === cert(b4).blockHash ? kept : undefined))
    expect(tipProof.blocks).toEqual(chain)
    expect(tipProof.proof).toBe(kept)
    expect(provableAnswer([b1], 16, none)).toEqual({ blocks: [], proof: [] })
    // What it sends, the asking side accepts.
    expect(refusal(provableAnswer(chain, 2, none).blocks, provableAnswer(chain, 2, none).proof)).toBe("accepted")
  })

  it("keeps the proof of a commit's last block and of each handover in it", () => {
    const qcOf = (b: ReturnType<typeof makeBlock>) => ({ view: b.view, blockHash: b.hash, signers: new Uint8Array(1), signature: new Uint8Array(96) })
    const justify = (b: ReturnType<typeof makeBlock> | undefined) =>
      b === undefined
        ? { view: 0, blockHash: cert(b1).parentHash, signers: new Uint8Array(), signature: new Uint8Array() }
        : qcOf(b)
    const make = (view: number, parent: ReturnType<typeof makeBlock> | undefined, payload: ReadonlyArray<string>) =>
      makeBlock({ shard, epoch: 0, view, height: view, parentHash: justify(parent).blockHash, justify: justify(parent), proposer: 0, payload })
    const h = make(1, undefined, ["t:1", `c:1:0x${"ab".repeat(32)}`])
    const x = make(3, h, ["t:2"]) // after a timeout in view 2: not h's direct child
    const y = make(4, x, ["t:3"])
    const proofs = commitProofs([{ block: h, qc: qcOf(h) }, { block: x, qc: qcOf(x) }], { child: y, qc: qcOf(y) })
    expect(proofs.map((p) => [p.blockHash, p.handover, p.proof.map((c) => c.blockHash)])).toEqual([
      [h.hash, true, [x.hash, y.hash]],
      [x.hash, false, [y.hash]]
    ])
    expect(proofs[1]!.proof[0]).toEqual(certificateOf(y, qcOf(y)))
  })
})

/**
 * The checks before any pairing (`cheapChecks.ts`): a proposal not from its
 * view's leader, out of form or with a wrong hash, a timeout from someone
 * else or with a high QC not below its view, a timeout repeated with nothing
 * new, are refused by reason without touching the verifier; and whatever
 * they refuse, the state machine would have done nothing with either.
 */
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { cheapRefusal } from "../../domain/consensus/cheapChecks.js"
import type { ConsensusConfig } from "../../domain/consensus/state.js"
import { step } from "../../domain/consensus/step.js"
import type { Block, Message, QuorumCertificate, Timeout } from "../../domain/consensus/types.js"
import { Driven, blockOn, fixture, genesisQcOf, qcOf } from "./support.js"

const f = fixture()

/** Config 0 with a verifier that counts its checks. */
const counting = () => {
  const base = f.configs[0]!
  const calls = { n: 0 }
  const verifier = {
    ...base.verifier,
    verifyAggregate: (...args: Parameters<typeof base.verifier.verifyAggregate>) => {
      calls.n++
      return base.verifier.verifyAggregate(...args)
    },
    verifyOne: (...args: Parameters<typeof base.verifier.verifyOne>) => {
      calls.n++
      return base.verifier.verifyOne(...args)
    }
  }
  const config: ConsensusConfig = { ...base, verifier }
  return { config, calls }
}

const proposal = (block: Block): Message => ({ _tag: "Proposal", block, tc: undefined })
const timeoutOf = (voter: number, view: number, highQc: QuorumCertificate): Timeout => ({
  _tag: "Timeout",
  view,
  voter,
  signature: f.crypto.sign(f.secrets[voter]!, new Uint8Array(32)),
  highQc,
  lastTc: undefined
})

describe("cheap checks before any pairing", () => {
  const node = new Driven(f.configs[0]!)
  const b1 = blockOn(f, f.genesis, genesisQcOf(f), 1)

  it("refuses by reason, without a signature check", () => {
    const { config, calls } = counting()
    const s = node.state
    expect(cheapRefusal(config, s, 1, proposal(b1))).toBeUndefined()
    expect(cheapRefusal(config, s, 2, proposal(b1))).toBe("SpoofedSender")
    const wrongLeader = blockOn(f, f.genesis, genesisQcOf(f), 1)
    expect(cheapRefusal(config, s, 2, proposal({ ...wrongLeader, proposer: 2 }))).toBe("WrongLeader")
    expect(cheapRefusal(config, s, 1, proposal({ ...b1, payload: ["t:1"] }))).toBe("BadShape") // the hash no longer matches
    expect(cheapRefusal(config, s, 1, proposal({ ...b1, epoch: 3 }))).toBe("BadShape")
    expect(cheapRefusal(config, s, 3, timeoutOf(2, 5, genesisQcOf(f)))).toBe("SpoofedSender")
    expect(cheapRefusal(config, s, 2, timeoutOf(2, 0, genesisQcOf(f)))).toBe("BadShape")
    expect(cheapRefusal(config, s, 2, { _tag: "Vote", view: 1, blockHash: b1.hash, voter: 3, signature: new Uint8Array(8) })).toBe("SpoofedSender")
    expect(calls.n).toBe(0)
  })

  it("a timeout repeated with nothing new is a duplicate; with a higher QC it is not", () => {
    const n = new Driven(f.configs[0]!)
    const t = timeoutOf(2, 3, genesisQcOf(f))
    expect(cheapRefusal(n.config, n.state, 2, t)).toBeUndefined()
    n.receive(2, t)
    expect(n.state.timeouts.get(3)?.has(2)).toBe(true)
    // This node learns QC(b1) (from another member's timeout): member 2's timeout of view 3 now tells it nothing.
    const qc1 = qcOf(f, b1)
    n.receive(1, timeoutOf(1, 2, qc1))
    expect(n.state.highQc.view).toBe(1)
    expect(cheapRefusal(n.config, n.state, 2, t)).toBe("Duplicate")
    // The same member re-sending its timeout of view 3 with the QC it learnt since: not refused.
    expect(cheapRefusal(n.config, n.state, 2, { ...t, highQc: qc1 })).toBeUndefined()
  })

  it("whatever they refuse, the state machine ignores: no output, no state change", () => {
    const base = node.state
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 0, max: 5 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 2 }),
        (from, view, proposer, tamper, kind) => {
          const block = { ...blockOn(f, f.genesis, genesisQcOf(f), Math.max(1, view)), proposer, view }
          const tampered = tamper ? { ...block, payload: ["t:9"] } : block
          const message: Message =
            kind === 0
              ? proposal(tampered)
              : kind === 1
                ? timeoutOf(proposer % 4, view, genesisQcOf(f))
                : { _tag: "Vote", view, blockHash: b1.hash, voter: proposer, signature: new Uint8Array(8) }
          const refused = cheapRefusal(f.configs[0]!, base, from % 4, message)
          if (refused === undefined) return true
          const result = step(f.configs[0]!, base, { _tag: "Received", from: from % 4, message })
          return result.outputs.length === 0 && result.state.view === base.view && result.state.timeouts === base.timeouts
        }
      ),
      { numRuns: 300 }
    )
  })
})

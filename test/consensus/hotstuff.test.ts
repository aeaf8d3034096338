/**
 * The chained HotStuff state machine, driven by hand: the 2-chain commit
 * rule, the lock on the highest QC, the 2-chain voting rule with TCs (and
 * forged ones), one vote per view across a restart,
 * the pacemaker (TCs, joining, back-off), vote aggregation and block sync.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, HashMap } from "effect"
import { timeoutDigest, voteDigest } from "../../domain/consensus/digests.js"
import { signersOf, verifyCertificate } from "../../domain/consensus/quorum.js"
import { epochGenesisBlock, OBSERVER, recover, safetyOf } from "../../domain/consensus/state.js"
import { blocksFor } from "../../domain/consensus/step.js"
import type { Block, Message, Output, Proposal, Timeout } from "../../domain/consensus/types.js"
import {
  BACKOFF_EXPONENT_MAX,
  BASE_TIMEOUT_MS,
  blockOn,
  commitsIn,
  Driven,
  fixture,
  genesisQcOf,
  qcOf,
  runPerfectNetwork,
  SHARD,
  tcOf,
  timersIn,
  votesIn
} from "./support.js"

const proposal = (block: Block, tc?: Proposal["tc"]): Proposal => ({ _tag: "Proposal", block, tc })

/** Eight equal members: the observer (0) leads view 8, so views 1..7 come from others. */
const eight = () => fixture([1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n])

/** B1 ← B2 ← ... on consecutive views from 1, each certified by the next one's justify. */
const chainOf = (f: ReturnType<typeof fixture>, length: number): Array<Block> => {
  const blocks: Array<Block> = []
  let parent = f.genesis
  let justify = genesisQcOf(f)
  for (let view = 1; view <= length; view++) {
    const block = blockOn(f, parent, justify, view, [`tx${view}`])
    blocks.push(block)
    parent = block
    justify = qcOf(f, block)
  }
  return blocks
}

describe("happy path", () => {
  it("four nodes on a perfect network commit one chain, every transaction once", () => {
    const f = fixture()
    const { commits } = runPerfectNetwork(f, { deliveriesMax: 2_000, payload: ["a", "b", "c"] })
    const longest = commits.reduce((a, b) => (b.length > a.length ? b : a))
    expect(longest.length).toBeGreaterThanOrEqual(20)
    for (const mine of commits) {
      expect(mine.length).toBeGreaterThanOrEqual(longest.length - 3)
      expect(mine.map((b) => b.hash)).toEqual(longest.slice(0, mine.length).map((b) => b.hash))
    }
    expect(longest.map((b) => b.height)).toEqual(longest.map((_, i) => i + 1))
    expect(longest.flatMap((b) => b.payload).sort()).toEqual(["a", "b", "c"])
  })

  it("a block commits when a QC forms on its child of the next view (the 2-chain); the lock is the highest QC", () => {
    const f = eight()
    const node = new Driven(f.configs[0]!)
    const [b1, b2, b3] = chainOf(f, 3) as [Block, Block, Block]
    expect(commitsIn(node.receive(1, proposal(b1)))).toEqual([])
    expect(node.state.lockedQc.view).toBe(0)
    expect(commitsIn(node.receive(2, proposal(b2)))).toEqual([]) // QC(B1) seen: its parent is genesis
    expect(node.state.lockedQc.blockHash).toBe(b1.hash)
    const outputs = node.receive(3, proposal(b3)) // QC(B2) seen: B1 ← B2 ← QC on views 1, 2
    expect(commitsIn(outputs).map((b) => b.hash)).toEqual([b1.hash])
    expect(node.state.lockedQc.blockHash).toBe(b2.hash)
    const persisted = outputs.flatMap((o) => (o._tag === "Persist" ? [o.record._tag] : []))
    expect(persisted).toEqual(["Locked", "Committed", "Voted"]) // the lock before the vote that follows it
    expect(persisted.indexOf("Committed")).toBeLessThan(outputs.findIndex((o) => o._tag === "Commit") + 1)
    expect(safetyOf(recover(f.configs[0]!, node.log))).toEqual(safetyOf(node.state))
  })

  it("a gap in the views defers the commit; the next 2-chain commits the ancestors with it", () => {
    const f = eight()
    const node = new Driven(f.configs[0]!)
    const [b1] = chainOf(f, 1) as [Block]
    // View 2 times out; view 3 builds on B1 with a TC for view 2 (every signer's high QC is QC(B1)).
    const b3 = blockOn(f, b1, qcOf(f, b1), 3, ["x"])
    const b4 = blockOn(f, b3, qcOf(f, b3), 4)
    const b5 = blockOn(f, b4, qcOf(f, b4), 5)
    const committed: Array<string> = []
    const votes: Array<number> = []
    const feed = (b: Block, tc?: Proposal["tc"]) => {
      const out = node.receive(b.view % 8, proposal(b, tc))
      committed.push(...commitsIn(out).map((c) => c.hash))
      votes.push(...votesIn(out).map((v) => (v as Extract<Message, { _tag: "Vote" }>).view))
    }
    feed(b1)
    feed(b3, tcOf(f, 2, undefined, [1, 1, 1, 1, 1, 1, 1, 1]))
    feed(b4) // QC(B3): B1(1) ← B3(3) is not consecutive
    expect(committed).toEqual([])
    feed(b5) // QC(B4): B3(3) ← B4(4): commit B3, and B1 before it
    expect(committed).toEqual([b1.hash, b3.hash])
    expect(votes).toEqual([1, 3, 4, 5])
  })
})

describe("voting rules", () => {
  /**
   * Node 0 of eight votes B1 ← B2 ← B3 (views 1-3); view 3 times out. Signers
   * of the TC for view 3 report high QCs of view `hqc`; the leader of 4
   * proposes on `parent` with `justify`.
   */
  const afterTimeout = (hqc: number) => {
    const f = eight()
    const node = new Driven(f.configs[0]!)
    const [b1, b2, b3] = chainOf(f, 3) as [Block, Block, Block]
    for (const b of [b1, b2, b3]) node.receive(b.view, proposal(b))
    expect(node.state.lastVotedView).toBe(3)
    expect(node.state.view).toBe(3)
    const tc = tcOf(f, 3, undefined, Array(8).fill(hqc))
    return { f, node, b1, b2, b3, tc }
  }

  it("votes for a block skipping views when its QC is as high as every high QC in the TC for the view before", () => {
    const { f, node, b2, tc } = afterTimeout(2)
    const b4 = blockOn(f, b2, qcOf(f, b2), 4, ["fork of B3"])
    const out = node.receive(4, proposal(b4, tc))
    expect(node.state.view).toBe(4)
    expect(votesIn(out)).toHaveLength(1)
    expect(node.state.lastVotedView).toBe(4)
  })

  it("refuses a TC-justified block whose QC is below a high QC the TC's signers reported", () => {
    const { f, node, b1, tc } = afterTimeout(2)
    const stale = blockOn(f, b1, qcOf(f, b1), 4, ["stale"]) // QC(B1) of view 1 < 2
    const refused = node.receive(4, proposal(stale, tc))
    expect(node.state.view).toBe(4) // the TC moved it on
    expect(votesIn(refused)).toEqual([])
    expect(node.state.lastVotedView).toBe(3)
    // The same block with a TC whose signers reported nothing above view 1 is safe: it gets the vote.
    const { f: f2, node: other, b1: c1 } = afterTimeout(1)
    const lower = tcOf(f2, 3, undefined, Array(8).fill(1))
    expect(votesIn(other.receive(4, proposal(blockOn(f2, c1, qcOf(f2, c1), 4, ["stale"]), lower)))).toHaveLength(1)
  })

  it("refuses a block skipping views without a TC for the view before (or with one for an older view)", () => {
    const { f, node, b2 } = afterTimeout(2)
    node.feed({ _tag: "TimerFired", view: 3 })
    const b5 = blockOn(f, b2, qcOf(f, b2), 5, ["gap"])
    expect(votesIn(node.receive(5, proposal(b5, tcOf(f, 3, undefined, Array(8).fill(2)))))).toEqual([])
    expect(node.state.lastVotedView).toBe(3)
  })

  it("refuses a TC whose high-QC views a Byzantine leader lowered: the signatures bind them", () => {
    const { f, node, b1, tc } = afterTimeout(2)
    const forged = { ...tc, highQcViews: tc.highQcViews.map(() => 1) }
    const stale = blockOn(f, b1, qcOf(f, b1), 4, ["stale"])
    expect(votesIn(node.receive(4, proposal(stale, forged)))).toEqual([])
    expect(node.state.view).toBe(3) // a forged TC moves nobody
    expect(node.state.lastTc).toBeUndefined()
  })

  it("no vote in a view after timing out in it", () => {
    const f = eight()
    const node = new Driven(f.configs[0]!)
    const [b1] = chainOf(f, 1) as [Block]
    node.feed({ _tag: "Start" })
    node.feed({ _tag: "TimerFired", view: 1 })
    expect(node.state.lastVotedView).toBe(1)
    expect(votesIn(node.receive(1, proposal(b1)))).toEqual([])
  })

  it("a leader holding a TC whose high QCs are above its own does not propose until it has such a QC", () => {
    const f = fixture()
    const leader = new Driven(f.configs[3]!) // leads view 3
    leader.feed({ _tag: "Start" })
    const b1 = blockOn(f, f.genesis, genesisQcOf(f), 1, ["t"])
    const tc2 = tcOf(f, 2, undefined, [1, 1, 1, 1]) // view 2 timed out at nodes holding QC(B1)
    const timeout = (voter: number, highQc: Timeout["highQc"], lastTc: Timeout["lastTc"]): Timeout => ({
      _tag: "Timeout",
      view: 3,
      voter,
      signature: f.crypto.sign(f.secrets[voter]!, timeoutDigest(SHARD, 0, 3, highQc.view)),
      highQc,
      lastTc
    })
    const proposalsIn = (out: ReadonlyArray<Output>) =>
      out.flatMap((o) => (o._tag === "Broadcast" && o.message._tag === "Proposal" ? [o.message] : []))
    expect(proposalsIn(leader.receive(0, timeout(0, genesisQcOf(f), tc2)))).toEqual([])
    expect(leader.state.view).toBe(3) // the TC moved it, but its high QC (genesis) is below the TC's (view 1)
    leader.receive(1, proposal(b1))
    const proposed = proposalsIn(leader.receive(1, timeout(1, qcOf(f, b1), undefined)))
    expect(proposed).toHaveLength(1)
    expect(proposed[0]!.block.justify.blockHash).toBe(b1.hash)
    expect(proposed[0]!.tc?.view).toBe(2)
  })

  // Node 3 is observed: its votes for view 1 go out to the leader of view 2.
  it("votes once per view: a second proposal for the view gets nothing", () => {
    const f = fixture()
    const node = new Driven(f.configs[3]!)
    const a = blockOn(f, f.genesis, genesisQcOf(f), 1, ["a"])
    const b = blockOn(f, f.genesis, genesisQcOf(f), 1, ["b"])
    expect(votesIn(node.receive(1, proposal(a)))).toHaveLength(1)
    expect(votesIn(node.receive(1, proposal(b)))).toEqual([])
  })

  it("never votes twice in a view after a restart from its records", () => {
    const f = fixture()
    const before = new Driven(f.configs[3]!)
    const a = blockOn(f, f.genesis, genesisQcOf(f), 1, ["a"])
    const outputs = before.receive(1, proposal(a))
    expect(votesIn(outputs)).toHaveLength(1)
    // The vote is persisted before it is sent.
    const persistAt = outputs.findIndex((o) => o._tag === "Persist" && o.record._tag === "Voted")
    const sendAt = outputs.findIndex((o) => o._tag === "Send" && o.message._tag === "Vote")
    expect(persistAt).toBeGreaterThanOrEqual(0)
    expect(persistAt).toBeLessThan(sendAt)

    const after = new Driven(f.configs[3]!, recover(f.configs[3]!, before.log))
    expect(safetyOf(after.state)).toEqual(safetyOf(before.state))
    after.feed({ _tag: "Start" })
    const twin = blockOn(f, f.genesis, genesisQcOf(f), 1, ["equivocation"])
    expect(votesIn(after.receive(1, proposal(a)))).toEqual([])
    expect(votesIn(after.receive(1, proposal(twin)))).toEqual([])
    // Without its records the same node would have voted again: the records are what prevents it.
    expect(votesIn(new Driven(f.configs[3]!).receive(1, proposal(twin)))).toHaveLength(1)
  })

  it("a leader restarted from its records does not propose a second block in its view", () => {
    const f = fixture()
    const leader = new Driven(f.configs[1]!)
    leader.feed({ _tag: "NewPayload", txs: ["first"] })
    const first = leader.feed({ _tag: "Start" }).filter((o) => o._tag === "Broadcast")
    expect(first).toHaveLength(1)
    const restarted = new Driven(f.configs[1]!, recover(f.configs[1]!, leader.log))
    restarted.feed({ _tag: "NewPayload", txs: ["second"] })
    const broadcast = restarted.feed({ _tag: "Start" }).flatMap((o) => (o._tag === "Broadcast" ? [o.message] : []))
    // No second proposal; it gives the view up at once instead (its first proposal may have died with it).
    expect(broadcast.map((m) => m._tag)).toEqual(["Timeout"])
    expect(broadcast[0]).toMatchObject({ _tag: "Timeout", view: 1, voter: 1 })
  })

  it("a restart keeps the blocks it voted for: a leader whose lock points above the committed head can still extend it", () => {
    const f = fixture()
    const blocks = chainOf(f, 3)
    // Node 0 voted for B1..B3 (each arriving with its parent's QC); its lock is QC(B2), B1 is not committed.
    const node = new Driven(f.configs[0]!)
    node.feed({ _tag: "Start" })
    for (const b of blocks) node.receive(b.proposer, proposal(b))
    expect(node.log.filter((r) => r._tag === "Voted")).toHaveLength(3)
    const restarted = new Driven(f.configs[0]!, recover(f.configs[0]!, node.log))
    for (const b of blocks) expect(HashMap.has(restarted.state.blocks, b.hash)).toBe(true)
    // Leader of view 4 once QC(B3) forms: it proposes on B3, which only its records still hold.
    const qc3 = qcOf(f, blocks[2]!)
    const out = restarted.receive(1, { _tag: "Timeout", view: 4, voter: 1, signature: new Uint8Array(), highQc: qc3, lastTc: undefined })
    const next = out.flatMap((o) => (o._tag === "Broadcast" && o.message._tag === "Proposal" ? [o.message.block] : []))
    expect(next.map((b) => [b.view, b.parentHash])).toEqual([[4, blocks[2]!.hash]])
  })

  it("a node restarted in a view it has not voted in waits for the view's proposal (no timeout at once)", () => {
    const f = fixture()
    const follower = new Driven(f.configs[2]!)
    follower.feed({ _tag: "Start" })
    const restarted = new Driven(f.configs[2]!, recover(f.configs[2]!, follower.log))
    expect(restarted.feed({ _tag: "Start" }).filter((o) => o._tag === "Broadcast")).toEqual([])
  })

  it("ignores a proposal from a node that does not lead its view", () => {
    const f = fixture()
    const node = new Driven(f.configs[2]!)
    const a = blockOn(f, f.genesis, genesisQcOf(f), 1)
    expect(votesIn(node.receive(3, proposal(a)))).toEqual([])
    const forged = { ...a, proposer: 3 }
    expect(votesIn(node.receive(3, proposal(forged)))).toEqual([])
  })
})

describe("pacemaker", () => {
  const timeoutFrom = (f: ReturnType<typeof fixture>, voter: number, view: number): Timeout => {
    const node = new Driven(f.configs[voter]!)
    node.feed({ _tag: "Start" })
    let out: ReadonlyArray<import("../../domain/consensus/types.js").Output> = []
    for (let v = 1; v <= view; v++) out = node.feed({ _tag: "TimerFired", view: v })
    const sent = out.flatMap((o) => (o._tag === "Broadcast" && o.message._tag === "Timeout" ? [o.message] : []))
    return sent[0]!
  }

  it("more than 1/3 of the stake timing out makes a node join the view change", () => {
    const f = fixture()
    const node = new Driven(f.configs[0]!)
    node.feed({ _tag: "Start" })
    expect(node.state.view).toBe(1)
    expect(node.receive(1, timeoutFrom(f, 1, 1))).toEqual([]) // 1/4 of the stake: could be one faulty node
    expect(node.state.lastVotedView).toBe(0)
    const joined = node.receive(2, timeoutFrom(f, 2, 1))
    const sent = joined.flatMap((o) => (o._tag === "Broadcast" ? [o.message] : []))
    expect(sent.map((m: Message) => m._tag)).toEqual(["Timeout"]) // 2/4 > 1/3: it gives up on view 1 too
    expect(node.state.lastVotedView).toBe(1) // and will not vote in it
    expect(node.state.view).toBe(2) // its own timeout made 3 of 4: a TC
  })

  it("a timer that fires sends a timeout; a TC of more than 2/3 moves the node to the next view", () => {
    const f = fixture()
    const node = new Driven(f.configs[0]!)
    node.feed({ _tag: "Start" })
    const fired = node.feed({ _tag: "TimerFired", view: 1 })
    expect(fired.flatMap((o) => (o._tag === "Broadcast" ? [o.message._tag] : []))).toEqual(["Timeout"])
    expect(fired[0]).toEqual({ _tag: "Persist", record: { _tag: "TimedOut", view: 1 } }) // persisted before it is sent
    node.receive(1, timeoutFrom(f, 1, 1))
    expect(node.state.view).toBe(1) // 2 of 4
    const advanced = node.receive(3, timeoutFrom(f, 3, 1))
    expect(node.state.view).toBe(2)
    expect(node.state.lastTc?.view).toBe(1)
    expect(timersIn(advanced).map((t) => t.view)).toEqual([2])
  })

  it("the timeout doubles with each one that fires, up to the cap; a TC keeps the back-off, a QC resets it", () => {
    const f = fixture()
    const node = new Driven(f.configs[0]!)
    expect(timersIn(node.feed({ _tag: "Start" }))).toEqual([{ view: 1, durationMs: BASE_TIMEOUT_MS }])
    const durations: Array<number> = []
    for (let i = 0; i < BACKOFF_EXPONENT_MAX + 2; i++) {
      durations.push(...timersIn(node.feed({ _tag: "TimerFired", view: 1 })).map((t) => t.durationMs))
    }
    expect(durations).toEqual([200, 400, 800, 1600, 1600, 1600])
    expect(node.feed({ _tag: "TimerFired", view: 7 })).toEqual([]) // not its view: stale
    // A TC for view 1 moves it to view 2 with the back-off kept.
    const b1 = blockOn(f, f.genesis, genesisQcOf(f), 1)
    const b2 = blockOn(f, b1, qcOf(f, b1), 2)
    const viaTc = node.receive(2, proposal(blockOn(f, f.genesis, genesisQcOf(f), 2), tcOf(f, 1)))
    expect(timersIn(viaTc)).toEqual([{ view: 2, durationMs: 1600 }])
    // A QC (for view 2, via view 3's proposal) resets it.
    node.receive(1, proposal(b1))
    node.receive(2, proposal(b2))
    const b3 = blockOn(f, b2, qcOf(f, b2), 3)
    expect(timersIn(node.receive(3, proposal(b3)))).toEqual([{ view: 3, durationMs: BASE_TIMEOUT_MS }])
  })

  it("a forged timeout certificate moves nobody", () => {
    const f = fixture()
    const node = new Driven(f.configs[0]!)
    const tc = tcOf(f, 1)
    const forged = { ...tc, signature: tc.signature.map((b) => b ^ 1) }
    node.receive(2, proposal(blockOn(f, f.genesis, genesisQcOf(f), 2), forged))
    expect(node.state.view).toBe(1)
  })
})

describe("recovery", () => {
  it("a node restarted with a high QC whose block it lacks fetches it from a peer that times out on the same QC", () => {
    const f = fixture()
    const b1 = blockOn(f, f.genesis, genesisQcOf(f), 1, ["t"])
    const qc1 = qcOf(f, b1)
    const node = new Driven(f.configs[0]!, recover(f.configs[0]!, [{ _tag: "Locked", qc: qc1 }]))
    expect(node.state.highQc.view).toBe(1)
    const timeout: Timeout = {
      _tag: "Timeout",
      view: 2,
      voter: 3,
      signature: f.crypto.sign(f.secrets[3]!, timeoutDigest(SHARD, 0, 2, 1)),
      highQc: qc1,
      lastTc: undefined
    }
    expect(node.receive(3, timeout).filter((o) => o._tag === "RequestBlock")).toEqual([
      { _tag: "RequestBlock", blockHash: b1.hash, from: 3 }
    ])
  })
})

describe("leader", () => {
  it("aggregates the votes into a QC of more than 2/3 of the stake and proposes the next view on it", () => {
    const f = fixture()
    const leader2 = new Driven(f.configs[2]!)
    const b1 = blockOn(f, f.genesis, genesisQcOf(f), 1, ["t"])
    leader2.receive(1, proposal(b1)) // its own vote goes to itself (leader of view 2)
    const voteOf = (i: number): Message => ({
      _tag: "Vote",
      view: 1,
      blockHash: b1.hash,
      voter: i,
      signature: f.crypto.sign(f.secrets[i]!, voteDigest(SHARD, 0, 1, b1.hash))
    })
    // A vote with a bad signature fills the quorum by stake, spoils the aggregate, and is dropped.
    const bad = { ...(voteOf(3) as Extract<Message, { _tag: "Vote" }>), signature: new Uint8Array(32) }
    leader2.receive(0, voteOf(0))
    expect(leader2.receive(3, bad).filter((o) => o._tag === "Broadcast")).toEqual([])
    expect(leader2.state.view).toBe(1)
    const outputs = leader2.receive(1, voteOf(1))
    const proposals = outputs.flatMap((o) =>
      o._tag === "Broadcast" && o.message._tag === "Proposal" ? [o.message] : []
    )
    expect(proposals).toHaveLength(1)
    const qc = proposals[0]!.block.justify
    expect(qc.blockHash).toBe(b1.hash)
    expect(Either.getOrThrow(signersOf(4, qc.signers))).toEqual([0, 1, 2])
    expect(Either.isRight(verifyCertificate(f.committee, f.configs[0]!.verifier, voteDigest(SHARD, 0, 1, b1.hash), qc))).toBe(true)
  })
})

describe("block sync", () => {
  it("fetches missing ancestors from the proposer, connects them, then votes", () => {
    const f = eight()
    const node = new Driven(f.configs[0]!)
    const [b1, b2, b3] = chainOf(f, 3) as [Block, Block, Block]
    const first = node.receive(3, proposal(b3))
    expect(votesIn(first)).toEqual([])
    expect(first.filter((o) => o._tag === "RequestBlock")).toEqual([{ _tag: "RequestBlock", blockHash: b2.hash, from: 3 }])
    // The peer answers with the block and its ancestors, newest first.
    const peer = new Driven(f.configs[3]!)
    for (const b of [b1, b2, b3]) peer.receive(b.view, proposal(b))
    const response = peer.receive(0, { _tag: "BlockRequest", blockHash: b2.hash }).flatMap((o) =>
      o._tag === "Send" && o.message._tag === "BlockResponse" ? [o.message] : []
    )
    expect(response[0]!.blocks.map((b) => b.hash)).toEqual([b2.hash, b1.hash])
    const after = node.receive(3, response[0]!)
    expect(votesIn(after)).toHaveLength(1)
    expect(node.state.lockedQc.blockHash).toBe(b2.hash) // the highest QC seen: B3 carries QC(B2)
  })
})

describe("observer", () => {
  it("a node outside the committee commits the chain the members certify, and never signs or arms a timer", () => {
    const f = fixture()
    const observer = new Driven({ ...f.configs[0]!, self: OBSERVER })
    const blocks = chainOf(f, 6)
    const outputs: Array<Output> = [...observer.feed({ _tag: "Start" })]
    // What an observer sees of a committee: the proposals (each carrying its parent's QC), from their leaders.
    for (const b of blocks) outputs.push(...observer.receive(b.proposer, proposal(b)))
    // B6 carries QC(B5) of view 5, on B4 of view 4: B1..B4 are committed.
    expect(commitsIn(outputs).map((b) => b.hash)).toEqual(blocks.slice(0, 4).map((b) => b.hash))
    expect(outputs.filter((o) => o._tag === "Send" || o._tag === "Broadcast" || o._tag === "SetTimer")).toEqual([])
    // A timer (a driver's stale one) and a view change by timeouts make it sign nothing either.
    expect(observer.feed({ _tag: "TimerFired", view: observer.state.view }).filter((o) => o._tag !== "Persist")).toEqual([])
    expect(observer.state.lastVotedView).toBe(0)
  })

  it("an observer answers block sync from what it holds", () => {
    const f = fixture()
    const observer = new Driven({ ...f.configs[0]!, self: OBSERVER })
    const blocks = chainOf(f, 3)
    for (const b of blocks) observer.receive(b.proposer, proposal(b))
    expect(blocksFor(observer.config, observer.state, blocks[2]!.hash).map((b) => b.view)).toEqual([3, 2, 1])
  })
})

describe("epoch genesis", () => {
  it("a later epoch's chain starts at the handover height: heights go on, commits start above it", () => {
    const f = fixture()
    const parent = blockOn(f, f.genesis, genesisQcOf(f), 1)
    const committee = { ...f.committee, epoch: 1 }
    const genesis = epochGenesisBlock(committee, parent.hash, 40)
    expect(genesis.height).toBe(40)
    expect(genesis.hash).not.toBe(epochGenesisBlock(committee, f.genesis.hash, 40).hash) // it binds the handover block
    expect(genesis.hash).not.toBe(epochGenesisBlock({ ...committee, epoch: 2 }, parent.hash, 40).hash)
    const configs = f.configs.map((c) => ({ ...c, committee, genesis }))
    const { commits } = runPerfectNetwork({ ...f, committee, configs, genesis }, { deliveriesMax: 400, payload: ["x"] })
    const first = commits[0]![0]!
    expect(first.epoch).toBe(1)
    expect(first.height).toBe(41)
    expect(first.parentHash).toBe(genesis.hash)
    expect(commits.flat().flatMap((b) => b.payload)).toContain("x")
  })
})

/**
 * A deterministic simulator for chained HotStuff (TigerBeetle's VOPR, Diem's
 * Twins): every node of several shard committees in one process, on a
 * simulated clock and network driven by one seeded PRNG.
 *
 * A run has two phases. In the safety phase the network loses, delays,
 * reorders and duplicates messages, partitions split the nodes and heal,
 * nodes crash and restart from their own persisted records, and Byzantine
 * twins (two nodes sharing one seat and key) equivocate and double-vote.
 * At GST the partitions heal, crashed nodes come back and loss stops; in the
 * liveness phase every honest node must then commit new blocks within a
 * bounded simulated time.
 *
 * The state checker (`checker.ts`) sees every commit. The first violation
 * stops the run; the result carries the seed, the scenario and the trace of
 * the last events. Nothing here reads the clock or Math.random: the same
 * seed replays the same run, which the history hash shows.
 */
import { Either, HashMap, Option } from "effect"
import type { Hash32 } from "../../domain/chain/hash.js"
import { sha256 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { type Committee, electCommittees, makeCommittee } from "../../domain/consensus/committee.js"
import type { CommitteeVerifier } from "../../domain/consensus/quorum.js"
import {
  type ConsensusConfig,
  type ConsensusState,
  genesisBlock,
  initialState,
  recover,
  safetyOf
} from "../../domain/consensus/state.js"
import { makeBlock } from "../../domain/consensus/digests.js"
import { step } from "../../domain/consensus/step.js"
import type { Input, Message, NodeIndex, Output, SafetyRecord } from "../../domain/consensus/types.js"
import { StateChecker, type Violation } from "./checker.js"
import { MacKeyring, macKeyFromSeed, macQuorumCrypto, type MacKey } from "./macCrypto.js"
import { Prng } from "./prng.js"
import type { Scenario } from "./scenario.js"
import { TraceRing } from "./trace.js"

export interface SimNode {
  /** Global instance id (twins are two instances of one seat). */
  readonly id: number
  readonly name: string
  readonly shard: SimShard
  readonly index: NodeIndex
  readonly twin: boolean
  readonly config: ConsensusConfig
  state: ConsensusState
  /** The node's own event store: every `Persist` record, in order. */
  readonly log: Array<SafetyRecord>
  up: boolean
  /** Only the timer of the latest `SetTimer` fires. */
  timerGeneration: number
}

export interface SimShard {
  readonly shard: ShardId
  readonly committee: Committee
  /** The committee with the real (2/3) quorum: what the checker holds certificates to. */
  readonly honestCommittee: Committee
  readonly verifier: CommitteeVerifier
  readonly nodes: Array<SimNode>
  /** The instances of each seat (two for a twin seat). */
  readonly seats: Array<Array<SimNode>>
  txCount: number
  /** The highest honest commit at GST; liveness wants every honest node past it. */
  heightAtGst: number
}

export interface RunResult {
  readonly seed: number
  readonly violation: Violation | undefined
  readonly historyHash: string
  /** Blocks in the committed history (all shards). */
  readonly blocks: number
  /** Transactions in the committed history. */
  readonly txs: number
  /** Commit outputs of honest nodes. */
  readonly commits: number
  readonly events: number
  readonly messages: number
  readonly simulatedMs: number
  readonly trace: ReadonlyArray<string>
}

export interface RunOptions {
  /** How many of the last events a failure shows. */
  readonly traceDepth?: number
}

// ---------------------------------------------------------------------------
// Events on the simulated clock

type SimEvent =
  | { readonly kind: "deliver"; readonly to: SimNode; readonly from: SimNode; readonly message: Message }
  | { readonly kind: "timer"; readonly node: SimNode; readonly view: number; readonly generation: number }
  | { readonly kind: "tx"; readonly shard: SimShard }
  | { readonly kind: "partition" }
  | { readonly kind: "heal"; readonly generation: number }
  | { readonly kind: "crash" }
  | { readonly kind: "restart"; readonly node: SimNode }
  | { readonly kind: "gst" }

interface Scheduled {
  readonly at: number
  readonly seq: number
  readonly event: SimEvent
}

/** A binary min-heap on (time, insertion order): ties replay in the order they were scheduled. */
class EventQueue {
  private readonly heap: Array<Scheduled> = []
  private seq = 0

  get size(): number {
    return this.heap.length
  }

  push(at: number, event: SimEvent): void {
    const h = this.heap
    h.push({ at, seq: this.seq++, event })
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(h[i]!, h[parent]!)) break
      ;[h[i], h[parent]] = [h[parent]!, h[i]!]
      i = parent
    }
  }

  pop(): Scheduled | undefined {
    const h = this.heap
    if (h.length === 0) return undefined
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l]!, h[m]!)) m = l
        if (r < h.length && before(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m]!, h[i]!]
        i = m
      }
    }
    return top
  }
}

const before = (a: Scheduled, b: Scheduled): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq)

// ---------------------------------------------------------------------------

const TRACE_DEPTH_DEFAULT = 80
/** Bounds a run even if something loops without advancing the clock. */
const EVENTS_MAX = 2_000_000

export const runScenario = (scenario: Scenario, options: RunOptions = {}): RunResult => new Simulation(scenario, options).run()

class Simulation {
  private readonly rng: Prng
  private readonly queue = new EventQueue()
  private readonly trace: TraceRing
  private readonly shards: Array<SimShard> = []
  private readonly nodes: Array<SimNode> = []
  private readonly checker: StateChecker
  private now = 0
  private events = 0
  private messages = 0
  private afterGst = false
  /** The side of each node instance in the current partition, or undefined when whole. */
  private sides: Uint8Array | undefined
  private partitionGeneration = 0

  constructor(
    private readonly scenario: Scenario,
    options: RunOptions
  ) {
    this.rng = new Prng(scenario.seed)
    this.trace = new TraceRing(options.traceDepth ?? TRACE_DEPTH_DEFAULT)
    this.checker = new StateChecker()
    this.build()
  }

  private build(): void {
    const { scenario, rng } = this
    const keyring = new MacKeyring()
    const crypto = macQuorumCrypto(keyring)
    const keys = new Map<string, MacKey>()
    const validators = Array.from({ length: scenario.validators }, (_, i) => {
      const validator = `val${String(i).padStart(3, "0")}`
      const key = macKeyFromSeed(`${scenario.seed}/${validator}`)
      keyring.add(key)
      keys.set(validator, key)
      return { validator, stake: BigInt(rng.int(1, 4)), publicKey: key.publicKey }
    })
    const shardIds = Array.from({ length: scenario.shards }, (_, i) => (i + 1) as ShardId)
    const seed = bytesToHex(sha256("topai/sim/epoch-seed", String(scenario.seed))) as Hash32
    const elected = electCommittees({ validators, shards: shardIds, committeeSize: scenario.committeeSize, epoch: 0, seed })
    if (Either.isLeft(elected)) throw new Error(`election failed: ${elected.left.detail}`)
    for (const shardId of shardIds) {
      const elected0 = elected.right.get(shardId)!
      const committee =
        scenario.quorum === undefined
          ? elected0
          : Either.getOrThrow(makeCommittee(shardId, 0, elected0.members, scenario.quorum))
      const honestCommittee = elected0
      const verifier = Either.getOrThrow(crypto.verifierFor(committee.members.map((m) => m.publicKey)))
      // The broken variant `tcHighQcUnchecked`: nodes take any TC (the checker keeps the real verifier).
      const nodeVerifier: CommitteeVerifier = scenario.tcHighQcUnchecked
        ? { ...verifier, verifyAggregateMulti: () => Either.void }
        : verifier
      const genesis = genesisBlock(committee)
      const twinSeats = this.pickTwinSeats(honestCommittee)
      const shard: SimShard = {
        shard: shardId,
        committee,
        honestCommittee,
        verifier,
        nodes: [],
        seats: committee.members.map(() => []),
        txCount: 0,
        heightAtGst: 0
      }
      for (const [index, member] of committee.members.entries()) {
        const instances = twinSeats.has(index) ? 2 : 1
        for (let k = 0; k < instances; k++) {
          const config: ConsensusConfig = {
            committee,
            self: index,
            secretKey: keys.get(member.validator)!.secretKey,
            crypto,
            verifier: nodeVerifier,
            genesis,
            timing: { baseTimeoutMs: scenario.baseTimeoutMs, backoffExponentMax: scenario.backoffExponentMax },
            blockTxsMax: 64,
            syncBlocksMax: 16,
            detachedBlocksMax: 256
          }
          const node: SimNode = {
            id: this.nodes.length,
            name: `s${shardId}/${index}${instances === 2 ? (k === 0 ? "a" : "b") : ""}`,
            shard,
            index,
            twin: instances === 2,
            config,
            state: initialState(config),
            log: [],
            up: true,
            timerGeneration: 0
          }
          this.nodes.push(node)
          shard.nodes.push(node)
          shard.seats[index]!.push(node)
        }
      }
      this.checker.addShard(shard)
      this.shards.push(shard)
    }
  }

  /** Twin seats whose stake stays below 1/3 of the committee's: the Byzantine bound. */
  private pickTwinSeats(committee: Committee): ReadonlySet<number> {
    const out = new Set<number>()
    let stake = 0n
    for (const i of this.rng.shuffle(committee.members.map((_, i) => i))) {
      if (out.size >= this.scenario.twinSeats) break
      const next = stake + committee.members[i]!.stake
      if (next * 3n >= committee.totalStake && !this.scenario.byzantineBoundIgnored) continue
      out.add(i)
      stake = next
    }
    return out
  }

  run(): RunResult {
    const { scenario, rng } = this
    for (const node of this.nodes) this.feed(node, { _tag: "Start" })
    for (const shard of this.shards) this.queue.push(rng.int(0, scenario.txIntervalMs), { kind: "tx", shard })
    for (let i = 0; i < scenario.partitions; i++) this.queue.push(rng.int(0, scenario.faultPhaseMs), { kind: "partition" })
    for (let i = 0; i < scenario.crashes; i++) this.queue.push(rng.int(0, scenario.faultPhaseMs), { kind: "crash" })
    this.queue.push(scenario.faultPhaseMs, { kind: "gst" })
    const deadline = scenario.faultPhaseMs + scenario.livenessDeadlineMs

    while (this.checker.violation === undefined) {
      const next = this.queue.pop()
      if (next === undefined) break
      if (next.at > deadline) {
        this.checker.fail("liveness", this.livenessReport())
        break
      }
      this.now = next.at
      this.events++
      if (this.events > EVENTS_MAX) {
        this.checker.fail("liveness", `more than ${EVENTS_MAX} events`)
        break
      }
      this.handle(next.event)
      if (this.afterGst && this.checker.violation === undefined && this.livenessReached()) break
    }
    if (this.checker.violation === undefined) this.checkReplayAll()
    return {
      seed: scenario.seed,
      violation: this.checker.violation,
      historyHash: this.checker.historyHash(),
      blocks: this.checker.blockCount(),
      txs: this.checker.txCount(),
      commits: this.checker.commitCount,
      events: this.events,
      messages: this.messages,
      simulatedMs: this.now,
      trace: this.checker.violation === undefined ? [] : this.trace.lines()
    }
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case "deliver": {
        const { to, from, message } = event
        if (!to.up || this.cut(from, to)) return
        this.trace.push({ timeMs: this.now, node: to.name, what: `← ${from.name}`, message })
        this.feed(to, { _tag: "Received", from: from.index, message: this.scenario.tcHighQcUnchecked ? withoutHighQcs(message) : message })
        return
      }
      case "timer": {
        const { node, view, generation } = event
        if (!node.up || generation !== node.timerGeneration) return
        this.trace.push({ timeMs: this.now, node: node.name, what: `timer fired v${view}` })
        this.feed(node, { _tag: "TimerFired", view })
        return
      }
      case "tx":
        return this.submitTx(event.shard)
      case "partition":
        return this.startPartition()
      case "heal":
        if (event.generation === this.partitionGeneration && this.sides !== undefined) {
          this.sides = undefined
          this.trace.push({ timeMs: this.now, node: "network", what: "partition healed" })
        }
        return
      case "crash":
        return this.crashOne()
      case "restart":
        return this.restart(event.node)
      case "gst":
        return this.gst()
    }
  }

  // --- driving one node

  private feed(node: SimNode, input: Input): void {
    let result
    try {
      result = step(node.config, node.state, input)
    } catch (e) {
      this.checker.fail("assertion", `${node.name}: ${e instanceof Error ? e.message : String(e)}`)
      return
    }
    node.state = result.state
    for (const output of result.outputs) this.carry(node, output)
  }

  private carry(node: SimNode, output: Output): void {
    switch (output._tag) {
      case "Persist":
        node.log.push(output.record)
        return
      case "Send":
        for (const to of node.shard.seats[output.to] ?? []) if (to !== node) this.send(node, to, output.message)
        return
      case "Broadcast": {
        const message = this.scenario.staleTwinProposals && node.twin ? staleProposal(node, output.message) : output.message
        if (message._tag === "Proposal") this.checker.onProposal(node, message.block)
        for (const to of node.shard.nodes) if (to !== node) this.send(node, to, message)
        return
      }
      case "SetTimer":
        node.timerGeneration++
        this.queue.push(this.now + output.durationMs, {
          kind: "timer",
          node,
          view: output.view,
          generation: node.timerGeneration
        })
        return
      case "Commit":
        this.trace.push({ timeMs: this.now, node: node.name, what: "", output })
        this.checker.onCommit(node, output.block, output.qc)
        return
      case "RequestBlock":
        for (const to of node.shard.seats[output.from] ?? []) {
          if (to !== node) this.send(node, to, { _tag: "BlockRequest", blockHash: output.blockHash })
        }
        return
    }
  }

  // --- the network

  private cut(a: SimNode, b: SimNode): boolean {
    return this.sides !== undefined && this.sides[a.id] !== this.sides[b.id]
  }

  private send(from: SimNode, to: SimNode, message: Message): void {
    const { faults } = this.scenario
    const { rng } = this
    if (this.cut(from, to)) return
    if (!this.afterGst && rng.chance(faults.lossProbability)) return
    const copies = rng.chance(faults.duplicateProbability) ? 2 : 1
    for (let k = 0; k < copies; k++) {
      const long = !this.afterGst && rng.chance(faults.longDelayProbability)
      const delay = long ? rng.int(faults.delayMaxMs, faults.longDelayMaxMs) : rng.int(faults.delayMinMs, faults.delayMaxMs)
      this.messages++
      this.queue.push(this.now + delay, { kind: "deliver", to, from, message })
    }
  }

  private startPartition(): void {
    if (this.afterGst) return
    const { rng } = this
    const sides = new Uint8Array(this.nodes.length)
    // Twins-aware (Diem's Twins): usually keep each twin pair apart, so equivocation reaches
    // both halves, and often split the other seats evenly, so both halves hold honest nodes.
    for (const shard of this.shards) {
      const balanced = rng.chance(this.scenario.balancedPartitionProbability)
      let alternate = rng.int(0, 1)
      for (const seat of rng.shuffle(shard.seats)) {
        if (seat.length === 2 && (balanced || rng.chance(0.8))) {
          const first = rng.int(0, 1)
          sides[seat[0]!.id] = first
          sides[seat[1]!.id] = 1 - first
        } else {
          const side = balanced ? (alternate = 1 - alternate) : rng.int(0, 1)
          for (const node of seat) sides[node.id] = side
        }
      }
    }
    this.sides = sides
    this.partitionGeneration++
    const generation = this.partitionGeneration
    this.queue.push(this.now + rng.int(20, this.scenario.partitionMsMax), { kind: "heal", generation })
    const describe = this.shards
      .map((s) => s.nodes.map((n) => `${n.name}:${sides[n.id]}`).join(" "))
      .join(" | ")
    this.trace.push({ timeMs: this.now, node: "network", what: `partition ${describe}` })
  }

  // --- crashes

  private crashOne(): void {
    if (this.afterGst) return
    const up = this.nodes.filter((n) => n.up)
    if (up.length === 0) return
    const node = this.rng.pick(up)
    this.checkReplay(node)
    node.up = false
    node.timerGeneration++
    this.trace.push({ timeMs: this.now, node: node.name, what: "CRASH" })
    const downMs = this.rng.int(10, this.scenario.crashDownMsMax)
    if (this.now + downMs < this.scenario.faultPhaseMs) this.queue.push(this.now + downMs, { kind: "restart", node })
  }

  private restart(node: SimNode): void {
    if (node.up) return
    node.state = recover(node.config, node.log)
    node.up = true
    this.trace.push({ timeMs: this.now, node: node.name, what: `RESTART from ${node.log.length} records` })
    this.feed(node, { _tag: "Start" })
  }

  /** Replaying the node's records gives back the safety state it holds now. */
  private checkReplay(node: SimNode): void {
    const live = safetyOf(node.state)
    const replayed = safetyOf(recover(node.config, node.log))
    for (const key of Object.keys(live) as Array<keyof typeof live>) {
      if (live[key] !== replayed[key]) {
        this.checker.fail(
          "replay",
          `${node.name}: ${key} is ${String(live[key])} live but ${String(replayed[key])} after replaying ${node.log.length} records`
        )
        return
      }
    }
  }

  private checkReplayAll(): void {
    for (const node of this.nodes) if (node.up && this.checker.violation === undefined) this.checkReplay(node)
  }

  // --- transactions

  private submitTx(shard: SimShard): void {
    const { rng } = this
    const tx = `s${shard.shard}:tx${shard.txCount++}`
    const up = shard.nodes.filter((n) => n.up)
    const targets = up.filter(() => rng.chance(0.5))
    if (targets.length === 0 && up.length > 0) targets.push(rng.pick(up))
    for (const node of targets) this.feed(node, { _tag: "NewPayload", txs: [tx] })
    this.queue.push(this.now + this.scenario.txIntervalMs, { kind: "tx", shard })
  }

  // --- GST and liveness

  private gst(): void {
    this.afterGst = true
    this.sides = undefined
    this.trace.push({ timeMs: this.now, node: "network", what: "GST: partitions healed, loss off, crashed nodes restart" })
    for (const node of this.nodes) if (!node.up) this.restart(node)
    for (const shard of this.shards) shard.heightAtGst = this.checker.highestHonestHeight(shard)
  }

  private honestNodes(shard: SimShard): ReadonlyArray<SimNode> {
    return shard.nodes.filter((n) => !n.twin)
  }

  private livenessReached(): boolean {
    const { progressBlocksMin } = this.scenario
    for (const shard of this.shards) {
      for (const node of this.honestNodes(shard)) {
        if (node.state.committedHeight < shard.heightAtGst + progressBlocksMin) return false
      }
    }
    return true
  }

  private livenessReport(): string {
    const { progressBlocksMin, livenessDeadlineMs } = this.scenario
    const lagging = this.shards.flatMap((shard) =>
      this.honestNodes(shard)
        .filter((n) => n.state.committedHeight < shard.heightAtGst + progressBlocksMin)
        .map(
          (n) =>
            `${n.name} at height ${n.state.committedHeight} view ${n.state.view} (wants ${shard.heightAtGst + progressBlocksMin})`
        )
    )
    return `no progress ${livenessDeadlineMs}ms after GST: ${lagging.join("; ")}`
  }
}

/** The broken variant `tcHighQcUnchecked`: every TC reaches nodes with its high-QC views zeroed. */
const withoutHighQcs = (message: Message): Message => {
  const zeroed = <T extends { readonly highQcViews: ReadonlyArray<number> }>(tc: T): T => ({
    ...tc,
    highQcViews: tc.highQcViews.map(() => 0)
  })
  if (message._tag === "Proposal" && message.tc !== undefined) return { ...message, tc: zeroed(message.tc) }
  if (message._tag === "Timeout" && message.lastTc !== undefined) return { ...message, lastTc: zeroed(message.lastTc) }
  return message
}

/**
 * The Byzantine leader of the broken variants (`staleTwinProposals`): a twin
 * that proposes with a TC re-makes its block one certified block further
 * back (on its QC's block's parent, with that block's QC), trying to fork
 * away a block that may have committed. The 2-chain voting rule refuses such
 * a block whenever a TC signer reported a higher QC.
 */
const staleProposal = (node: SimNode, message: Message): Message => {
  if (message._tag !== "Proposal" || message.tc === undefined) return message
  const { block } = message
  const certified = Option.getOrUndefined(HashMap.get(node.state.blocks, block.justify.blockHash))
  if (certified === undefined || certified.height === 0) return message
  const parent = Option.getOrUndefined(HashMap.get(node.state.blocks, certified.parentHash))
  if (parent === undefined) return message
  const stale = makeBlock({
    shard: block.shard,
    epoch: block.epoch,
    view: block.view,
    height: parent.height + 1,
    parentHash: parent.hash,
    justify: certified.justify,
    proposer: block.proposer,
    payload: block.payload
  })
  return { ...message, block: stale }
}

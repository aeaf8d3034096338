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
 * Epochs (on for about half the seeds, `Scenario.epochBlocks`): each shard
 * hands over to a new committee the way the node does (`actors/BftSeat.ts`).
 * Each shard has a pool of validators, its first committee and a few spares,
 * with one node instance each; the ones outside an epoch's committee run
 * `step` as observers (`OBSERVER`). The next committee is elected by
 * `electCommittees` over the pool, with stakes drawn from, and seeded by, the
 * block that started the epoch (`beacon`: the simulator's stand-in for the
 * beacon's election, known to every node of the epoch). Once a member has
 * committed `epochBlocks` blocks of the epoch, it puts the handover
 * `c:<epoch>:<digest>` at the head of its mempool; members drop a proposal
 * whose handover is not the one their beacon elected. When the block carrying
 * it commits, the node ends its epoch there: commits of the same step past it
 * are ignored (never applied), and the node starts the new committee's chain
 * on `epochGenesisBlock` with a fresh state and fresh records. Frames of an
 * older epoch are dropped, of a newer one kept until the node gets there; a
 * node that sees a newer epoch catches up after a while by adopting the
 * committed blocks more than f of its peers report (`catchUp`). A member
 * that left an epoch answers that epoch's stragglers with its final high QC
 * (`answerStraggler`): the QC that commits a handover may reach one node
 * only, and without it the others hold neither a quorum in the old epoch nor
 * more than f peers to catch up from. A node restarts in the epoch of its
 * last applied handover.
 *
 * The state checker (`checker.ts`) sees every commit. The first violation
 * stops the run; the result carries the seed, the scenario and the trace of
 * the last events. Nothing here reads the clock or Math.random: the same
 * seed replays the same run, which the history hash shows.
 */
import { Either, HashMap, Option } from "effect"
import type { Hash32 } from "../../domain/chain/hash.js"
import { sha256, ZERO_HASH } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { type Committee, electCommittees, makeCommittee } from "../../domain/consensus/committee.js"
import { type CommitteeVerifier, type QuorumCrypto, verifyCertificate } from "../../domain/consensus/quorum.js"
import {
  type ConsensusConfig,
  type ConsensusState,
  epochGenesisBlock,
  genesisBlock,
  initialState,
  OBSERVER,
  recover,
  safetyOf
} from "../../domain/consensus/state.js"
import { makeBlock, timeoutDigest, voteDigest } from "../../domain/consensus/digests.js"
import { blocksFor, step } from "../../domain/consensus/step.js"
import type { Block, Input, Message, NodeIndex, Output, QuorumCertificate, SafetyRecord, TxId } from "../../domain/consensus/types.js"
import { HANDOVER_PREFIX, isHandoverEntry, StateChecker, type Violation } from "./checker.js"
import { MacKeyring, macKeyFromSeed, macQuorumCrypto, type MacKey } from "./macCrypto.js"
import { Prng } from "./prng.js"
import type { Scenario } from "./scenario.js"
import { TraceRing } from "./trace.js"

/** A validator of one shard's pool: its key, and its node instances (two for a twin). */
export interface SimValidator {
  readonly name: string
  readonly key: MacKey
  /** Its stake in the scenario's pool (what epoch 0's election drew on). */
  readonly stake: bigint
  readonly twin: boolean
  readonly instances: Array<SimNode>
}

/** The committee the beacon elected for one epoch of one shard. */
export interface Elected {
  readonly epoch: number
  /** The committee with the real (2/3) quorum. */
  readonly committee: Committee
  /** A verifier over its keys (shared by the checker and the nodes). */
  readonly verifier: CommitteeVerifier
  /** The handover entry that names it: `c:<epoch>:<digest>`. */
  readonly entry: TxId
}

/** One epoch of one shard's chain, as the nodes run it: who certifies it and where it starts. */
export interface SimEpoch {
  readonly epoch: number
  /** The committee the nodes run on (a broken variant's weaker quorum). */
  readonly committee: Committee
  /** The same members with the real quorum. */
  readonly honestCommittee: Committee
  readonly verifier: CommitteeVerifier
  /** What the nodes verify with (`tcHighQcUnchecked` waves TCs through). */
  readonly nodeVerifier: CommitteeVerifier
  readonly genesis: Block
  /** The instances of each seat (two for a twin seat). */
  readonly seats: ReadonlyArray<ReadonlyArray<SimNode>>
  readonly seatOf: ReadonlyMap<string, NodeIndex>
  /** A member proposes the handover once it committed this height (undefined: epochs off). */
  readonly handoverAt: number | undefined
}

export interface SimNode {
  /** Global instance id (twins are two instances of one validator). */
  readonly id: number
  readonly name: string
  readonly shard: SimShard
  readonly validator: SimValidator
  /** Its seat in its epoch's committee, or `OBSERVER`. */
  index: NodeIndex
  readonly twin: boolean
  epoch: SimEpoch
  config: ConsensusConfig
  state: ConsensusState
  /** The node's event store for its epoch: every `Persist` record, in order (a fresh stream per epoch). */
  log: Array<SafetyRecord>
  /** Its ledger: the committed blocks it applied, by height - 1 (across epochs). */
  readonly ledger: Array<{ readonly block: Block; readonly qc: QuorumCertificate }>
  /** The transactions in its ledger (epochs only: a new epoch's state starts without them). */
  readonly ledgerTxs: Set<TxId>
  up: boolean
  /** Only the timer of the latest `SetTimer` fires. */
  timerGeneration: number
  /** Set when a step commits this epoch's handover: the node switches after the step. */
  pendingHandover: Block | undefined
  /** Blocks the step committed after the handover: never applied. */
  ignored: Array<Block>
  /** Whether the handover is in its mempool (members, once `handoverAt` is committed). */
  handoverQueued: boolean
  /** Frames of a later epoch, kept until the node gets there. */
  future: Array<Frame>
  catchUpPending: boolean
  /** The broken variant `switchOnCertified`: the high QC it last looked at. */
  certifiedSeen: Hash32 | undefined
  /** The epoch it left by committing its handover: its seat and final tree, to answer stragglers. */
  previous: { readonly epoch: SimEpoch; readonly config: ConsensusConfig; readonly state: ConsensusState } | undefined
}

export interface SimShard {
  readonly shard: ShardId
  readonly epoch0: SimEpoch
  readonly validators: Array<SimValidator>
  readonly nodes: Array<SimNode>
  /** The beacon: the committee elected for `epoch`, seeded by the block that started the epoch before it. */
  readonly beacon: (epoch: number, parentHash: Hash32) => Elected
  /** Epochs the nodes entered, by `${epoch}:${handover block hash}`. */
  readonly epochs: Map<string, SimEpoch>
  txCount: number
  /** The highest honest commit at GST; liveness wants every honest node past it. */
  heightAtGst: number
  /** The highest honest epoch at GST; with epochs, liveness wants every honest node past it too. */
  epochAtGst: number
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
  /** Handovers in the committed history (all shards). */
  readonly handovers: number
  /** Catch-ups that adopted blocks from peers. */
  readonly catchUps: number
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

/** A message in flight, with the epoch and seat its sender had when it sent it. */
interface Frame {
  readonly from: SimNode
  readonly epoch: number
  readonly seat: NodeIndex
  readonly message: Message
}

type SimEvent =
  | { readonly kind: "deliver"; readonly to: SimNode; readonly frame: Frame }
  | { readonly kind: "timer"; readonly node: SimNode; readonly view: number; readonly generation: number }
  | { readonly kind: "tx"; readonly shard: SimShard }
  | { readonly kind: "partition" }
  | { readonly kind: "heal"; readonly generation: number }
  | { readonly kind: "crash" }
  | { readonly kind: "restart"; readonly node: SimNode }
  | { readonly kind: "catchup"; readonly node: SimNode }
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
/** Frames of later epochs a node keeps until it gets there. */
const FUTURE_FRAMES_MAX = 256
/** How long a node that saw a later epoch's frame waits before catching up from its peers' ledgers. */
const CATCH_UP_DELAY_MS = 150

/** sha256 over the committee's shard, epoch and members (validator, stake, key) in seat order. */
export const simCommitteeDigest = (c: Committee): Hash32 =>
  bytesToHex(
    sha256(
      "topai/sim/committee",
      `${c.shard}|${c.epoch}|${c.members.map((m) => `${m.validator}:${m.stake}:${bytesToHex(m.publicKey)}`).join(",")}`
    )
  ) as Hash32

export const runScenario = (scenario: Scenario, options: RunOptions = {}): RunResult => new Simulation(scenario, options).run()

class Simulation {
  private readonly rng: Prng
  private readonly queue = new EventQueue()
  private readonly trace: TraceRing
  private readonly shards: Array<SimShard> = []
  private readonly nodes: Array<SimNode> = []
  private readonly checker: StateChecker
  private readonly crypto: QuorumCrypto
  private readonly keyring = new MacKeyring()
  private readonly epochsOn: boolean
  private now = 0
  private events = 0
  private messages = 0
  private catchUps = 0
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
    this.crypto = macQuorumCrypto(this.keyring)
    this.epochsOn = scenario.epochBlocks !== undefined
    this.build()
  }

  private build(): void {
    const { scenario, rng, keyring } = this
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
    // Epoch randomness has its own stream: a seed with epochs off runs as it did before epochs.
    const epochRng = new Prng(scenario.seed ^ 0x2b7e1516)
    for (const shardId of shardIds) {
      const honestCommittee = elected.right.get(shardId)!
      const twinSeats = this.pickTwinSeats(honestCommittee)
      const members = honestCommittee.members.map((m, index) => ({ member: m, twin: twinSeats.has(index) }))
      const inCommittee = new Set(honestCommittee.members.map((m) => m.validator))
      const spares = epochRng
        .shuffle(validators.filter((v) => !inCommittee.has(v.validator)))
        .slice(0, this.epochsOn ? scenario.spareValidators : 0)
        .map((v) => ({ member: v, twin: false }))
      const pool: Array<SimValidator> = []
      const epochs = new Map<string, SimEpoch>()
      const beaconMemo = new Map<string, Elected>()
      const shard: SimShard = {
        shard: shardId,
        epoch0: undefined as never,
        validators: pool,
        nodes: [],
        beacon: (epoch, parentHash) => {
          const key = `${epoch}:${parentHash}`
          let out = beaconMemo.get(key)
          if (out === undefined) {
            out = this.elect(shardId, pool, epoch, parentHash)
            beaconMemo.set(key, out)
          }
          return out
        },
        epochs,
        txCount: 0,
        heightAtGst: 0,
        epochAtGst: 0
      }
      for (const [k, { member, twin }] of [...members, ...spares].entries()) {
        const validator: SimValidator = { name: member.validator, key: keys.get(member.validator)!, stake: member.stake, twin, instances: [] }
        pool.push(validator)
        const instances = twin ? 2 : 1
        for (let i = 0; i < instances; i++) {
          const label = k < members.length ? String(k) : `+${member.validator.slice(3).replace(/^0+(?=.)/, "")}`
          const node: SimNode = {
            id: this.nodes.length,
            name: `s${shardId}/${label}${instances === 2 ? (i === 0 ? "a" : "b") : ""}`,
            shard,
            validator,
            index: OBSERVER,
            twin,
            epoch: undefined as never,
            config: undefined as never,
            state: undefined as never,
            log: [],
            ledger: [],
            ledgerTxs: new Set(),
            up: true,
            timerGeneration: 0,
            pendingHandover: undefined,
            ignored: [],
            handoverQueued: false,
            future: [],
            catchUpPending: false,
            certifiedSeen: undefined,
            previous: undefined
          }
          this.nodes.push(node)
          shard.nodes.push(node)
          validator.instances.push(node)
        }
      }
      const epoch0 = this.makeEpoch(shard, honestCommittee, genesisBlock(honestCommittee))
      ;(shard as { epoch0: SimEpoch }).epoch0 = epoch0
      for (const node of shard.nodes) this.setEpoch(node, epoch0, [], [])
      this.checker.addShard(shard)
      this.shards.push(shard)
    }
  }

  /**
   * The beacon's election of `epoch` for one shard: every validator of the
   * pool a candidate, with a stake drawn from the seed (0 leaves it out; a
   * twin keeps 1, under the Byzantine bound), shuffled by `electCommittees`.
   */
  private elect(shardId: ShardId, pool: ReadonlyArray<SimValidator>, epoch: number, parentHash: Hash32): Elected {
    const { scenario } = this
    const seedBytes = sha256("topai/sim/election", `${scenario.seed}|${shardId}|${epoch}`, parentHash)
    const seed = bytesToHex(seedBytes) as Hash32
    const stakes = pool.map((v) => {
      const drawn = BigInt(sha256(seedBytes, v.name)[0]! % 5)
      return v.twin && !scenario.byzantineBoundIgnored ? 1n : drawn
    })
    for (let i = 0; stakes.filter((s) => s > 0n).length < scenario.committeeSize && i < stakes.length; i++) {
      if (stakes[i] === 0n) stakes[i] = 1n
    }
    const candidates = pool.map((v, i) => ({ validator: v.name, stake: stakes[i]!, publicKey: v.key.publicKey }))
    const elected = electCommittees({ validators: candidates, shards: [shardId], committeeSize: scenario.committeeSize, epoch, seed })
    if (Either.isLeft(elected)) throw new Error(`shard ${shardId} epoch ${epoch}: election failed: ${elected.left.detail}`)
    const committee = elected.right.get(shardId)!
    const verifier = Either.getOrThrow(this.crypto.verifierFor(committee.members.map((m) => m.publicKey)))
    return { epoch, committee, verifier, entry: `${HANDOVER_PREFIX}${epoch}:${simCommitteeDigest(committee)}` }
  }

  private makeEpoch(shard: SimShard, honestCommittee: Committee, genesis: Block, verifier?: CommitteeVerifier): SimEpoch {
    const { scenario } = this
    const committee =
      scenario.quorum === undefined
        ? honestCommittee
        : Either.getOrThrow(makeCommittee(shard.shard, honestCommittee.epoch, honestCommittee.members, scenario.quorum))
    const real = verifier ?? Either.getOrThrow(this.crypto.verifierFor(committee.members.map((m) => m.publicKey)))
    const byName = new Map(shard.validators.map((v) => [v.name, v]))
    const seats = committee.members.map((m) => byName.get(m.validator)!.instances)
    const seatOf = new Map(committee.members.map((m, i) => [m.validator, i]))
    // Twins above the Byzantine bound would make forks the protocol does not promise to prevent.
    if (!scenario.byzantineBoundIgnored) {
      const twinStake = committee.members.reduce((sum, m) => (byName.get(m.validator)!.twin ? sum + m.stake : sum), 0n)
      if (twinStake * 3n >= committee.totalStake) {
        throw new Error(`shard ${shard.shard} epoch ${committee.epoch}: twins hold ${twinStake} of ${committee.totalStake}`)
      }
    }
    return {
      epoch: committee.epoch,
      committee,
      honestCommittee,
      verifier: real,
      // The broken variant `tcHighQcUnchecked`: nodes take any TC (the checker keeps the real verifier).
      nodeVerifier: scenario.tcHighQcUnchecked ? { ...real, verifyAggregateMulti: () => Either.void } : real,
      genesis,
      seats,
      seatOf,
      handoverAt: scenario.epochBlocks === undefined ? undefined : genesis.height + scenario.epochBlocks
    }
  }

  /** The epoch a committed handover block of `prev` starts (one per handover block, shared by the nodes). */
  private epochAfter(shard: SimShard, prev: SimEpoch, handover: Block): SimEpoch {
    const key = `${prev.epoch + 1}:${handover.hash}`
    let next = shard.epochs.get(key)
    if (next === undefined) {
      const elected = shard.beacon(prev.epoch + 1, prev.genesis.parentHash)
      next = this.makeEpoch(shard, elected.committee, epochGenesisBlock(elected.committee, handover.hash, handover.height), elected.verifier)
      shard.epochs.set(key, next)
    }
    return next
  }

  private nextEntry(node: SimNode): TxId {
    return node.shard.beacon(node.epoch.epoch + 1, node.epoch.genesis.parentHash).entry
  }

  /** The node's seat, config, records and state in `epoch` (its timers of the epoch before are void). */
  private setEpoch(node: SimNode, epoch: SimEpoch, records: Array<SafetyRecord>, mempool: ReadonlyArray<TxId>): void {
    const { scenario } = this
    node.epoch = epoch
    node.index = epoch.seatOf.get(node.validator.name) ?? OBSERVER
    node.config = {
      committee: epoch.committee,
      self: node.index,
      secretKey: node.validator.key.secretKey,
      crypto: this.crypto,
      verifier: epoch.nodeVerifier,
      genesis: epoch.genesis,
      timing: { baseTimeoutMs: scenario.baseTimeoutMs, backoffExponentMax: scenario.backoffExponentMax },
      blockTxsMax: 64,
      syncBlocksMax: 16,
      detachedBlocksMax: 256
    }
    node.log = records
    const state = records.length === 0 ? initialState(node.config) : recover(node.config, records)
    node.state = mempool.length === 0 ? state : { ...state, mempool }
    node.timerGeneration++
    node.handoverQueued = false
    node.certifiedSeen = undefined
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
      handovers: this.checker.handoverCount,
      catchUps: this.catchUps,
      events: this.events,
      messages: this.messages,
      simulatedMs: this.now,
      trace: this.checker.violation === undefined ? [] : this.trace.lines()
    }
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case "deliver": {
        const { to, frame } = event
        if (!to.up || this.cut(frame.from, to)) return
        return this.receive(to, frame)
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
      case "catchup":
        event.node.catchUpPending = false
        if (event.node.up) this.catchUp(event.node)
        return
      case "gst":
        return this.gst()
    }
  }

  // --- driving one node

  /** A frame reaches `to`: fed to its state machine if of its epoch, kept if of a later one. */
  private receive(to: SimNode, frame: Frame): void {
    const { from, epoch, seat, message } = frame
    if (epoch !== to.epoch.epoch) {
      if (epoch < to.epoch.epoch) {
        // Stale: the old committee's chain ended. Stragglers may have missed the QC that committed the handover
        // (perhaps only this node formed it); this node answers from the epoch it left (`answerStraggler`).
        const previous = to.previous
        if (previous !== undefined && epoch === previous.epoch.epoch) this.answerStraggler(to, previous, from, message)
        return
      }
      if (to.future.length < FUTURE_FRAMES_MAX) to.future.push(frame)
      if (!to.catchUpPending) {
        to.catchUpPending = true
        this.queue.push(this.now + CATCH_UP_DELAY_MS, { kind: "catchup", node: to })
      }
      return
    }
    if (seat === OBSERVER) {
      // Observers sync blocks too: answer from this node's tree (the state machine only hears members).
      if (message._tag !== "BlockRequest") return
      const blocks = blocksFor(to.config, to.state, message.blockHash)
      if (blocks.length > 0) this.send(to, from, { _tag: "BlockResponse", blocks })
      return
    }
    if (message._tag === "Proposal" && !this.handoverChecks(to, message.block)) {
      this.trace.push({ timeMs: this.now, node: to.name, what: `← ${from.name} DROPPED (handover not elected)`, message })
      return
    }
    this.trace.push({ timeMs: this.now, node: to.name, what: `← ${from.name}`, message })
    this.feed(to, { _tag: "Received", from: seat, message: this.scenario.tcHighQcUnchecked ? withoutHighQcs(message) : message })
  }

  /**
   * A member of the epoch this node left by committing its handover answers
   * a straggler of that epoch: a timeout with a timeout of its own, which
   * carries its final high QC (the one that committed the handover, or
   * higher); a block request from its final tree. It never votes in that
   * epoch again, so a timeout (a promise not to vote in the view) is safe,
   * and the high-QC view it signs is its own.
   */
  private answerStraggler(node: SimNode, previous: NonNullable<SimNode["previous"]>, to: SimNode, message: Message): void {
    const { config, state } = previous
    if (config.self === OBSERVER) return
    if (message._tag === "BlockRequest") {
      const blocks = blocksFor(config, state, message.blockHash)
      if (blocks.length > 0) this.send(node, to, { _tag: "BlockResponse", blocks }, previous.epoch.epoch, config.self)
    } else if (message._tag === "Timeout" && message.highQc.view < state.highQc.view) {
      const view = Math.max(message.view, state.highQc.view + 1)
      const signature = config.crypto.sign(config.secretKey, timeoutDigest(config.committee.shard, config.committee.epoch, view, state.highQc.view))
      const timeout: Message = { _tag: "Timeout", view, voter: config.self, signature, highQc: state.highQc, lastTc: undefined }
      this.send(node, to, timeout, previous.epoch.epoch, config.self)
    }
  }

  /** A proposal names at most one handover: the one this node's beacon elected, after the epoch's `epochBlocks` blocks. */
  private handoverChecks(node: SimNode, block: Block): boolean {
    if (!this.epochsOn) return true
    let seen = false
    for (const tx of block.payload) {
      if (!isHandoverEntry(tx)) continue
      if (seen || block.height <= node.epoch.handoverAt! || tx !== this.nextEntry(node)) return false
      seen = true
    }
    return true
  }

  private feed(node: SimNode, input: Input): void {
    if (this.epochsOn && !node.handoverQueued && node.index !== OBSERVER && node.state.committedHeight >= node.epoch.handoverAt!) {
      // The next committee is elected and this member committed the epoch's blocks: hand over in its next proposal.
      node.handoverQueued = true
      node.state = { ...node.state, mempool: [this.nextEntry(node), ...node.state.mempool] }
    }
    let result
    try {
      result = step(node.config, node.state, input)
    } catch (e) {
      this.checker.fail("assertion", `${node.name}: ${e instanceof Error ? e.message : String(e)}`)
      return
    }
    node.state = result.state
    for (const output of result.outputs) this.carry(node, output)
    if (node.pendingHandover !== undefined) this.switchEpoch(node)
    else if (this.scenario.switchOnCertified) this.switchOnCertified(node)
  }

  private carry(node: SimNode, output: Output): void {
    switch (output._tag) {
      case "Persist":
        if (output.record._tag === "Voted" || output.record._tag === "TimedOut") this.checkSigner(node, output.record._tag)
        node.log.push(output.record)
        return
      case "Send":
        if (output.message._tag === "Vote") this.checkSigner(node, "Vote")
        for (const to of node.epoch.seats[output.to] ?? []) if (to !== node) this.send(node, to, output.message)
        return
      case "Broadcast": {
        this.checkSigner(node, output.message._tag)
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
        if (node.pendingHandover !== undefined && !this.scenario.oldBlocksApplied) {
          // The epoch ended at the handover: what the old committee committed after it is never applied.
          this.trace.push({ timeMs: this.now, node: node.name, what: "IGNORED (after the handover)", output })
          node.ignored.push(output.block)
          return
        }
        this.trace.push({ timeMs: this.now, node: node.name, what: "", output })
        this.apply(node, output.block, output.qc)
        return
      case "RequestBlock":
        for (const to of node.epoch.seats[output.from] ?? []) {
          if (to !== node) this.send(node, to, { _tag: "BlockRequest", blockHash: output.blockHash })
        }
        return
    }
  }

  /** Only a member of the node's epoch signs in it (votes, timeouts, proposals), under its own seat. */
  private checkSigner(node: SimNode, what: string): void {
    if (node.index !== OBSERVER && node.epoch.committee.members[node.index]?.validator === node.validator.name) return
    this.checker.fail("observer-signed", `${node.name} (${node.validator.name}, seat ${node.index}) emitted a ${what} in epoch ${node.epoch.epoch}, whose committee it is not in at that seat`)
  }

  /** A committed block into the node's ledger; the epoch's handover marks the end of its epoch. */
  private apply(node: SimNode, block: Block, qc: QuorumCertificate): void {
    this.checker.onCommit(node, block, qc)
    node.ledger.push({ block, qc })
    if (!this.epochsOn) return
    const entry = this.nextEntry(node)
    for (const tx of block.payload) {
      node.ledgerTxs.add(tx)
      if (tx === entry) node.pendingHandover = block
    }
  }

  /** After the step that committed the handover: start the new committee's chain. */
  private switchEpoch(node: SimNode): void {
    const handover = node.pendingHandover!
    node.pendingHandover = undefined
    this.checkReplay(node) // the epoch's records rebuild its safety state, before they are left behind
    const carried = [...node.state.mempool, ...node.ignored.flatMap((b) => b.payload)]
    node.ignored = []
    node.previous = { epoch: node.epoch, config: node.config, state: node.state }
    this.enterEpoch(node, this.epochAfter(node.shard, node.epoch, handover), [], carried)
  }

  /** Enter `epoch` with these records and pending transactions (not the ones already in the ledger), and start it. */
  private enterEpoch(node: SimNode, epoch: SimEpoch, records: Array<SafetyRecord>, pending: ReadonlyArray<TxId>): void {
    const from = node.epoch.epoch
    const mempool = [...new Set(pending)].filter((tx) => !isHandoverEntry(tx) && !node.ledgerTxs.has(tx))
    this.setEpoch(node, epoch, records, mempool)
    this.trace.push({
      timeMs: this.now,
      node: node.name,
      what: `EPOCH ${from} → ${epoch.epoch} at h${epoch.genesis.height} ${epoch.genesis.parentHash.slice(2, 10)}: ${node.index === OBSERVER ? "observer" : `seat ${node.index} of ${epoch.committee.members.length}`}`
    })
    this.feed(node, { _tag: "Start" })
    const waiting = node.future
    node.future = []
    for (const frame of waiting) if (node.up && frame.epoch >= node.epoch.epoch) this.receive(node, frame)
  }

  /**
   * The broken variant `switchOnCertified`: a node that sees its epoch's
   * handover certified (its high QC on it or a descendant) applies the chain
   * up to it and switches, without waiting for the commit.
   */
  private switchOnCertified(node: SimNode): void {
    const qc = node.state.highQc
    if (qc.blockHash === node.certifiedSeen || !this.epochsOn) return
    node.certifiedSeen = qc.blockHash
    const entry = this.nextEntry(node)
    const chain: Array<{ block: Block; qc: QuorumCertificate }> = []
    let certifying = qc
    let cursor = Option.getOrUndefined(HashMap.get(node.state.blocks, qc.blockHash))
    while (cursor !== undefined && cursor.height > node.state.committedHeight) {
      chain.push({ block: cursor, qc: certifying })
      certifying = cursor.justify
      cursor = Option.getOrUndefined(HashMap.get(node.state.blocks, cursor.parentHash))
    }
    if (cursor === undefined || cursor.hash !== node.state.committedHash) return
    let handoverAt = -1
    for (let i = chain.length - 1; i >= 0 && handoverAt < 0; i--) if (chain[i]!.block.payload.includes(entry)) handoverAt = i
    if (handoverAt < 0) return
    for (let i = chain.length - 1; i >= handoverAt; i--) {
      this.trace.push({ timeMs: this.now, node: node.name, what: "APPLIED CERTIFIED (broken)", output: { _tag: "Commit", ...chain[i]! } })
      this.apply(node, chain[i]!.block, chain[i]!.qc)
    }
    node.log.push(...chain.slice(handoverAt).reverse().map(({ block, qc }) => ({ _tag: "Committed" as const, block, qc })))
    node.state = recover(node.config, node.log)
    this.switchEpoch(node)
  }

  // --- catching up across epochs

  /**
   * A node that saw a later epoch's frames asks its peers (one instance per
   * other validator of the shard, up and reachable) for their committed
   * chains above its own and adopts, height by height, the block more than f
   * of them report (f = ⌊(n − 1)/3⌋ of its committee's n seats, as the node). Each adopted block's QC is checked
   * against the committee of its epoch, and a handover among them moves the
   * node to the next epoch, as when it commits one. The adopted blocks of the
   * epoch it ends in are its records there (`Committed`), and its state is
   * rebuilt from them.
   */
  private catchUp(node: SimNode): void {
    const shard = node.shard
    const peers: Array<SimNode> = []
    for (const v of shard.validators) {
      if (v === node.validator) continue
      const peer = v.instances.find((n) => n.up && !this.cut(node, n))
      if (peer !== undefined) peers.push(peer)
    }
    const f = Math.floor((node.epoch.committee.members.length - 1) / 3) // the faults its committee tolerates, as the node
    const adopted: Array<{ block: Block; qc: QuorumCertificate }> = []
    for (let height = node.ledger.length + 1; ; height++) {
      const tally = new Map<Hash32, { count: number; entry: { block: Block; qc: QuorumCertificate } }>()
      let agreed: { block: Block; qc: QuorumCertificate } | undefined
      for (const peer of peers) {
        const entry = peer.ledger[height - 1]
        if (entry === undefined) continue
        const t = tally.get(entry.block.hash) ?? { count: 0, entry }
        t.count++
        tally.set(entry.block.hash, t)
        if (t.count > f) agreed = t.entry
      }
      if (agreed === undefined) break
      adopted.push(agreed)
    }
    if (adopted.length === 0) return
    this.catchUps++
    this.trace.push({
      timeMs: this.now,
      node: node.name,
      what: `CATCH-UP h${adopted[0]!.block.height}..h${adopted[adopted.length - 1]!.block.height} from ${peers.length} peers (f=${f})`
    })
    const pending = [...node.state.mempool]
    const started = node.epoch
    let epoch = node.epoch
    let records = node.log
    for (const { block, qc } of adopted) {
      if (node.pendingHandover !== undefined) {
        epoch = this.epochAfter(shard, epoch, node.pendingHandover)
        node.pendingHandover = undefined
        node.epoch = epoch
        records = []
      }
      const certified =
        block.epoch === epoch.epoch &&
        qc.blockHash === block.hash &&
        qc.view === block.view &&
        Either.isRight(verifyCertificate(epoch.committee, epoch.nodeVerifier, voteDigest(block.shard, epoch.epoch, qc.view, qc.blockHash), qc))
      if (!certified) break // the ledger refuses it: what follows cannot be applied either
      records.push({ _tag: "Committed", block, qc })
      this.apply(node, block, qc)
    }
    if (node.pendingHandover !== undefined) {
      epoch = this.epochAfter(shard, epoch, node.pendingHandover)
      node.pendingHandover = undefined
      records = []
    }
    node.ignored = []
    if (epoch !== started) node.previous = undefined
    this.enterEpoch(node, epoch, records, pending)
  }

  // --- the network

  private cut(a: SimNode, b: SimNode): boolean {
    return this.sides !== undefined && this.sides[a.id] !== this.sides[b.id]
  }

  private send(from: SimNode, to: SimNode, message: Message, epoch = from.epoch.epoch, seat = from.index): void {
    const { faults } = this.scenario
    const { rng } = this
    if (this.cut(from, to)) return
    if (!this.afterGst && rng.chance(faults.lossProbability)) return
    const copies = rng.chance(faults.duplicateProbability) ? 2 : 1
    const frame: Frame = { from, epoch, seat, message }
    for (let k = 0; k < copies; k++) {
      const long = !this.afterGst && rng.chance(faults.longDelayProbability)
      const delay = long ? rng.int(faults.delayMaxMs, faults.longDelayMaxMs) : rng.int(faults.delayMinMs, faults.delayMaxMs)
      this.messages++
      this.queue.push(this.now + delay, { kind: "deliver", to, frame })
    }
  }

  private startPartition(): void {
    if (this.afterGst) return
    const { rng } = this
    const sides = new Uint8Array(this.nodes.length)
    // Twins-aware (Diem's Twins): usually keep each twin pair apart, so equivocation reaches
    // both halves, and often split the other validators evenly, so both halves hold honest nodes.
    for (const shard of this.shards) {
      const balanced = rng.chance(this.scenario.balancedPartitionProbability)
      let alternate = rng.int(0, 1)
      for (const { instances } of rng.shuffle(shard.validators)) {
        if (instances.length === 2 && (balanced || rng.chance(0.8))) {
          const first = rng.int(0, 1)
          sides[instances[0]!.id] = first
          sides[instances[1]!.id] = 1 - first
        } else {
          const side = balanced ? (alternate = 1 - alternate) : rng.int(0, 1)
          for (const node of instances) sides[node.id] = side
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
    node.future = []
    this.trace.push({ timeMs: this.now, node: node.name, what: "CRASH" })
    const downMs = this.rng.int(10, this.scenario.crashDownMsMax)
    if (this.now + downMs < this.scenario.faultPhaseMs) this.queue.push(this.now + downMs, { kind: "restart", node })
  }

  /** A restarted node resumes in the epoch of its last applied handover, from that epoch's records. */
  private restart(node: SimNode): void {
    if (node.up) return
    node.state = recover(node.config, node.log)
    node.handoverQueued = false
    node.certifiedSeen = undefined
    node.up = true
    this.trace.push({ timeMs: this.now, node: node.name, what: `RESTART in epoch ${node.epoch.epoch} from ${node.log.length} records` })
    this.feed(node, { _tag: "Start" })
  }

  /** Replaying the node's records of its epoch gives back the safety state it holds now. */
  private checkReplay(node: SimNode): void {
    const live = safetyOf(node.state)
    const replayed = safetyOf(recover(node.config, node.log))
    for (const key of Object.keys(live) as Array<keyof typeof live>) {
      if (live[key] !== replayed[key]) {
        this.checker.fail(
          "replay",
          `${node.name} epoch ${node.epoch.epoch}: ${key} is ${String(live[key])} live but ${String(replayed[key])} after replaying ${node.log.length} records`
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
    for (const shard of this.shards) {
      shard.heightAtGst = this.checker.highestHonestHeight(shard)
      shard.epochAtGst = Math.max(...this.honestNodes(shard).map((n) => n.epoch.epoch))
    }
  }

  private honestNodes(shard: SimShard): ReadonlyArray<SimNode> {
    return shard.nodes.filter((n) => !n.twin)
  }

  /** Every honest node committed `progressBlocksMin` blocks past GST's highest, and with epochs, applied a handover made after GST. */
  private lagging(shard: SimShard, node: SimNode): boolean {
    return node.ledger.length < shard.heightAtGst + this.scenario.progressBlocksMin || (this.epochsOn && node.epoch.epoch <= shard.epochAtGst)
  }

  private livenessReached(): boolean {
    for (const shard of this.shards) {
      for (const node of shard.nodes) if (!node.twin && this.lagging(shard, node)) return false
    }
    return true
  }

  private livenessReport(): string {
    const { progressBlocksMin, livenessDeadlineMs } = this.scenario
    const lagging = this.shards.flatMap((shard) =>
      this.honestNodes(shard)
        .filter((n) => this.lagging(shard, n))
        .map(
          (n) =>
            `${n.name} at height ${n.ledger.length} epoch ${n.epoch.epoch} view ${n.state.view} (wants ${shard.heightAtGst + progressBlocksMin}${this.epochsOn ? `, epoch > ${shard.epochAtGst}` : ""})`
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

/**
 * A scenario: everything a seed decides before the run starts — how many
 * shards and seats, who is a Byzantine twin, and how hostile the network is
 * during the fault phase. Printed with a failing seed (TigerBeetle's VOPR
 * logs its fault settings beside the seed), so a run can be read without
 * re-deriving them.
 */
import type { Fraction } from "../../domain/consensus/committee.js"
import { Prng } from "./prng.js"

export interface NetworkFaults {
  /** Probability that a message is lost (fault phase only). */
  readonly lossProbability: number
  /** Probability that a message is delivered twice. */
  readonly duplicateProbability: number
  /** Probability that a message takes the long road (reordering). */
  readonly longDelayProbability: number
  readonly delayMinMs: number
  readonly delayMaxMs: number
  readonly longDelayMaxMs: number
}

export interface Scenario {
  readonly seed: number
  readonly shards: number
  readonly committeeSize: number
  /** Validators in the pool the committees are elected from (some are left out). */
  readonly validators: number
  /** Per shard, how many seats are Byzantine twins (two nodes sharing one key). */
  readonly twinSeats: number
  /** Safety phase: faults on. Then GST: partitions heal, crashed nodes restart, loss stops. */
  readonly faultPhaseMs: number
  /** After GST, every honest node must commit new blocks within this much simulated time. */
  readonly livenessDeadlineMs: number
  readonly faults: NetworkFaults
  /** Network partitions started during the fault phase. */
  readonly partitions: number
  readonly partitionMsMax: number
  /** Node crashes during the fault phase (each restarts after a while, or at GST). */
  readonly crashes: number
  readonly crashDownMsMax: number
  readonly txIntervalMs: number
  readonly baseTimeoutMs: number
  readonly backoffExponentMax: number
  /** Blocks every honest node must commit past the highest commit at GST. */
  readonly progressBlocksMin: number
  /** Deliberately broken variants (tests of the simulator itself): a weaker quorum for the nodes, */
  readonly quorum: Fraction | undefined
  /** or twin seats holding 1/3 of the stake or more (the protocol's Byzantine bound broken), */
  readonly byzantineBoundIgnored: boolean
  /**
   * or nodes that vote for any block justified by a TC of the view before,
   * whatever its QC (the 2-chain voting rule without its high-QC check): the
   * network zeroes the high-QC views of proposals' TCs and the nodes'
   * verifier waves TCs through.
   */
  readonly tcHighQcUnchecked: boolean
  /** Not broken, an adversary: twins propose TC-justified blocks on a stale QC (see `simulator.ts`, `staleProposal`). */
  readonly staleTwinProposals: boolean
  /** Probability that a partition splits the honest seats evenly (else at random). */
  readonly balancedPartitionProbability: number
  /**
   * Epochs: a shard hands over to a newly elected committee once this many
   * blocks of the epoch are committed (undefined: one epoch, as before epochs).
   */
  readonly epochBlocks: number | undefined
  /** With epochs, validators of each shard's pool outside its first committee (observers until elected). */
  readonly spareValidators: number
  /**
   * Broken variant: a node switches to the next epoch as soon as it sees its
   * handover block certified (a QC on it), applying it and its ancestors
   * without waiting for the 2-chain commit.
   */
  readonly switchOnCertified: boolean
  /** Broken variant: a node applies the blocks the step commits after its epoch's handover (before switching). */
  readonly oldBlocksApplied: boolean
}

export interface ScenarioOverrides {
  readonly quorum?: Fraction | undefined
  readonly shards?: number
  readonly committeeSize?: number
  readonly twinSeats?: number
  readonly byzantineBoundIgnored?: boolean
  readonly tcHighQcUnchecked?: boolean
  readonly staleTwinProposals?: boolean
  readonly partitions?: number
  readonly partitionMsMax?: number
  readonly faultPhaseMs?: number
  readonly balancedPartitionProbability?: number
  /** Force epochs on (K from the seed) or off. */
  readonly epochs?: boolean
  readonly switchOnCertified?: boolean
  readonly oldBlocksApplied?: boolean
}

/**
 * The broken variant the simulator must catch with its safety invariants:
 * three twin seats of seven (3/7 of the seats > 1/3, beyond HotStuff's bound)
 * and long partitions that put one twin of each pair and half the honest
 * seats on each side, so each side holds a quorum and commits its own chain.
 */
export const TOO_MANY_TWINS: ScenarioOverrides = {
  shards: 1,
  committeeSize: 7,
  twinSeats: 3,
  byzantineBoundIgnored: true,
  partitions: 3,
  partitionMsMax: 2_000,
  faultPhaseMs: 4_000,
  balancedPartitionProbability: 1
}

/**
 * An adversary the real protocol must withstand (the control for
 * `TC_UNCHECKED`): one twin seat whose twins propose TC-justified blocks on
 * a stale QC.
 */
export const STALE_TWINS: ScenarioOverrides = {
  staleTwinProposals: true,
  twinSeats: 1
}

/**
 * The broken voting rule the simulator must catch: a TC lets a node vote for
 * a block on any older QC, so a leader that missed a QC forks a committed
 * block away. Twins (who propose on stale QCs) and partitions make it show.
 */
export const TC_UNCHECKED: ScenarioOverrides = {
  tcHighQcUnchecked: true,
  ...STALE_TWINS
}

/**
 * The broken handover the simulator must catch: a node that commits its
 * epoch's handover also applies what the same step committed after it (the
 * old committee's blocks past the handover), then switches.
 */
export const HANDOVER_UNCHECKED: ScenarioOverrides = {
  epochs: true,
  oldBlocksApplied: true
}

/**
 * A subtler broken handover: nodes switch epochs on a certified, not
 * committed, handover block. It shows only when a certified handover is
 * forked away, so long uneven partitions: a node that switched on it then
 * holds a block the others never commit.
 */
export const HANDOVER_CERTIFIED: ScenarioOverrides = {
  epochs: true,
  switchOnCertified: true,
  partitions: 4,
  partitionMsMax: 1_500,
  balancedPartitionProbability: 0,
  faultPhaseMs: 4_000
}

export const scenarioOf = (seed: number, overrides: ScenarioOverrides = {}): Scenario => {
  // Epoch settings draw from their own stream, so the settings above stay what they were before epochs.
  const epochRng = new Prng(seed ^ 0x0e90c4a1)
  const epochsOn = overrides.epochs ?? epochRng.chance(0.5)
  const epochBlocks = epochRng.int(5, 15)
  const spareValidators = epochRng.int(1, 3)
  const rng = new Prng(seed ^ 0x5ce7a410)
  const committeeSize = overrides.committeeSize ?? rng.pick([4, 4, 7])
  const shards = overrides.shards ?? rng.int(2, 3)
  const faultLevel = rng.float() // 0: a calm network, 1: a hostile one
  const twinSeats = overrides.twinSeats ?? (rng.chance(0.6) ? (committeeSize >= 7 && rng.chance(0.4) ? 2 : 1) : 0)
  return {
    seed,
    shards,
    committeeSize,
    validators: shards * committeeSize + rng.int(0, 3),
    twinSeats,
    faultPhaseMs: overrides.faultPhaseMs ?? rng.int(1_000, 3_000),
    livenessDeadlineMs: 20_000,
    faults: {
      lossProbability: faultLevel * 0.2,
      duplicateProbability: rng.float() * 0.05,
      longDelayProbability: faultLevel * 0.1,
      delayMinMs: 1,
      delayMaxMs: rng.int(3, 15),
      longDelayMaxMs: rng.int(50, 300)
    },
    partitions: overrides.partitions ?? rng.int(0, 4),
    partitionMsMax: overrides.partitionMsMax ?? rng.int(100, 1_200),
    crashes: rng.int(0, 3),
    crashDownMsMax: rng.int(50, 1_000),
    txIntervalMs: rng.int(5, 40),
    baseTimeoutMs: 100,
    backoffExponentMax: 5,
    progressBlocksMin: 3,
    quorum: overrides.quorum,
    byzantineBoundIgnored: overrides.byzantineBoundIgnored ?? false,
    tcHighQcUnchecked: overrides.tcHighQcUnchecked ?? false,
    staleTwinProposals: overrides.staleTwinProposals ?? false,
    balancedPartitionProbability: overrides.balancedPartitionProbability ?? 0.5,
    epochBlocks: epochsOn ? epochBlocks : undefined,
    spareValidators: epochsOn ? spareValidators : 0,
    switchOnCertified: overrides.switchOnCertified ?? false,
    oldBlocksApplied: overrides.oldBlocksApplied ?? false
  }
}

export const describeScenario = (s: Scenario): string =>
  [
    `seed=${s.seed} shards=${s.shards} seats=${s.committeeSize} validators=${s.validators} twinSeats=${s.twinSeats}`,
    `faultPhase=${s.faultPhaseMs}ms loss=${s.faults.lossProbability.toFixed(3)} dup=${s.faults.duplicateProbability.toFixed(3)}`,
    `delay=${s.faults.delayMinMs}..${s.faults.delayMaxMs}ms long=${s.faults.longDelayProbability.toFixed(3)}@≤${s.faults.longDelayMaxMs}ms`,
    `partitions=${s.partitions}(≤${s.partitionMsMax}ms) crashes=${s.crashes}(≤${s.crashDownMsMax}ms) txEvery=${s.txIntervalMs}ms`,
    s.quorum === undefined ? "" : `BROKEN quorum=${s.quorum.numerator}/${s.quorum.denominator}`,
    s.byzantineBoundIgnored ? "BROKEN twins may hold ≥ 1/3 of the stake" : "",
    s.tcHighQcUnchecked ? "BROKEN votes on any TC-justified block (no high-QC check)" : "",
    s.staleTwinProposals ? "twins propose on stale QCs" : "",
    s.epochBlocks === undefined ? "" : `epochs every ${s.epochBlocks} blocks, ${s.spareValidators} spare validators per shard`,
    s.switchOnCertified ? "BROKEN switches epochs on a certified (not committed) handover" : "",
    s.oldBlocksApplied ? "BROKEN applies the old committee's commits after the handover" : ""
  ]
    .filter((x) => x !== "")
    .join(" ")

/**
 * The economics of a chain, fixed in genesis (DESIGN.md, "Economics"). Every
 * rate is an integer in parts per million (ppm) and every amount a bigint in
 * base units, so epoch ledgers are exact and replay to the last unit.
 *
 * Units. A worker offers `gpuUnitsMilli` (devices × class coefficient, in
 * thousandths: CPU 0.1 = 100n, H100 10 = 10_000n). Work is measured in
 * milli-unit-milliseconds (gpuUnitsMilli × ms); one "GPU-unit-second" is
 * 1_000 × 1_000 = 10^6 of them.
 */
import { Schema } from "effect"
import { Address } from "../chain/keys.js"

export const PPM = 1_000_000n
/** milli-units × ms per GPU-unit-second. */
export const UNIT_MS_PER_UNIT_SECOND = 1_000_000n
export const MS_PER_YEAR = 31_557_600_000n // 365.25 days
export const TOKEN = 10n ** 18n

const Ppm = Schema.BigInt.pipe(Schema.betweenBigInt(0n, PPM))
const Amount = Schema.BigInt.pipe(Schema.nonNegativeBigInt())
const Count = Schema.Int.pipe(Schema.positive())

/** Issuance: each year mints `yearlyPpm` of the reserve left at the year's start, at least `floorPpmOfSupply` of the total supply, never more than what is left. */
export class IssuanceConfig extends Schema.Class<IssuanceConfig>("IssuanceConfig")({
  yearlyPpm: Ppm,
  floorPpmOfSupply: Ppm
}) {}

/** How each epoch's issuance is split between shard kinds (sums to 10^6). Only `ai` is paid out today; the rest stays in the reserve. */
export const ShardShares = Schema.Struct({ ai: Ppm, beacon: Ppm, transfer: Ppm }).pipe(
  Schema.filter((s) => s.ai + s.beacon + s.transfer === PPM || `shard shares must sum to ${PPM} ppm`)
)
export type ShardShares = typeof ShardShares.Type

/** The AI shard pool after launch rewards: online-duration and task mining (sums to 10^6). */
export const AiPoolShares = Schema.Struct({ onlineMining: Ppm, taskMining: Ppm }).pipe(
  Schema.filter((s) => s.onlineMining + s.taskMining === PPM || `AI pool shares must sum to ${PPM} ppm`)
)
export type AiPoolShares = typeof AiPoolShares.Type

/** One grade of the offline slashing table: an outage longer than `afterMs` is slashed `ppm` of the stake. */
export class OfflineGrade extends Schema.Class<OfflineGrade>("OfflineGrade")({
  afterMs: Schema.Int.pipe(Schema.positive()),
  ppm: Ppm
}) {}

export class SlashingConfig extends Schema.Class<SlashingConfig>("SlashingConfig")({
  /** Share of the bonded stake slashed for a result proven wrong. */
  wrongResultPpm: Ppm,
  /** Of a wrong-result slash: to the developer who was served the task, to the reporter; the rest is burned. */
  toUserPpm: Ppm,
  toReporterPpm: Ppm,
  /** Graded by outage length, ascending `afterMs`; the highest grade reached applies, once per outage. Offline slashes are burned. */
  offline: Schema.Array(OfflineGrade)
}) {}

export const ProtocolFeeSink = Schema.Literal("burn", "treasury")
export type ProtocolFeeSink = typeof ProtocolFeeSink.Type

export class EconomicsConfig extends Schema.Class<EconomicsConfig>("EconomicsConfig")({
  /** Beacon blocks per epoch. */
  epochBlocks: Count,
  /** A beacon block every this many ms (the beacon makes blocks even when idle: it is the epoch clock). */
  beaconIntervalMs: Count,
  /** Genesis allocation of the mining reserve account. */
  miningReserve: Amount,
  /** Genesis allocation of the foundation account (the subsidy's source). */
  foundationFund: Amount,
  issuance: IssuanceConfig,
  shardShares: ShardShares,
  aiPoolShares: AiPoolShares,
  /** Of task mining, the worker's share; the model provider gets the rest. */
  taskMiningWorkerPpm: Ppm,
  /** Paid once from the AI pool when a model is verified (less if the pool is short). */
  launchReward: Amount,
  /** Foundation subsidy to compute nodes, in base units per GPU-unit-second, for `subsidyYears` after genesis. */
  subsidyPerUnitSecond: Amount,
  subsidyYears: Count,
  /** The computing fee a provider pays a worker, in base units per GPU-unit-second. */
  computeFeePerUnitSecond: Amount,
  /** Share of each service fee (the model's price) taken by the protocol, and where it goes. */
  protocolFeePpm: Ppm,
  protocolFeeSink: ProtocolFeeSink,
  /** Bonded stake a worker needs to register (0 lets unstaked workers in: the devnet's default). */
  minWorkerStake: Amount,
  /** Epochs from an unbond request to the stake's return. */
  unbondingEpochs: Count,
  slashing: SlashingConfig,
  /** Signs `gov.shard-shares` transactions. */
  governance: Address
}) {}

/**
 * The devnet's economics. Epochs are a minute (60 beacon blocks of 1 s);
 * issuance follows TOP's own rule (8% of the remaining reserve a year, at
 * least 2% of the total supply); the AI shard gets half of it.
 */
export const defaultEconomics = (governance: Address): EconomicsConfig =>
  new EconomicsConfig({
    epochBlocks: 60,
    beaconIntervalMs: 1_000,
    miningReserve: 1_000_000_000n * TOKEN,
    foundationFund: 50_000_000n * TOKEN,
    issuance: new IssuanceConfig({ yearlyPpm: 80_000n, floorPpmOfSupply: 20_000n }),
    shardShares: { ai: 500_000n, beacon: 250_000n, transfer: 250_000n },
    aiPoolShares: { onlineMining: 400_000n, taskMining: 600_000n },
    taskMiningWorkerPpm: 700_000n,
    launchReward: TOKEN,
    subsidyPerUnitSecond: TOKEN / 100n,
    subsidyYears: 5,
    computeFeePerUnitSecond: TOKEN / 100_000n,
    protocolFeePpm: 50_000n,
    protocolFeeSink: "burn",
    minWorkerStake: 0n,
    unbondingEpochs: 2,
    slashing: new SlashingConfig({
      wrongResultPpm: 100_000n,
      toUserPpm: 500_000n,
      toReporterPpm: 200_000n,
      offline: [
        new OfflineGrade({ afterMs: 5 * 60_000, ppm: 1_000n }),
        new OfflineGrade({ afterMs: 60 * 60_000, ppm: 10_000n }),
        new OfflineGrade({ afterMs: 24 * 60 * 60_000, ppm: 50_000n })
      ]
    }),
    governance
  })

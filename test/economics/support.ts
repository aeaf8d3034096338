/**
 * A small economy for tests: numbers chosen so the rules can be followed by
 * hand. Four epochs a year (epochBlocks × beaconIntervalMs = a quarter of
 * MS_PER_YEAR); the windows the tests close are 100 s long (a window is the
 * beacon's to say, the issuance only counts epochs).
 */
import { Schema } from "effect"
import { sha256, type Hash32 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import type { Address } from "../../domain/chain/keys.js"
import { applyClosed } from "../../domain/economics/foldLedger.js"
import { closeEpoch, type EpochWindow } from "../../domain/economics/closeEpoch.js"
import { EconomicsConfig, IssuanceConfig, OfflineGrade, SlashingConfig } from "../../domain/economics/config.js"
import { RewardEvent, type EpochLedger } from "../../domain/economics/events.js"
import type { EconomyFact } from "../../domain/economics/facts.js"
import { foldFact } from "../../domain/economics/foldFact.js"
import { initialEconomy, type EconomyState } from "../../domain/economics/state.js"

export const address = (label: string): Address => bytesToHex(sha256(`address:${label}`).subarray(0, 20)) as Address
export const hash = (label: string): Hash32 => bytesToHex(sha256(label)) as Hash32

/** Window length of the test epochs. */
export const E = 100_000

export const window = (epoch: number, totalSupply = 0n): EpochWindow => ({ epoch, startAt: epoch * E, endAt: (epoch + 1) * E, totalSupply })

export const testConfig = (over: Partial<ConstructorParameters<typeof EconomicsConfig>[0]> = {}): EconomicsConfig =>
  new EconomicsConfig({
    epochBlocks: 10,
    beaconIntervalMs: 788_940_000, // 10 × 788_940_000 ms = MS_PER_YEAR / 4
    miningReserve: 1_000_000n,
    foundationFund: 1_000n,
    issuance: new IssuanceConfig({ yearlyPpm: 400_000n, floorPpmOfSupply: 0n }), // 40 %: 100_000 an epoch in year 0
    shardShares: { ai: 500_000n, beacon: 250_000n, transfer: 250_000n }, // AI pool 50_000
    aiPoolShares: { onlineMining: 400_000n, taskMining: 600_000n },
    taskMiningWorkerPpm: 700_000n,
    launchReward: 10_000n,
    subsidyPerUnitSecond: 10n,
    subsidyYears: 1,
    computeFeePerUnitSecond: 100n,
    protocolFeePpm: 100_000n,
    protocolFeeSink: "burn",
    minWorkerStake: 0n,
    unbondingEpochs: 2,
    slashing: new SlashingConfig({
      wrongResultPpm: 100_000n,
      toUserPpm: 500_000n,
      toReporterPpm: 200_000n,
      offline: [
        new OfflineGrade({ afterMs: 1_000, ppm: 1_000n }),
        new OfflineGrade({ afterMs: 10_000, ppm: 10_000n }),
        new OfflineGrade({ afterMs: 100_000, ppm: 100_000n })
      ]
    }),
    governance: address("governance"),
    ...over
  })

export type LogEntry = { readonly fact: EconomyFact } | { readonly ledger: EpochLedger }

/** Folds facts and closes epochs like a node: the log keeps both, in order. */
export class Sim {
  state: EconomyState
  readonly ledgers: Array<EpochLedger> = []
  readonly log: Array<LogEntry> = []
  private readonly fold: (s: EconomyState, f: EconomyFact) => EconomyState
  constructor(readonly config: EconomicsConfig) {
    this.state = initialEconomy(config)
    this.fold = foldFact(config)
  }
  facts(...facts: ReadonlyArray<EconomyFact>): this {
    for (const fact of facts) {
      this.state = this.fold(this.state, fact)
      this.log.push({ fact })
    }
    return this
  }
  close(totalSupply = 0n): EpochLedger {
    const ledger = closeEpoch(this.config, this.state, window(this.state.epoch, totalSupply))
    this.state = applyClosed(this.state, ledger)
    this.ledgers.push(ledger)
    this.log.push({ ledger })
    return ledger
  }
}

const encode = Schema.encodeSync(RewardEvent)
const decode = Schema.decodeUnknownSync(RewardEvent)

/** The ledger as it is stored: JSON of the encoded events. */
export const ledgerJson = (ledger: EpochLedger): string => JSON.stringify(ledger.map((e) => encode(e)))
export const throughJson = (ledger: EpochLedger): EpochLedger => (JSON.parse(ledgerJson(ledger)) as Array<unknown>).map((e) => decode(e))

export const headerOf = (ledger: EpochLedger) => {
  const last = ledger[ledger.length - 1]
  if (last?._tag !== "EpochClosed") throw new Error("no header")
  return last
}

export const ofTag = <T extends RewardEvent["_tag"]>(ledger: EpochLedger, tag: T) =>
  ledger.filter((e): e is Extract<RewardEvent, { _tag: T }> => e._tag === tag)

export const credits = (ledger: EpochLedger, kind?: string) =>
  ofTag(ledger, "RewardCredited")
    .filter((c) => kind === undefined || c.kind === kind)
    .map((c) => [c.to, c.amount] as const)

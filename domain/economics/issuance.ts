/**
 * Issuance: how much the reserve may mint in an epoch (TOP's rule).
 *
 *   epochsPerYear = max(1, ⌊MS_PER_YEAR / (epochBlocks × beaconIntervalMs)⌋)
 *   year          = ⌊epoch / epochsPerYear⌋
 *   yearly        = max(reserveAtYearStart × yearlyPpm, totalSupply × floorPpmOfSupply) / 10^6
 *   per epoch     = min(⌊yearly / epochsPerYear⌋, reserve remaining)
 *
 * `reserveAtYearStart` is what the reserve held when the year's first epoch
 * opened (year 0: the whole mining reserve), so a year's epochs all mint the
 * same amount until the reserve runs dry. Minting is only what is paid: the
 * unpaid part of an epoch's issuance stays in the reserve.
 */
import { MS_PER_YEAR, type EconomicsConfig } from "./config.js"
import { maxBig, minBig, ppmOf } from "./proRata.js"

export const epochsPerYear = (config: EconomicsConfig): bigint => {
  const epochMs = BigInt(config.epochBlocks) * BigInt(config.beaconIntervalMs)
  return maxBig(1n, MS_PER_YEAR / epochMs)
}

export const yearOf = (config: EconomicsConfig, epoch: number): number => Number(BigInt(epoch) / epochsPerYear(config))

export interface IssuanceInput {
  readonly reserveAtYearStart: bigint
  readonly reserveRemaining: bigint
  readonly totalSupply: bigint
}

export const epochIssuance = (config: EconomicsConfig, input: IssuanceInput): bigint => {
  const yearly = maxBig(
    ppmOf(input.reserveAtYearStart, config.issuance.yearlyPpm),
    ppmOf(input.totalSupply, config.issuance.floorPpmOfSupply)
  )
  return minBig(yearly / epochsPerYear(config), input.reserveRemaining)
}

/** The foundation subsidy runs for the first `subsidyYears` years of epochs. */
export const subsidyActive = (config: EconomicsConfig, epoch: number): boolean =>
  BigInt(epoch) < BigInt(config.subsidyYears) * epochsPerYear(config)

import { describe, expect, it } from "vitest"
import { defaultEconomics, IssuanceConfig } from "../../domain/economics/config.js"
import { EconomyFact } from "../../domain/economics/facts.js"
import { epochIssuance, epochsPerYear, subsidyActive, yearOf } from "../../domain/economics/issuance.js"
import { supplyOf } from "../../domain/economics/queries.js"
import { address, headerOf, Sim, testConfig } from "./support.js"

/** One worker online the whole time and the whole AI pool to online mining: every epoch mints its full issuance. */
const allPaid = (over: Parameters<typeof testConfig>[0] = {}) =>
  new Sim(testConfig({ shardShares: { ai: 1_000_000n, beacon: 0n, transfer: 0n }, aiPoolShares: { onlineMining: 1_000_000n, taskMining: 0n }, ...over })).facts(
    EconomyFact.WorkerJoined({ worker: address("w"), owner: address("o"), gpuUnitsMilli: 1_000n, at: 0 })
  )

describe("issuance", () => {
  it("epochs per year: the devnet's minute epochs, the tests' four", () => {
    expect(epochsPerYear(defaultEconomics(address("g")))).toBe(525_960n) // 31_557_600_000 / 60_000
    expect(epochsPerYear(testConfig())).toBe(4n)
    expect(epochsPerYear(testConfig({ epochBlocks: 1_000_000, beaconIntervalMs: 1_000_000 }))).toBe(1n) // epochs longer than a year
    expect([yearOf(testConfig(), 3), yearOf(testConfig(), 4), yearOf(testConfig(), 9)]).toEqual([0, 1, 2])
  })
  it("floors the yearly amount and its epoch share", () => {
    // ⌊1_000_003 × 0.4⌋ = 400_001; / 4 = 100_000 (floor)
    expect(epochIssuance(testConfig(), { reserveAtYearStart: 1_000_003n, reserveRemaining: 1_000_003n, totalSupply: 0n })).toBe(100_000n)
    // the floor of the supply wins when larger: 5 % of 10^7 = 500_000 a year
    const floored = testConfig({ issuance: new IssuanceConfig({ yearlyPpm: 400_000n, floorPpmOfSupply: 50_000n }) })
    expect(epochIssuance(floored, { reserveAtYearStart: 1_000_000n, reserveRemaining: 1_000_000n, totalSupply: 10_000_000n })).toBe(125_000n)
    expect(epochIssuance(floored, { reserveAtYearStart: 1_000_000n, reserveRemaining: 7n, totalSupply: 10_000_000n })).toBe(7n)
  })
  it("a year's epochs mint the same; the next year takes 40 % of what the reserve held when it opened", () => {
    const sim = allPaid()
    const headers = Array.from({ length: 6 }, () => headerOf(sim.close()))
    expect(headers.map((h) => [h.year, h.reserveAtYearStart, h.issuance, h.minted])).toEqual([
      [0, 1_000_000n, 100_000n, 100_000n],
      [0, 1_000_000n, 100_000n, 100_000n],
      [0, 1_000_000n, 100_000n, 100_000n],
      [0, 1_000_000n, 100_000n, 100_000n],
      [1, 600_000n, 60_000n, 60_000n],
      [1, 600_000n, 60_000n, 60_000n]
    ])
    expect(headers.map((h) => h.reserveAfter)).toEqual([900_000n, 800_000n, 700_000n, 600_000n, 540_000n, 480_000n])
    expect(supplyOf(sim.config, sim.state, 0n)).toMatchObject({ minted: 520_000n, reserveRemaining: 480_000n })
  })
  it("the reserve runs dry and issuance stops at zero", () => {
    // floor of the supply: 100 % of 1_400_000 a year = 350_000 an epoch, more than the reserve holds by the third
    const sim = allPaid({ issuance: new IssuanceConfig({ yearlyPpm: 0n, floorPpmOfSupply: 1_000_000n }) })
    const issued = Array.from({ length: 4 }, () => headerOf(sim.close(1_400_000n)).issuance)
    expect(issued).toEqual([350_000n, 350_000n, 300_000n, 0n])
    expect(sim.state.minted).toBe(1_000_000n)
  })
  it("unpaid issuance stays in the reserve: no one online, nothing minted", () => {
    const sim = new Sim(testConfig())
    const h = headerOf(sim.close())
    expect([h.issuance, h.aiPool, h.beaconPortion, h.transferPortion, h.minted, h.reserveAfter]).toEqual([100_000n, 50_000n, 25_000n, 25_000n, 0n, 1_000_000n])
    expect(h.conservation).toEqual({ issuance: 100_000n, minted: 0n, retained: 100_000n })
  })
  it("the subsidy runs for subsidyYears of epochs", () => {
    expect([3, 4].map((e) => subsidyActive(testConfig(), e))).toEqual([true, false])
  })
})

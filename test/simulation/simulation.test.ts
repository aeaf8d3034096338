/**
 * The simulator in CI: a bounded slice of the seeds `npm run sim` runs, the
 * same seed giving the same history, and broken variants it must catch (so a
 * green run means the invariants held, not that nothing was checked).
 */
import { describe, expect, it } from "@effect/vitest"
import { describeScenario, scenarioOf, STALE_TWINS, TC_UNCHECKED, TOO_MANY_TWINS } from "./scenario.js"
import { type RunResult, runScenario } from "./simulator.js"

const SEEDS = 120

const failureReport = (r: RunResult): string =>
  [`seed ${r.seed}: ${r.violation?.kind} ${r.violation?.detail}`, describeScenario(scenarioOf(r.seed)), ...r.trace].join("\n")

describe("simulation", () => {
  it(`seeds 1..${SEEDS}: no invariant violated`, () => {
    let blocks = 0
    for (let seed = 1; seed <= SEEDS; seed++) {
      const result = runScenario(scenarioOf(seed))
      if (result.violation !== undefined) expect.fail(failureReport(result))
      expect(result.blocks).toBeGreaterThan(0)
      blocks += result.blocks
    }
    expect(blocks).toBeGreaterThan(SEEDS * 10)
  })

  it("the same seed replays the same run: same history hash, same counts", () => {
    for (const seed of [7, 42]) {
      const a = runScenario(scenarioOf(seed))
      const b = runScenario(scenarioOf(seed))
      expect(b.historyHash).toBe(a.historyHash)
      expect([b.events, b.messages, b.blocks, b.txs, b.commits, b.simulatedMs]).toEqual([
        a.events,
        a.messages,
        a.blocks,
        a.txs,
        a.commits,
        a.simulatedMs
      ])
    }
    expect(runScenario(scenarioOf(7)).historyHash).not.toBe(runScenario(scenarioOf(42)).historyHash)
  })

  it("catches nodes running on a quorum of 1/2: their certificates do not hold 2/3 of the stake", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const result = runScenario(scenarioOf(seed, { quorum: { numerator: 1n, denominator: 2n } }))
      expect(result.violation?.kind).toBe("invalid-qc")
      expect(result.violation?.detail).toContain("BelowThreshold")
      expect(result.trace.length).toBeGreaterThan(0)
    }
  })

  it("catches a fork when Byzantine twins hold more than 1/3 of the seats: conflicting commits at one height", () => {
    let found: RunResult | undefined
    for (let seed = 1; seed <= 100 && found === undefined; seed++) {
      const result = runScenario(scenarioOf(seed, TOO_MANY_TWINS))
      if (result.violation !== undefined) found = result
    }
    expect(found?.violation?.kind).toBe("conflicting-commit")
    expect(found?.trace.some((line) => line.includes("COMMIT"))).toBe(true)
  })

  it("catches the 2-chain voting rule without its TC high-QC check: a QC forms on a fork of a committed block", () => {
    let found: RunResult | undefined
    for (let seed = 1; seed <= 100 && found?.violation?.kind !== "conflicting-qc"; seed++) found = runScenario(scenarioOf(seed, TC_UNCHECKED))
    expect(found?.violation?.kind).toBe("conflicting-qc")
    expect(found?.trace.length).toBeGreaterThan(0)
  })

  it("the real rule withstands the same adversary: twins proposing TC-justified blocks on stale QCs", () => {
    for (const seed of [56, 61, 172, 213]) expect(runScenario(scenarioOf(seed, STALE_TWINS)).violation).toBeUndefined()
  })
})

/**
 * The simulator in CI: a bounded slice of the seeds `npm run sim` runs, the
 * same seed giving the same history, and broken variants it must catch (so a
 * green run means the invariants held, not that nothing was checked).
 */
import { describe, expect, it } from "@effect/vitest"
import { describeScenario, HANDOVER_CERTIFIED, HANDOVER_UNCHECKED, scenarioOf, STALE_TWINS, TC_UNCHECKED, TOO_MANY_TWINS } from "./scenario.js"
import { type RunResult, runScenario } from "./simulator.js"

const SEEDS = 120
/** Seeds on which `HANDOVER_CERTIFIED` forks a certified handover away (found with `npm run sim -- --seeds 1..300 --handover-certified`). */
const CERTIFIED_CAUGHT = [24, 149]

const failureReport = (r: RunResult): string =>
  [`seed ${r.seed}: ${r.violation?.kind} ${r.violation?.detail}`, describeScenario(scenarioOf(r.seed)), ...r.trace].join("\n")

describe("simulation", () => {
  it(`seeds 1..${SEEDS}: no invariant violated, about half of them across epochs`, () => {
    let blocks = 0
    let epochRuns = 0
    let handovers = 0
    let catchUps = 0
    for (let seed = 1; seed <= SEEDS; seed++) {
      const scenario = scenarioOf(seed)
      const result = runScenario(scenario)
      if (result.violation !== undefined) expect.fail(failureReport(result))
      expect(result.blocks).toBeGreaterThan(0)
      blocks += result.blocks
      if (scenario.epochBlocks === undefined) {
        expect(result.handovers).toBe(0)
      } else {
        epochRuns++
        expect(result.handovers).toBeGreaterThan(0) // liveness wants one after GST
      }
      handovers += result.handovers
      catchUps += result.catchUps
    }
    expect(blocks).toBeGreaterThan(SEEDS * 10)
    expect(epochRuns).toBeGreaterThan(SEEDS / 4)
    expect(epochRuns).toBeLessThan((SEEDS * 3) / 4)
    expect(handovers).toBeGreaterThan(epochRuns * 3)
    expect(catchUps).toBeGreaterThan(0) // nodes that fell an epoch behind caught up from their peers
  })

  it("the same seed replays the same run: same history hash, same counts", () => {
    for (const seed of [7, 42]) {
      const a = runScenario(scenarioOf(seed))
      const b = runScenario(scenarioOf(seed))
      expect(b.historyHash).toBe(a.historyHash)
      expect([b.events, b.messages, b.blocks, b.txs, b.commits, b.handovers, b.catchUps, b.simulatedMs]).toEqual([
        a.events,
        a.messages,
        a.blocks,
        a.txs,
        a.commits,
        a.handovers,
        a.catchUps,
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
    for (let seed = 1; seed <= 100 && found?.violation?.kind !== "conflicting-commit"; seed++) {
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

  it("catches a node that applies the old committee's commits after its epoch's handover", () => {
    let caught = 0
    for (let seed = 1; seed <= 10; seed++) {
      const result = runScenario(scenarioOf(seed, HANDOVER_UNCHECKED))
      if (result.violation === undefined) continue
      expect(result.violation.kind).toBe("post-handover-commit")
      caught++
    }
    expect(caught).toBeGreaterThanOrEqual(3)
  })

  it("catches nodes that switch epochs on a certified, not committed, handover (when it is forked away)", () => {
    const found = CERTIFIED_CAUGHT.map((seed) => runScenario(scenarioOf(seed, HANDOVER_CERTIFIED)).violation?.kind)
    expect(found.filter((kind) => kind === "conflicting-qc" || kind === "conflicting-commit").length).toBeGreaterThan(0)
    // the same seeds with the real handover: nothing to catch
    for (const seed of CERTIFIED_CAUGHT) {
      const { switchOnCertified: _, ...control } = HANDOVER_CERTIFIED
      expect(runScenario(scenarioOf(seed, control)).violation).toBeUndefined()
    }
  })

  it("the real rule withstands the same adversary: twins proposing TC-justified blocks on stale QCs", () => {
    for (const seed of [56, 61, 172, 213]) expect(runScenario(scenarioOf(seed, STALE_TWINS)).violation).toBeUndefined()
  })
})

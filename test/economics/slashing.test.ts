import { describe, expect, it } from "vitest"
import { BURN_ADDRESS } from "../../domain/economics/accounts.js"
import { SlashingConfig } from "../../domain/economics/config.js"
import { EconomyFact } from "../../domain/economics/facts.js"
import { bondedOf, owedBy, supplyOf, unbondingOf } from "../../domain/economics/queries.js"
import { offlineGradePpm } from "../../domain/economics/slashing.js"
import { statementOf } from "../../domain/economics/statement.js"
import { address, E, hash, ofTag, Sim, testConfig } from "./support.js"

const W = address("worker")
const O = address("owner")
const D = address("developer")
const R = address("reporter")
const staked = (amount = 1_000_000n) =>
  new Sim(testConfig()).facts(
    EconomyFact.WorkerJoined({ worker: W, owner: O, gpuUnitsMilli: 1_000n, at: 0 }),
    EconomyFact.StakeBonded({ txHash: hash("bond"), worker: W, owner: O, amount })
  )
const wrong = (task: string, at = 10) => EconomyFact.ResultProvenWrong({ taskId: hash(task), worker: W, developer: D, reporter: R, at })
const slashes = (ledger: Parameters<typeof ofTag>[0]) => ofTag(ledger, "Slashed").map((s) => [s.reason, s.stakeBefore, s.amount, s.toUser, s.toReporter, s.burned])

describe("wrong results", () => {
  it("10 % of the bond: half to the developer, a fifth to the reporter, the rest burned; each on what is left", () => {
    const sim = staked().facts(wrong("t1"), wrong("t2"))
    expect(bondedOf(sim.state, W)).toBe(1_000_000n) // slashed at the close, not before
    expect(slashes(sim.close())).toEqual([
      ["WrongResult", 1_000_000n, 100_000n, 50_000n, 20_000n, 30_000n],
      ["WrongResult", 900_000n, 90_000n, 45_000n, 18_000n, 27_000n]
    ])
    expect(bondedOf(sim.state, W)).toBe(810_000n)
    expect(owedBy(sim.state, "stakePool")).toEqual(new Map([[BURN_ADDRESS, 57_000n], [D, 95_000n], [R, 38_000n]].sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1)) as Array<[never, bigint]>))
    expect(supplyOf(sim.config, sim.state, 0n)).toMatchObject({ stakedBonded: 810_000n, burnedBySlashes: 57_000n })
    expect(statementOf(sim.ledgers, W).total.slashed).toBe(190_000n)
    expect(statementOf(sim.ledgers, D).total.slashCompensation).toBe(95_000n)
    expect(statementOf(sim.ledgers, R).total.net).toBe(38_000n)
  })
  it("a worker with no bond is not slashed (no zero events); the reporter share is clamped to what is left", () => {
    const sim = new Sim(testConfig()).facts(EconomyFact.WorkerJoined({ worker: W, owner: O, gpuUnitsMilli: 1_000n, at: 0 }), wrong("t1"))
    expect(slashes(sim.close())).toEqual([])
    const greedy = new Sim(
      testConfig({ slashing: new SlashingConfig({ ...testConfig().slashing, toUserPpm: 800_000n, toReporterPpm: 800_000n }) })
    ).facts(EconomyFact.StakeBonded({ txHash: hash("b"), worker: W, owner: O, amount: 1_000n }), wrong("t1"))
    expect(slashes(greedy.close())).toEqual([["WrongResult", 1_000n, 100n, 80n, 20n, 0n]])
  })
  it("a slash is fixed when the proof is folded: unbonding before the close neither shrinks it nor takes the stake it comes from", () => {
    const sim = staked(1_000n).facts(wrong("t1"), EconomyFact.UnbondRequested({ txHash: hash("u1"), worker: W, owner: O, amount: 1_000n }))
    expect([bondedOf(sim.state, W), unbondingOf(sim.state, W)]).toEqual([100n, 900n]) // the pending 100 stays bonded
    expect(slashes(sim.close())).toEqual([["WrongResult", 100n, 100n, 50n, 20n, 30n]])
    expect(bondedOf(sim.state, W)).toBe(0n)
  })
})

describe("offline", () => {
  it("grades: the highest whose afterMs is below the outage", () => {
    const c = testConfig()
    expect([1_000, 1_001, 10_001, 100_000, 100_001].map((ms) => offlineGradePpm(c, ms))).toEqual([0n, 1_000n, 10_000n, 10_000n, 100_000n])
  })
  it("an outage escalates through the grades, each applied once, measured to the close while open", () => {
    const sim = staked().facts(EconomyFact.WorkerOffline({ worker: W, at: 95_000 }))
    // epoch 0: 5_000 ms so far → 0.1 %
    expect(slashes(sim.close())).toEqual([["Offline", 1_000_000n, 1_000n, 0n, 0n, 1_000n]])
    // epoch 1: 105_000 ms → 10 %, less the 0.1 % applied: 9.9 % of 999_000
    expect(slashes(sim.close())).toEqual([["Offline", 999_000n, 98_901n, 0n, 0n, 98_901n]])
    // epoch 2: still the top grade, then back online: nothing more
    sim.facts(EconomyFact.WorkerOnline({ worker: W, at: 2 * E + 50_000 }))
    expect(slashes(sim.close())).toEqual([])
    // a new outage starts over: 2_000 ms → 0.1 % of 900_099
    sim.facts(EconomyFact.WorkerOffline({ worker: W, at: 3 * E + 10_000 }), EconomyFact.WorkerOnline({ worker: W, at: 3 * E + 12_000 }))
    const ledger = sim.close()
    expect(slashes(ledger)).toEqual([["Offline", 900_099n, 900n, 0n, 0n, 900n]])
    expect(ofTag(ledger, "Slashed")[0]!.outageSince).toBe(3 * E + 10_000)
    expect(owedBy(sim.state, "stakePool")).toEqual(new Map([[BURN_ADDRESS, 100_801n]]))
  })
  it("an outage that ends within an epoch is graded by its length at the close; leaving is not an outage", () => {
    const sim = staked().facts(EconomyFact.WorkerOffline({ worker: W, at: 10_000 }), EconomyFact.WorkerOnline({ worker: W, at: 30_001 }))
    expect(slashes(sim.close())).toEqual([["Offline", 1_000_000n, 10_000n, 0n, 0n, 10_000n]])
    sim.facts(EconomyFact.WorkerOffline({ worker: W, at: E + 10 }), EconomyFact.WorkerLeft({ worker: W, at: E + 20_000 }))
    expect(slashes(sim.close())).toEqual([])
  })
})

describe("stake and unbonding", () => {
  it("released at the close of epoch e + unbondingEpochs − 1; unbonding stake is not slashed", () => {
    const sim = staked(1_000n).facts(EconomyFact.UnbondRequested({ txHash: hash("u1"), worker: W, owner: O, amount: 300n }))
    expect([bondedOf(sim.state, W), unbondingOf(sim.state, W)]).toEqual([700n, 300n])
    expect(ofTag(sim.close(), "StakeReleased")).toEqual([]) // close of epoch 0
    sim.facts(wrong("t1", E + 1))
    const ledger = sim.close() // close of epoch 1 = 0 + 2 − 1
    expect(ofTag(ledger, "StakeReleased").map((r) => [r.epoch, r.worker, r.owner, r.amount])).toEqual([[1, W, O, 300n]])
    expect(slashes(ledger)).toEqual([["WrongResult", 700n, 70n, 35n, 14n, 21n]])
    expect([bondedOf(sim.state, W), unbondingOf(sim.state, W), owedBy(sim.state, "stakePool").get(O)]).toEqual([630n, 0n, 300n])
  })
  it("an unbond is clamped to the bond; a bond or unbond delivered twice counts once", () => {
    const sim = staked(1_000n).facts(
      EconomyFact.StakeBonded({ txHash: hash("bond"), worker: W, owner: O, amount: 1_000n }),
      EconomyFact.UnbondRequested({ txHash: hash("u1"), worker: W, owner: O, amount: 5_000n }),
      EconomyFact.UnbondRequested({ txHash: hash("u1"), worker: W, owner: O, amount: 5_000n }),
      EconomyFact.UnbondRequested({ txHash: hash("u2"), worker: W, owner: O, amount: 5n })
    )
    expect([bondedOf(sim.state, W), unbondingOf(sim.state, W)]).toEqual([0n, 1_000n])
    sim.facts(wrong("t1"))
    sim.close()
    const released = sim.close()
    expect(ofTag(released, "StakeReleased").map((r) => r.amount)).toEqual([1_000n])
    expect(ofTag(released, "Slashed")).toEqual([])
  })
  it("unbondingEpochs = 1 releases at the close of the request's own epoch", () => {
    const sim = new Sim(testConfig({ unbondingEpochs: 1 })).facts(
      EconomyFact.StakeBonded({ txHash: hash("b"), worker: W, owner: O, amount: 10n }),
      EconomyFact.UnbondRequested({ txHash: hash("u"), worker: W, owner: O, amount: 10n })
    )
    expect(ofTag(sim.close(), "StakeReleased").map((r) => r.amount)).toEqual([10n])
  })
})

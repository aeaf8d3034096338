import { describe, expect, it } from "vitest"
import { EconomyFact } from "../../domain/economics/facts.js"
import { owedBy } from "../../domain/economics/queries.js"
import { statementOf } from "../../domain/economics/statement.js"
import { address, credits, E, hash, headerOf, ofTag, Sim, testConfig } from "./support.js"

const A = address("worker-a")
const B = address("worker-b")
const P = address("provider")
const D = address("developer")
const join = (worker: typeof A, gpuUnitsMilli: bigint, at: number) => EconomyFact.WorkerJoined({ worker, owner: address(`owner-of-${worker}`), gpuUnitsMilli, at })
const sortedBy = <T extends readonly [string, ...Array<unknown>]>(rows: Array<T>) => rows.sort((a, b) => (a[0] < b[0] ? -1 : 1))

describe("shard shares", () => {
  it("a governance change takes effect from the next epoch; the last one folded wins", () => {
    const sim = new Sim(testConfig()).facts(
      EconomyFact.ShardSharesSet({ txHash: hash("gov-1"), shares: { ai: 800_000n, beacon: 100_000n, transfer: 100_000n } }),
      EconomyFact.ShardSharesSet({ txHash: hash("gov-2"), shares: { ai: 1_000_000n, beacon: 0n, transfer: 0n } })
    )
    const h0 = headerOf(sim.close())
    const h1 = headerOf(sim.close())
    expect([h0.shardShares.ai, h0.aiPool, h0.beaconPortion]).toEqual([500_000n, 50_000n, 25_000n])
    expect([h1.shardShares.ai, h1.aiPool, h1.beaconPortion]).toEqual([1_000_000n, 100_000n, 0n])
  })
})

describe("launch rewards", () => {
  it("paid in model id order, each at most what is left of the AI pool; a model verified twice counts once", () => {
    const sim = new Sim(testConfig({ launchReward: 30_000n }))
    const models = [hash("m1"), hash("m2")].sort()
    const [first, second] = [models[0]!, models[1]!]
    sim.facts(
      EconomyFact.ModelVerified({ modelId: second, provider: address("p2"), at: 1 }),
      EconomyFact.ModelVerified({ modelId: first, provider: address("p1"), at: 2 }),
      EconomyFact.ModelVerified({ modelId: first, provider: address("p1"), at: 3 })
    )
    const ledger = sim.close()
    expect(ofTag(ledger, "RewardCredited").map((c) => [c.kind, c.modelId, c.to, c.amount, c.source])).toEqual([
      ["LaunchReward", first, address("p1"), 30_000n, "reserve"],
      ["LaunchReward", second, address("p2"), 20_000n, "reserve"]
    ])
    expect([headerOf(ledger).launchRewards, headerOf(ledger).onlineMining, headerOf(ledger).taskMining]).toEqual([50_000n, 0n, 0n])
    sim.facts(EconomyFact.ModelVerified({ modelId: first, provider: address("p1"), at: E + 1 }))
    expect(credits(sim.close(), "LaunchReward")).toEqual([])
  })
})

describe("online mining", () => {
  it("gpu units × ms online in the window, with offline gaps, across epochs; dust is not minted", () => {
    const sim = new Sim(testConfig()).facts(
      join(A, 1_000n, 0),
      join(B, 3_000n, 50_000),
      EconomyFact.WorkerOffline({ worker: B, at: 70_000 }),
      EconomyFact.WorkerOnline({ worker: B, at: 90_000 }),
      EconomyFact.WorkerOnline({ worker: B, at: 95_000 }) // a heartbeat while online changes nothing
    )
    // pool 50_000 → online 20_000 (no launches; task mining has no weight: not minted)
    // A: 1000 × 100_000 = 1e8, B: 3000 × (20_000 + 10_000) = 9e7
    const e0 = sim.close()
    expect(credits(e0, "OnlineMining")).toEqual(sortedBy([[A, 10_526n] as const, [B, 9_473n] as const]))
    expect([headerOf(e0).onlineMining, headerOf(e0).onlineMiningPaid, headerOf(e0).minted]).toEqual([20_000n, 19_999n, 19_999n])
    // epoch 1: A leaves halfway (5e7), B online throughout from the open interval (3e8)
    sim.facts(EconomyFact.WorkerLeft({ worker: A, at: 150_000 }))
    expect(credits(sim.close(), "OnlineMining")).toEqual(sortedBy([[A, 2_857n] as const, [B, 17_142n] as const]))
    // epoch 2: only B
    expect(credits(sim.close(), "OnlineMining")).toEqual([[B, 20_000n]])
    const basis = ofTag(sim.ledgers[0]!, "RewardCredited").find((c) => c.to === A)!
    expect([basis.weight, basis.totalWeight]).toEqual([100_000_000n, 190_000_000n])
  })
})

describe("task mining and the foundation subsidy", () => {
  const W1 = address("w1")
  const W2 = address("w2")
  const settle = (task: string, at: number, price = 1_000n) =>
    EconomyFact.TaskSettled({ taskId: hash(task), modelId: hash("m"), provider: P, developer: D, price, workers: [{ worker: W1, execMs: 500 }, { worker: W2, execMs: 1_000 }], at })
  const base = (over: Parameters<typeof testConfig>[0] = {}) => new Sim(testConfig(over)).facts(join(W1, 2_000n, 0), join(W2, 1_000n, 0))

  it("weights gpu units × execMs; workers share 70 %, the provider 30 %", () => {
    const sim = base().facts(settle("t1", 10))
    const ledger = sim.close()
    // pool 50_000: online 20_000 by 2e8 : 1e8; task 30_000 → workers 21_000 (1e6 : 1e6), provider 9_000
    expect(credits(ledger, "OnlineMining")).toEqual(sortedBy([[W1, 13_333n] as const, [W2, 6_666n] as const]))
    expect(ofTag(ledger, "RewardCredited").filter((c) => c.kind === "TaskMining").map((c) => [c.role, c.to, c.amount])).toEqual([
      ...sortedBy([[W1, 10_500n] as const, [W2, 10_500n] as const]).map(([to, a]) => ["worker", to, a]),
      ["provider", P, 9_000n]
    ])
    // subsidy: 10 per unit-second, 1e6 unit-ms each
    expect(credits(ledger, "FoundationSubsidy")).toEqual(sortedBy([[W1, 10n] as const, [W2, 10n] as const]))
    expect(ofTag(ledger, "RewardCredited").filter((c) => c.kind === "FoundationSubsidy").every((c) => c.source === "foundation")).toBe(true)
    // the provider's statement: task mining + service fees − compute fees, and that is what it is owed
    const st = statementOf(sim.ledgers, P)
    expect([st.total.taskMining, st.total.serviceFees, st.total.computeFeesPaid, st.total.providerNet]).toEqual([9_000n, 900n, 200n, 9_700n])
    expect(owedBy(sim.state, "reserve").get(P)! + owedBy(sim.state, "escrow").get(P)!).toBe(st.total.providerNet)
    const w1 = statementOf(sim.ledgers, W1).total
    expect([w1.onlineMining, w1.taskMining, w1.computeFeesEarned, w1.subsidy, w1.net]).toEqual([13_333n, 10_500n, 100n, 10n, 23_943n])
  })
  it("the subsidy is scaled down when the fund is short, then stops when it is dry", () => {
    const sim = base({ subsidyPerUnitSecond: 600n }).facts(settle("t1", 10))
    expect(credits(sim.close(), "FoundationSubsidy")).toEqual(sortedBy([[W1, 500n] as const, [W2, 500n] as const])) // 600 each due, 1_000 left
    sim.facts(settle("t2", E + 10))
    expect(credits(sim.close(), "FoundationSubsidy")).toEqual([])
    expect(sim.state.foundationPaid).toBe(1_000n)
  })
  it("the subsidy stops after subsidyYears (4 epochs here)", () => {
    const sim = base({ foundationFund: 1_000_000n })
    const paid = Array.from({ length: 6 }, (_, e) => headerOf(sim.facts(settle(`t${e}`, e * E + 10)).close()).foundationPaid)
    expect(paid).toEqual([20n, 20n, 20n, 20n, 0n, 0n])
  })
})

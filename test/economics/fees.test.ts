import { describe, expect, it } from "vitest"
import { BURN_ADDRESS, SYSTEM_TREASURY as TREASURY_ADDRESS } from "../../domain/economics/accounts.js"
import { EconomyFact } from "../../domain/economics/facts.js"
import { taskFees } from "../../domain/economics/fees.js"
import { isPaused, owedBy } from "../../domain/economics/queries.js"
import { address, hash, ofTag, Sim, testConfig } from "./support.js"

const config = testConfig()
const W1 = address("w1")
const W2 = address("w2")
const P = address("provider")
const D = address("developer")
const M = hash("model")

describe("taskFees", () => {
  it("protocol fee off the price, compute fees by units × ms, the provider keeps the rest", () => {
    // 2000 milli-units × 500 ms = 10^6 = one unit-second at 100 per unit-second
    const t = taskFees(config, 1_000n, [
      { worker: W1, gpuUnitsMilli: 2_000n, execMs: 500 },
      { worker: W2, gpuUnitsMilli: 1_000n, execMs: 250 }
    ])
    expect(t).toEqual({
      price: 1_000n,
      protocolFee: 100n,
      serviceFee: 900n,
      computeFees: [
        { worker: W1, amount: 100n },
        { worker: W2, amount: 25n }
      ],
      computeFeesTotal: 125n,
      providerNet: 775n,
      capped: false
    })
  })
  it("compute fees above the service fee are scaled down pro rata (floor); the dust stays with the provider", () => {
    // price 101: protocol ⌊10.1⌋ = 10, service 91; full compute fees 100 + 50 = 150 > 91
    const t = taskFees(config, 101n, [
      { worker: W1, gpuUnitsMilli: 2_000n, execMs: 500 },
      { worker: W2, gpuUnitsMilli: 1_000n, execMs: 500 }
    ])
    expect([t.capped, t.computeFees.map((f) => f.amount), t.providerNet]).toEqual([true, [60n, 30n], 1n])
  })
  it("exactly covered is not capped; a free task pays nobody", () => {
    expect(taskFees(config, 1_000n, [{ worker: W1, gpuUnitsMilli: 18_000n, execMs: 500 }]).capped).toBe(false) // 900 = 900
    expect(taskFees(config, 0n, [{ worker: W1, gpuUnitsMilli: 1_000n, execMs: 10 }])).toMatchObject({ capped: true, providerNet: 0n, computeFeesTotal: 0n })
  })
})

describe("fees owed by escrow, live", () => {
  const sim = () =>
    new Sim(config).facts(
      EconomyFact.WorkerJoined({ worker: W1, owner: address("o1"), gpuUnitsMilli: 2_000n, at: 0 }),
      EconomyFact.WorkerJoined({ worker: W2, owner: address("o2"), gpuUnitsMilli: 1_000n, at: 0 })
    )
  const settle = (task: string, price: bigint, execMs = 500) =>
    EconomyFact.TaskSettled({
      taskId: hash(task),
      modelId: M,
      provider: P,
      developer: D,
      price,
      workers: [
        { worker: W1, execMs },
        { worker: W2, execMs }
      ],
      at: 10
    })

  it("the escrow owes provider net, compute fees and the protocol fee to its sink, at fold time", () => {
    const s = sim().facts(settle("t1", 1_000n), settle("t2", 1_000n)).state
    expect(owedBy(s, "escrow")).toEqual(
      new Map([
        [P, 2n * 750n], // 900 − (100 + 50), twice
        [W1, 200n],
        [W2, 100n],
        [BURN_ADDRESS, 200n]
      ])
    )
    expect(isPaused(s, M)).toBe(false)
    const t = new Sim(testConfig({ protocolFeeSink: "treasury" })).facts(settle("t1", 1_000n)).state
    expect(owedBy(t, "escrow").get(TREASURY_ADDRESS)).toBe(100n)
    expect(t.protocolFeesBurned).toBe(0n)
  })
  it("a capped task pauses its model until ModelRepriced; an unknown worker has 0 units", () => {
    const s = sim().facts(settle("t1", 101n))
    expect(isPaused(s.state, M)).toBe(true)
    expect(owedBy(s.state, "escrow").get(P)).toBe(1n)
    s.facts(settle("t2", 1_000n)) // settles while paused (it was already running): still paid normally
    expect(isPaused(s.state, M)).toBe(true)
    s.facts(EconomyFact.ModelRepriced({ modelId: M }))
    expect(isPaused(s.state, M)).toBe(false)
    const unknown = sim().facts(
      EconomyFact.TaskSettled({ taskId: hash("t3"), modelId: M, provider: P, developer: D, price: 10n, workers: [{ worker: address("stranger"), execMs: 9_999 }], at: 1 })
    )
    expect(owedBy(unknown.state, "escrow").get(P)).toBe(9n)
    expect(owedBy(unknown.state, "escrow").has(address("stranger"))).toBe(false)
  })
  it("the epoch ledger records the fees per address, not paying them again", () => {
    const s = sim().facts(settle("t1", 1_000n), settle("t2", 101n))
    const ledger = s.close()
    expect(ofTag(ledger, "FeesRecorded").map((f) => [f.address, f.serviceFees, f.computeFeesPaid, f.computeFeesEarned, f.protocolFees, f.tasks])).toEqual(
      [
        [P, 900n + 91n, 150n + 90n, 0n, 110n, 2],
        [W1, 0n, 0n, 100n + 60n, 0n, 2],
        [W2, 0n, 0n, 50n + 30n, 0n, 2]
      ].sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1))
    )
    expect(owedBy(s.state, "escrow").get(P)).toBe(750n + 1n)
  })
})

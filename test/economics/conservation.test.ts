/**
 * Thousands of random workloads against a plain money model. Every movement
 * the economy implies is applied to balances: genesis (reserve, foundation,
 * owners, developers), each developer's deposit into escrow before a task,
 * each bond owner → stake pool, and every increase of `owedBy` paid from its
 * source account. After every close:
 *
 *   Σ balances (not reserve, escrow, stake pool, burn) + escrow + stakes +
 *   unbonding + burned = genesis (without the reserve) + minted
 *
 * no account is ever negative (escrow never pays more than was deposited,
 * the stake pool never more than was bonded), what is owed never shrinks,
 * and each statement matches the money its address received. The ledger is
 * deterministic, and folding the log (facts and JSON-decoded ledgers) from
 * scratch rebuilds the same state.
 */
import { describe, expect, it } from "vitest"
import { Chunk } from "effect"
import fc from "fast-check"
import type { Address } from "../../domain/chain/keys.js"
import { BURN_ADDRESS, PayoutSource, SYSTEM_FOUNDATION as FOUNDATION_ADDRESS, SYSTEM_RESERVE as RESERVE_ADDRESS, SYSTEM_STAKE_POOL as STAKE_POOL_ADDRESS, SYSTEM_TREASURY as TREASURY_ADDRESS } from "../../domain/economics/accounts.js"
import { closeEpoch } from "../../domain/economics/closeEpoch.js"
import { EconomyFact } from "../../domain/economics/facts.js"
import { foldFact } from "../../domain/economics/foldFact.js"
import { foldLedger } from "../../domain/economics/foldLedger.js"
import { isPaused, owedBy, supplyOf } from "../../domain/economics/queries.js"
import { initialEconomy, type EconomyState } from "../../domain/economics/state.js"
import { statementOf } from "../../domain/economics/statement.js"
import { address, E, hash, ledgerJson, Sim, testConfig, throughJson, window } from "./support.js"

const WORKERS = [0, 1, 2, 3, 4].map((i) => address(`w${i}`))
const UNITS = [100n, 1_000n, 3_000n, 10_000n, 500n]
const OWNERS = WORKERS.map((_, i) => address(`owner${i}`))
const PROVIDERS = [0, 1, 2].map((i) => address(`p${i}`))
const DEVELOPERS = [0, 1, 2].map((i) => address(`d${i}`))
const REPORTERS = [0, 1].map((i) => address(`r${i}`))
const MODELS = [0, 1, 2, 3].map((i) => hash(`m${i}`))
const ESCROW = address("escrow-account")
const RICH = 10n ** 12n

const w = fc.nat(4)
const op = fc.oneof(
  fc.record({ t: fc.constant("join" as const), w }),
  fc.record({ t: fc.constant("online" as const), w }),
  fc.record({ t: fc.constant("offline" as const), w }),
  fc.record({ t: fc.constant("left" as const), w }),
  fc.record({ t: fc.constant("bond" as const), w, amount: fc.bigInt(1n, 1_000_000n) }),
  fc.record({ t: fc.constant("unbond" as const), w, amount: fc.bigInt(1n, 1_500_000n) }),
  fc.record({ t: fc.constant("verify" as const), m: fc.nat(3) }),
  fc.record({
    t: fc.constant("task" as const),
    m: fc.nat(3),
    d: fc.nat(2),
    price: fc.bigInt(0n, 2_000n),
    workers: fc.uniqueArray(fc.record({ w, execMs: fc.nat(5_000) }), { minLength: 1, maxLength: 3, selector: (x) => x.w })
  }),
  fc.record({ t: fc.constant("task" as const), m: fc.nat(3), d: fc.nat(2), price: fc.bigInt(0n, 2_000n), workers: fc.constant([{ w: 0, execMs: 1_000 }]) }),
  fc.record({ t: fc.constant("wrong" as const), w, d: fc.nat(2), r: fc.nat(1) }),
  fc.record({ t: fc.constant("shares" as const), ai: fc.bigInt(0n, 1_000_000n) }),
  fc.record({ t: fc.constant("reprice" as const), m: fc.nat(3) })
)
type Op = typeof op extends fc.Arbitrary<infer T> ? T : never
const epochOps = fc.array(fc.record({ at: fc.nat(E - 1), op }), { maxLength: 14 })
const workload = fc.record({
  sink: fc.constantFrom("burn" as const, "treasury" as const),
  unbondingEpochs: fc.integer({ min: 1, max: 3 }),
  foundationFund: fc.bigInt(0n, 5_000n),
  launchReward: fc.bigInt(0n, 40_000n),
  epochs: fc.array(epochOps, { minLength: 1, maxLength: 5 })
})

/** A comparable picture of a state. */
const viewOf = (s: EconomyState) => {
  const pairs = <V>(m: Iterable<readonly [string, V]>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1))
  return {
    ...s,
    workers: pairs(s.workers),
    stakes: pairs(s.stakes),
    seenTx: [...s.seenTx].sort(),
    verifiedModels: [...s.verifiedModels].sort(),
    paused: [...s.paused].sort(),
    owed: PayoutSource.map((src) => pairs(s.owed[src])),
    launches: pairs(s.launches),
    fees: pairs(s.fees),
    tasks: Chunk.toReadonlyArray(s.tasks),
    wrongResults: Chunk.toReadonlyArray(s.wrongResults),
    endedOutages: Chunk.toReadonlyArray(s.endedOutages)
  }
}

const factOf = (o: Op, at: number, tx: string, s: EconomyState): EconomyFact | null => {
  switch (o.t) {
    case "join":
      return EconomyFact.WorkerJoined({ worker: WORKERS[o.w]!, owner: OWNERS[o.w]!, gpuUnitsMilli: UNITS[o.w]!, at })
    case "online":
      return EconomyFact.WorkerOnline({ worker: WORKERS[o.w]!, at })
    case "offline":
      return EconomyFact.WorkerOffline({ worker: WORKERS[o.w]!, at })
    case "left":
      return EconomyFact.WorkerLeft({ worker: WORKERS[o.w]!, at })
    case "bond":
      return EconomyFact.StakeBonded({ txHash: hash(tx), worker: WORKERS[o.w]!, owner: OWNERS[o.w]!, amount: o.amount })
    case "unbond":
      return EconomyFact.UnbondRequested({ txHash: hash(tx), worker: WORKERS[o.w]!, owner: OWNERS[o.w]!, amount: o.amount })
    case "verify":
      return EconomyFact.ModelVerified({ modelId: MODELS[o.m]!, provider: PROVIDERS[o.m % 3]!, at })
    case "task":
      // The node runs no task on a paused model.
      if (isPaused(s, MODELS[o.m]!)) return null
      return EconomyFact.TaskSettled({
        taskId: hash(tx),
        modelId: MODELS[o.m]!,
        provider: PROVIDERS[o.m % 3]!,
        developer: DEVELOPERS[o.d]!,
        price: o.price,
        workers: o.workers.map((x) => ({ worker: WORKERS[x.w]!, execMs: x.execMs })),
        at
      })
    case "wrong":
      return EconomyFact.ResultProvenWrong({ taskId: hash(`wrong-${tx}`), worker: WORKERS[o.w]!, developer: DEVELOPERS[o.d]!, reporter: REPORTERS[o.r]!, at })
    case "shares": {
      const beacon = (1_000_000n - o.ai) / 2n
      return EconomyFact.ShardSharesSet({ txHash: hash(tx), shares: { ai: o.ai, beacon, transfer: 1_000_000n - o.ai - beacon } })
    }
    case "reprice":
      return EconomyFact.ModelRepriced({ modelId: MODELS[o.m]! })
  }
}

const SOURCE_ACCOUNT: Record<PayoutSource, Address> = { reserve: RESERVE_ADDRESS, foundation: FOUNDATION_ADDRESS, stakePool: STAKE_POOL_ADDRESS, escrow: ESCROW }
const SYSTEM = new Set<string>([RESERVE_ADDRESS, ESCROW, STAKE_POOL_ADDRESS, BURN_ADDRESS])

/** A plain check for the hot loops (an `expect` per movement costs more than the economy). */
const check = (ok: boolean, what: string): void => {
  if (!ok) throw new Error(what)
}

/** What the workloads exercised, so a generator that stopped reaching a rule fails the test. */
const seen = new Set<string>()

const runWorkload = (wl: typeof workload extends fc.Arbitrary<infer T> ? T : never) => {
  const config = testConfig({ protocolFeeSink: wl.sink, unbondingEpochs: wl.unbondingEpochs, foundationFund: wl.foundationFund, launchReward: wl.launchReward })
  const sim = new Sim(config)
  const balance = new Map<string, bigint>()
  const move = (from: string, to: string, amount: bigint) => {
    balance.set(from, (balance.get(from) ?? 0n) - amount)
    balance.set(to, (balance.get(to) ?? 0n) + amount)
  }
  balance.set(RESERVE_ADDRESS, config.miningReserve)
  balance.set(FOUNDATION_ADDRESS, config.foundationFund)
  for (const a of [...OWNERS, ...DEVELOPERS]) balance.set(a, RICH)
  const genesisWithoutReserve = config.foundationFund + RICH * BigInt(OWNERS.length + DEVELOPERS.length)

  const paid = new Map<string, bigint>() // `${source} ${to}` → paid
  const received = new Map<string, bigint>() // `${to} ${epoch}` → received (stake releases excluded)
  let slashPayouts = 0n
  /** The payout loop: pays owed − paid from every source. */
  const payOut = (epoch: number, sources: ReadonlyArray<PayoutSource>) => {
    for (const source of sources) {
      for (const [to, owed] of owedBy(sim.state, source)) {
        const key = `${source} ${to}`
        const due = owed - (paid.get(key) ?? 0n)
        check(due >= 0n, `owed by ${source} to ${to} shrank`)
        if (due === 0n) continue
        move(SOURCE_ACCOUNT[source], to, due)
        paid.set(key, owed)
        const isRelease = source === "stakePool" && OWNERS.includes(to)
        if (source === "stakePool" && !isRelease) slashPayouts += due
        if (!isRelease) received.set(`${to} ${epoch}`, (received.get(`${to} ${epoch}`) ?? 0n) + due)
      }
    }
    for (const [a, b] of balance) check(b >= 0n, `${a} negative: ${b}`)
  }

  wl.epochs.forEach((ops, epoch) => {
    ;[...ops]
      .sort((a, b) => a.at - b.at)
      .forEach(({ at, op: o }, i) => {
        const fact = factOf(o, epoch * E + at, `tx-${epoch}-${i}`, sim.state)
        if (fact === null) return
        if (fact._tag === "TaskSettled") move(fact.developer, ESCROW, fact.price) // the deposit a task needs
        if (fact._tag === "StakeBonded") move(fact.owner, STAKE_POOL_ADDRESS, fact.amount)
        sim.facts(fact)
        payOut(epoch, ["escrow"]) // facts owe from escrow only
      })
    const before = sim.state
    const ledger = sim.close(BigInt(epoch) * 1_000n)
    expect(ledgerJson(closeEpoch(config, before, window(epoch, BigInt(epoch) * 1_000n)))).toBe(ledgerJson(ledger))
    for (const e of ledger) {
      if (e._tag === "Slashed") seen.add(e.reason)
      if (e._tag === "StakeReleased") seen.add("release")
      if (e._tag === "RewardCredited") seen.add(e.kind)
    }
    if (before.paused.pipe((p) => [...p].length > 0)) seen.add("paused")
    payOut(epoch, PayoutSource)

    const supply = supplyOf(config, sim.state, 0n)
    const others = [...balance].filter(([a]) => !SYSTEM.has(a)).reduce((sum, [, b]) => sum + b, 0n)
    const escrow = balance.get(ESCROW) ?? 0n
    const burned = balance.get(BURN_ADDRESS) ?? 0n
    expect(others + escrow + supply.stakedBonded + supply.unbonding + burned).toBe(genesisWithoutReserve + supply.minted)
    expect(balance.get(STAKE_POOL_ADDRESS) ?? 0n).toBe(supply.stakedBonded + supply.unbonding)
    expect(burned).toBe(supply.burnedBySlashes + supply.protocolFeesBurned)
    expect(balance.get(RESERVE_ADDRESS)).toBe(supply.reserveRemaining)
    expect(supply.minted <= config.miningReserve && supply.foundationRemaining >= 0n).toBe(true)
    if (wl.sink === "treasury") expect(balance.get(TREASURY_ADDRESS) ?? 0n).toBe(0n + (paid.get(`escrow ${TREASURY_ADDRESS}`) ?? 0n))
  })

  // Statements: each address's money, epoch by epoch.
  const got = (a: string, epoch: number) => received.get(`${a} ${epoch}`) ?? 0n
  for (const p of PROVIDERS) {
    const st = statementOf(sim.ledgers, p)
    st.epochs.forEach((l) => expect(l.providerNet).toBe(got(p, l.epoch)))
    expect(st.total.providerNet).toBe(st.total.net)
  }
  let slashedTotal = 0n
  for (const a of WORKERS) {
    const st = statementOf(sim.ledgers, a)
    st.epochs.forEach((l) => expect(l.net + l.slashed).toBe(got(a, l.epoch)))
    slashedTotal += st.total.slashed
  }
  expect(slashedTotal).toBe(slashPayouts)
  for (const a of [...DEVELOPERS, ...REPORTERS]) {
    const st = statementOf(sim.ledgers, a)
    st.epochs.forEach((l) => expect(l.net).toBe(got(a, l.epoch)))
  }

  // The auditor's rebuild: the log, ledgers through their JSON, from scratch.
  expect(viewOf(rebuild(config, sim.log))).toEqual(viewOf(sim.state))
}

const rebuild = (config: ReturnType<typeof testConfig>, log: Sim["log"]): EconomyState => {
  const fold = foldFact(config)
  let s = initialEconomy(config)
  for (const entry of log) s = "fact" in entry ? fold(s, entry.fact) : throughJson(entry.ledger).reduce(foldLedger, s)
  return s
}

describe("conservation over random workloads", () => {
  it("money is conserved, no account goes negative, statements match the money, replays agree", () => {
    fc.assert(fc.property(workload, runWorkload), { numRuns: 2_000 })
    expect([...seen].sort()).toEqual(["FoundationSubsidy", "LaunchReward", "Offline", "OnlineMining", "TaskMining", "WrongResult", "paused", "release"])
  })
})

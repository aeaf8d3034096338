/**
 * A stake belongs to who bonded it, bond by bond. Random stake / unbond /
 * transfer / slash (wrong results, outages) / epoch-close sequences from
 * several accounts run through the real ledger (stakes and transfers on the
 * sender's transfer shard, each bond receipt relayed to the AI shard, unbonds
 * on the AI shard by its ledger; signed) and the economy's fold and epoch closes: no account is ever
 * released stake it did not bond to that worker; what an owner gets back
 * never exceeds its bonds less its share of slashes (and, per owner, bonded
 * + unbonding + released = bonds − slashed, exactly); the chain refuses
 * every unbond of an account over its own bond; the pool's money is always
 * bonded, unbonding or owed (released or slashed out).
 */
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Chunk, Either, HashMap, Option } from "effect"
import { TransactionBody, signTransaction, type TransactionPayload } from "../../domain/chain/transaction.js"
import { devKey, type Address } from "../../domain/chain/keys.js"
import type { LedgerState } from "../../domain/chain/ledgerState.js"
import { aiShardOf, type ShardId } from "../../domain/chain/sharding.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { BURN_ADDRESS } from "../../domain/economics/accounts.js"
import { bondOf, splitOverBonds } from "../../domain/economics/bonds.js"
import { EconomyFact } from "../../domain/economics/facts.js"
import { bondedOf, owedBy } from "../../domain/economics/queries.js"
import type { EconomyState } from "../../domain/economics/state.js"
import { accountsOn, applyBlock, CHAIN_ID, config, FEE, genesisState, nextBlock, SHARDS } from "../chain/helpers.js"
import { address, E, hash, ofTag, Sim, testConfig } from "./support.js"

// Two accounts on each of two shards: bonds to one worker come from several shards.
const OWNERS = [...accountsOn(SHARDS[0]!).slice(0, 2), ...accountsOn(SHARDS[1]!).slice(0, 2)]
const WORKERS: ReadonlyArray<Address> = [devKey(901).publicKey.address, devKey(902).publicKey.address]
const AI = aiShardOf(config.transferShards)
const DEVELOPER = address("developer")
const REPORTER = address("reporter")

const who = fc.nat(OWNERS.length - 1)
const w = fc.nat(WORKERS.length - 1)
const op = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant("stake" as const), o: who, w, amount: fc.bigInt(1n, 5_000n) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("unbond" as const), o: who, w, amount: fc.bigInt(1n, 3_000n) }), weight: 3 },
  // All the chain says the sender has bonded: clamped by the economy while a wrong result is pending.
  { arbitrary: fc.record({ t: fc.constant("unbondAll" as const), o: who, w }), weight: 3 },
  fc.record({ t: fc.constant("transfer" as const), o: who, to: who, amount: fc.bigInt(1n, 600_000n) }),
  { arbitrary: fc.record({ t: fc.constant("wrong" as const), w }), weight: 2 },
  fc.record({ t: fc.constant("offline" as const), w, at: fc.integer({ min: 0, max: E - 1 }) }),
  fc.record({ t: fc.constant("online" as const), w, at: fc.integer({ min: 0, max: E - 1 }) }),
  fc.record({ t: fc.constant("close" as const) })
)

const sumOf = (xs: Iterable<bigint>): bigint => [...xs].reduce((a, b) => a + b, 0n)
const pair = (owner: Address, worker: Address) => `${owner}>${worker}`
const add = (m: Map<string, bigint>, k: string, v: bigint) => m.set(k, (m.get(k) ?? 0n) + v)

/** What the pending wrong results will take from (owner, worker) at the close. */
const reserved = (s: EconomyState, owner: Address, worker: Address): bigint =>
  sumOf(Chunk.toReadonlyArray(s.wrongResults).flatMap((r) => (r.worker === worker ? r.shares.filter((x) => x.owner === owner).map((x) => x.amount) : [])))

describe("stake ownership over random sequences", () => {
  it("no account is released stake it did not bond; releases ≤ bonds − slashed share per owner; the chain refuses unbonds over one's own bond; conservation", () => {
    const seen = new Set<string>()
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), fc.integer({ min: 1, max: 3 }), (ops, unbondingEpochs) => {
        const shards = new Map<ShardId, LedgerState>([...SHARDS.slice(0, 2), AI].map((s) => [s, genesisState(s).state]))
        const nonces = OWNERS.map(() => 0n)
        const aiNonces = OWNERS.map(() => 0n)
        // Per (owner, worker), from the chain's and the ledgers' events.
        const bonds = new Map<string, bigint>()
        const slashed = new Map<string, bigint>()
        const released = new Map<string, bigint>()
        const unbondingOf = (k: string) => sumOf(sim.state.unbonding.filter((u) => pair(u.owner, u.worker) === k).map((u) => u.amount))
        const sim = new Sim(testConfig({ unbondingEpochs }))
        let wrongs = 0
        const close = () => {
          const ledger = sim.close()
          for (const x of ofTag(ledger, "Slashed")) {
            for (const b of x.fromBonds) add(slashed, pair(b.owner, x.worker), b.amount)
            if (x.fromBonds.length > 1) seen.add(`${x.reason} over several bonds`)
          }
          for (const r of ofTag(ledger, "StakeReleased")) {
            // Released only to who bonded to that worker.
            expect(bonds.get(pair(r.owner, r.worker)) ?? 0n).toBeGreaterThan(0n)
            add(released, pair(r.owner, r.worker), r.amount)
            seen.add("released")
          }
        }
        const check = () => {
          for (const [k, b] of bonds) {
            const [owner, worker] = k.split(">") as [Address, Address]
            const back = released.get(k) ?? 0n
            expect(back).toBeLessThanOrEqual(b - (slashed.get(k) ?? 0n))
            // Exactly: what an owner bonded is still bonded, unbonding, released or slashed.
            expect(bondOf(sim.state, worker, owner) + unbondingOf(k) + back + (slashed.get(k) ?? 0n)).toBe(b)
          }
          for (const [worker, stake] of sim.state.stakes) {
            expect(sumOf(HashMap.values(stake.bonds))).toBe(stake.bonded)
            for (const [owner] of stake.bonds) expect(bonds.has(pair(owner, worker))).toBe(true)
            expect(bondedOf(sim.state, worker)).toBe(stake.bonded)
          }
          for (const [account] of owedBy(sim.state, "stakePool")) {
            if (account !== DEVELOPER && account !== REPORTER && OWNERS.every((o) => o.address !== account)) expect(account).toBe(BURN_ADDRESS)
          }
          const bonded = sumOf([...sim.state.stakes].map(([, s]) => s.bonded))
          const unbonding = sumOf(sim.state.unbonding.map((u) => u.amount))
          const owed = sumOf(owedBy(sim.state, "stakePool").values())
          expect(bonded + unbonding + owed).toBe(sumOf(bonds.values()))
        }
        for (const o of ops) {
          const epochStart = sim.state.epoch * E
          if (o.t === "close") close()
          else if (o.t === "wrong") {
            sim.facts(EconomyFact.ResultProvenWrong({ taskId: hash(`wrong-${wrongs++}`), worker: WORKERS[o.w]!, developer: DEVELOPER, reporter: REPORTER, at: epochStart }))
          } else if (o.t === "offline") {
            const worker = WORKERS[o.w]!
            if (Option.isNone(HashMap.get(sim.state.workers, worker))) {
              sim.facts(EconomyFact.WorkerJoined({ worker, owner: worker, gpuUnitsMilli: 1_000n, at: epochStart }))
            }
            sim.facts(EconomyFact.WorkerOffline({ worker, at: epochStart + o.at }))
          } else if (o.t === "online") {
            sim.facts(EconomyFact.WorkerOnline({ worker: WORKERS[o.w]!, at: epochStart + o.at }))
          } else {
            const sender = OWNERS[o.o]!
            // worker.stake and transfers run on the sender's transfer shard; worker.unbond on the AI shard (fee 0, its own nonce).
            const isUnbond = o.t === "unbond" || o.t === "unbondAll"
            const shard = isUnbond ? AI : accountsOn(SHARDS[0]!).includes(sender) ? SHARDS[0]! : SHARDS[1]!
            const before = shards.get(shard)!
            const onChain = isUnbond ? bondOf(shards.get(AI)!.ai!.economy, WORKERS[o.w]!, sender.address) : 0n
            const amount = o.t === "unbondAll" ? (onChain === 0n ? 1n : onChain) : o.amount
            const payload: TransactionPayload =
              o.t === "transfer"
                ? { kind: "transfer", to: OWNERS[o.to]!.address, amount }
                : { kind: o.t === "stake" ? "worker.stake" : "worker.unbond", worker: WORKERS[o.w]!, amount }
            const counter = isUnbond ? aiNonces : nonces
            const tx = signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce: counter[o.o]!, fee: isUnbond ? 0n : FEE, payload }), sender.key)
            const applied = applyBlock(before, nextBlock(before, [tx]))
            shards.set(shard, applied.state)
            const events = [...applied.events]
            for (const e of applied.events) if (e._tag === "FeeCharged") counter[o.o]! += 1n
            // A stake's bond receipt, relayed to the AI shard at once: its ledger bonds it.
            const bondReceipts = applied.events.flatMap((e) => (e._tag === "CrossShardSent" && e.purpose?.kind === "bond" ? [e.receipt] : []))
            if (bondReceipts.length > 0) {
              const ai = shards.get(AI)!
              const relayed = applyBlock(ai, nextBlock(ai, [], bondReceipts))
              shards.set(AI, relayed.state)
              events.push(...relayed.events)
            }
            for (const e of events) {
              if (e._tag === "TransactionRejected") seen.add(e.reason)
              if (e._tag === "AiStakeBonded") {
                const k = pair(e.owner, e.worker)
                if (sim.state.stakes.pipe(HashMap.get(e.worker), Option.exists((s) => s.bonded > 0n && !HashMap.has(s.bonds, e.owner)))) seen.add("second owner")
                add(bonds, k, e.amount)
                sim.facts(EconomyFact.StakeBonded({ txHash: e.receiptId as Hash32, worker: e.worker, owner: e.owner, amount: e.amount }))
              }
              if (e._tag === "AiUnbondRequested") {
                // The economy never lets an owner unbond more than the chain let it ask.
                const free = bondOf(sim.state, e.worker, e.owner) - reserved(sim.state, e.owner, e.worker)
                expect(free).toBeLessThanOrEqual(onChain)
                if (free < e.amount) seen.add("clamped")
                sim.facts(EconomyFact.UnbondRequested({ txHash: e.txHash, worker: e.worker, owner: e.owner, amount: e.amount }))
              }
            }
            if (o.t === "unbond" || o.t === "unbondAll") {
              const rejected = events.find((e) => e._tag === "TransactionRejected")
              if (onChain === 0n) expect(rejected).toMatchObject({ reason: "NotStakeOwner" })
              else if (amount > onChain) expect(rejected).toMatchObject({ reason: "UnbondOverBond" })
            }
          }
          check()
        }
        // Everything still unbonding is released, each to its bonder.
        for (let i = 0; i <= unbondingEpochs; i++) {
          close()
          check()
        }
        expect(sim.state.unbonding).toEqual([])
      }),
      {
        numRuns: 100,
        // Besides the random runs, one that reaches every rule below for sure.
        examples: [
          [
            [
              { t: "stake", o: 0, w: 0, amount: 1_000n },
              { t: "stake", o: 2, w: 0, amount: 500n },
              { t: "stake", o: 1, w: 0, amount: 300n },
              { t: "wrong", w: 0 },
              { t: "unbondAll", o: 1, w: 0 },
              { t: "offline", w: 0, at: 0 },
              { t: "unbond", o: 3, w: 0, amount: 10n },
              { t: "unbond", o: 0, w: 0, amount: 5_000n },
              { t: "close" },
              { t: "unbond", o: 0, w: 0, amount: 100n },
              { t: "close" }
            ],
            1
          ]
        ]
      }
    )
    // The workloads reached the rules this test is about.
    expect([...seen].sort()).toEqual(
      expect.arrayContaining(["NotStakeOwner", "UnbondOverBond", "released", "second owner", "clamped", "WrongResult over several bonds", "Offline over several bonds"])
    )
  })
})

describe("slashes split over bonds", () => {
  const [o0, o1, o2] = [address("a"), address("b"), address("c")].sort()
  it("largest remainder: the floors' dust goes to the largest remainders, ties to the lower address", () => {
    // 7 over 10:20:70: exact 0.7, 1.4, 4.9; floors 0, 1, 4 leave 2 units: to o2 (.9) and o0 (.7).
    expect(splitOverBonds(7n, [[o2!, 70n], [o0!, 10n], [o1!, 20n]])).toEqual([
      { owner: o0, amount: 1n },
      { owner: o1, amount: 1n },
      { owner: o2, amount: 5n }
    ])
    // 2 over 1:1:1: equal remainders, the lower addresses give.
    expect(splitOverBonds(2n, [[o0!, 1n], [o1!, 1n], [o2!, 1n]])).toEqual([{ owner: o0, amount: 1n }, { owner: o1, amount: 1n }])
    expect(splitOverBonds(0n, [[o0!, 5n]])).toEqual([])
  })

  it("any slash up to the bonds: the takes sum to it, each within a unit of its exact share and never over its bond", () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt(0n, 10_000n), { minLength: 1, maxLength: 3 }), fc.double({ min: 0, max: 1, noNaN: true }), (amounts, f) => {
        const bonds = amounts.map((b, i) => [[o0!, o1!, o2!][i]!, b] as const)
        const total = sumOf(amounts)
        const slash = BigInt(Math.floor(Number(total) * f))
        const takes = splitOverBonds(slash, bonds)
        expect(sumOf(takes.map((t) => t.amount))).toBe(slash)
        for (const [owner, b] of bonds) {
          const take = takes.find((t) => t.owner === owner)?.amount ?? 0n
          expect(take).toBeLessThanOrEqual(b)
          if (total > 0n) expect(take - (slash * b) / total).toBeGreaterThanOrEqual(0n)
          if (total > 0n) expect(take - (slash * b) / total).toBeLessThanOrEqual(1n)
        }
      })
    )
  })
})

describe("stake ownership, case by case", () => {
  const W = address("worker")
  const [A, B, H] = [address("a"), address("b"), address("hostile")]
  const bond = (tx: string, owner: Address, amount: bigint) => EconomyFact.StakeBonded({ txHash: hash(tx), worker: W, owner, amount })
  const unbond = (tx: string, owner: Address, amount: bigint) => EconomyFact.UnbondRequested({ txHash: hash(tx), worker: W, owner, amount })
  const bondsOf = (s: EconomyState) => new Map(HashMap.get(s.stakes, W).pipe(Option.map((x) => [...x.bonds]), Option.getOrElse(() => [])))

  it("a hostile first bond of 1 owns nothing: the operator's bond counts toward the worker's stake, each unbonds and is released only its own", () => {
    const sim = new Sim(testConfig({ unbondingEpochs: 1 })).facts(bond("1", H, 1n), bond("2", A, 100n))
    expect(bondedOf(sim.state, W)).toBe(101n)
    expect(bondsOf(sim.state)).toEqual(new Map([[H, 1n], [A, 100n]]))
    // The hostile account asks for the operator's 100: it gets its own 1, no more.
    sim.facts(unbond("3", H, 100n))
    expect(bondsOf(sim.state)).toEqual(new Map([[A, 100n]]))
    expect(ofTag(sim.close(), "StakeReleased")).toMatchObject([{ worker: W, owner: H, amount: 1n }])
    sim.facts(unbond("4", A, 100n))
    expect(ofTag(sim.close(), "StakeReleased")).toMatchObject([{ worker: W, owner: A, amount: 100n }])
    expect(owedBy(sim.state, "stakePool")).toEqual(new Map([[A, 100n], [H, 1n]].sort(([a], [b]) => (a! < b! ? -1 : 1)) as Array<[Address, bigint]>))
    expect(bondedOf(sim.state, W)).toBe(0n)
  })

  it("an account with no bond to the worker unbonds nothing; a second bond of the same owner adds to its own", () => {
    const sim = new Sim(testConfig()).facts(bond("1", A, 100n), unbond("2", B, 50n), bond("3", A, 20n))
    expect(bondsOf(sim.state)).toEqual(new Map([[A, 120n]]))
    expect(sim.state.unbonding).toEqual([])
  })

  it("a wrong result's slash is shared by the bonds when proven: an owner that unbonds before the close keeps its share bonded and pays it", () => {
    // 10 % of 400 = 40: A gives 30, B 10.
    const sim = new Sim(testConfig({ unbondingEpochs: 1 })).facts(
      bond("1", A, 300n),
      bond("2", B, 100n),
      EconomyFact.ResultProvenWrong({ taskId: hash("t"), worker: W, developer: address("dev"), reporter: address("rep"), at: 0 }),
      unbond("3", B, 100n)
    )
    expect(bondsOf(sim.state)).toEqual(new Map([[A, 300n], [B, 10n]]))
    const ledger = sim.close()
    expect(ofTag(ledger, "Slashed").map((x) => [x.amount, x.fromBonds])).toEqual([[40n, [{ owner: A, amount: 30n }, { owner: B, amount: 10n }].sort((x, y) => (x.owner < y.owner ? -1 : 1))]])
    expect(ofTag(ledger, "StakeReleased")).toMatchObject([{ owner: B, amount: 90n }])
    expect(bondsOf(sim.state)).toEqual(new Map([[A, 270n]]))
    expect(bondedOf(sim.state, W)).toBe(270n)
  })

  it("an outage's slash is taken from the bonds pro rata at the close", () => {
    // Offline the whole 100 s window: the 1 % grade, 4 of 400: A gives 3, B 1.
    const sim = new Sim(testConfig()).facts(
      bond("1", A, 300n),
      bond("2", B, 100n),
      EconomyFact.WorkerJoined({ worker: W, owner: A, gpuUnitsMilli: 1_000n, at: 0 }),
      EconomyFact.WorkerOffline({ worker: W, at: 0 })
    )
    const slashes = ofTag(sim.close(), "Slashed")
    expect(slashes.map((x) => [x.reason, x.amount])).toEqual([["Offline", 4n]])
    expect(new Map(slashes[0]!.fromBonds.map((b) => [b.owner, b.amount]))).toEqual(new Map([[A, 3n], [B, 1n]]))
    expect(bondsOf(sim.state)).toEqual(new Map([[A, 297n], [B, 99n]]))
  })
})

/**
 * A stake belongs to who bonded it. Random stake / unbond / transfer
 * sequences from several accounts run through the real ledger (each on its
 * sender's home shard, signed) and the economy's fold and epoch closes: no
 * account is ever owed stake it did not bond, the chain refuses every unbond
 * of an account that never bonded to the worker, and the pool's money is
 * always bonded, unbonding or owed back.
 */
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { HashMap, Option } from "effect"
import { TransactionBody, signTransaction, type TransactionPayload } from "../../domain/chain/transaction.js"
import { devKey, type Address } from "../../domain/chain/keys.js"
import type { LedgerState } from "../../domain/chain/ledgerState.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { EconomyFact } from "../../domain/economics/facts.js"
import { owedBy } from "../../domain/economics/queries.js"
import { accountsOn, applyBlock, CHAIN_ID, FEE, genesisState, nextBlock, SHARDS } from "../chain/helpers.js"
import { address, hash, Sim, testConfig } from "./support.js"

// Two accounts on each of two shards: bonds to one worker come from several shards.
const OWNERS = [...accountsOn(SHARDS[0]!).slice(0, 2), ...accountsOn(SHARDS[1]!).slice(0, 2)]
const WORKERS: ReadonlyArray<Address> = [devKey(901).publicKey.address, devKey(902).publicKey.address]

const who = fc.nat(OWNERS.length - 1)
const w = fc.nat(WORKERS.length - 1)
const op = fc.oneof(
  fc.record({ t: fc.constant("stake" as const), o: who, w, amount: fc.bigInt(1n, 5_000n) }),
  fc.record({ t: fc.constant("unbond" as const), o: who, w, amount: fc.bigInt(1n, 8_000n) }),
  fc.record({ t: fc.constant("transfer" as const), o: who, to: who, amount: fc.bigInt(1n, 600_000n) }),
  fc.record({ t: fc.constant("close" as const) })
)

const sumOf = (xs: Iterable<bigint>): bigint => [...xs].reduce((a, b) => a + b, 0n)

describe("stake ownership over random sequences", () => {
  it("no account is ever owed stake it did not bond; unbonds of others' stakes never reach the economy", () => {
    const seen = new Set<string>()
    fc.assert(
      fc.property(fc.array(op, { maxLength: 24 }), fc.integer({ min: 1, max: 3 }), (ops, unbondingEpochs) => {
        const shards = new Map<ShardId, LedgerState>(SHARDS.slice(0, 2).map((s) => [s, genesisState(s).state]))
        const nonces = OWNERS.map(() => 0n)
        const bondedBy = new Map<Address, bigint>()
        const bondedTo = new Set<string>() // owner>worker, as the chain saw it
        const sim = new Sim(testConfig({ unbondingEpochs }))
        const check = () => {
          for (const [account, owed] of owedBy(sim.state, "stakePool")) {
            if (owed > (bondedBy.get(account) ?? 0n)) throw new Error(`${account} is owed ${owed} of stake, bonded ${bondedBy.get(account) ?? 0n}`)
          }
          const bonded = sumOf([...sim.state.stakes].map(([, s]) => s.bonded))
          const unbonding = sumOf(sim.state.unbonding.map((u) => u.amount))
          const owed = sumOf(owedBy(sim.state, "stakePool").values())
          expect(bonded + unbonding + owed).toBe(sumOf(bondedBy.values()))
        }
        for (const o of ops) {
          if (o.t === "close") {
            sim.close()
            check()
            continue
          }
          const sender = OWNERS[o.o]!
          const shard = accountsOn(SHARDS[0]!).includes(sender) ? SHARDS[0]! : SHARDS[1]!
          const payload: TransactionPayload =
            o.t === "transfer"
              ? { kind: "transfer", to: OWNERS[o.to]!.address, amount: o.amount }
              : { kind: o.t === "stake" ? "worker.stake" : "worker.unbond", worker: WORKERS[o.w]!, amount: o.amount }
          const tx = signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce: nonces[o.o]!, fee: FEE, payload }), sender.key)
          const before = shards.get(shard)!
          const { state, events } = applyBlock(before, nextBlock(before, [tx]))
          shards.set(shard, state)
          for (const e of events) {
            if (e._tag === "FeeCharged") nonces[o.o]! += 1n
            if (e._tag === "TransactionRejected") seen.add(e.reason)
            if (e._tag === "StakeBonded") {
              bondedBy.set(e.owner, (bondedBy.get(e.owner) ?? 0n) + e.amount)
              bondedTo.add(`${e.owner}>${e.worker}`)
              const owner = Option.getOrUndefined(HashMap.get(sim.state.stakes, e.worker))
              if (owner !== undefined && owner.bonded > 0n && owner.owner !== e.owner) seen.add("second bonder")
              sim.facts(EconomyFact.StakeBonded({ txHash: e.txHash, worker: e.worker, owner: e.owner, amount: e.amount }))
            }
            if (e._tag === "UnbondRequested") {
              expect(bondedTo.has(`${e.owner}>${e.worker}`)).toBe(true)
              sim.facts(EconomyFact.UnbondRequested({ txHash: e.txHash, worker: e.worker, owner: e.owner, amount: e.amount }))
            }
          }
          if (o.t === "unbond" && !bondedTo.has(`${sender.address}>${WORKERS[o.w]!}`)) {
            expect(events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "NotStakeOwner" })
          }
          check()
        }
        // Everything still unbonding is released, each to its bonder.
        for (let i = 0; i <= unbondingEpochs; i++) {
          const ledger = sim.close()
          for (const e of ledger) if (e._tag === "StakeReleased") expect(bondedBy.get(e.owner) ?? 0n).toBeGreaterThanOrEqual(e.amount)
          check()
        }
        expect(sim.state.unbonding).toEqual([])
        for (const [worker, stake] of sim.state.stakes) {
          if (stake.bonded > 0n) expect(bondedTo.has(`${stake.owner}>${worker}`)).toBe(true)
        }
        if (sim.state.unbonding.length === 0 && owedBy(sim.state, "stakePool").size > 0) seen.add("released")
      }),
      { numRuns: 60 }
    )
    // The workloads reached the rules this test is about.
    expect([...seen].sort()).toEqual(expect.arrayContaining(["NotStakeOwner", "released", "second bonder"]))
  })
})

describe("stake ownership, case by case", () => {
  const W = address("worker")
  const [A, B] = [address("a"), address("b")]
  const bond = (tx: string, owner: typeof A, amount: bigint) => EconomyFact.StakeBonded({ txHash: hash(tx), worker: W, owner, amount })
  const unbond = (tx: string, owner: typeof A, amount: bigint) => EconomyFact.UnbondRequested({ txHash: hash(tx), worker: W, owner, amount })

  it("a second account's bond never changes the owner and goes back to it at the close; its unbond of the stake changes nothing", () => {
    const sim = new Sim(testConfig({ unbondingEpochs: 2 })).facts(bond("1", A, 100n), bond("2", B, 40n), unbond("3", B, 100n))
    expect(Option.getOrThrow(HashMap.get(sim.state.stakes, W))).toEqual({ owner: A, bonded: 100n })
    const released = sim.close().filter((e) => e._tag === "StakeReleased")
    expect(released).toMatchObject([{ worker: W, owner: B, amount: 40n }])
    expect(owedBy(sim.state, "stakePool")).toEqual(new Map([[B, 40n]]))
  })

  it("the owner's unbond is released to the owner; once nothing is bonded, the next bonder owns the stake", () => {
    const sim = new Sim(testConfig({ unbondingEpochs: 1 })).facts(bond("1", A, 100n), unbond("2", A, 100n), bond("3", B, 30n))
    expect(Option.getOrThrow(HashMap.get(sim.state.stakes, W))).toEqual({ owner: B, bonded: 30n })
    sim.close()
    expect(owedBy(sim.state, "stakePool")).toEqual(new Map([[A, 100n]]))
    sim.facts(unbond("4", A, 30n))
    expect(Option.getOrThrow(HashMap.get(sim.state.stakes, W)).bonded).toBe(30n)
  })
})

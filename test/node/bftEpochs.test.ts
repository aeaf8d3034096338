/**
 * Epochs on a BFT chain in one process (real BLS, SQLite stores, the
 * in-memory network): a candidate stakes and registers on the beacon, a
 * genesis validator unbonds, the beacon elects the next committees, every
 * shard hands over to them, and the chain goes on under the new committee —
 * the one that left now observes, the one that joined votes — and a member
 * down for two epochs catches up from its peers' ledgers, with every node's
 * shard streams identical.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { devAccounts } from "../../domain/chain/genesis.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import type { Address, PrivateKey } from "../../domain/chain/keys.js"
import { accountOf } from "../../domain/chain/ledgerState.js"
import { BEACON_SHARD, shardOf } from "../../domain/chain/sharding.js"
import { signTransaction, TransactionBody } from "../../domain/chain/transaction.js"
import type { TransactionBody as Body } from "../../domain/chain/transaction.js"
import { devValidatorKeys } from "../../domain/chain/validators.js"
import { proofOfPossession } from "../../domain/consensus/bls.js"
import { join } from "node:path"
import { auditEventLog } from "../../src/audit/auditEventLog.js"
import { BFT_CHAIN_ID, makeHarness, stopHarnesses } from "./bftHarness.js"
import type { Harness } from "./bftHarness.js"

const FEE = 10n
const sign = (key: PrivateKey, nonce: bigint, payload: Body["payload"]) =>
  signTransaction(new TransactionBody({ chainId: BFT_CHAIN_ID, nonce, fee: FEE, payload }), key)

/** Until `check` holds, polling; fails with `what` after `timeoutMs`. */
const eventually = <A, E>(what: string, probe: Effect.Effect<A, E>, check: (a: A) => boolean, timeoutMs = 60_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const a = yield* probe
      if (check(a)) return a
      if (Date.now() > deadline) return yield* Effect.dieMessage(`never: ${what} (last ${JSON.stringify(a, (_, v) => (typeof v === "bigint" ? String(v) : v))})`)
      yield* Effect.sleep("100 millis")
    }
  })

/** Every running node's committee (epoch and member addresses) of each shard. */
const committees = (h: Harness, shards: ReadonlyArray<number>) =>
  Effect.forEach([...h.running.values()], (v) =>
    Effect.forEach(shards, (shard) =>
      Effect.map(v.seats.get(shard)!.ledger, (l) => ({ epoch: l.committee!.epoch, members: l.committee!.members.map((m) => m.address) }))
    )
  )

afterAll(stopHarnesses)

describe("BFT epochs", () => {
  it.live(
    "a candidate stakes and registers, a validator unbonds: the beacon elects them in and out, every shard hands over, the chain goes on",
    () =>
      Effect.gen(function* () {
        // 4 genesis validators, a fifth node on the network; committees of 4; 2 s epochs.
        const h = makeHarness({ validators: 4, candidates: 1, committeeSize: 4, transferShards: 1, beaconIntervalMs: 500, epochBlocks: 4 })
        const nodes = yield* h.startAll
        const [n0, , , , n4] = nodes
        const shards = [0, 1]
        const accounts = devAccounts(h.genesis)
        const [joiner, leaver] = [devValidatorKeys(4), devValidatorKeys(0)]
        const home = (a: Address) => shardOf(a, h.genesis.transferShards)

        // Money for both validators' transactions, from a dev account.
        const funder = accounts[0]!
        yield* n0!.node.submit(bytesToHex(sign(funder.key, 0n, { kind: "transfer", to: joiner.secp.publicKey.address, amount: 100_000n }).encoded), false)
        yield* n0!.node.submit(bytesToHex(sign(funder.key, 1n, { kind: "transfer", to: leaver.secp.publicKey.address, amount: 1_000n }).encoded), false)
        const balancesEverywhere = (address: Address) => Effect.forEach(nodes, (v) => Effect.map(v.node.account(address), (a) => a.balance))
        yield* eventually("both funded on every node", Effect.all([balancesEverywhere(joiner.secp.publicKey.address), balancesEverywhere(leaver.secp.publicKey.address)]), ([j, l]) =>
          j.every((b) => b === 100_000n) && l.every((b) => b === 1_000n)
        )

        // Stakes to the beacon (the joiner's outweighs any genesis validator's), then the beacon transactions.
        yield* n4!.node.submit(bytesToHex(sign(joiner.secp, 0n, { kind: "validator.stake", amount: 50_000n }).encoded), false)
        yield* n0!.node.submit(bytesToHex(sign(leaver.secp, 0n, { kind: "validator.stake", amount: 500n }).encoded), false)
        const beaconBalance = (key: PrivateKey) =>
          Effect.forEach(nodes, (v) => Effect.map(v.seats.get(BEACON_SHARD)!.ledger, (l) => accountOf(l, key.publicKey.address).balance))
        yield* eventually("stakes on every node's beacon", Effect.all([beaconBalance(joiner.secp), beaconBalance(leaver.secp)]), ([j, l]) =>
          j.every((b) => b === 50_000n) && l.every((b) => b === 500n)
        )
        const register = sign(joiner.secp, 0n, {
          kind: "validator.register",
          blsPublicKey: bytesToHex(joiner.bls.publicKey),
          proofOfPossession: bytesToHex(proofOfPossession(joiner.bls.secretKey)),
          endpoint: "memory://4"
        })
        yield* n4!.node.submit(bytesToHex(register.encoded), false)
        yield* n0!.node.submit(bytesToHex(sign(leaver.secp, 0n, { kind: "validator.unbond" }).encoded), false)

        // Every node's every shard hands over to a committee without validator 0 and with validator 4.
        const [r0, r1, r2, r3, r4] = h.roster
        const after = yield* eventually(
          "a committee of validators 1–4 on every shard of every node",
          committees(h, shards),
          (all) => all.every((perShard) => perShard.every((c) => c.epoch >= 1 && !c.members.includes(r0!) && c.members.includes(r4!)))
        )
        for (const perShard of after) for (const c of perShard) expect([...c.members].sort()).toEqual([r1, r2, r3, r4].sort())

        // The chain goes on under the new committee: a transfer commits on every node.
        const alice = accounts.find((a) => a.index !== 0 && home(a.address) === 1)!
        const bob = accounts.find((a) => a.index > alice.index && home(a.address) === 1)!
        const t = sign(alice.key, 0n, { kind: "transfer", to: bob.address, amount: 777n })
        yield* n0!.node.submit(bytesToHex(t.encoded), false) // submitted to the observer: it gossips to the committee
        yield* eventually("the transfer on every node", Effect.forEach(nodes, (v) => v.node.account(bob.address)), (bs) => bs.every((b) => b.balance === h.genesis.devBalance + 777n))

        // Who sits where: validator 0 observes, validator 4 votes in its new epoch.
        for (const shard of shards) {
          const s0 = yield* n0!.seats.get(shard)!.stats
          const s4 = yield* n4!.seats.get(shard)!.stats
          expect(s0.member).toBe(false)
          expect(s4.member).toBe(true)
          expect(s4.epoch).toBe(s0.epoch)
          // It votes in the epoch it sits in (one just begun may not have had a proposal yet: wait for one).
          yield* eventually(
            `validator 4 voting on shard ${shard}`,
            Effect.flatMap(n4!.seats.get(shard)!.stats, (now) => h.consensusRecords(n4!, shard, now.epoch)),
            (records) => records.some((r) => r.type === "Voted")
          )
        }
        // The leaver's stake went back to its transfer shard: what it had, less the two fees.
        yield* eventually("the leaver paid back", n0!.node.account(leaver.secp.publicKey.address), (a) => a.balance === 1_000n - 2n * FEE)

        // A member down for two epochs comes back: its old committee's chain is gone (the others moved on),
        // so it catches up from their ledgers, hands over as they did, and takes its seat again.
        const beaconEpoch = (v: (typeof nodes)[number]) => Effect.map(v.seats.get(BEACON_SHARD)!.ledger, (l) => l.committee!.epoch)
        const downAt = yield* beaconEpoch(nodes[2]!)
        yield* h.stop(2)
        yield* eventually("two epochs without node 2", beaconEpoch(nodes[1]!), (e) => e >= downAt + 2)
        const back = yield* h.start(2)
        const running = [...h.running.values()]
        for (const shard of shards) {
          const target = yield* Effect.map(nodes[1]!.seats.get(shard)!.ledger, (l) => l.height)
          yield* eventually(`node 2 back on shard ${shard}`, Effect.map(back.seats.get(shard)!.ledger, (l) => l.height), (height) => height >= target)
        }
        // The seat moves to the epoch its caught-up ledger names once it has applied the handover (after the ledger, not with it).
        const s2 = yield* eventually(`node 2's seat on shard 1 in epoch ${downAt + 2} or later`, back.seats.get(1)!.stats, (s) => s.epoch >= downAt + 2)
        expect(s2.epoch).toBeGreaterThanOrEqual(downAt + 2)

        // Every node applied the same blocks, across the handovers.
        for (const shard of shards) {
          const all = yield* Effect.forEach(running, (v) => h.hashes(v, `shard-${shard}`))
          const common = Math.min(...all.map((a) => a.length))
          expect(common).toBeGreaterThan(4)
          for (const hashes of all) expect(hashes.slice(0, common)).toEqual(all[0]!.slice(0, common))
        }
        // The auditor re-executes each node's log: every block's certificate checked against the committee
        // of its epoch, the handovers against their digests, the registry and the money across shards.
        for (const v of running) {
          const report = yield* auditEventLog(join(h.dir, `validator-${v.index}`, "events.db"), { genesis: h.genesis }).pipe(Effect.orDie)
          expect(report.failure).toBeUndefined()
          expect(report.ok).toBe(true)
        }
        yield* h.stopAll
      }),
    120_000
  )
})

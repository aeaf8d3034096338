/**
 * Shared usage receipts on 4 BFT validators in one process (real BLS,
 * SQLite stores, the in-memory network), each running its own Settler and
 * SharedReceipts (the gateway's settlement side, `AiNode.ts`), peers
 * reaching each other's `usage.receipts` handler directly:
 *
 *   common case   a receipt served by validator 2 is shared with the others,
 *                 settled by validator 2's own `usage.settle` within the
 *                 grace period, and dropped by the others (members take
 *                 turns after the grace, `takeoverRank`): no other member
 *                 submits it (their AI-shard nonces stay), no duplicate
 *                 settle reaches the ledger (no UsageRefused)
 *   gateway dies  validator 1 shares a validated task's receipt, then its
 *                 scope is closed before its first settle round and it never
 *                 returns: after the grace period another member submits it,
 *                 and it settles exactly once (one UsageSettled, escrow down
 *                 by one price), validator 1 having sent nothing
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Schedule, Scope } from "effect"
import { escrowOf } from "../../domain/ai/ledger/state.js"
import { devAccounts } from "../../domain/chain/genesis.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devKeyFromSeed, type PrivateKey } from "../../domain/chain/keys.js"
import { aiShardOf } from "../../domain/chain/sharding.js"
import { signTransaction, TransactionBody, type TransactionPayload } from "../../domain/chain/transaction.js"
import { devValidatorKeys } from "../../domain/chain/validators.js"
import { decodeEventOf } from "../../domain/streamEvents.js"
import { SHARED_RECEIPTS_STREAM } from "../../domain/ai/shared/events.js"
import type { NodeClient } from "../../src/client/index.js"
import type { ChainNodeShape } from "../../src/node/ChainNode.js"
import { makeSettler, type Settler } from "../../src/node/ai/Settler.js"
import { makeSharedReceipts, type SharedReceipts } from "../../src/node/ai/SharedReceipts.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { eventually } from "../support/waitFor.js"
import { BFT_CHAIN_ID, makeHarness, stopHarnesses, type RunningValidator } from "./bftHarness.js"
import { FINGERPRINT, MANIFEST, PRICE, receiptOf } from "./support/settlerChain.js"

afterAll(stopHarnesses)

/** Long enough for a serving gateway's settle to commit on a loaded machine; the dead gateway's receipt waits it out. */
const GRACE_MS = 10_000

const submit = (node: ChainNodeShape, key: PrivateKey, payload: TransactionPayload, shard?: number) =>
  Effect.gen(function* () {
    const account = yield* node.account(key.publicKey.address, shard)
    const tx = signTransaction(new TransactionBody({ chainId: BFT_CHAIN_ID, nonce: account.pendingNonce, fee: 0n, payload }), key)
    const r = yield* node.submit(bytesToHex(tx.encoded), true)
    expect(r.status, `${payload.kind} ${tx.hash}`).toBe("included")
    return tx
  })

interface Gateway {
  readonly settler: Settler
  readonly shared: SharedReceipts
}

describe("usage receipts shared between the AI committee's gateways (4 BFT validators)", () => {
  it.live(
    "each task is settled by its own gateway; a gateway that dies before settling loses no paid work: another member settles it, once",
    () =>
      Effect.gen(function* () {
        const h = makeHarness({ validators: 4, transferShards: 1, beaconIntervalMs: 1_000, encode: true })
        const validators = yield* h.startAll
        const AI = aiShardOf(h.genesis.transferShards)
        const v0 = validators[0]!
        const provider = devAccounts(h.genesis)[3]!.key
        const developer = devAccounts(h.genesis)[2]!.key
        const worker = devKeyFromSeed("bft-shared-receipts/worker")
        const member = (i: number) => devValidatorKeys(i).secp

        // A Verified model (3 of 4 attest), a registered worker, 5 prices in the developer's escrow.
        const model = (yield* submit(v0.node, provider, { kind: "model.register", weightsHash: FINGERPRINT, sizeBytes: 10n, manifest: MANIFEST }, AI)).hash as Hash32
        for (const i of [0, 1, 2]) yield* submit(v0.node, member(i), { kind: "model.attest", model, verdict: "verified", fingerprint: FINGERPRINT }, AI)
        yield* submit(v0.node, worker, { kind: "worker.register", gpuClass: "CPU", devices: 1, endpoint: "ws://127.0.0.1:1" }, AI)
        yield* submit(v0.node, developer, { kind: "escrow.deposit", model, amount: 5n * PRICE })
        const escrowOn = (v: RunningValidator) =>
          Effect.map(v.node.ledger(AI), (l) => (l.ai === null ? 0n : escrowOf(l.ai, developer.publicKey.address, model)))
        yield* eventually("the escrow credited on the AI ledger", Effect.map(escrowOn(v0), (e) => (e === 5n * PRICE ? e : undefined)), 60_000)
        yield* eventually(
          "the model Verified",
          Effect.map(v0.node.ledger(AI), (l) => ([...l.ai!.models].find(([id]) => id === model)?.[1].status === "Verified" ? true : undefined)),
          60_000
        )

        // Each validator's settlement side, in its own scope (closed with it); peers call each other's handler.
        const gateways = new Map<number, Gateway>()
        const connect = (peer: string) =>
          Effect.suspend(() => {
            const g = gateways.get(Number(peer))
            if (g === undefined || !h.running.has(Number(peer))) return Effect.fail(new Error(`validator ${peer} is down`))
            const client = { usage: { receipts: (p: { readonly receipts: ReadonlyArray<unknown> }) => g.shared.accept(p.receipts) } }
            return Effect.succeed(client as unknown as Pick<NodeClient, "usage">)
          })
        for (const v of validators) {
          const settler = yield* makeSettler({ settlerKey: member(v.index), shareGraceMs: GRACE_MS }, BFT_CHAIN_ID, v.node).pipe(Scope.extend(v.scope))
          const peers = validators.filter((o) => o.index !== v.index).map((o) => String(o.index))
          const shared = yield* makeSharedReceipts(settler, v.node, { peers, connect }).pipe(Effect.provideService(EventStore, v.store), Scope.extend(v.scope))
          gateways.set(v.index, { settler, shared })
        }
        /** What the AI projection and AiNode's settle loop do: the ledger's verdicts leave the Settler, then share, then settle. */
        const runLoop = (v: RunningValidator) => {
          const g = gateways.get(v.index)!
          let read = 0
          const verdicts = Effect.gen(function* () {
            const events = yield* v.store.readStream(`shard-${AI}`, { from: read }).pipe(Effect.orDie)
            for (const e of events) {
              read = e.revision + 1
              if (e.type !== "UsageSettled" && e.type !== "UsageRefused") continue
              const d = decodeEventOf("shard", e.type, e.data)
              if (Either.isLeft(d)) continue
              if (d.right._tag === "UsageSettled") yield* g.settler.settled(d.right.taskId)
              else if (d.right._tag === "UsageRefused") yield* g.settler.refuse(d.right.taskId, d.right.reason)
            }
          })
          return verdicts.pipe(
            Effect.zipRight(g.shared.round),
            Effect.zipRight(g.settler.round),
            Effect.repeat(Schedule.spaced("200 millis")),
            Effect.forkIn(v.scope)
          )
        }
        const nonceOf = (i: number) => Effect.map(v0.node.account(member(i).publicKey.address, AI), (a) => a.nonce)
        const settlesOf = (v: RunningValidator, taskId: Hash32) =>
          Effect.map(v.store.readStream(`shard-${AI}`).pipe(Effect.orDie), (events) =>
            events.filter((e) => (e.type === "UsageSettled" || e.type === "UsageRefused") && (e.data as { taskId?: string }).taskId === taskId).map((e) => e.type)
          )

        // Common case: validator 2 serves a task and settles it itself; the others hold it, then drop it.
        for (const v of validators.filter((v) => v.index !== 1)) yield* runLoop(v)
        const before = yield* Effect.forEach([0, 1, 2, 3], nonceOf)
        const served = receiptOf(developer, worker, model, developer, BFT_CHAIN_ID)
        yield* gateways.get(2)!.settler.add(served, developer.publicKey.address)
        // Held (recorded in their shared-receipts stream: it may settle and leave their pending lists before a poll sees it there).
        for (const v of validators.filter((v) => v.index === 0 || v.index === 3)) {
          yield* eventually(
            `validator ${v.index} holds validator 2's receipt`,
            Effect.map(v.store.readStream(SHARED_RECEIPTS_STREAM).pipe(Effect.orElseSucceed(() => [])), (events) =>
              events.some((e) => e.id === served.taskId) ? true : undefined
            ),
            30_000
          )
        }
        for (const v of validators) {
          yield* eventually(`validator ${v.index} sees the task settled`, Effect.map(settlesOf(v, served.taskId), (s) => (s.length > 0 ? s : undefined)), 60_000)
        }
        for (const i of [0, 2, 3]) {
          yield* eventually(`validator ${i} no longer holds it`, Effect.map(gateways.get(i)!.settler.pending, (p) => (p.includes(served.taskId) ? undefined : true)), 30_000)
        }
        // Only validator 2 sent a usage.settle; the ledger saw one submission of the task.
        expect(yield* Effect.forEach([0, 1, 2, 3], nonceOf)).toEqual([before[0], before[1], before[2]! + 1n, before[3]])
        for (const v of validators) expect(yield* settlesOf(v, served.taskId)).toEqual(["UsageSettled"])
        expect(yield* escrowOn(v0)).toBe(4n * PRICE)

        // The gateway dies: validator 1 validated a task, shared its receipt, and is gone before its first settle round.
        const orphan = receiptOf(developer, worker, model, developer, BFT_CHAIN_ID)
        const g1 = gateways.get(1)!
        yield* g1.settler.add(orphan, developer.publicKey.address)
        yield* g1.shared.round
        const nonce1 = yield* nonceOf(1)
        yield* h.stop(1)
        const alive = validators.filter((v) => v.index !== 1)
        for (const v of alive) {
          expect(yield* gateways.get(v.index)!.settler.pending, `validator ${v.index} holds the dead gateway's receipt`).toContain(orphan.taskId)
        }
        for (const v of alive) {
          yield* eventually(
            `validator ${v.index} sees the dead gateway's task settled`,
            Effect.map(v.node.ledger(AI), (l) => (l.ai !== null && [...l.ai.settled].includes(orphan.taskId) ? true : undefined)),
            90_000
          )
        }
        // Settled exactly once (a second member's submission, if any, refused AlreadySettled), charged one price, not by validator 1.
        for (const v of alive) {
          const verdicts = yield* settlesOf(v, orphan.taskId)
          expect(verdicts.filter((t) => t === "UsageSettled")).toHaveLength(1)
          expect(verdicts[0]).toBe("UsageSettled")
        }
        expect(yield* escrowOn(v0)).toBe(3n * PRICE)
        expect(yield* nonceOf(1)).toBe(nonce1)
        yield* h.stopAll
      }),
    240_000
  )
})

/**
 * The AI shard on a 4-validator BFT chain in one process (real BLS, SQLite
 * stores, the in-memory network): every validator runs a seat for it, a
 * `model.register` (fee 0, from an account with nothing on the AI shard) is
 * admitted on the AI shard and committed there by every validator, and the
 * beacon's epoch receipt is credited there once per epoch on every node,
 * though each of the four relays it.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { devAccounts } from "../../domain/chain/genesis.js"
import { keccakHex, type Hash32 } from "../../domain/chain/hash.js"
import { bytesToHex, utf8 } from "../../domain/chain/hex.js"
import { aiShardOf } from "../../domain/chain/sharding.js"
import { signTransaction, TransactionBody } from "../../domain/chain/transaction.js"
import { modelOf } from "../../domain/ai/ledger/state.js"
import { BFT_CHAIN_ID, makeHarness, stopHarnesses } from "./bftHarness.js"
import { eventually } from "../support/waitFor.js"

const manifest = JSON.stringify({ name: "bft-ai", version: "1", pricePerCall: "100", minGpuClass: "CPU", license: "MIT", description: "x" })

afterAll(stopHarnesses)

describe("the AI shard on 4 BFT validators", () => {
  it.live(
    "a model.register admitted on the AI shard is committed there by every validator; epoch receipts are credited once per epoch",
    () =>
      Effect.gen(function* () {
        const h = makeHarness({ validators: 4, transferShards: 1, beaconIntervalMs: 400, epochBlocks: 3, encode: true })
        const [, v1] = yield* h.startAll
        const AI = aiShardOf(h.genesis.transferShards)
        expect(AI).toBe(2)
        for (const v of h.running.values()) {
          expect(v.seats.has(AI)).toBe(true)
          const status = yield* v.node.status
          expect(status.shards.map((s) => [s.shard, s.kind])).toEqual([[0, "beacon"], [1, "transfer"], [2, "ai"]])
        }
        const provider = devAccounts(h.genesis)[3]!
        const tx = signTransaction(
          new TransactionBody({
            chainId: BFT_CHAIN_ID,
            nonce: 0n,
            fee: 0n,
            payload: { kind: "model.register", weightsHash: keccakHex(utf8("weights")) as Hash32, sizeBytes: 1_000n, manifest }
          }),
          provider.key
        )
        const submitted = yield* v1!.node.submit(bytesToHex(tx.encoded), true)
        expect(submitted).toMatchObject({ shard: AI, status: "included" })
        for (const v of h.running.values()) {
          const view = yield* eventually(
            `validator ${v.index} indexes the registration`,
            Effect.map(Effect.either(v.node.transaction(tx.hash)), (r) => (r._tag === "Right" && r.right.status === "included" ? r.right : undefined)),
            30_000
          )
          expect(view.shard).toBe(AI)
          // Its nonce counted on the AI shard; its transfer-shard account untouched.
          expect(yield* v.node.account(provider.address, AI)).toMatchObject({ balance: 0n, nonce: 1n })
          expect(yield* v.node.account(provider.address)).toMatchObject({ balance: h.genesis.devBalance, nonce: 0n })
          const events = yield* v.store.readStream(`shard-${AI}`)
          // Registered by the AI ledger: the model's id is the registration's hash, Pending until the committee attests.
          expect(events.filter((e) => e.type === "AiModelRegistered").map((e) => (e.data as { model: string }).model)).toEqual([tx.hash])
          expect(modelOf((yield* v.node.ledger(AI)).ai!, tx.hash)).toMatchObject({ provider: provider.address, status: "Pending", price: 100n })
        }
        // Two epochs end on the beacon: each one's receipt is credited on the AI shard once, on every validator.
        yield* h.awaitHeight(0, 6)
        const epochsOn = (events: ReadonlyArray<{ readonly type: string; readonly data: unknown }>) =>
          events
            .filter((e) => e.type === "CrossShardReceived")
            .map((e) => (e.data as { purpose?: { kind: string; epoch: number } }).purpose)
            .filter((p) => p?.kind === "epoch")
            .map((p) => p!.epoch)
        for (const v of h.running.values()) {
          const epochs = yield* eventually(
            `validator ${v.index}'s AI shard credits epochs 0 and 1`,
            Effect.map(v.store.readStream(`shard-${AI}`), (events) => {
              const e = epochsOn(events)
              return e.length >= 2 ? e : undefined
            }),
            30_000
          )
          expect(epochs.slice(0, 2)).toEqual([0, 1])
          expect(new Set(epochs).size).toBe(epochs.length)
        }
        // Every validator's AI-shard stream is the same.
        const all = yield* Effect.forEach([...h.running.values()], (v) => h.hashes(v, `shard-${AI}`))
        const common = Math.min(...all.map((a) => a.length))
        for (const hashes of all) expect(hashes.slice(0, common)).toEqual(all[0]!.slice(0, common))
        yield* h.stopAll
      }),
    90_000
  )
})

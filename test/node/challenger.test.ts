/**
 * The Challenger against a real in-process chain (single producers, the AI
 * ledger hook, epochs of 6 beacon blocks of 200 ms): three workers
 * registered on chain, the liar bonded by its owner; a task where the liar
 * signed one fingerprint and the two others another gives, through
 * `wrongResultProofs` (what the TaskRunner calls on validation), one proof;
 * the Challenger sends it as `result.challenge` with the node's key; the AI
 * ledger records it once, and at the next epoch close the liar's bond is
 * slashed — the developer and the reporting node paid their shares by
 * receipt, the rest burned. Given again, the proof is not sent again; a
 * proof the ledger refuses at the door is dropped, not retried.
 */
import { describe, expect, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { Effect, HashSet, Layer, Schedule, Schema } from "effect"
import { challengeKey } from "../../domain/ai/ledger/state.js"
import { resultDigest, sessionGrantDigest, signMessage } from "../../domain/ai/signedMessages.js"
import { wrongResultProofs, type SignedResult } from "../../domain/ai/task/wrongResultProofs.js"
import { GenesisConfig } from "../../domain/chain/genesis.js"
import { sha256, type Hash32 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devKey, devKeyFromSeed, devProposerKey, type PrivateKey } from "../../domain/chain/keys.js"
import { aiShardOf } from "../../domain/chain/sharding.js"
import { signTransaction, TransactionBody, type TransactionPayload } from "../../domain/chain/transaction.js"
import { defaultFeeOf, DEVNET_GOVERNANCE } from "../../domain/chain/genesis.js"
import { defaultEconomics, EconomicsConfig } from "../../domain/economics/config.js"
import { Slashed } from "../../domain/economics/events.js"
import { bondedOf } from "../../domain/economics/state.js"
import { SignatureVerifierInThread } from "../../infra/crypto/SignatureVerifier.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { makeChainNode } from "../../src/node/ChainNodeLive.js"
import type { ChainNodeShape } from "../../src/node/ChainNode.js"
import { makeChallenger } from "../../src/node/ai/Challenger.js"

const CHAIN_ID = 9_292n
const TOKEN = 10n ** 18n
const STAKE = 10n * TOKEN
const TRUTH = bytesToHex(sha256("the honest outputs")) as Hash32
const LIE = bytesToHex(sha256("the liar's outputs")) as Hash32
const MANIFEST = JSON.stringify({ name: "m", version: "1", pricePerCall: TOKEN.toString(), minGpuClass: "CPU", license: "MIT", description: "challenger test" })

const decodeSlashed = Schema.decodeUnknownSync(Slashed)

const services = Layer.merge(MemoryEventStore.layer, SignatureVerifierInThread)

const eventually = <A, E>(what: string, read: Effect.Effect<A, E>, ok: (a: A) => boolean) =>
  read.pipe(
    Effect.repeat({ until: ok, schedule: Schedule.spaced("50 millis") }),
    Effect.timeoutFail({ duration: "40 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) })
  )

const submit = (node: ChainNodeShape, key: PrivateKey, payload: TransactionPayload, shard?: number, fee = 0n) =>
  Effect.gen(function* () {
    const account = yield* node.account(key.publicKey.address, shard)
    const tx = signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce: account.pendingNonce, fee, payload }), key)
    const r = yield* node.submit(bytesToHex(tx.encoded), true)
    expect(r.status, `${payload.kind} ${tx.hash}`).toBe("included")
    return tx
  })

describe("the Challenger", () => {
  it.live("a liar's signed result, proven by two agreeing ones, is slashed on the AI ledger at the epoch close: developer and reporter paid by receipt, once", () =>
    Effect.gen(function* () {
      const economics = new EconomicsConfig({ ...defaultEconomics(DEVNET_GOVERNANCE), epochBlocks: 6, beaconIntervalMs: 200 })
      const genesis = new GenesisConfig({ chainId: CHAIN_ID, timestamp: Date.now() - 1_000, devAccountCount: 4, economics })
      const node = yield* makeChainNode({ genesis, inclusionWait: "20 seconds" })
      const ai = aiShardOf(genesis.transferShards)
      const aiLedger = node.ledger(ai).pipe(Effect.map((l) => l.ai!))
      const store = yield* EventStore
      const [provider, developer, owner] = [devKey(1), devKey(2), devKey(3)]
      const [liar, honest, referee] = ["liar", "honest", "referee"].map((w) => devKeyFromSeed(`challenger-test/${w}`)) as [PrivateKey, PrivateKey, PrivateKey]
      const reporter = devProposerKey(ai)

      const registered = yield* submit(node, provider, { kind: "model.register", weightsHash: TRUTH, sizeBytes: 10n, manifest: MANIFEST }, ai)
      const model = registered.hash as Hash32
      for (const w of [liar, honest, referee]) yield* submit(node, w, { kind: "worker.register", gpuClass: "CPU", devices: 1, endpoint: "ws://127.0.0.1:1" }, ai)
      yield* submit(node, owner, { kind: "worker.stake", worker: liar.publicKey.address, amount: STAKE }, undefined, defaultFeeOf("worker.stake"))
      yield* eventually("the liar's bond on the AI ledger", aiLedger, (s) => bondedOf(s.economy, liar.publicKey.address) === STAKE)

      // A task as the gateway saw it: the liar's result first, then two that agree.
      const now = Date.now()
      const g = { chainId: CHAIN_ID, model, issuedAt: now - 10, expiresAt: now + 60_000, spendMax: TOKEN, nonce: `0x${randomBytes(16).toString("hex")}` }
      const grant = { ...g, publicKey: developer.publicKey.hex, signature: signMessage(sessionGrantDigest(g), developer) }
      const taskId = bytesToHex(sha256(`task ${now}`)) as Hash32
      const signed = (k: PrivateKey, fingerprint: Hash32, execMs: number): readonly [string, SignedResult] => [
        k.publicKey.address,
        { fingerprint, execMs, signature: signMessage(resultDigest(taskId, fingerprint, execMs), k) }
      ]
      const results = new Map([signed(liar, LIE, 120), signed(honest, TRUTH, 130), signed(referee, TRUTH, 125)])
      const proofs = wrongResultProofs({ grant, taskId, model, fingerprint: TRUTH, results, wrong: [liar.publicKey.address] })
      expect(proofs).toHaveLength(1)

      const challenger = yield* makeChallenger({ settlerKey: reporter }, CHAIN_ID, node)
      // A proof the ledger refuses (its referee is on no chain) is dropped at the door, not sent again.
      const stranger = devKeyFromSeed("challenger-test/stranger")
      const otherTask = bytesToHex(sha256(`another task ${now}`)) as Hash32
      const signedOn = (task: Hash32, k: PrivateKey, fingerprint: Hash32): [string, SignedResult] => [
        k.publicKey.address,
        { fingerprint, execMs: 99, signature: signMessage(resultDigest(task, fingerprint, 99), k) }
      ]
      const refusedProof = wrongResultProofs({
        grant,
        taskId: otherTask,
        model,
        fingerprint: TRUTH,
        results: new Map([signedOn(otherTask, liar, LIE), signedOn(otherTask, honest, TRUTH), signedOn(otherTask, stranger, TRUTH)]),
        wrong: [liar.publicKey.address]
      })[0]!
      yield* challenger.add(refusedProof)
      yield* challenger.round
      expect(yield* challenger.pending).toEqual([])
      expect((yield* node.account(reporter.publicKey.address, ai)).pendingNonce).toBe(0n)
      yield* challenger.add(proofs[0]!)
      yield* challenger.round
      const key = challengeKey(taskId, liar.publicKey.address)
      yield* eventually("the proof taken by the AI ledger", aiLedger, (s) => HashSet.has(s.challenged, key))
      const proven = (yield* store.readStream(`shard-${ai}`)).filter((e) => e.type === "AiResultProvenWrong")
      expect(proven.map((e) => e.data)).toEqual([
        expect.objectContaining({ taskId, worker: liar.publicKey.address, developer: developer.publicKey.address, reporter: reporter.publicKey.address })
      ])

      // Taken: not pending any more, and given again it is not sent again (the node's AI-shard nonce stays).
      yield* challenger.round
      expect(yield* challenger.pending).toEqual([])
      const nonce = (yield* node.account(reporter.publicKey.address, ai)).pendingNonce
      yield* challenger.add(proofs[0]!)
      yield* challenger.round
      expect(yield* challenger.pending).toEqual([])
      expect((yield* node.account(reporter.publicKey.address, ai)).pendingNonce).toBe(nonce)

      // The epoch closes: 10 % of the bond, half to the developer, a fifth to the reporter, the rest burned.
      const devBefore = (yield* node.account(developer.publicKey.address)).balance
      const reporterBefore = (yield* node.account(reporter.publicKey.address)).balance
      const slashesOnChain = Effect.map(store.readStream(`shard-${ai}`), (es) => es.filter((e) => e.type === "Slashed"))
      yield* eventually("the liar slashed at an epoch close", slashesOnChain, (es) => es.length > 0)
      const slashed = yield* slashesOnChain
      const amount = STAKE / 10n
      expect(slashed.map((e) => decodeSlashed({ ...(e.data as object), _tag: e.type }))).toEqual([
        expect.objectContaining({
          worker: liar.publicKey.address,
          reason: "WrongResult",
          taskId,
          amount,
          toUser: amount / 2n,
          user: developer.publicKey.address,
          toReporter: amount / 5n,
          reporter: reporter.publicKey.address,
          burned: amount - amount / 2n - amount / 5n
        })
      ])
      expect(bondedOf((yield* aiLedger).economy, liar.publicKey.address)).toBe(STAKE - amount)
      yield* eventually("the developer paid its share", node.account(developer.publicKey.address), (a) => a.balance === devBefore + amount / 2n)
      yield* eventually("the reporter paid its share", node.account(reporter.publicKey.address), (a) => a.balance === reporterBefore + amount / 5n)
      // Once: a later close slashes nothing more.
      const epoch = (yield* aiLedger).economy.epoch
      yield* eventually("another epoch closed", aiLedger, (s) => s.economy.epoch > epoch)
      expect((yield* store.readStream(`shard-${ai}`)).filter((e) => e.type === "Slashed")).toHaveLength(1)
    }).pipe(Effect.provide(services), Effect.scoped)
  , 120_000)
})

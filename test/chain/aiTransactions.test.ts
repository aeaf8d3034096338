/** The AI shard's transaction kinds on the ledger: codecs, admission of bad payloads, routing (model.* to the AI shard), execution. */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { keccakHex, type Hash32 } from "../../domain/chain/hash.js"
import { utf8 } from "../../domain/chain/hex.js"
import { accountOf, balanceOf } from "../../domain/chain/ledger.js"
import type { CrossShardSent } from "../../domain/chain/events.js"
import { SYSTEM_ESCROW } from "../../domain/economics/accounts.js"
import { escrowOf, modelOf } from "../../domain/ai/ledger/state.js"
import { decodeTransaction, signTransaction, TransactionBody, type TransactionPayload } from "../../domain/chain/transaction.js"
import { admitTransaction } from "../../domain/chain/admission.js"
import { DEFAULT_FEE, defaultFeeOf } from "../../domain/chain/genesis.js"
import { emptyMempool } from "../../domain/chain/mempool.js"
import { aiShardOf } from "../../domain/chain/sharding.js"
import { homeShardOf } from "../../domain/chain/txRules.js"
import { accountsOn, applyBlock, CHAIN_ID, config, dev, FEE, genesisState, homeOf, nextBlock, SHARDS } from "./helpers.js"

const MODEL = keccakHex(utf8("a model")) as Hash32
const manifest = JSON.stringify({
  name: "silero-vad",
  version: "5",
  pricePerCall: "100",
  minGpuClass: "CPU",
  license: "MIT",
  description: "voice activity"
})

const payloads: ReadonlyArray<TransactionPayload> = [
  { kind: "escrow.deposit", model: MODEL, amount: 5_000n },
  { kind: "model.register", weightsHash: MODEL, sizeBytes: 2_327_524n, manifest },
  { kind: "model.price", model: MODEL, price: 0n },
  { kind: "model.deprecate", model: MODEL }
]

const shard = SHARDS[0]!
const sender = accountsOn(shard)[0]!
const sign = (payload: TransactionPayload, nonce = 0n) =>
  signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce, fee: FEE, payload }), sender.key)
/** As the CLI sends model.*: fee 0 (a provider holds nothing on the AI shard). */
const signFree = (payload: TransactionPayload, nonce = 0n) =>
  signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce, fee: 0n, payload }), sender.key)
const AI = aiShardOf(config.transferShards)

describe("AI transaction kinds", () => {
  it.each(payloads.map((p) => [p.kind, p] as const))("%s round-trips through its canonical RLP", (_kind, payload) => {
    const tx = sign(payload)
    const decoded = decodeTransaction(tx.encoded)
    expect(Either.isRight(decoded)).toBe(true)
    if (Either.isRight(decoded)) {
      expect(decoded.right.hash).toBe(tx.hash)
      expect(decoded.right.body.payload).toEqual(payload)
    }
  })

  it("a manifest that is not a valid ModelManifest makes the transaction malformed", () => {
    const bad = sign({ kind: "model.register", weightsHash: MODEL, sizeBytes: 1n, manifest: JSON.stringify({ name: "x" }) })
    const decoded = decodeTransaction(bad.encoded)
    expect(Either.isLeft(decoded) && decoded.left._tag === "MalformedTransaction" && decoded.left.detail).toMatch(
      /model\.register\.manifest/
    )
  })

  it("escrow.deposit sends the amount to the AI shard's escrow account by a purpose receipt, credited there to (developer, model) exactly once", () => {
    const { state } = genesisState(shard)
    const before = accountOf(state, sender.address).balance
    const tx = sign({ kind: "escrow.deposit", model: MODEL, amount: 5_000n })
    const { state: after, events } = applyBlock(state, nextBlock(state, [tx]))
    expect(accountOf(after, sender.address).balance).toBe(before - 5_000n - FEE)
    // The developer's own history on its transfer shard, beside the receipt.
    const deposit = events.find((e) => e._tag === "EscrowDeposited")
    expect(deposit).toMatchObject({ txHash: tx.hash, developer: sender.address, model: MODEL, amount: 5_000n })
    expect(events.some((e) => e._tag === "Transferred")).toBe(false)
    const sent = events.find((e): e is CrossShardSent => e._tag === "CrossShardSent")!
    expect(sent).toMatchObject({
      sourceShard: shard,
      destShard: AI,
      from: sender.address,
      to: SYSTEM_ESCROW,
      amount: 5_000n,
      txHash: tx.hash,
      purpose: { kind: "escrow", model: MODEL }
    })
    expect(after.totals.sentOut).toBe(5_000n)
    // On the AI shard: relayed twice in one block and once more later, credited once.
    let ai = genesisState(AI).state
    const b1 = applyBlock(ai, nextBlock(ai, [], [sent.receipt, sent.receipt]))
    ai = b1.state
    const b2 = applyBlock(ai, nextBlock(ai, [], [sent.receipt]))
    ai = b2.state
    const credited = [...b1.events, ...b2.events].filter((e) => e._tag === "EscrowCredited")
    expect(credited).toEqual([expect.objectContaining({ receiptId: sent.receiptId, developer: sender.address, model: MODEL, amount: 5_000n })])
    expect(escrowOf(ai.ai!, sender.address, MODEL)).toBe(5_000n)
    expect(balanceOf(ai, SYSTEM_ESCROW)).toBe(5_000n)
    expect(ai.totals.receivedIn).toBe(5_000n)
  })

  it("escrow.deposit beyond the balance is rejected at execution and changes nothing", () => {
    const { state } = genesisState(shard)
    const tx = sign({ kind: "escrow.deposit", model: MODEL, amount: accountOf(state, sender.address).balance })
    const { state: after, events } = applyBlock(state, nextBlock(state, [tx]))
    expect(events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "InsufficientBalance" })
    expect(events.some((e) => e._tag === "EscrowDeposited")).toBe(false)
    expect(accountOf(after, sender.address)).toEqual(accountOf(state, sender.address))
  })

  it("model transactions run on the AI shard through its ledger: fee 0 from an empty account, the nonce counted there, the model registered, repriced, deprecated", () => {
    const { state } = genesisState(AI)
    const register = signFree(payloads[1]!, 0n)
    const model = register.hash // a model's id is its registration's hash
    const txs = [register, signFree({ kind: "model.price", model, price: 7n }, 1n), signFree({ kind: "model.deprecate", model }, 2n)]
    const { state: after, events } = applyBlock(state, nextBlock(state, txs))
    expect(accountOf(after, sender.address)).toMatchObject({ balance: 0n, nonce: 3n })
    expect(events.filter((e) => e._tag !== "FeeCharged").map((e) => e._tag)).toEqual([
      "BlockApplied",
      "AiModelRegistered",
      "AiModelRepriced",
      "AiModelDeprecated",
      "BlockExecuted"
    ])
    expect(events.find((e) => e._tag === "AiModelRegistered")).toMatchObject({ model, provider: sender.address, price: 100n, registeredHeight: 1 })
    expect(modelOf(after.ai!, model)).toMatchObject({ provider: sender.address, price: 7n, status: "Deprecated" })
  })

  it("a model transaction the AI ledger refuses (another provider's model, an unknown model): TransactionRejected with its reason, nonce unused, nothing else", () => {
    const { state } = genesisState(AI)
    const register = signFree(payloads[1]!, 0n)
    const registered = applyBlock(state, nextBlock(state, [register])).state
    const other = accountsOn(SHARDS[1]!)[0]!
    const foreign = signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce: 0n, fee: 0n, payload: { kind: "model.price", model: register.hash, price: 1n } }), other.key)
    const unknown = signFree({ kind: "model.deprecate", model: MODEL }, 1n)
    const { state: after, events } = applyBlock(registered, nextBlock(registered, [foreign, unknown]))
    expect(events.filter((e) => e._tag === "TransactionRejected")).toEqual([
      expect.objectContaining({ txHash: foreign.hash, reason: "NotProvider" }),
      expect.objectContaining({ txHash: unknown.hash, reason: "UnknownModel" })
    ])
    expect(events.map((e) => e._tag)).toEqual(["BlockApplied", "TransactionRejected", "TransactionRejected", "BlockExecuted"])
    expect(accountOf(after, other.address).nonce).toBe(0n)
    expect(accountOf(after, sender.address).nonce).toBe(1n)
    expect(modelOf(after.ai!, register.hash)).toMatchObject({ price: 100n, status: "Pending" })
  })

  it("routing: model.* go to the AI shard for every sender; the other kinds to the sender's transfer shard", () => {
    for (const d of dev.slice(0, 8)) {
      for (const p of payloads) {
        const tx = signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce: 0n, fee: 0n, payload: p }), d.key)
        expect(homeShardOf(tx, config.transferShards)).toBe(p.kind.startsWith("model.") ? AI : homeOf(d.address))
      }
      expect(defaultFeeOf("model.register")).toBe(0n)
      expect(defaultFeeOf("escrow.deposit")).toBe(DEFAULT_FEE)
    }
  })

  it("a model transaction on a transfer shard is rejected WrongShard; one with a fee its AI-shard account cannot pay, InsufficientBalance", () => {
    const { state } = genesisState(shard)
    const onTransfer = applyBlock(state, nextBlock(state, [sign(payloads[1]!)]))
    expect(onTransfer.events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "WrongShard" })
    const ai = genesisState(AI).state
    const withFee = applyBlock(ai, nextBlock(ai, [sign(payloads[1]!)]))
    expect(withFee.events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "InsufficientBalance" })
    expect(accountOf(withFee.state, sender.address).nonce).toBe(0n)
  })

  it("admission sends a model transaction's checks to the AI shard's state: admitted there, WrongShard on the sender's transfer shard", () => {
    const tx = signFree(payloads[1]!)
    const ai = admitTransaction(genesisState(AI).state, emptyMempool(), tx, true)
    expect(Either.isRight(ai)).toBe(true)
    const transfer = admitTransaction(genesisState(shard).state, emptyMempool(), tx, true)
    expect(Either.isLeft(transfer) && transfer.left.reason).toBe("WrongShard")
  })
})

/** The AI shard's transaction kinds on the ledger: codecs, admission of bad payloads, execution. */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { keccakHex, type Hash32 } from "../../domain/chain/hash.js"
import { utf8 } from "../../domain/chain/hex.js"
import { accountOf, ESCROW_ADDRESS } from "../../domain/chain/ledger.js"
import { decodeTransaction, signTransaction, TransactionBody, type TransactionPayload } from "../../domain/chain/transaction.js"
import { accountsOn, applyBlock, CHAIN_ID, FEE, genesisState, homeOf, nextBlock, SHARDS } from "./helpers.js"

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

  it("escrow.deposit moves the amount to the escrow account and records the deposit", () => {
    const { state } = genesisState(shard)
    const before = accountOf(state, sender.address).balance
    const tx = sign({ kind: "escrow.deposit", model: MODEL, amount: 5_000n })
    const { state: after, events } = applyBlock(state, nextBlock(state, [tx]))
    expect(accountOf(after, sender.address).balance).toBe(before - 5_000n - FEE)
    const deposit = events.find((e) => e._tag === "EscrowDeposited")
    expect(deposit).toMatchObject({ txHash: tx.hash, developer: sender.address, model: MODEL, amount: 5_000n })
    const moved = events.find((e) => e._tag === "Transferred" || e._tag === "CrossShardSent")
    expect(moved).toMatchObject({ to: ESCROW_ADDRESS, amount: 5_000n })
    if (homeOf(ESCROW_ADDRESS) === shard) expect(accountOf(after, ESCROW_ADDRESS).balance).toBe(5_000n)
  })

  it("escrow.deposit beyond the balance is rejected at execution and changes nothing", () => {
    const { state } = genesisState(shard)
    const tx = sign({ kind: "escrow.deposit", model: MODEL, amount: accountOf(state, sender.address).balance })
    const { state: after, events } = applyBlock(state, nextBlock(state, [tx]))
    expect(events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "InsufficientBalance" })
    expect(events.some((e) => e._tag === "EscrowDeposited")).toBe(false)
    expect(accountOf(after, sender.address)).toEqual(accountOf(state, sender.address))
  })

  it("model transactions charge only the fee and record the request for the model's actor", () => {
    const { state } = genesisState(shard)
    const txs = payloads.slice(1).map((p, i) => sign(p, BigInt(i)))
    const { state: after, events } = applyBlock(state, nextBlock(state, txs))
    expect(accountOf(after, sender.address).balance).toBe(accountOf(state, sender.address).balance - 3n * FEE)
    expect(accountOf(after, sender.address).nonce).toBe(3n)
    expect(events.filter((e) => e._tag !== "FeeCharged").map((e) => e._tag)).toEqual([
      "BlockApplied",
      "ModelRegistered",
      "ModelPriceRequested",
      "ModelDeprecationRequested",
      "BlockExecuted"
    ])
    expect(events.find((e) => e._tag === "ModelRegistered")).toMatchObject({ txHash: txs[0]!.hash, provider: sender.address })
  })
})

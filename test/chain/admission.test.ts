/** Admission, helios-style: a valid transaction, one field changed, exactly one typed error. */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import {
  admitTransaction,
  decodeForAdmission,
  precheckTransaction,
  type AdmissionReason
} from "../../domain/chain/admission.js"
import { encodeRlp } from "../../domain/chain/rlp.js"
import { makeLedger } from "../../domain/chain/ledger.js"
import { addTransaction, emptyMempool, pendingOf, type Mempool } from "../../domain/chain/mempool.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { MAX_TRANSACTION_BYTES, Transaction, verifyTransactionSignature } from "../../domain/chain/transaction.js"
import { accountsOn, CHAIN_ID, DEV_BALANCE, FEE, genesisState, transfer, type TransferParams } from "./helpers.js"

const S1 = 1 as ShardId
const { state } = genesisState(S1)
const [alice, bob] = accountsOn(S1)
const [dave] = accountsOn(2 as ShardId)
const base: TransferParams = { to: bob!.address, amount: 100n, nonce: 0n }

/** Run the node's admission pipeline, with the real signature check in the middle. */
const admit = (tx: Transaction, pool: Mempool = emptyMempool(), s = state) => {
  const pre = precheckTransaction(s, pool, tx)
  if (Either.isLeft(pre)) return pre.left.reason
  const r = admitTransaction(s, pool, tx, verifyTransactionSignature(tx))
  return Either.isLeft(r) ? r.left.reason : "admitted"
}

describe("admission", () => {
  it("admits a valid transaction", () => {
    expect(admit(transfer(alice!.key, base))).toBe("admitted")
  })
  it.each<[AdmissionReason, () => Transaction]>([
    ["WrongChain", () => transfer(alice!.key, { ...base, chainId: CHAIN_ID + 1n })],
    ["WrongShard", () => transfer(dave!.key, base)],
    ["NonceGap", () => transfer(alice!.key, { ...base, nonce: 1n })],
    ["InsufficientBalance", () => transfer(alice!.key, { ...base, amount: DEV_BALANCE - FEE + 1n })],
    ["BadSignature", () => {
      const tx = transfer(alice!.key, base)
      const sig = Uint8Array.from(tx.signature)
      sig[10] = sig[10]! ^ 1
      return Transaction.make(tx.body, tx.publicKey, sig)
    }]
  ])("%s", (reason, make) => {
    expect(admit(make())).toBe(reason)
  })
  it("the balance check counts the fee: exactly the balance is enough", () => {
    expect(admit(transfer(alice!.key, { ...base, amount: DEV_BALANCE - FEE }))).toBe("admitted")
  })
  it("NonceReused: a nonce already taken by a pending transaction", () => {
    let pool = addTransaction(emptyMempool(), transfer(alice!.key, base))
    expect(admit(transfer(alice!.key, { ...base, amount: 7n }), pool)).toBe("NonceReused")
    pool = addTransaction(pool, transfer(alice!.key, { ...base, nonce: 1n }))
    expect(admit(transfer(alice!.key, { ...base, nonce: 2n }), pool)).toBe("admitted")
  })
  it("counts pending spends: a second transfer that only the first leaves no room for", () => {
    const pool = addTransaction(emptyMempool(), transfer(alice!.key, { ...base, amount: DEV_BALANCE / 2n }))
    expect(pendingOf(pool, alice!.address)).toEqual({ count: 1, spend: DEV_BALANCE / 2n + FEE })
    expect(admit(transfer(alice!.key, { ...base, nonce: 1n, amount: DEV_BALANCE / 2n }), pool)).toBe("InsufficientBalance")
    expect(admit(transfer(alice!.key, { ...base, nonce: 1n, amount: DEV_BALANCE / 2n - 2n * FEE }), pool)).toBe("admitted")
  })
  it("AlreadyPending: the same transaction twice", () => {
    const tx = transfer(alice!.key, base)
    expect(admit(tx, addTransaction(emptyMempool(), tx))).toBe("AlreadyPending")
  })
  it("MempoolFull", () => {
    const pool = addTransaction(emptyMempool(1), transfer(bob!.key, base))
    expect(admit(transfer(alice!.key, base), pool)).toBe("MempoolFull")
  })
  it("ShardNotReady before genesis", () => {
    expect(admit(transfer(alice!.key, base), emptyMempool(), makeLedger(S1).initialState)).toBe("ShardNotReady")
  })
  it("Malformed and Oversized bytes", () => {
    const malformed = decodeForAdmission(encodeRlp([1n, 2n]))
    expect(Either.isLeft(malformed) && malformed.left.reason).toBe("Malformed")
    expect(Either.isLeft(malformed) && malformed.left.detail).toBe("expected 7 fields, got 2")
    const oversized = decodeForAdmission(new Uint8Array(MAX_TRANSACTION_BYTES + 1))
    expect(Either.isLeft(oversized) && oversized.left.reason).toBe("Oversized")
    const ok = decodeForAdmission(transfer(alice!.key, base).encoded)
    expect(Either.isRight(ok)).toBe(true)
  })
  it("cheap checks come before the signature: a wrong-chain transaction is never verified", () => {
    const tx = transfer(alice!.key, { ...base, chainId: 1n })
    const r = admitTransaction(state, emptyMempool(), tx, false)
    expect(Either.isLeft(r) && r.left.reason).toBe("WrongChain")
  })
})

import { describe, expect, it } from "@effect/vitest"
import { HashMap } from "effect"
import fc from "fast-check"
import { bondOf } from "../../../domain/economics/bonds.js"
import type { AiPayout } from "../../../domain/ai/ledger/events.js"
import { escrowOf, workerOf } from "../../../domain/ai/ledger/state.js"
import type { AiInput } from "../../../domain/ai/ledger/context.js"
import {
  accept,
  bondReceipt,
  ctxAt,
  developer,
  epochReceipt,
  escrowReceipt,
  hashOf,
  initial,
  key,
  owner,
  settleTx,
  signed,
  step,
  tagsOf,
  txIn,
  usageReceipt,
  withVerifiedModel,
  withWorkers,
  worker1
} from "./support.js"

const dev = developer.publicKey.address
const model = hashOf("model-x")

describe("escrow", () => {
  it("an escrow receipt credits (developer, model) once; the same receipt again is ReceiptAlreadyCredited", () => {
    const receipt = escrowReceipt(developer, model, 700n, hashOf("r-1"))
    const s = accept(initial(), ctxAt(1), receipt, escrowReceipt(developer, model, 300n))
    expect(escrowOf(s, dev, model)).toBe(1_000n)
    expect(escrowOf(s, dev, hashOf("other-model"))).toBe(0n)
    expect(step(s, ctxAt(2), receipt).rejection?.reason).toBe("ReceiptAlreadyCredited")
  })

  it("escrow.withdraw pays 400 of 1000 back to the developer from escrow (cause = tx hash, index 0)", () => {
    const s = accept(initial(), ctxAt(1), escrowReceipt(developer, model, 1_000n))
    const tx = signed(developer, { kind: "escrow.withdraw", model, amount: 400n })
    const r = step(s, ctxAt(2), txIn(tx))
    expect(tagsOf(r.events)).toEqual(["EscrowWithdrawn", "AiPayout"])
    const p = r.events[1] as AiPayout
    expect([p.source, p.to, p.amount, p.cause, p.index]).toEqual(["escrow", dev, 400n, tx.hash, 0])
    expect(escrowOf(r.state, dev, model)).toBe(600n)
  })

  it("withdrawing more than the escrow holds (or another's escrow) is InsufficientEscrow", () => {
    const s = accept(initial(), ctxAt(1), escrowReceipt(developer, model, 1_000n))
    expect(step(s, ctxAt(2), txIn(signed(developer, { kind: "escrow.withdraw", model, amount: 1_001n }))).rejection?.reason).toBe("InsufficientEscrow")
    expect(step(s, ctxAt(2), txIn(signed(key("thief"), { kind: "escrow.withdraw", model, amount: 1n }))).rejection?.reason).toBe("InsufficientEscrow")
  })

  it("a receipt without a purpose, or an escrow receipt to another account, is refused (a chain-side bug)", () => {
    const plain = escrowReceipt(developer, model, 5n) as Extract<AiInput, { _tag: "Receipt" }>
    expect(step(initial(), ctxAt(1), { _tag: "Receipt", receipt: { ...plain.receipt, purpose: undefined } }).rejection?.reason).toBe("ReceiptWithoutPurpose")
    expect(step(initial(), ctxAt(1), { _tag: "Receipt", receipt: { ...plain.receipt, to: dev } }).rejection?.reason).toBe("ReceiptMismatch")
  })

  it("property: conservation — escrow credited = escrow left + payouts from escrow, over random deposits, settles and withdraws", () => {
    const base = withVerifiedModel()
    const start = withWorkers(base.state)
    const op = fc.oneof(
      fc.record({ t: fc.constant("deposit" as const), amount: fc.bigInt({ min: 1n, max: 3_000n }) }),
      fc.record({ t: fc.constant("settle" as const), task: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ t: fc.constant("withdraw" as const), amount: fc.bigInt({ min: 1n, max: 3_000n }) })
    )
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 12 }), (ops) => {
        let s = start
        let credited = 0n
        let paid = 0n
        for (const [i, o] of ops.entries()) {
          const input: AiInput =
            o.t === "deposit"
              ? escrowReceipt(developer, base.model, o.amount)
              : o.t === "settle"
                ? txIn(settleTx(usageReceipt(hashOf(`c-${o.task}`), base.model)))
                : txIn(signed(developer, { kind: "escrow.withdraw", model: base.model, amount: o.amount }))
          const r = step(s, ctxAt(10 + i), input)
          for (const e of r.events) {
            if (e._tag === "EscrowCredited") credited += e.amount
            if (e._tag === "AiPayout" && e.source === "escrow") paid += e.amount
          }
          s = r.state
        }
        const left = [...HashMap.values(s.escrow)].reduce((x, y) => x + y, 0n)
        expect(credited).toBe(left + paid)
      }),
      { seed: 5, numRuns: 20 }
    )
  })
})

describe("workers and bonds", () => {
  it("worker.register: the sender is the worker; units = devices × class coefficient (3 × 1000)", () => {
    const s = accept(initial(), ctxAt(4), txIn(signed(worker1, { kind: "worker.register", gpuClass: "GPU", devices: 3, endpoint: "ws://w" })))
    const w = workerOf(s, worker1.publicKey.address)
    expect(w?.gpuUnitsMilli).toBe(3_000n)
    expect(w?.publicKey).toBe(worker1.publicKey.hex)
    expect(w?.registeredHeight).toBe(4)
  })

  it("an unknown GPU class is UnknownGpuClass", () => {
    const r = step(initial(), ctxAt(4), txIn(signed(worker1, { kind: "worker.register", gpuClass: "TPU", devices: 1, endpoint: "ws://w" })))
    expect(r.rejection?.reason).toBe("UnknownGpuClass")
  })

  it("a bond receipt bonds the sender's stake to the worker; worker.unbond of one's own bond only", () => {
    const w = worker1.publicKey.address
    const s = accept(initial(), ctxAt(1), bondReceipt(owner, worker1, 500n))
    expect(bondOf(s.economy, w, owner.publicKey.address)).toBe(500n)
    expect(step(s, ctxAt(2), txIn(signed(key("other"), { kind: "worker.unbond", worker: w, amount: 1n }))).rejection?.reason).toBe("NotStakeOwner")
    expect(step(s, ctxAt(2), txIn(signed(owner, { kind: "worker.unbond", worker: w, amount: 501n }))).rejection?.reason).toBe("UnbondOverBond")
    const after = accept(s, ctxAt(2), txIn(signed(owner, { kind: "worker.unbond", worker: w, amount: 200n })))
    expect(bondOf(after.economy, w, owner.publicKey.address)).toBe(300n)
    expect(after.economy.unbonding.map((u) => u.amount)).toEqual([200n])
  })

  it("property: stake pool conservation — bonds credited = bonded + unbonding + payouts from the stake pool, over bonds, unbonds and epoch closes", () => {
    const w = worker1.publicKey.address
    const op = fc.oneof(
      fc.record({ t: fc.constant("bond" as const), amount: fc.bigInt({ min: 1n, max: 1_000n }) }),
      fc.record({ t: fc.constant("unbond" as const), amount: fc.bigInt({ min: 1n, max: 1_000n }) }),
      fc.record({ t: fc.constant("close" as const) })
    )
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 15 }), (ops) => {
        let s = initial()
        let bonded = 0n
        let paid = 0n
        for (const [i, o] of ops.entries()) {
          const input: AiInput =
            o.t === "bond"
              ? bondReceipt(owner, worker1, o.amount)
              : o.t === "unbond"
                ? txIn(signed(owner, { kind: "worker.unbond", worker: w, amount: o.amount }))
                : epochReceipt(s.economy.epoch, i * 10, i * 10 + 10)
          const r = step(s, ctxAt(1 + i), input)
          for (const e of r.events) {
            if (e._tag === "AiStakeBonded") bonded += e.amount
            if (e._tag === "AiPayout" && e.source === "stakePool") paid += e.amount
          }
          s = r.state
        }
        const unbonding = s.economy.unbonding.reduce((x, u) => x + u.amount, 0n)
        expect(bonded).toBe(bondOf(s.economy, w, owner.publicKey.address) + unbonding + paid)
      }),
      { seed: 9, numRuns: 40 }
    )
  })

  it("gov.shard-shares from anyone but governance is NotGovernance", () => {
    const r = step(initial(), ctxAt(1), txIn(signed(key("nobody"), { kind: "gov.shard-shares", ai: 1_000_000n, beacon: 0n, transfer: 0n })))
    expect(r.rejection?.reason).toBe("NotGovernance")
  })

  it("a transfer-shard kind is NotAnAiKind", () => {
    const r = step(initial(), ctxAt(1), txIn(signed(key("x"), { kind: "transfer", to: dev, amount: 1n })))
    expect(r.rejection?.reason).toBe("NotAnAiKind")
  })
})

/**
 * `usage.overran`: a task stopped at the compute node's limits on two
 * workers is charged on chain like a validated one, each worker paid its
 * signed `millis`, once per task id across `usage.settle` and `usage.overran`.
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import type { Hash32 } from "../../../domain/chain/hash.js"
import type { PrivateKey } from "../../../domain/chain/keys.js"
import type { OverranReceipt, Transaction } from "../../../domain/chain/transaction.js"
import { BURN_ADDRESS } from "../../../domain/economics/accounts.js"
import type { AiPayout, UsageRefused, UsageSettled } from "../../../domain/ai/ledger/events.js"
import { escrowOf } from "../../../domain/ai/ledger/state.js"
import { overrunDigest, signMessage } from "../../../domain/ai/signedMessages.js"
import { testConfig } from "../../economics/support.js"
import {
  accept,
  ctxAt,
  developer,
  escrowReceipt,
  gateway,
  grantOf,
  type GrantParams,
  hashOf,
  key,
  provider,
  requestOf,
  settleTx,
  signed,
  step,
  tagsOf,
  T0,
  txIn,
  usageReceipt,
  withVerifiedModel,
  withWorkers,
  worker1,
  worker2
} from "./support.js"

const setup = (deposit = 2_500n) => {
  const { state, model } = withVerifiedModel()
  return { model, state: accept(withWorkers(state), ctxAt(3), escrowReceipt(developer, model, deposit)) }
}

type Kind = OverranReceipt["claims"][number]["kind"]

const claimOf = (w: PrivateKey, taskId: Hash32, millis = 500, kind: Kind = "Deadline", limit = 400, signer: PrivateKey = w) => ({
  worker: w.publicKey.address,
  kind,
  millis,
  limit,
  signature: signMessage(overrunDigest(taskId, kind, millis, limit), signer)
})

/** The developer's task on `inputs` that overran on workers 1 (300 ms) and 2 (500 ms), as the gateway keeps it. */
const overranReceipt = (
  inputs: Hash32,
  model: Hash32,
  over: Partial<OverranReceipt> & { readonly grantParams?: Partial<GrantParams> } = {}
): OverranReceipt => {
  const { grantParams, ...rest } = over
  const grant = rest.grant ?? grantOf(developer, { model, ...grantParams })
  const { taskId, request } = requestOf(grant, model, inputs)
  return { grant, taskId, model, price: 1_000n, claims: [claimOf(worker1, taskId, 300), claimOf(worker2, taskId, 500)], request, ...rest }
}

const overranTx = (...rs: ReadonlyArray<OverranReceipt>): Transaction => signed(gateway, { kind: "usage.overran", receipts: rs })

const refusalsOf = (events: ReadonlyArray<{ readonly _tag: string }>) =>
  events.filter((e): e is UsageRefused => e._tag === "UsageRefused").map((e) => e.reason)
const payoutsOf = (events: ReadonlyArray<{ readonly _tag: string }>) =>
  events.filter((e): e is AiPayout => e._tag === "AiPayout").map((p) => ({ source: p.source, to: p.to, amount: p.amount, index: p.index }))

describe("usage.overran", () => {
  it("charges a confirmed overrun: price 1000 → provider 740, workers 60 (300 ms) and 100 (500 ms), burn 100; escrow 2500 → 1500", () => {
    const { state, model } = setup()
    const receipt = overranReceipt(hashOf("o-1"), model)
    const tx = overranTx(receipt)
    const r = step(state, ctxAt(10), txIn(tx))
    expect(r.rejection).toBeNull()
    expect(tagsOf(r.events)).toEqual(["UsageSettled", "AiPayout", "AiPayout", "AiPayout", "AiPayout"])
    const settled = r.events[0] as UsageSettled
    expect(settled.taskId).toBe(receipt.taskId)
    expect(settled.developer).toBe(developer.publicKey.address)
    expect(settled.workers).toEqual([
      { worker: worker1.publicKey.address, execMs: 300 },
      { worker: worker2.publicKey.address, execMs: 500 }
    ])
    expect(payoutsOf(r.events)).toEqual([
      { source: "escrow", to: provider.publicKey.address, amount: 740n, index: 0 },
      { source: "escrow", to: worker1.publicKey.address, amount: 60n, index: 1 },
      { source: "escrow", to: worker2.publicKey.address, amount: 100n, index: 2 },
      { source: "escrow", to: BURN_ADDRESS, amount: 100n, index: 3 }
    ])
    expect(escrowOf(r.state, developer.publicKey.address, model)).toBe(1_500n)
  })

  it("claims of two kinds (memory on one worker, deadline on the other) are charged: each limit is the worker's own", () => {
    const { state, model } = setup()
    const base = overranReceipt(hashOf("mixed"), model)
    const claims = [claimOf(worker1, base.taskId, 300, "Memory", 1 << 20), claimOf(worker2, base.taskId, 500, "Deadline", 400)]
    const r = step(state, ctxAt(10), txIn(overranTx({ ...base, claims })))
    expect(refusalsOf(r.events)).toEqual([])
    expect(escrowOf(r.state, developer.publicKey.address, model)).toBe(1_500n)
  })

  const refusalCases: ReadonlyArray<[string, (m: Hash32) => OverranReceipt, string]> = [
    ["a forged grant signature", (m) => ({ ...overranReceipt(hashOf("f"), m), grant: { ...overranReceipt(hashOf("f"), m).grant, spendMax: 5_000_000n } }), "BadGrantSignature"],
    ["a grant for another chain", (m) => overranReceipt(hashOf("c"), m, { grantParams: { chainId: 1n } }), "WrongChain"],
    ["a grant for another model", (m) => overranReceipt(hashOf("w"), m, { grantParams: { model: hashOf("other") } }), "WrongModel"],
    ["a grant issued after the block", (m) => overranReceipt(hashOf("future"), m, { grantParams: { issuedAt: T0 + 60_000 } }), "GrantFromFuture"],
    ["a grant expiring before it was issued", (m) => overranReceipt(hashOf("exp"), m, { grantParams: { expiresAt: T0 - 1 } }), "GrantExpired"],
    ["a price over the grant's cap", (m) => overranReceipt(hashOf("cap"), m, { grantParams: { spendMax: 999n } }), "OverCap"],
    ["a price other than the model's", (m) => overranReceipt(hashOf("p"), m, { price: 2_000n }), "WrongPrice"],
    ["an unknown model", () => overranReceipt(hashOf("u"), hashOf("no-model")), "UnknownModel"],
    ["a task id that is not the request's digest", (m) => ({ ...overranReceipt(hashOf("t"), m), taskId: hashOf("made-up") }), "TaskNotRequested"],
    ["a request not signed by the grant's key", (m) => {
      const r = overranReceipt(hashOf("rq"), m)
      return { ...r, request: requestOf(r.grant, m, hashOf("rq"), key("mallory")).request }
    }, "BadRequestSignature"],
    ["an unregistered worker's claim", (m) => {
      const r = overranReceipt(hashOf("uw"), m)
      return { ...r, claims: [r.claims[0]!, claimOf(key("stranger"), r.taskId)] }
    }, "UnregisteredWorker"],
    ["one worker's claim twice (an overrun needs two workers)", (m) => {
      const r = overranReceipt(hashOf("d"), m)
      return { ...r, claims: [r.claims[0]!, r.claims[0]!] }
    }, "DuplicateWorker"],
    ["a claim signed by another key", (m) => {
      const r = overranReceipt(hashOf("ks"), m)
      return { ...r, claims: [r.claims[0]!, claimOf(worker2, r.taskId, 500, "Deadline", 400, worker1)] }
    }, "BadClaimSignature"],
    ["a claim signed for another task", (m) => {
      const r = overranReceipt(hashOf("ot"), m)
      return { ...r, claims: [claimOf(worker1, hashOf("elsewhere"), 300), r.claims[1]!] }
    }, "BadClaimSignature"],
    // A gateway that inflates a worker's burned ms after it signed them (to move the fee split).
    ["a claim whose millis were changed after signing", (m) => {
      const r = overranReceipt(hashOf("ms"), m)
      return { ...r, claims: [{ ...r.claims[0]!, millis: 30_000 }, r.claims[1]!] }
    }, "BadClaimSignature"],
    ["a claim whose kind was changed after signing", (m) => {
      const r = overranReceipt(hashOf("kd"), m)
      return { ...r, claims: [{ ...r.claims[0]!, kind: "Memory" as const }, r.claims[1]!] }
    }, "BadClaimSignature"]
  ]
  for (const [what, make, reason] of refusalCases) {
    it(`refuses ${what}: ${reason}, and changes nothing`, () => {
      const { state, model } = setup()
      const r = step(state, ctxAt(10), txIn(overranTx(make(model))))
      expect(r.rejection).toBeNull()
      expect(refusalsOf(r.events)).toEqual([reason])
      expect(payoutsOf(r.events)).toEqual([])
      expect(escrowOf(r.state, developer.publicKey.address, model)).toBe(2_500n)
    })
  }

  it("refuses a receipt the escrow cannot cover: InsufficientEscrow (999 < 1000)", () => {
    const { state, model } = setup(999n)
    const r = step(state, ctxAt(10), txIn(overranTx(overranReceipt(hashOf("poor"), model))))
    expect(refusalsOf(r.events)).toEqual(["InsufficientEscrow"])
  })

  it("refuses a worker below the stake floor: WorkerUnderStaked", () => {
    const { state, model } = setup()
    const r = step(state, ctxAt(10, { economics: testConfig({ minWorkerStake: 1n }) }), txIn(overranTx(overranReceipt(hashOf("s"), model))))
    expect(refusalsOf(r.events)).toEqual(["WorkerUnderStaked"])
  })

  it("from outside the AI committee it is refused whole (NotCommitteeMember): nothing is charged", () => {
    const { state, model } = setup()
    const r = step(state, ctxAt(10), txIn(signed(developer, { kind: "usage.overran", receipts: [overranReceipt(hashOf("x"), model)] })))
    expect(r.rejection?.reason).toBe("NotCommitteeMember")
    expect(escrowOf(r.state, developer.publicKey.address, model)).toBe(2_500n)
  })

  it("a task is charged once: settled by usage.settle, its overran receipt is AlreadySettled, and the other way round", () => {
    const { state, model } = setup()
    const overran = overranReceipt(hashOf("once"), model)
    const validated = usageReceipt(hashOf("once"), model)
    expect(validated.taskId).toBe(overran.taskId)
    const a = accept(state, ctxAt(10), txIn(settleTx(validated)))
    const a2 = step(a, ctxAt(11), txIn(overranTx(overran)))
    expect(refusalsOf(a2.events)).toEqual(["AlreadySettled"])
    const b = accept(state, ctxAt(10), txIn(overranTx(overran)))
    const b2 = step(b, ctxAt(11), txIn(settleTx(validated)))
    expect(refusalsOf(b2.events)).toEqual(["AlreadySettled"])
    for (const s of [a2.state, b2.state]) expect(escrowOf(s, developer.publicKey.address, model)).toBe(1_500n)
  })

  it("property: any mix of usage.settle and usage.overran txs charges each task once; escrow = deposit − tasks × price; escrow out = payouts", () => {
    const { state, model } = setup(100_000n)
    const inputs = Array.from({ length: 5 }, (_, i) => hashOf(`mix-${i}`))
    const settles = inputs.map((x) => usageReceipt(x, model))
    const overruns = inputs.map((x) => overranReceipt(x, model))
    fc.assert(
      fc.property(
        fc.array(fc.record({ overran: fc.boolean(), ids: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 4 }) }), { minLength: 1, maxLength: 6 }),
        (txs) => {
          let s = state
          let charged = 0
          let paidOut = 0n
          for (const [h, t] of txs.entries()) {
            const tx = t.overran ? overranTx(...t.ids.map((i) => overruns[i]!)) : settleTx(...t.ids.map((i) => settles[i]!))
            const r = step(s, ctxAt(10 + h), txIn(tx))
            expect(r.rejection).toBeNull()
            charged += r.events.filter((e) => e._tag === "UsageSettled").length
            paidOut += r.events.filter((e): e is AiPayout => e._tag === "AiPayout" && e.source === "escrow").reduce((n, p) => n + p.amount, 0n)
            s = r.state
          }
          const distinct = new Set(txs.flatMap((t) => t.ids)).size
          expect(charged).toBe(distinct)
          expect(escrowOf(s, developer.publicKey.address, model)).toBe(100_000n - BigInt(distinct) * 1_000n)
          // Conservation: what left escrow is exactly what was paid out of it.
          expect(paidOut).toBe(BigInt(distinct) * 1_000n)
        }
      ),
      { seed: 11, numRuns: 25 }
    )
  })
})


import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { SYSTEM_TREASURY, BURN_ADDRESS } from "../../../domain/economics/accounts.js"
import { decideAi } from "../../../domain/ai/ledger/decide.js"
import type { AiPayout, UsageRefused, UsageSettled } from "../../../domain/ai/ledger/events.js"
import { escrowOf } from "../../../domain/ai/ledger/state.js"
import { testConfig } from "../../economics/support.js"
import {
  accept,
  ctxAt,
  developer,
  escrowReceipt,
  FINGERPRINT,
  hashOf,
  key,
  MANIFEST,
  provider,
  requestOf,
  resultOf,
  settleTx,
  signed,
  step,
  tagsOf,
  taskOf,
  txIn,
  usageReceipt,
  withVerifiedModel,
  withWorkers,
  worker1,
  worker2,
  T0
} from "./support.js"

const setup = (deposit = 2_500n) => {
  const { state, model } = withVerifiedModel()
  return { model, state: accept(withWorkers(state), ctxAt(3), escrowReceipt(developer, model, deposit)) }
}

const refusalsOf = (events: ReadonlyArray<{ readonly _tag: string }>) =>
  events.filter((e): e is UsageRefused => e._tag === "UsageRefused").map((e) => e.reason)

const payoutsOf = (events: ReadonlyArray<{ readonly _tag: string }>) =>
  events.filter((e): e is AiPayout => e._tag === "AiPayout").map((p) => ({ source: p.source, to: p.to, amount: p.amount, index: p.index }))


type MakeReceipt = (m: ReturnType<typeof setup>["model"]) => ReturnType<typeof usageReceipt>

/** A settle of the one receipt `make` gives is refused `reason`: no payout, escrow and the settled set as before. */
const expectRefusedAlone = (make: MakeReceipt, reason: string) => {
  const { state, model } = setup()
  const r = step(state, ctxAt(10), txIn(settleTx(make(model))))
  expect(refusalsOf(r.events)).toEqual([reason])
  expect(payoutsOf(r.events)).toEqual([])
  expect(escrowOf(r.state, developer.publicKey.address, model)).toBe(2_500n)
  expect(r.state.settled).toEqual(state.settled)
}
describe("usage.settle", () => {
  it("settles a receipt: price 1000 → provider 800, worker 100 (2000 milli-units × 500 ms at 100/unit-s), burn 100, escrow 2500 → 1500", () => {
    const { state, model } = setup()
    const tx = settleTx(usageReceipt(hashOf("task-1"), model))
    const r = step(state, ctxAt(10), txIn(tx))
    expect(r.rejection).toBeNull()
    expect(tagsOf(r.events)).toEqual(["UsageSettled", "AiPayout", "AiPayout", "AiPayout"])
    const settled = r.events[0] as UsageSettled
    expect(settled.developer).toBe(developer.publicKey.address)
    expect(settled.provider).toBe(provider.publicKey.address)
    expect(payoutsOf(r.events)).toEqual([
      { source: "escrow", to: provider.publicKey.address, amount: 800n, index: 0 },
      { source: "escrow", to: worker1.publicKey.address, amount: 100n, index: 1 },
      { source: "escrow", to: BURN_ADDRESS, amount: 100n, index: 2 }
    ])
    expect(r.events.filter((e): e is AiPayout => e._tag === "AiPayout").every((p) => p.cause === tx.hash)).toBe(true)
    expect(escrowOf(r.state, developer.publicKey.address, model)).toBe(1_500n)
  })

  it("a treasury sink pays the protocol fee to the keyless treasury", () => {
    const { state, model } = setup()
    const r = step(state, ctxAt(10, { economics: testConfig({ protocolFeeSink: "treasury" }) }), txIn(settleTx(usageReceipt(hashOf("t"), model))))
    expect(payoutsOf(r.events).at(-1)).toEqual({ source: "escrow", to: SYSTEM_TREASURY, amount: 100n, index: 2 })
  })

  it("two workers: each paid its compute fee (300 ms → 60, 500 ms → 100), provider 740", () => {
    const { state, model } = setup()
    const task = taskOf(hashOf("two"), model)
    const r = step(state, ctxAt(10), txIn(settleTx(usageReceipt(hashOf("two"), model, { results: [resultOf(worker1, task, 300), resultOf(worker2, task, 500)] }))))
    expect(payoutsOf(r.events).map((p) => p.amount)).toEqual([740n, 60n, 100n, 100n])
  })

  it("a bad receipt is refused with its reason; the good ones in the same tx settle", () => {
    const { state, model } = setup()
    const good = usageReceipt(hashOf("good"), model)
    const bad = usageReceipt(hashOf("bad"), model, { price: 999n })
    const r = step(state, ctxAt(10), txIn(settleTx(bad, good)))
    expect(tagsOf(r.events)).toEqual(["UsageRefused", "UsageSettled", "AiPayout", "AiPayout", "AiPayout"])
    expect(refusalsOf(r.events)).toEqual(["WrongPrice"])
    // The good receipt's payouts are numbered from 0: the refused one made none.
    expect(payoutsOf(r.events).map((p) => p.index)).toEqual([0, 1, 2])
  })

  const refusalCases: ReadonlyArray<[string, MakeReceipt, string]> = [
    ["a forged grant signature", (m) => usageReceipt(hashOf("f"), m, { grant: { ...usageReceipt(hashOf("f"), m).grant, spendMax: 5_000_000n } }), "BadGrantSignature"],
    ["a grant signed by another key than the one it names", (m) => ({ ...usageReceipt(hashOf("k"), m), grant: (() => {
      const g = usageReceipt(hashOf("k"), m).grant
      return { ...g, publicKey: key("mallory").publicKey.hex }
    })() }), "BadGrantSignature"],
    ["a grant for another chain", (m) => usageReceipt(hashOf("c"), m, { grantParams: { chainId: 1n } }), "WrongChain"],
    ["a grant for another model", (m) => usageReceipt(hashOf("w"), m, { grantParams: { model: hashOf("other") } }), "WrongModel"],
    ["a grant issued after the block", (m) => usageReceipt(hashOf("future"), m, { grantParams: { issuedAt: T0 + 60_000 } }), "GrantFromFuture"],
    ["a grant expiring before it was issued", (m) => usageReceipt(hashOf("exp"), m, { grantParams: { expiresAt: T0 - 1 } }), "GrantExpired"],
    ["a price over the grant's cap", (m) => usageReceipt(hashOf("cap"), m, { grantParams: { spendMax: 999n } }), "OverCap"],
    ["a price other than the model's", (m) => usageReceipt(hashOf("p"), m, { price: 2_000n }), "WrongPrice"],
    ["an unknown model", () => usageReceipt(hashOf("u"), hashOf("no-model")), "UnknownModel"],
    ["an unregistered worker", (m) => usageReceipt(hashOf("uw"), m, { results: [resultOf(key("stranger"), taskOf(hashOf("uw"), m))] }), "UnregisteredWorker"],
    ["a result signed by another key", (m) => usageReceipt(hashOf("rs"), m, { results: [resultOf(worker1, taskOf(hashOf("rs"), m), 500, FINGERPRINT, worker2)] }), "BadResultSignature"],
    ["a result signed for another task", (m) => usageReceipt(hashOf("rt"), m, { results: [resultOf(worker1, hashOf("elsewhere"))] }), "BadResultSignature"],
    // A gateway that raises a worker's execution units after it signed them (to inflate the compute fee and task mining).
    ["a result whose execMs was changed after signing", (m) => usageReceipt(hashOf("ex"), m, { results: [{ ...resultOf(worker1, taskOf(hashOf("ex"), m), 500), execMs: 5_000 }] }), "BadResultSignature"],
    ["a worker listed twice", (m) => usageReceipt(hashOf("d"), m, { results: [resultOf(worker1, taskOf(hashOf("d"), m)), resultOf(worker1, taskOf(hashOf("d"), m))] }), "DuplicateWorker"],
    ["results that disagree", (m) => usageReceipt(hashOf("dis"), m, { results: [resultOf(worker1, taskOf(hashOf("dis"), m)), resultOf(worker2, taskOf(hashOf("dis"), m), 500, hashOf("other-fp"))] }), "ResultsDisagree"]
  ]
  for (const [what, make, reason] of refusalCases) {
    it(`refuses ${what}: ${reason}, and changes nothing`, () => expectRefusedAlone(make, reason))
  }

  describe("the developer's request binds each task to the grant", () => {
    const mallory = key("mallory")
    const requestCases: ReadonlyArray<[string, MakeReceipt, string]> = [
      // A grant holder with a registered worker key makes up tasks: the results sign the made-up id, but no request names it.
      ["a made-up task id whose results are signed over it", (m) => {
        const madeUp = hashOf("made-up task")
        return usageReceipt(hashOf("mu"), m, { taskId: madeUp, results: [resultOf(worker1, madeUp)] })
      }, "TaskNotRequested"],
      ["a request whose inputs' hash was changed after signing", (m) => {
        const r = usageReceipt(hashOf("in"), m)
        return { ...r, request: { ...r.request, inputHash: hashOf("other inputs") } }
      }, "TaskNotRequested"],
      ["a request whose nonce was changed after signing", (m) => {
        const r = usageReceipt(hashOf("nn"), m)
        return { ...r, request: { ...r.request, nonce: "0x" + "ef".repeat(16) } }
      }, "TaskNotRequested"],
      ["a request of another grant (its nonce) under this one", (m) => {
        const other = requestOf({ ...usageReceipt(hashOf("og"), m).grant, nonce: "0x" + "01".repeat(16) }, m, hashOf("og"))
        return usageReceipt(hashOf("og"), m, { taskId: other.taskId, request: other.request, results: [resultOf(worker1, other.taskId)] })
      }, "TaskNotRequested"],
      ["a request signed by a key other than the grant's", (m) => {
        const r = usageReceipt(hashOf("ms"), m)
        return { ...r, request: requestOf(r.grant, m, hashOf("ms"), mallory).request }
      }, "BadRequestSignature"],
      ["a request signature that is not a signature", (m) => {
        const r = usageReceipt(hashOf("zs"), m)
        return { ...r, request: { ...r.request, signature: "0x" + "00".repeat(64) } }
      }, "BadRequestSignature"]
    ]
    for (const [what, make, reason] of requestCases) {
      it(`refuses ${what}: ${reason}, and changes nothing`, () => expectRefusedAlone(make, reason))
    }

    it("property: a receipt with any byte of its task id or request changed never settles, never moves escrow, and is refused TaskNotRequested or BadRequestSignature", () => {
      const { state, model } = setup()
      const honest = usageReceipt(hashOf("prop"), model)
      const fields = ["taskId", "inputHash", "nonce", "signature"] as const
      fc.assert(
        fc.property(fc.constantFrom(...fields), fc.nat(), fc.integer({ min: 1, max: 15 }), (field, at, flip) => {
          const mutate = (hex: string) => {
            const i = 2 + (at % (hex.length - 2))
            return hex.slice(0, i) + ((parseInt(hex[i]!, 16) ^ flip).toString(16)) + hex.slice(i + 1)
          }
          const receipt =
            field === "taskId"
              ? { ...honest, taskId: mutate(honest.taskId) as typeof honest.taskId }
              : { ...honest, request: { ...honest.request, [field]: mutate(honest.request[field]) } }
          const r = step(state, ctxAt(10), txIn(settleTx(receipt)))
          expect(tagsOf(r.events)).toEqual(["UsageRefused"])
          expect(["TaskNotRequested", "BadRequestSignature"]).toContain(refusalsOf(r.events)[0])
          expect(escrowOf(r.state, developer.publicKey.address, model)).toBe(2_500n)
        }),
        { seed: 11, numRuns: 60 }
      )
      // The honest receipt itself settles: the refusals above are the mutations'.
      expect(refusalsOf(step(state, ctxAt(10), txIn(settleTx(honest))).events)).toEqual([])
    })
  })

  it("a settle from outside the AI committee is refused whole (NotCommitteeMember): nothing settles, no signature is checked", () => {
    const { state, model } = setup()
    const outsider = signed(key("outsider"), { kind: "usage.settle", receipts: [usageReceipt(hashOf("outside"), model)] })
    const d = decideAi(state, ctxAt(10), txIn(outsider))
    expect(Either.isLeft(d) && d.left.reason).toBe("NotCommitteeMember")
    expect(escrowOf(state, developer.publicKey.address, model)).toBe(2_500n)
  })

  it("refuses a receipt the escrow cannot cover: InsufficientEscrow (999 < 1000)", () => {
    const { state, model } = setup(999n)
    const r = step(state, ctxAt(10), txIn(settleTx(usageReceipt(hashOf("poor"), model))))
    expect(refusalsOf(r.events)).toEqual(["InsufficientEscrow"])
  })

  it("refuses a model that is still Pending: ModelNotServable", () => {
    const { state } = setup()
    const reg = signed(provider, { kind: "model.register", weightsHash: hashOf("w2"), sizeBytes: 1n, manifest: MANIFEST(1_000n) })
    const s = accept(state, ctxAt(5), txIn(reg), escrowReceipt(developer, reg.hash, 5_000n))
    const r = step(s, ctxAt(6), txIn(settleTx(usageReceipt(hashOf("x"), reg.hash))))
    expect(refusalsOf(r.events)).toEqual(["ModelNotServable"])
  })

  it("a model deprecated after it was Verified still settles the tasks it served", () => {
    const { state, model } = setup()
    const s = accept(state, ctxAt(5), txIn(signed(provider, { kind: "model.deprecate", model })))
    const r = step(s, ctxAt(6), txIn(settleTx(usageReceipt(hashOf("dep"), model))))
    expect(refusalsOf(r.events)).toEqual([])
    expect(tagsOf(r.events)[0]).toBe("UsageSettled")
  })

  it("a task id settles once: replayed in a second tx (another gateway) it is AlreadySettled, and the developer pays once", () => {
    const { state, model } = setup()
    const receipt = usageReceipt(hashOf("once"), model)
    const first = step(state, ctxAt(10), txIn(settleTx(receipt)))
    const second = step(first.state, ctxAt(11), txIn(settleTx(receipt)))
    expect(refusalsOf(second.events)).toEqual(["AlreadySettled"])
    expect(escrowOf(second.state, developer.publicKey.address, model)).toBe(1_500n)
  })

  it("the same task twice in one tx: the second is AlreadySettled", () => {
    const { state, model } = setup()
    const receipt = usageReceipt(hashOf("twice"), model)
    const r = step(state, ctxAt(10), txIn(settleTx(receipt, receipt)))
    expect(tagsOf(r.events).filter((t) => t === "UsageSettled")).toHaveLength(1)
    expect(refusalsOf(r.events)).toEqual(["AlreadySettled"])
  })

  it("a grant's cap holds across receipts and across txs: cap 2500 lets two tasks of 1000 through, the third is OverCap", () => {
    const { state, model } = setup(10_000n)
    const r = (t: string) => usageReceipt(hashOf(t), model, { grantParams: { spendMax: 2_500n } })
    const one = step(state, ctxAt(10), txIn(settleTx(r("a"), r("b"))))
    expect(refusalsOf(one.events)).toEqual([])
    const two = step(one.state, ctxAt(11), txIn(settleTx(r("c"))))
    expect(refusalsOf(two.events)).toEqual(["OverCap"])
    expect(escrowOf(two.state, developer.publicKey.address, model)).toBe(8_000n)
  })

  it("a worker below the stake floor: WorkerUnderStaked", () => {
    const { state, model } = setup()
    const r = step(state, ctxAt(10, { economics: testConfig({ minWorkerStake: 1n }) }), txIn(settleTx(usageReceipt(hashOf("s"), model))))
    expect(refusalsOf(r.events)).toEqual(["WorkerUnderStaked"])
  })

  it("property: under random duplicates and reorders across txs, each task settles exactly once and escrow = deposit − settled × price", () => {
    const { state, model } = setup(100_000n)
    const pool = Array.from({ length: 6 }, (_, i) => usageReceipt(hashOf(`p-${i}`), model))
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 }), (batches) => {
        let s = state
        let settledCount = 0
        for (const [h, batch] of batches.entries()) {
          const r = step(s, ctxAt(10 + h), txIn(settleTx(...batch.map((i) => pool[i]!))))
          settledCount += r.events.filter((e) => e._tag === "UsageSettled").length
          s = r.state
        }
        const distinct = new Set(batches.flat()).size
        expect(settledCount).toBe(distinct)
        expect(escrowOf(s, developer.publicKey.address, model)).toBe(100_000n - BigInt(distinct) * 1_000n)
      }),
      { seed: 7, numRuns: 25 }
    )
  })

  it("property: deterministic — the same state and input give the same events", () => {
    const { state, model } = setup()
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 4 }), (ids) => {
        const tx = settleTx(...ids.map((i) => usageReceipt(hashOf(`d-${i}`), model)))
        const a = decideAi(state, ctxAt(10), txIn(tx))
        const b = decideAi(state, ctxAt(10), txIn(tx))
        expect(Either.isRight(a)).toBe(true)
        expect(JSON.stringify(a, (_, v) => (typeof v === "bigint" ? `${v}n` : v))).toBe(
          JSON.stringify(b, (_, v) => (typeof v === "bigint" ? `${v}n` : v))
        )
      }),
      { seed: 3, numRuns: 15 }
    )
  })
})

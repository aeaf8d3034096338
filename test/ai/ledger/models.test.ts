import { describe, expect, it } from "@effect/vitest"
import { ATTEST_DEADLINE_BLOCKS } from "../../../domain/ai/ledger/models.js"
import { modelOf, type AiLedgerState } from "../../../domain/ai/ledger/state.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import type { PrivateKey } from "../../../domain/chain/keys.js"
import { accept, ctxAt, FINGERPRINT, hashOf, initial, key, MANIFEST, provider, signed, step, tagsOf, txIn, validators } from "./support.js"

const [a, b, c] = validators // stakes 50, 30, 20

const registered = (): { readonly state: AiLedgerState; readonly model: Hash32 } => {
  const reg = signed(provider, { kind: "model.register", weightsHash: hashOf("weights"), sizeBytes: 10n, manifest: MANIFEST(1_000n) })
  return { state: accept(initial(), ctxAt(1), txIn(reg)), model: reg.hash }
}
const verified = (v: PrivateKey, model: Hash32, fingerprint = FINGERPRINT) =>
  txIn(signed(v, { kind: "model.attest", model, verdict: "verified", fingerprint }))
const rejected = (v: PrivateKey, model: Hash32) => txIn(signed(v, { kind: "model.attest", model, verdict: "rejected", reason: "outputs differ" }))

describe("models", () => {
  it("model.register: Pending, id = tx hash, price from the manifest", () => {
    const { state, model } = registered()
    const m = modelOf(state, model)
    expect(m?.status).toBe("Pending")
    expect(m?.price).toBe(1_000n)
    expect(m?.provider).toBe(provider.publicKey.address)
    expect(m?.registeredHeight).toBe(1)
  })

  it("50 + 30 = 80 of 100 verified with one fingerprint (> 2/3): Verified with that fingerprint", () => {
    const { state, model } = registered()
    const one = step(state, ctxAt(2), verified(a, model))
    expect(tagsOf(one.events)).toEqual(["ModelAttested"])
    const two = step(one.state, ctxAt(3), verified(b, model))
    expect(tagsOf(two.events)).toEqual(["ModelAttested", "AiModelVerified"])
    expect(modelOf(two.state, model)?.status).toBe("Verified")
    expect(modelOf(two.state, model)?.fingerprint).toBe(FINGERPRINT)
  })

  it("exactly 2/3 is not enough: stakes 40 + 20 of 90 verified stay Pending; the third member makes it", () => {
    const committee = [
      { address: a.publicKey.address, stake: 40n },
      { address: b.publicKey.address, stake: 20n },
      { address: c.publicKey.address, stake: 30n }
    ]
    const { state, model } = registered()
    const s = accept(state, ctxAt(2, { committee }), verified(a, model), verified(b, model))
    expect(modelOf(s, model)?.status).toBe("Pending")
    const r = step(s, ctxAt(3, { committee }), verified(c, model))
    expect(modelOf(r.state, model)?.status).toBe("Verified")
  })

  it("two fingerprints split the stake (50 vs 30 + 20 … 50 alone is not > 2/3): Pending", () => {
    const { state, model } = registered()
    const s = accept(state, ctxAt(2), verified(a, model), verified(b, model, hashOf("other")), verified(c, model, hashOf("other")))
    expect(modelOf(s, model)?.status).toBe("Pending")
  })

  it("> 1/3 rejected (30 + 20 = 50 of 100) is Rejected; exactly 1/3 is not (30 of 90)", () => {
    const { state, model } = registered()
    const s = accept(state, ctxAt(2), rejected(b, model))
    expect(modelOf(s, model)?.status).toBe("Pending") // 30 of 100
    const r = step(s, ctxAt(3), rejected(c, model))
    expect(tagsOf(r.events)).toEqual(["ModelAttested", "AiModelRejected"])
    expect(modelOf(r.state, model)?.status).toBe("Rejected")

    const third = [
      { address: a.publicKey.address, stake: 30n },
      { address: b.publicKey.address, stake: 30n },
      { address: c.publicKey.address, stake: 30n }
    ]
    const fresh = registered()
    const t = accept(fresh.state, ctxAt(2, { committee: third }), rejected(a, fresh.model))
    expect(modelOf(t, fresh.model)?.status).toBe("Pending")
  })

  it("refuses a non-member: NotCommitteeMember", () => {
    const { state, model } = registered()
    expect(step(state, ctxAt(2), verified(key("outsider"), model)).rejection?.reason).toBe("NotCommitteeMember")
  })

  it("refuses a second attestation by one member: AlreadyAttested", () => {
    const { state, model } = registered()
    const s = accept(state, ctxAt(2), verified(c, model))
    expect(step(s, ctxAt(3), rejected(c, model)).rejection?.reason).toBe("AlreadyAttested")
  })

  it("refuses an attestation on an unknown model: UnknownModel", () => {
    expect(step(initial(), ctxAt(2), verified(a, hashOf("nothing"))).rejection?.reason).toBe("UnknownModel")
  })

  it("refuses an attestation on a model no longer Pending: NotPending", () => {
    const { state, model } = registered()
    const s = accept(state, ctxAt(2), verified(a, model), verified(b, model))
    expect(step(s, ctxAt(3), verified(c, model)).rejection?.reason).toBe("NotPending")
  })

  it(`BlockEnd rejects a model still Pending ${ATTEST_DEADLINE_BLOCKS} blocks after registration ("deadline"), not one block earlier`, () => {
    const { state, model } = registered()
    const early = step(state, ctxAt(1 + ATTEST_DEADLINE_BLOCKS - 1), { _tag: "BlockEnd" })
    expect(early.events).toEqual([])
    const late = step(state, ctxAt(1 + ATTEST_DEADLINE_BLOCKS), { _tag: "BlockEnd" })
    expect(tagsOf(late.events)).toEqual(["AiModelRejected"])
    expect(modelOf(late.state, model)?.reason).toBe("deadline")
    expect(step(late.state, ctxAt(2 + ATTEST_DEADLINE_BLOCKS), { _tag: "BlockEnd" }).events).toEqual([])
  })

  it("model.price and model.deprecate: provider only (NotProvider), unknown model (UnknownModel), closed model (ModelClosed)", () => {
    const { state, model } = registered()
    expect(step(state, ctxAt(2), txIn(signed(key("other"), { kind: "model.price", model, price: 5n }))).rejection?.reason).toBe("NotProvider")
    expect(step(state, ctxAt(2), txIn(signed(provider, { kind: "model.price", model: hashOf("x"), price: 5n }))).rejection?.reason).toBe("UnknownModel")
    const repriced = accept(state, ctxAt(2), txIn(signed(provider, { kind: "model.price", model, price: 5n })))
    expect(modelOf(repriced, model)?.price).toBe(5n)
    const gone = accept(repriced, ctxAt(3), txIn(signed(provider, { kind: "model.deprecate", model })))
    expect(modelOf(gone, model)?.status).toBe("Deprecated")
    expect(step(gone, ctxAt(4), txIn(signed(provider, { kind: "model.deprecate", model }))).rejection?.reason).toBe("ModelClosed")
  })

  it("a Verified model earns a launch reward in the economy (ModelVerified fact)", () => {
    const { state, model } = registered()
    const s = accept(state, ctxAt(2), verified(a, model), verified(b, model))
    expect([...s.economy.launches].map(([m, p]) => [m, p])).toEqual([[model, provider.publicKey.address]])
  })
})

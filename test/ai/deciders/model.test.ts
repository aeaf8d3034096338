import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import fc from "fast-check"
import { fold } from "../../../domain/Decider.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { ModelManifest } from "../../../domain/ai/manifest.js"
import * as Verdict from "../../../domain/ai/verdict.js"
import {
  AttestModel,
  BeginVerification,
  DeprecateModel,
  ExpireVerification,
  UpdatePrice,
  UploadModel,
  type ModelRules
} from "../../../domain/ai/model/commands.js"
import { isServable, makeModelDecider, VERIFICATION_ATTEMPTS_MAX, type ModelState } from "../../../domain/ai/model/decide.js"
import { ModelAttested, ModelEvent, ModelRejected, ModelVerified, VerificationAttempted, type ModelUploaded } from "../../../domain/ai/model/events.js"
import { DEFAULT_GPU_CLASSES } from "../../../domain/ai/worker/gpuClass.js"
import { address, deciderSpec, hash, run, runAll, T0, tags, throughJson } from "./support.js"

const [V1, V2, V3] = [address("validator-1"), address("validator-2"), address("validator-3")]
const PROVIDER = address("provider")
const STRANGER = address("stranger")
const WEIGHTS = hash("weights")
const FP_A = hash("fingerprint-a")
const FP_B = hash("fingerprint-b")
const FP_C = hash("fingerprint-c")
const TIMEOUT_MS = 60_000
const DEADLINE = T0 + TIMEOUT_MS

const rules = (validators = [V1!, V2!, V3!], attestationQuorum = 2): ModelRules => ({
  validators,
  attestationQuorum,
  verificationTimeoutMs: TIMEOUT_MS,
  gpuClasses: DEFAULT_GPU_CLASSES
})
const models = makeModelDecider(rules())
const spec = deciderSpec(models)

const manifest = (over: Partial<typeof ModelManifest.Encoded> = {}) =>
  Schema.decodeUnknownSync(ModelManifest)({
    name: "tiny",
    version: "1",
    pricePerCall: "25",
    minGpuClass: "CPU",
    license: "MIT",
    description: "a test model",
    ...over
  })

const upload = (over: Partial<ConstructorParameters<typeof UploadModel>[0]> = {}) =>
  new UploadModel({ modelId: hash("upload-tx"), provider: PROVIDER, manifest: manifest(), weightsHash: WEIGHTS, sizeBytes: 4096, at: T0, ...over })

const accepted = (fingerprint: Hash32, modelHash: Hash32 = WEIGHTS) =>
  new Verdict.ModelAccepted({
    modelHash,
    sizeBytes: 4096,
    signature: { inputs: [{ name: "x", type: "float32", dims: [1, 4] }], outputs: [{ name: "y", type: "float32", dims: [1, 4] }] },
    referenceFingerprint: fingerprint,
    smoke: new Verdict.SmokePassed({ fingerprint, outputs: [], loadMillis: 3, runMillis: 0.2, totalMillis: 40, peakRssBytes: 50_000_000 })
  })

const rejected = (check: Verdict.RejectionCheck = "OperatorNotAllowed", reason = `operator "Custom" is not on the allowlist`) =>
  new Verdict.ModelRejected({ modelHash: WEIGHTS, check, reason })

const attest = (validator = V1!, verdict: Verdict.ModelVerdict = accepted(FP_A), at = T0 + 1_000) =>
  new AttestModel({ validator, verdict, at })

const uploaded = run(models, models.initialState, upload()).events
const verified = [...uploaded, ...run(models, fold(models.evolve, models.initialState, uploaded), attest(V1)).events]
const verifiedEvents = runAll(models, [upload(), attest(V1), attest(V2)]).events
const rejectedEvents = runAll(models, [upload(), attest(V1, rejected()), attest(V2, rejected())]).events

describe("UploadModel", () => {
  it("given nothing, when a provider uploads, then the model is Pending under the rules in force", () => {
    spec.given([]).when(upload()).then((events, s) => {
      expect(tags(events)).toEqual(["ModelUploaded"])
      const e = events[0] as ModelUploaded
      expect([e.validators, e.attestationQuorum, e.verificationDeadline]).toEqual([[V1, V2, V3], 2, DEADLINE])
      expect([s.status, s.price, isServable(s)]).toEqual(["Pending", 25n, false])
    })
  })
  it("refuses a second upload on the stream: AlreadyUploaded", () => {
    spec.given(uploaded).when(upload()).thenRejects("UploadRejected", "AlreadyUploaded")
  })
  it("refuses a minimum GPU class outside the genesis table: UnknownGpuClass", () => {
    spec.given([]).when(upload({ manifest: manifest({ minGpuClass: "TPU" }) })).thenRejects("UploadRejected", "UnknownGpuClass")
    spec.given([]).when(upload({ manifest: manifest({ minGpuClass: "constructor" }) })).thenRejects("UploadRejected", "UnknownGpuClass")
  })
})

describe("AttestModel: the quorum", () => {
  it("one acceptance of the 2 needed leaves the model Pending", () => {
    spec.given(uploaded).when(attest(V1)).then((events, s) => {
      expect(tags(events)).toEqual(["ModelAttested"])
      expect(s.status).toBe("Pending")
    })
  })
  it("k agreeing acceptances verify it with their fingerprint", () => {
    spec.given(verified).when(attest(V2)).then((events, s) => {
      expect(tags(events)).toEqual(["ModelAttested", "ModelVerified"])
      expect(events[1]).toEqual(new ModelVerified({ referenceFingerprint: FP_A, agreeing: [V1!, V2!], dissenting: [], at: T0 + 1_000 }))
      expect([s.status, s.referenceFingerprint, isServable(s)]).toEqual(["Verified", FP_A, true])
    })
  })
  it("k rejections reject it with the check and the validators' reason", () => {
    spec.given([...uploaded, ...run(models, fold(models.evolve, models.initialState, uploaded), attest(V1, rejected())).events])
      .when(attest(V2, rejected("OperatorNotAllowed")))
      .then((events, s) => {
        const e = events[1] as ModelRejected
        expect([e._tag, e.cause, e.check]).toEqual(["ModelRejected", "Attested", "OperatorNotAllowed"])
        expect(e.reason).toBe(`rejected by 2 of 3 validators: OperatorNotAllowed: operator "Custom" is not on the allowlist`)
        expect(s.status).toBe("Rejected")
      })
  })
  it("a minority fingerprint does not block the quorum: the dissenter is named", () => {
    const { events, state } = runAll(models, [upload(), attest(V1, accepted(FP_A)), attest(V2, accepted(FP_B)), attest(V3, accepted(FP_A))])
    expect(events.at(-1)).toEqual(new ModelVerified({ referenceFingerprint: FP_A, agreeing: [V1!, V3!], dissenting: [V2!], at: T0 + 1_000 }))
    expect(state.status).toBe("Verified")
  })
  it("fingerprints split so that none can reach k: rejected as Nondeterministic", () => {
    const { events, state } = runAll(models, [upload(), attest(V1, accepted(FP_A)), attest(V2, accepted(FP_B)), attest(V3, accepted(FP_C))])
    const e = events.at(-1) as ModelRejected
    expect([e._tag, e.cause, e.check, state.status]).toEqual(["ModelRejected", "Nondeterministic", null, "Rejected"])
    expect(e.reason).toMatch(/3 different output fingerprints .* none can reach 2 of 3/)
  })
  it("two validators, both needed, different fingerprints: rejected at the second attestation", () => {
    const two = makeModelDecider(rules([V1!, V2!], 2))
    const { events } = runAll(two, [upload(), attest(V1, accepted(FP_A)), attest(V2, accepted(FP_B))])
    expect((events.at(-1) as ModelRejected).cause).toBe("Nondeterministic")
  })
  it("acceptances and rejections split with nobody left: NoQuorum, with the rejection's check", () => {
    const two = makeModelDecider(rules([V1!, V2!], 2))
    const { events } = runAll(two, [upload(), attest(V1, accepted(FP_A)), attest(V2, rejected("Timeout", "the smoke run took over 10 s"))])
    const e = events.at(-1) as ModelRejected
    expect([e.cause, e.check]).toEqual(["NoQuorum", "Timeout"])
    expect(e.reason).toBe("validators disagree: 1 accepted, 1 rejected (Timeout: the smoke run took over 10 s), 0 outstanding; neither side can reach 2 of 2")
  })
  it("the devnet's one validator decides alone", () => {
    const devnet = makeModelDecider(rules([V1!], 1))
    expect(tags(runAll(devnet, [upload(), attest(V1)]).events)).toEqual(["ModelUploaded", "ModelAttested", "ModelVerified"])
    const bad = runAll(devnet, [upload(), attest(V1, rejected("NonFiniteOutput", "output y has 4 NaN values"))])
    expect(bad.state.rejection?.reason).toBe("rejected by 1 of 1 validators: NonFiniteOutput: output y has 4 NaN values")
  })

  describe("negative: a valid attestation with one thing changed", () => {
    it("no model uploaded: ModelAbsent", () => spec.given([]).when(attest()).thenRejects("AttestationRejected", "ModelAbsent"))
    it("the model is verified already: NotPending", () =>
      spec.given(verifiedEvents).when(attest(V3)).thenRejects("AttestationRejected", "NotPending"))
    it("the model is rejected already: NotPending", () =>
      spec.given(rejectedEvents).when(attest(V3)).thenRejects("AttestationRejected", "NotPending"))
    it("from outside the validator set: NotAValidator", () =>
      spec.given(uploaded).when(attest(STRANGER)).thenRejects("AttestationRejected", "NotAValidator"))
    it("a validator's second attestation: AlreadyAttested", () =>
      spec.given(verified).when(attest(V1, rejected())).thenRejects("AttestationRejected", "AlreadyAttested"))
    it("a verdict on other weights: WrongModel", () =>
      spec.given(uploaded).when(attest(V1, accepted(FP_A, hash("other-weights")))).thenRejects("AttestationRejected", "WrongModel"))
    it("at the deadline: DeadlinePassed", () =>
      spec.given(uploaded).when(attest(V1, accepted(FP_A), DEADLINE)).thenRejects("AttestationRejected", "DeadlinePassed"))
  })
})

describe("BeginVerification: attempts are recorded before the sandbox runs", () => {
  const begin = (validator = V1!, at = T0 + 500) => new BeginVerification({ validator, at })
  const begins = (n: number, validator = V1!) => Array.from({ length: n }, () => begin(validator))

  it("each begin records the validator's next attempt; an attestation after it counts as usual", () => {
    spec.given(uploaded).when(begin()).then((events, s) => {
      expect(events).toEqual([new VerificationAttempted({ validator: V1!, attempt: 1, at: T0 + 500 })])
      expect([s.status, s.attempts.get(V1!)]).toEqual(["Pending", 1])
    })
    const { state } = runAll(models, [upload(), ...begins(2), attest(V1), begin(V2), attest(V2)])
    expect([state.status, state.attempts.get(V1!), state.attempts.get(V2!)]).toEqual(["Verified", 2, 1])
  })

  it(`after ${VERIFICATION_ATTEMPTS_MAX} attempts that never attested (each crashed the node), the next begin attests "verification crashed"`, () => {
    const devnet = makeModelDecider(rules([V1!], 1))
    const { state, events } = runAll(devnet, [upload(), ...begins(VERIFICATION_ATTEMPTS_MAX + 1)])
    expect(tags(events)).toEqual(["ModelUploaded", ...Array<string>(VERIFICATION_ATTEMPTS_MAX).fill("VerificationAttempted"), "ModelAttested", "ModelRejected"])
    const attested = events.at(-2) as ModelAttested
    expect(attested.verdict).toEqual(
      new Verdict.ModelRejected({ modelHash: WEIGHTS, check: "VerificationCrashed", reason: `verification crashed: ${VERIFICATION_ATTEMPTS_MAX} attempts by this validator began and never finished` })
    )
    expect([state.status, state.rejection?.cause, state.rejection?.check]).toEqual(["Rejected", "Attested", "VerificationCrashed"])
    expect(state.rejection?.reason).toBe(
      `rejected by 1 of 1 validators: VerificationCrashed: verification crashed: ${VERIFICATION_ATTEMPTS_MAX} attempts by this validator began and never finished`
    )
    // and it is over: no attempt after it
    expect(Either.isLeft(devnet.decide(state, begin()))).toBe(true)
  })

  it("with three validators, one validator's crashes are one rejection: the other two still decide", () => {
    const { state } = runAll(models, [upload(), ...begins(VERIFICATION_ATTEMPTS_MAX + 1, V1!), attest(V2), attest(V3)])
    expect(state.status).toBe("Verified")
    expect(state.attestations.map((a) => a.verdict._tag)).toEqual(["ModelRejected", "ModelAccepted", "ModelAccepted"])
  })

  describe("negative", () => {
    it("no model: ModelAbsent", () => spec.given([]).when(begin()).thenRejects("AttestationRejected", "ModelAbsent"))
    it("already verified: NotPending", () => spec.given(verifiedEvents).when(begin(V3)).thenRejects("AttestationRejected", "NotPending"))
    it("from outside the validator set: NotAValidator", () => spec.given(uploaded).when(begin(STRANGER)).thenRejects("AttestationRejected", "NotAValidator"))
    it("after the validator attested: AlreadyAttested", () => spec.given(verified).when(begin(V1)).thenRejects("AttestationRejected", "AlreadyAttested"))
    it("at the deadline: DeadlinePassed", () => spec.given(uploaded).when(begin(V1, DEADLINE)).thenRejects("AttestationRejected", "DeadlinePassed"))
  })

  it("property: whatever the number of begins, a lone validator's model is Pending up to the limit and Rejected (VerificationCrashed) past it", () => {
    const devnet = makeModelDecider(rules([V1!], 1))
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 * VERIFICATION_ATTEMPTS_MAX }), (n) => {
        let s = run(devnet, devnet.initialState, upload()).state
        for (let i = 0; i < n; i++) {
          const r = devnet.decide(s, begin())
          if (s.status === "Pending") s = fold(devnet.evolve, s, Either.getOrThrow(r))
          else expect(Either.isLeft(r) && r.left.reason).toBe("NotPending")
        }
        if (n <= VERIFICATION_ATTEMPTS_MAX) expect([s.status, s.attempts.get(V1!) ?? 0]).toEqual(["Pending", n])
        else expect([s.status, s.rejection?.check]).toEqual(["Rejected", "VerificationCrashed"])
      }),
      { numRuns: 100 }
    )
  })
})

describe("UpdatePrice and DeprecateModel", () => {
  it("the provider changes the price", () => {
    spec.given(verifiedEvents).when(new UpdatePrice({ provider: PROVIDER, price: 40n })).then((events, s) => {
      expect(tags(events)).toEqual(["ModelPriceUpdated"])
      expect(s.price).toBe(40n)
    })
  })
  it("the provider deprecates a verified model: no longer servable", () => {
    spec.given(verifiedEvents).when(new DeprecateModel({ provider: PROVIDER })).then((events, s) => {
      expect(tags(events)).toEqual(["ModelDeprecated"])
      expect([s.status, s.deprecated, isServable(s)]).toEqual(["Verified", true, false])
    })
  })
  const deprecated = [...verifiedEvents, ...run(models, fold(models.evolve, models.initialState, verifiedEvents), new DeprecateModel({ provider: PROVIDER })).events]
  it.each<[string, ReadonlyArray<ModelEvent>, UpdatePrice, string]>([
    ["no model", [], new UpdatePrice({ provider: PROVIDER, price: 1n }), "ModelAbsent"],
    ["another account", verifiedEvents, new UpdatePrice({ provider: STRANGER, price: 1n }), "NotProvider"],
    ["a rejected model", rejectedEvents, new UpdatePrice({ provider: PROVIDER, price: 1n }), "ModelRejected"],
    ["a deprecated model", deprecated, new UpdatePrice({ provider: PROVIDER, price: 1n }), "ModelDeprecated"]
  ])("refuses a price update on %s", (_, given, cmd, reason) => {
    spec.given(given).when(cmd).thenRejects("PriceUpdateRejected", reason as never)
  })
  it.each<[string, ReadonlyArray<ModelEvent>, DeprecateModel, string]>([
    ["no model", [], new DeprecateModel({ provider: PROVIDER }), "ModelAbsent"],
    ["another account", verifiedEvents, new DeprecateModel({ provider: STRANGER }), "NotProvider"],
    ["a pending model", uploaded, new DeprecateModel({ provider: PROVIDER }), "NotVerified"],
    ["a rejected model", rejectedEvents, new DeprecateModel({ provider: PROVIDER }), "NotVerified"],
    ["a deprecated model", deprecated, new DeprecateModel({ provider: PROVIDER }), "AlreadyDeprecated"]
  ])("refuses to deprecate %s", (_, given, cmd, reason) => {
    spec.given(given).when(cmd).thenRejects("DeprecationRejected", reason as never)
  })
})

describe("ExpireVerification", () => {
  it("a model still Pending at its deadline ends Rejected (TimedOut)", () => {
    spec.given(verified).when(new ExpireVerification({ at: DEADLINE })).then((events, s) => {
      const e = events[0] as ModelRejected
      expect([e._tag, e.cause, e.check, s.status]).toEqual(["ModelRejected", "TimedOut", null, "Rejected"])
      expect(e.reason).toBe(`verification timed out at ${DEADLINE} (deadline ${DEADLINE}): 1 of 3 validators attested, 2 agreeing needed`)
    })
  })
  it("before the deadline: DeadlineNotReached", () =>
    spec.given(verified).when(new ExpireVerification({ at: DEADLINE - 1 })).thenRejects("ExpiryRejected", "DeadlineNotReached"))
  it("a model already verified: NotPending", () =>
    spec.given(verifiedEvents).when(new ExpireVerification({ at: DEADLINE })).thenRejects("ExpiryRejected", "NotPending"))
  it("no model: ModelAbsent", () => spec.given([]).when(new ExpireVerification({ at: DEADLINE })).thenRejects("ExpiryRejected", "ModelAbsent"))
})

describe("replay", () => {
  it("the decided events, through their JSON encoding, fold to the decided state", () => {
    for (const commands of [
      [upload(), attest(V1), attest(V2, accepted(FP_B)), attest(V3), new UpdatePrice({ provider: PROVIDER, price: 7n }), new DeprecateModel({ provider: PROVIDER })],
      [upload(), attest(V1, rejected()), new ExpireVerification({ at: DEADLINE + 5 })],
      [upload(), new BeginVerification({ validator: V1!, at: T0 + 1 }), new BeginVerification({ validator: V1!, at: T0 + 2 }), attest(V1)]
    ]) {
      const { state, events } = runAll(models, commands)
      expect(fold(models.evolve, models.initialState, throughJson(ModelEvent, events))).toEqual(state)
    }
  })
  it("evolve refuses a stream that breaks the lifecycle", () => {
    expect(() => fold(models.evolve, models.initialState, [...verifiedEvents, verifiedEvents.at(-1)!])).toThrow(/invariant/)
  })
})

// ---------------------------------------------------------------- properties

const FINGERPRINTS = [FP_A, FP_B, FP_C]
const verdictArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0, 0, 0, 1, 2).map((i) => accepted(FINGERPRINTS[i]!) as Verdict.ModelVerdict) },
  { weight: 1, arbitrary: fc.constantFrom<Verdict.RejectionCheck>("NotOnnx", "Timeout").map((c) => rejected(c) as Verdict.ModelVerdict) }
)

const setupArb = fc
  .integer({ min: 1, max: 7 })
  .chain((n) =>
    fc.record({
      k: fc.integer({ min: 1, max: n }),
      verdicts: fc.array(verdictArb, { minLength: n, maxLength: n }),
      order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
      attesting: fc.integer({ min: 0, max: n })
    })
  )

const validatorSet = (n: number) => Array.from({ length: n }, (_, i) => address(`validator-${i}`))

/** Attests in `order`, stopping at the first refusal; the state and whether all attestations before the end were taken. */
const attestAll = (s0: ModelState, decider: ReturnType<typeof makeModelDecider>, validators: ReadonlyArray<ReturnType<typeof address>>, verdicts: ReadonlyArray<Verdict.ModelVerdict>, order: ReadonlyArray<number>) => {
  let s = s0
  for (const i of order) {
    const r = decider.decide(s, attest(validators[i]!, verdicts[i]!))
    if (s.status === "Pending") {
      expect(Either.isRight(r)).toBe(true)
      if (Either.isRight(r)) s = fold(decider.evolve, s, r.right)
    } else {
      expect(Either.isLeft(r) && r.left.reason).toBe("NotPending")
    }
  }
  return s
}

describe("properties", () => {
  it("once every validator has attested, the model is Verified or Rejected, and only as the quorum says", () => {
    fc.assert(
      fc.property(setupArb, ({ k, verdicts, order }) => {
        const validators = validatorSet(verdicts.length)
        const decider = makeModelDecider({ ...rules(), validators, attestationQuorum: k })
        const s = attestAll(run(decider, decider.initialState, upload()).state, decider, validators, verdicts, order)
        expect(["Verified", "Rejected"]).toContain(s.status)
        const agreeing = (fp: Hash32) => verdicts.filter((v) => v._tag === "ModelAccepted" && v.referenceFingerprint === fp).length
        const rejections = verdicts.filter((v) => v._tag === "ModelRejected").length
        if (s.status === "Verified") expect(agreeing(s.referenceFingerprint!)).toBeGreaterThanOrEqual(k)
        if (s.rejection?.cause === "Attested") expect(rejections).toBeGreaterThanOrEqual(k)
        // With k a majority, a model that k validators accept with one fingerprint is never rejected.
        if (2 * k > verdicts.length && FINGERPRINTS.some((fp) => agreeing(fp) >= k)) expect(s.status).toBe("Verified")
      }),
      { numRuns: 500 }
    )
  })
  it("past the deadline, whatever attested, expiry leaves nothing Pending", () => {
    fc.assert(
      fc.property(setupArb, fc.integer({ min: 0, max: 10 * TIMEOUT_MS }), ({ k, verdicts, order, attesting }, late) => {
        const validators = validatorSet(verdicts.length)
        const decider = makeModelDecider({ ...rules(), validators, attestationQuorum: k })
        let s = attestAll(run(decider, decider.initialState, upload()).state, decider, validators, verdicts, order.slice(0, attesting))
        const expiry = decider.decide(s, new ExpireVerification({ at: DEADLINE + late }))
        if (s.status === "Pending") {
          expect(Either.isRight(expiry)).toBe(true)
          if (Either.isRight(expiry)) s = fold(decider.evolve, s, expiry.right)
          expect(s.rejection?.cause).toBe("TimedOut")
        } else {
          expect(Either.isLeft(expiry) && expiry.left.reason).toBe("NotPending")
        }
        expect(["Verified", "Rejected"]).toContain(s.status)
      }),
      { numRuns: 300 }
    )
  })
})

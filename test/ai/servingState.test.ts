/**
 * What serving sees of a model (`servingStateOf`): the AI ledger's status
 * and price over this node's own verification. Verified — servable — only
 * when the ledger Verified it AND this node's own verdict carries the
 * ledger's reference fingerprint; whatever this node's own record says, the
 * ledger's Pending, Rejected and Deprecated hold.
 */
import { describe, expect, it } from "@effect/vitest"
import { HashMap, Schema } from "effect"
import type { Hash32 } from "../../domain/chain/hash.js"
import { ModelManifest } from "../../domain/ai/manifest.js"
import * as Verdict from "../../domain/ai/verdict.js"
import { AttestModel, UploadModel, type ModelRules } from "../../domain/ai/model/commands.js"
import { isServable, makeModelDecider, type ModelState } from "../../domain/ai/model/decide.js"
import type { AiModel, ModelStatus } from "../../domain/ai/ledger/state.js"
import { DEFAULT_GPU_CLASSES } from "../../domain/ai/worker/gpuClass.js"
import { servingStateOf } from "../../src/node/ai/ModelRegistry.js"
import { address, hash, runAll, T0 } from "./deciders/support.js"

const SELF = address("this-node")
const PROVIDER = address("provider")
const WEIGHTS = hash("weights")
const [FP_A, FP_B] = [hash("fingerprint-a"), hash("fingerprint-b")]
const rules: ModelRules = { validators: [SELF], attestationQuorum: 1, verificationTimeoutMs: 60_000, gpuClasses: DEFAULT_GPU_CLASSES }
const decider = makeModelDecider(rules)
const manifest = Schema.decodeUnknownSync(ModelManifest)({ name: "tiny", version: "1", pricePerCall: "25", minGpuClass: "CPU", license: "MIT", description: "x" })
const upload = new UploadModel({ modelId: hash("register-tx"), provider: PROVIDER, manifest, weightsHash: WEIGHTS, sizeBytes: 4096, at: T0 })

const accepted = (fingerprint: Hash32) =>
  new Verdict.ModelAccepted({
    modelHash: WEIGHTS,
    sizeBytes: 4096,
    signature: { inputs: [{ name: "x", type: "float32", dims: [1, 4] }], outputs: [{ name: "y", type: "float32", dims: [1, 4] }] },
    referenceFingerprint: fingerprint,
    smoke: new Verdict.SmokePassed({ fingerprint, outputs: [], loadMillis: 3, runMillis: 0.2, totalMillis: 40, peakRssBytes: 1 })
  })
const rejected = new Verdict.ModelRejected({ modelHash: WEIGHTS, check: "OperatorNotAllowed", reason: "no" })

/** This node's own record: registered only, or with its verdict. */
const own = (verdict?: Verdict.ModelVerdict): ModelState =>
  runAll(decider, verdict === undefined ? [upload] : [upload, new AttestModel({ validator: SELF, verdict, at: T0 + 1 })]).state

const ledger = (status: ModelStatus, fingerprint: Hash32 | null, over: Partial<AiModel> = {}): AiModel => ({
  provider: PROVIDER,
  weightsHash: WEIGHTS,
  sizeBytes: 4096n,
  manifest: "{}",
  price: 99n,
  status,
  registeredHeight: 1,
  attestations: HashMap.empty(),
  fingerprint,
  verified: fingerprint !== null,
  reason: status === "Rejected" ? "rejected by members holding 1 of 1 stake" : null,
  ...over
})

describe("servingStateOf: the ledger's status over this node's own verdict", () => {
  const cases: ReadonlyArray<[string, ModelState, AiModel | undefined, string, boolean]> = [
    ["ledger Verified, own verdict the same fingerprint", own(accepted(FP_A)), ledger("Verified", FP_A), "Verified", true],
    ["ledger Verified, own verdict another fingerprint", own(accepted(FP_B)), ledger("Verified", FP_A), "Rejected", false],
    ["ledger Verified, own verdict a rejection", own(rejected), ledger("Verified", FP_A), "Rejected", false],
    ["ledger Verified, no own verdict yet", own(), ledger("Verified", FP_A), "Pending", false],
    ["ledger Pending, own verdict accepted (a local quorum of one decides nothing)", own(accepted(FP_A)), ledger("Pending", null), "Pending", false],
    ["ledger Rejected, own verdict accepted", own(accepted(FP_A)), ledger("Rejected", null), "Rejected", false],
    ["ledger Deprecated after Verified, own verdict agrees", own(accepted(FP_A)), ledger("Deprecated", FP_A), "Verified", false],
    ["not on the ledger (yet)", own(accepted(FP_A)), undefined, "Pending", false]
  ]
  it.each(cases)("%s", (_, mine, m, status, servable) => {
    const s = servingStateOf(mine, m, SELF)
    expect([s.status, isServable(s)]).toEqual([status, servable])
    if (m !== undefined) expect([s.price, s.referenceFingerprint]).toEqual([m.price, m.fingerprint])
  })

  it("a ledger rejection's reason is the view's", () => {
    const s = servingStateOf(own(), ledger("Rejected", null, { reason: "deadline" }), SELF)
    expect([s.rejection?.cause, s.rejection?.reason]).toEqual(["TimedOut", "deadline"])
  })
})

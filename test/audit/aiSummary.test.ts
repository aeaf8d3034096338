/**
 * The auditor's model summary counts the AI ledger's verdicts (the
 * committee's, on the AI shard's stream), not the audited node's own
 * verifications: a node whose own sandbox verified a model the committee
 * rejected still reports it Rejected; models it never verified count.
 */
import { describe, expect, it } from "vitest"
import { Schema } from "effect"
import { ModelManifest } from "../../domain/ai/manifest.js"
import { AttestModel, UploadModel, type ModelRules } from "../../domain/ai/model/commands.js"
import { makeModelDecider } from "../../domain/ai/model/decide.js"
import { ModelEvent } from "../../domain/ai/model/events.js"
import * as Verdict from "../../domain/ai/verdict.js"
import { DEFAULT_GPU_CLASSES } from "../../domain/ai/worker/gpuClass.js"
import { AiModelDeprecated, AiModelRegistered, AiModelRejected, AiModelVerified } from "../../domain/ai/ledger/events.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { makeAiReplay } from "../../src/audit/aiReplay.js"
import type { RawEventRow } from "../../infra/eventstore/RawEventRow.js"
import { address, hash, runAll, T0 } from "../ai/deciders/support.js"

const SELF = address("this-node")
const PROVIDER = address("provider")
const WEIGHTS = hash("weights")
const FP = hash("fingerprint")
const rules: ModelRules = { validators: [SELF], attestationQuorum: 1, verificationTimeoutMs: 60_000, gpuClasses: DEFAULT_GPU_CLASSES }
const manifest = Schema.decodeUnknownSync(ModelManifest)({ name: "tiny", version: "1", pricePerCall: "25", minGpuClass: "CPU", license: "MIT", description: "x" })
const encode = Schema.encodeSync(ModelEvent)

const accepted = new Verdict.ModelAccepted({
  modelHash: WEIGHTS,
  sizeBytes: 4096,
  signature: { inputs: [{ name: "x", type: "float32", dims: [1, 4] }], outputs: [{ name: "y", type: "float32", dims: [1, 4] }] },
  referenceFingerprint: FP,
  smoke: new Verdict.SmokePassed({ fingerprint: FP, outputs: [], loadMillis: 3, runMillis: 0.2, totalMillis: 40, peakRssBytes: 1 })
})

const registered = (model: Hash32) =>
  new AiModelRegistered({ model, provider: PROVIDER, weightsHash: WEIGHTS, sizeBytes: 4096n, manifest: JSON.stringify(Schema.encodeSync(ModelManifest)(manifest)), price: 25n, registeredHeight: 1 })

describe("the audit's model summary", () => {
  it("counts the AI ledger's verdicts, not the node's own: own Verified but ledger Rejected is Rejected; never verified here still counts", () => {
    const [rejectedByCommittee, verified, pending, deprecated] = [hash("m-rejected"), hash("m-verified"), hash("m-pending"), hash("m-deprecated")]
    const replay = makeAiReplay()
    // This node's own record of one model: its sandbox accepted it.
    const own = runAll(makeModelDecider(rules), [
      new UploadModel({ modelId: rejectedByCommittee, provider: PROVIDER, manifest, weightsHash: WEIGHTS, sizeBytes: 4096, at: T0 }),
      new AttestModel({ validator: SELF, verdict: accepted, at: T0 + 1 })
    ])
    expect(own.state.status).toBe("Verified")
    own.events.forEach((e, revision) => {
      const { _tag, ...data } = encode(e) as { readonly _tag: string }
      const row: RawEventRow = { stream: `model-${rejectedByCommittee}`, revision, position: revision + 1, id: `m:${revision}`, type: _tag, dataJson: JSON.stringify(data), metadataJson: "{}", prevHash: "", hash: "" }
      replay.add(row, "model", JSON.parse(row.dataJson) as Record<string, unknown>)
    })
    // What the AI ledger decided, by the committee.
    for (const m of [rejectedByCommittee, verified, pending, deprecated]) replay.chainEvent(registered(m))
    replay.chainEvent(new AiModelRejected({ model: rejectedByCommittee, reason: "rejected by members holding 3 of 4 stake" }))
    replay.chainEvent(new AiModelVerified({ model: verified, provider: PROVIDER, fingerprint: FP, at: T0 + 5 }))
    replay.chainEvent(new AiModelVerified({ model: deprecated, provider: PROVIDER, fingerprint: FP, at: T0 + 5 }))
    replay.chainEvent(new AiModelDeprecated({ model: deprecated }))

    expect(replay.summary().models).toEqual({ total: 4, byStatus: { Rejected: 1, Verified: 2, Pending: 1 }, deprecated: 1 })
  })
})

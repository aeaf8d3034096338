/**
 * A node's verdict on uploaded weights reaches the AI ledger as its one
 * signed `model.attest`, and the model's status is the ledger's: a good
 * model ends Verified with the node's reference fingerprint (and is served
 * here, since this node's own verdict agrees); a hostile file ends Rejected
 * through the node's rejected attestation. A real in-process chain node
 * (single producer: the AI shard's proposer is the one attestor), a real
 * sandbox.
 */
import { describe, expect, it } from "@effect/vitest"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, HashMap } from "effect"
import { isServable } from "../../domain/ai/model/state.js"
import { devKey } from "../../domain/chain/keys.js"
import { BlobStore } from "../../infra/blobstore/BlobStore.js"
import { makeFsBlobStore } from "../../infra/blobstore/FsBlobStore.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { SandboxedSmokeRun } from "../../infra/inference/SandboxedSmokeRun.js"
import { makeSandboxedSmokeRun } from "../../infra/inference/SandboxedSmokeRun.js"
import { DEFAULT_AI_SETTINGS, type AiConfig } from "../../src/node/ai/AiConfig.js"
import { makeModelAttestor } from "../../src/node/ai/ModelAttestor.js"
import { makeModelRegistry, ownVerdictOf } from "../../src/node/ai/ModelRegistry.js"
import { addModel, manifest, TEXT_FILE } from "./support/models.js"
import { AI_SHARD, ATTESTOR, ledgerModel, registerOnChain, registeredEvent, startChain, waitFor } from "./support/registryOnChain.js"

/** A chain, a registry attesting to it, the blob store under a temp dir. */
const setup = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "topai-attest-test-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  mkdirSync(join(dir, "verify"))
  const blobs = makeFsBlobStore(join(dir, "blobs"))
  const { chain, store } = yield* startChain(MemoryEventStore.makeStorage())
  const config: AiConfig = { ...DEFAULT_AI_SETTINGS, validatorKey: devKey(0), attestorKey: ATTESTOR, settlerKey: ATTESTOR, verify: { tmpDir: join(dir, "verify") } }
  const registry = yield* makeModelRegistry(config, yield* makeModelAttestor(chain, ATTESTOR)).pipe(
    Effect.provideService(EventStore, store),
    Effect.provideService(BlobStore, blobs),
    Effect.provideService(SandboxedSmokeRun, makeSandboxedSmokeRun())
  )
  /** Registers `bytes` on chain, hands the registration to the registry (twice: a replay), stores the weights: the ledger's verdict. */
  const verdictOn = (bytes: Uint8Array) =>
    Effect.gen(function* () {
      const id = yield* registerOnChain(chain, bytes, manifest())
      const registered = yield* registeredEvent(chain, id).pipe(Effect.provideService(EventStore, store))
      yield* registry.onRegistered(registered, Date.now())
      yield* registry.onRegistered(registered, Date.now())
      expect((yield* registry.state(id)).status).toBe("Pending")
      yield* blobs.put(bytes)
      yield* registry.onWeightsStored(registered.weightsHash)
      const m = yield* waitFor(
        `the ledger's verdict on ${id}`,
        ledgerModel(chain, id).pipe(Effect.map((m) => (m === undefined || m.status === "Pending" ? undefined : m))),
        60_000
      )
      // Asked again (a replay, new weights): nothing more is submitted.
      yield* registry.onRegistered(registered, Date.now())
      yield* registry.onWeightsStored(registered.weightsHash)
      yield* Effect.sleep("300 millis")
      const events = yield* store.readStream(`shard-${AI_SHARD}`)
      const attests = events.filter((e) => e.type === "ModelAttested" && (e.data as { model: string }).model === id)
      const refused = events.filter((e) => e.type === "TransactionRejected")
      return { id, m, attests, refused }
    })
  return { registry, verdictOn, chain, store }
})

describe("a node's verdict on a model is its one model.attest; the status is the AI ledger's", () => {
  it.live("a good model: one verified attestation, the ledger Verified with the node's fingerprint, served here", () =>
    Effect.gen(function* () {
      const { registry, verdictOn } = yield* setup
      const { id, m, attests, refused } = yield* verdictOn(addModel())
      const own = ownVerdictOf(yield* registry.own(id), ATTESTOR.publicKey.address)
      expect(own?._tag).toBe("ModelAccepted")
      const fingerprint = own?._tag === "ModelAccepted" ? own.referenceFingerprint : undefined
      expect([m.status, m.fingerprint]).toEqual(["Verified", fingerprint])
      expect([...m.attestations]).toEqual([[ATTESTOR.publicKey.address, { verdict: "verified", fingerprint, reason: null }]])
      expect(attests.map((e) => (e.data as { validator: string }).validator)).toEqual([ATTESTOR.publicKey.address])
      expect(refused).toEqual([])
      const served = yield* registry.state(id)
      expect([served.status, served.price, isServable(served)]).toEqual(["Verified", m.price, true])
    }).pipe(Effect.scoped),
    90_000
  )

  it.live("a hostile file (not ONNX): one rejected attestation with the node's reason, the ledger Rejected, not served", () =>
    Effect.gen(function* () {
      const { registry, verdictOn } = yield* setup
      const { id, m, attests, refused } = yield* verdictOn(TEXT_FILE)
      const own = ownVerdictOf(yield* registry.own(id), ATTESTOR.publicKey.address)
      expect(own?._tag).toBe("ModelRejected")
      const reason = own?._tag === "ModelRejected" ? `${own.check}: ${own.reason}`.slice(0, 200) : undefined
      expect(m.status).toBe("Rejected")
      expect([...m.attestations]).toEqual([[ATTESTOR.publicKey.address, { verdict: "rejected", fingerprint: null, reason }]])
      expect(attests).toHaveLength(1)
      expect(refused).toEqual([])
      const served = yield* registry.state(id)
      expect([served.status, isServable(served)]).toEqual(["Rejected", false])
    }).pipe(Effect.scoped),
    90_000
  )

  it.live("a second model declaring weights already stored: verified and attested on its registration alone", () =>
    Effect.gen(function* () {
      const { registry, verdictOn, chain, store } = yield* setup
      const bytes = addModel()
      const first = yield* verdictOn(bytes)
      expect(first.m.status).toBe("Verified")
      const id = yield* registerOnChain(chain, bytes, manifest({ name: "same-weights" }))
      yield* registry.onRegistered(yield* registeredEvent(chain, id).pipe(Effect.provideService(EventStore, store)), Date.now())
      const m = yield* waitFor(
        `the ledger's verdict on ${id}`,
        ledgerModel(chain, id).pipe(Effect.map((m) => (m === undefined || m.status === "Pending" ? undefined : m))),
        60_000
      )
      expect([m.status, m.fingerprint, HashMap.size(m.attestations)]).toEqual(["Verified", first.m.fingerprint, 1])
    }).pipe(Effect.scoped),
    90_000
  )
})

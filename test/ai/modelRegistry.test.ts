/**
 * A node restarted with a model whose verification took it down: the
 * attempt was recorded before the sandbox started, so after
 * VERIFICATION_ATTEMPTS_MAX such starts the node attests "verification
 * crashed" instead of verifying (and dying) once more. The crash is a
 * sandbox that never answers; a restart is a new registry over the same
 * event storage and blob directory.
 */
import { describe, expect, it } from "@effect/vitest"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Scope, Exit } from "effect"
import { VERIFICATION_ATTEMPTS_MAX } from "../../domain/ai/model/decide.js"
import { devKey } from "../../domain/chain/keys.js"
import { BlobStore } from "../../infra/blobstore/BlobStore.js"
import { makeFsBlobStore } from "../../infra/blobstore/FsBlobStore.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { SandboxedSmokeRun } from "../../infra/inference/SandboxedSmokeRun.js"
import { DEFAULT_AI_SETTINGS, type AiConfig } from "../../src/node/ai/AiConfig.js"
import { makeModelAttestor } from "../../src/node/ai/ModelAttestor.js"
import { makeModelRegistry } from "../../src/node/ai/ModelRegistry.js"
import { addModel, manifest } from "./support/models.js"
import { ATTESTOR, ledgerModel, registerOnChain, registeredEvent, startChain, waitFor } from "./support/registryOnChain.js"

const config: AiConfig = { ...DEFAULT_AI_SETTINGS, validatorKey: devKey(0), attestorKey: ATTESTOR, settlerKey: ATTESTOR }

describe("ModelRegistry: a verification that never finishes", () => {
  it.live(`is recorded before it starts; after ${VERIFICATION_ATTEMPTS_MAX} restarts the node attests "verification crashed" without running it again, and the ledger rejects the model`, () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "topai-registry-test-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const storage = MemoryEventStore.makeStorage()
      const blobs = makeFsBlobStore(dir)
      const bytes = addModel()
      yield* blobs.put(bytes)
      // The chain lives through the registry's lives: only the AI services restart.
      const { chain, store: chainStore } = yield* startChain(MemoryEventStore.makeStorage())
      const id = yield* registerOnChain(chain, bytes, manifest())
      const registered = yield* registeredEvent(chain, id).pipe(Effect.provideService(EventStore, chainStore))
      let sandboxRuns = 0
      // Stands in for a verification that takes the node down: it never answers.
      const hangingSandbox = { run: () => Effect.sync(() => void sandboxRuns++).pipe(Effect.zipRight(Effect.never)) }

      /** One node life: a registry over the same storage, the chain's registration replayed to it. */
      const start = Effect.gen(function* () {
        const scope = yield* Scope.make()
        const store = yield* MemoryEventStore.makeWith(storage)
        const attestor = yield* makeModelAttestor(chain, config.attestorKey)
        // The model's copy for the (hanging) sandbox goes under the test's dir, removed with it: these lives are abandoned, never closed.
        const registry = yield* makeModelRegistry({ ...config, verify: { tmpDir: dir } }, attestor).pipe(
          Effect.provideService(EventStore, store),
          Effect.provideService(BlobStore, blobs),
          Effect.provideService(SandboxedSmokeRun, hangingSandbox),
          Scope.extend(scope)
        )
        yield* registry.onRegistered(registered, Date.now())
        return { registry, scope }
      })

      for (let life = 1; life <= VERIFICATION_ATTEMPTS_MAX; life++) {
        const { registry, scope } = yield* start
        const attempts = yield* waitFor(
          `attempt ${life}`,
          registry.own(id).pipe(Effect.map((s) => (s.attempts.get(registry.validator) === life ? life : undefined)))
        )
        expect(attempts).toBe(life)
        yield* waitFor(`sandbox run ${life}`, Effect.sync(() => (sandboxRuns === life ? true : undefined)))
        yield* Scope.close(scope, Exit.void) // the node dies mid-verification
      }

      const { registry, scope } = yield* start
      const m = yield* waitFor(
        "the ledger's verdict",
        ledgerModel(chain, id).pipe(Effect.map((m) => (m === undefined || m.status === "Pending" ? undefined : m)))
      )
      const reason = `VerificationCrashed: verification crashed: ${VERIFICATION_ATTEMPTS_MAX} attempts by this validator began and never finished`
      expect(m.status).toBe("Rejected")
      expect([...m.attestations]).toEqual([[ATTESTOR.publicKey.address, { verdict: "rejected", fingerprint: null, reason }]])
      const served = yield* registry.state(id)
      expect([served.status, served.rejection?.reason]).toEqual(["Rejected", m.reason])
      expect(sandboxRuns).toBe(VERIFICATION_ATTEMPTS_MAX) // the last life never ran it
      yield* Scope.close(scope, Exit.void)
    }).pipe(Effect.scoped),
    60_000
  )
})

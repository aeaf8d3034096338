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
import { ModelRegistered } from "../../domain/chain/events.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { devKey } from "../../domain/chain/keys.js"
import { BlobStore } from "../../infra/blobstore/BlobStore.js"
import { makeFsBlobStore } from "../../infra/blobstore/FsBlobStore.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { SandboxedSmokeRun } from "../../infra/inference/SandboxedSmokeRun.js"
import { modelHashOf } from "../../infra/inference/verifyModel.js"
import { DEFAULT_AI_SETTINGS, type AiConfig } from "../../src/node/ai/AiConfig.js"
import { makeModelRegistry } from "../../src/node/ai/ModelRegistry.js"
import { addModel, manifest } from "./support/models.js"

const config: AiConfig = { ...DEFAULT_AI_SETTINGS, validatorKey: devKey(0), settlerKey: devKey(0) }

describe("ModelRegistry: a verification that never finishes", () => {
  it.live(`is recorded before it starts; after ${VERIFICATION_ATTEMPTS_MAX} restarts the model is rejected "verification crashed" without running again`, () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "topai-registry-test-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const storage = MemoryEventStore.makeStorage()
      const blobs = makeFsBlobStore(dir)
      const bytes = addModel()
      const weightsHash = modelHashOf(bytes)
      yield* blobs.put(bytes)
      const registered = new ModelRegistered({
        txHash: ("0x" + "ab".repeat(32)) as Hash32,
        provider: devKey(1).publicKey.address,
        weightsHash,
        sizeBytes: BigInt(bytes.length),
        manifest: JSON.stringify(manifest())
      })
      let sandboxRuns = 0
      // Stands in for a verification that takes the node down: it never answers.
      const hangingSandbox = { run: () => Effect.sync(() => void sandboxRuns++).pipe(Effect.zipRight(Effect.never)) }

      /** One node life: a registry over the same storage, the chain's registration replayed to it. */
      const start = Effect.gen(function* () {
        const scope = yield* Scope.make()
        const store = yield* MemoryEventStore.makeWith(storage)
        // The model's copy for the (hanging) sandbox goes under the test's dir, removed with it: these lives are abandoned, never closed.
        const registry = yield* makeModelRegistry({ ...config, verify: { tmpDir: dir } }).pipe(
          Effect.provideService(EventStore, store),
          Effect.provideService(BlobStore, blobs),
          Effect.provideService(SandboxedSmokeRun, hangingSandbox),
          Scope.extend(scope)
        )
        yield* registry.onRegistered(registered, Date.now())
        return { registry, scope }
      })
      const waitFor = <A>(what: string, probe: Effect.Effect<A | undefined>) =>
        Effect.gen(function* () {
          const until = Date.now() + 10_000
          for (;;) {
            const a = yield* probe
            if (a !== undefined) return a
            if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
            yield* Effect.sleep("20 millis")
          }
        })

      for (let life = 1; life <= VERIFICATION_ATTEMPTS_MAX; life++) {
        const { registry, scope } = yield* start
        const attempts = yield* waitFor(
          `attempt ${life}`,
          registry.state(registered.txHash).pipe(Effect.map((s) => (s.attempts.get(registry.validator) === life ? life : undefined)))
        )
        expect(attempts).toBe(life)
        yield* waitFor(`sandbox run ${life}`, Effect.sync(() => (sandboxRuns === life ? true : undefined)))
        yield* Scope.close(scope, Exit.void) // the node dies mid-verification
      }

      const { registry, scope } = yield* start
      const s = yield* waitFor(
        "the rejection",
        registry.state(registered.txHash).pipe(Effect.map((s) => (s.status === "Pending" ? undefined : s)))
      )
      expect([s.status, s.rejection?.check]).toEqual(["Rejected", "VerificationCrashed"])
      expect(s.rejection?.reason).toBe(
        `rejected by 1 of 1 validators: VerificationCrashed: verification crashed: ${VERIFICATION_ATTEMPTS_MAX} attempts by this validator began and never finished`
      )
      expect(sandboxRuns).toBe(VERIFICATION_ATTEMPTS_MAX) // the last life never ran it
      yield* Scope.close(scope, Exit.void)
    }).pipe(Effect.scoped)
  )
})

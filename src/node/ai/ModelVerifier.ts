/**
 * A node that verifies models and attests them, without serving the AI
 * shard's calls: the model registry (its own verification, its
 * `model.attest`), fed by the AI shard's model events, and weights fetched
 * from its peers (the nodes uploads go to). A BFT devnet's validators that
 * do not run the whole AI node run this, so the AI shard's committee — all
 * of them — attests each model.
 */
import { Clock, Effect, Layer, Schema } from "effect"
import { AiModelRegistered } from "../../../domain/ai/ledger/events.js"
import type { BlobStore } from "../../../infra/blobstore/BlobStore.js"
import type { EventStore } from "../../../infra/eventstore/EventStore.js"
import type { SandboxedSmokeRun } from "../../../infra/inference/SandboxedSmokeRun.js"
import { ChainNode } from "../ChainNode.js"
import { followLog } from "../followLog.js"
import type { AiConfig } from "./AiConfig.js"
import { makeModelAttestor } from "./ModelAttestor.js"
import { makeModelRegistry } from "./ModelRegistry.js"

const decodeRegistered = Schema.decodeUnknownSync(AiModelRegistered)

export const makeModelVerifier = (config: AiConfig) =>
  Effect.gen(function* () {
    const attestor = yield* makeModelAttestor(yield* ChainNode, config.attestorKey)
    const models = yield* makeModelRegistry(config, attestor)
    yield* followLog("model verifier", (e) =>
      Effect.gen(function* () {
        if (!e.stream.startsWith("shard-")) return
        const data = e.data as { readonly [key: string]: unknown }
        switch (e.type) {
          case "AiModelRegistered":
            return yield* models.onRegistered(decodeRegistered({ ...data, _tag: e.type }), yield* Clock.currentTimeMillis)
          case "AiModelVerified":
          case "AiModelRejected":
            return yield* models.onVerdict(String(data["model"]))
        }
      }).pipe(Effect.catchAllDefect((d) => Effect.logError(`model verifier: event ${e.stream}@${e.revision} not applied`, d)))
    )
    return models
  })

export const ModelVerifierLive = (config: AiConfig): Layer.Layer<never, never, ChainNode | EventStore | BlobStore | SandboxedSmokeRun> =>
  Layer.scopedDiscard(makeModelVerifier(config))

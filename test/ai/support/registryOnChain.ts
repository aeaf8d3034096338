/**
 * A model registry over a real in-process chain node (single producer, the
 * dev genesis, in-memory events): models are registered by `model.register`
 * transactions, and the registry's attestations are `model.attest`
 * transactions the AI ledger executes.
 */
import { Effect, Either } from "effect"
import { modelOf } from "../../../domain/ai/ledger/state.js"
import type { ModelManifestEncoded } from "../../../domain/ai/manifest.js"
import { GenesisConfig } from "../../../domain/chain/genesis.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { devKey, devProposerKey, type PrivateKey } from "../../../domain/chain/keys.js"
import { aiShardOf } from "../../../domain/chain/sharding.js"
import { signTransaction, TransactionBody } from "../../../domain/chain/transaction.js"
import { decodeEventOf } from "../../../domain/streamEvents.js"
import { SignatureVerifierInThread } from "../../../infra/crypto/SignatureVerifier.js"
import { EventStore } from "../../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../../infra/eventstore/MemoryEventStore.js"
import { modelHashOf } from "../../../infra/inference/verifyModel.js"
import type { ChainNodeShape } from "../../../src/node/ChainNode.js"
import { makeChainNode } from "../../../src/node/ChainNodeLive.js"

export const CHAIN_ID = 7007n
export const GENESIS = new GenesisConfig({ chainId: CHAIN_ID, timestamp: 0, devAccountCount: 4 })
export const AI_SHARD = aiShardOf(GENESIS.transferShards)
/** The single producer's AI-shard key: the one attestor of a single-producer chain. */
export const ATTESTOR: PrivateKey = devProposerKey(AI_SHARD)
export const PROVIDER: PrivateKey = devKey(1)

/** An in-process chain node over `storage` (the store is the chain's and, given to the registry, the registry's). */
export const startChain = (storage: ReturnType<typeof MemoryEventStore.makeStorage>) =>
  Effect.gen(function* () {
    const store = yield* MemoryEventStore.makeWith(storage)
    const chain = yield* makeChainNode({ genesis: GENESIS }).pipe(
      Effect.provideService(EventStore, store),
      Effect.provide(SignatureVerifierInThread)
    )
    return { chain: chain as ChainNodeShape, store }
  })

/** `model.register` of `bytes` under `manifest` by the provider (fee 0, its AI-shard nonce), waited for: the model's id. */
export const registerOnChain = (chain: ChainNodeShape, bytes: Uint8Array, manifest: ModelManifestEncoded, provider: PrivateKey = PROVIDER) =>
  Effect.gen(function* () {
    const account = yield* chain.account(provider.publicKey.address, AI_SHARD).pipe(Effect.orDie)
    const tx = signTransaction(
      new TransactionBody({
        chainId: CHAIN_ID,
        nonce: account.pendingNonce,
        fee: 0n,
        payload: { kind: "model.register", weightsHash: modelHashOf(bytes), sizeBytes: BigInt(bytes.length), manifest: JSON.stringify(manifest) }
      }),
      provider
    )
    const r = yield* chain.submit(bytesToHex(tx.encoded), true).pipe(Effect.orDie)
    if (r.status !== "included") return yield* Effect.dieMessage(`model.register ${tx.hash} is ${r.status}`)
    return tx.hash
  })

/** The ledger's model. */
export const ledgerModel = (chain: ChainNodeShape, id: string) =>
  Effect.map(chain.ledger(AI_SHARD).pipe(Effect.orDie), (l) => (l.ai === null ? undefined : modelOf(l.ai, id as Hash32)))

/** The AI shard's event for a registered model, as the projection hands it to the registry. */
export const registeredEvent = (chain: ChainNodeShape, id: string) =>
  Effect.gen(function* () {
    const m = yield* ledgerModel(chain, id)
    if (m === undefined) return yield* Effect.dieMessage(`the ledger has no model ${id}`)
    const events = yield* (yield* EventStore).readStream(`shard-${AI_SHARD}`).pipe(Effect.orDie)
    for (const x of events) {
      if (x.type !== "AiModelRegistered") continue
      const e = Either.getOrThrow(decodeEventOf("shard", x.type, x.data))
      if (e._tag === "AiModelRegistered" && e.model === id) return e
    }
    return yield* Effect.dieMessage(`no AiModelRegistered for ${id} in shard-${AI_SHARD}`)
  })

/** Polls `probe` until it answers, for at most `ms`. */
export const waitFor = <A, E, R>(what: string, probe: Effect.Effect<A | undefined, E, R>, ms = 20_000) =>
  Effect.gen(function* () {
    const until = Date.now() + ms
    for (;;) {
      const a = yield* probe
      if (a !== undefined) return a
      if (Date.now() > until) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("20 millis")
    }
  })

export type { Hash32 }

/**
 * Validators of one BFT chain in one process, over the in-memory network,
 * each with its own SQLite store: start, stop (close its scope: a crash as
 * far as the others can tell) and restart from its store.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import type { BftSeat } from "../../actors/BftSeat.js"
import { consensusStream } from "../../actors/BftSeat.js"
import { GenesisConfig } from "../../domain/chain/genesis.js"
import { devValidatorKeys, devValidators } from "../../domain/chain/validators.js"
import { defaultEconomics } from "../../domain/economics/config.js"
import { DEVNET_GOVERNANCE } from "../../domain/chain/genesis.js"
import { EconomicsConfig } from "../../domain/economics/config.js"
import { SignatureVerifier, SignatureVerifierInThread } from "../../infra/crypto/SignatureVerifier.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import type { EventStoreShape } from "../../infra/eventstore/EventStore.js"
import { SqliteEventStore } from "../../infra/eventstore/SqliteEventStore.js"
import { makeMemoryNetworkHub } from "../../infra/network/MemoryConsensusNetwork.js"
import type { MemoryNetworkHub } from "../../infra/network/MemoryConsensusNetwork.js"
import type { ChainNodeShape } from "../../src/node/ChainNode.js"
import { makeChainNodeWithSeats } from "../../src/node/ChainNodeLive.js"

export const BFT_CHAIN_ID = 7_701n

export interface HarnessOptions {
  readonly validators: number
  readonly transferShards?: number
  readonly beaconIntervalMs?: number
  readonly idleIntervalMs?: number
  readonly baseTimeoutMs?: number
  /** Frames through their JSON encoding (as between processes). */
  readonly encode?: boolean
  /** Seats the test plays itself (not started as nodes). */
  readonly absent?: ReadonlyArray<number>
  /** Nodes on the network beyond the genesis validators (ids `validators`…): they observe until elected. */
  readonly candidates?: number
  /** Seats per committee from epoch 1 on (genesis `committeeSize`). */
  readonly committeeSize?: number
  /** Beacon blocks per epoch (default: the economics default). */
  readonly epochBlocks?: number
}

export interface RunningValidator {
  readonly index: number
  readonly node: ChainNodeShape
  readonly seats: ReadonlyMap<number, BftSeat>
  readonly store: EventStoreShape
  readonly scope: Scope.CloseableScope
}

/** The harnesses not stopped yet: a failed test leaves its validators running, `stopHarnesses` ends them. */
const live = new Set<Effect.Effect<void>>()

/** For `afterAll`: stop what a failed test left running and remove its temp dirs. */
export const stopHarnesses = () => Promise.all([...live].map((stopAll) => Effect.runPromise(stopAll)))

export const makeHarness = (options: HarnessOptions) => {
  const dir = mkdtempSync(join(tmpdir(), "topai-bft-"))
  const base = new GenesisConfig({
    chainId: BFT_CHAIN_ID,
    transferShards: options.transferShards ?? 2,
    timestamp: Date.now(),
    devAccountCount: 12,
    validators: devValidators(options.validators),
    ...(options.committeeSize === undefined ? {} : { committeeSize: options.committeeSize })
  })
  const economics = defaultEconomics(DEVNET_GOVERNANCE)
  const genesis = new GenesisConfig({
    ...base,
    economics: new EconomicsConfig({
      ...economics,
      beaconIntervalMs: options.beaconIntervalMs ?? 2_000,
      epochBlocks: options.epochBlocks ?? economics.epochBlocks
    })
  })
  const nodes = options.validators + (options.candidates ?? 0)
  /** Every node's validator address by network id: the genesis validators, then the candidates. */
  const roster = devValidators(nodes).map((v) => v.address)
  const hub: MemoryNetworkHub = makeMemoryNetworkHub({ count: nodes, encode: options.encode ?? false })
  const running = new Map<number, RunningValidator>()

  const start = (index: number) =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const path = join(dir, `validator-${index}`)
      mkdirSync(path, { recursive: true })
      const context = yield* Layer.buildWithScope(
        Layer.merge(SqliteEventStore.layer({ filename: join(path, "events.db") }), SignatureVerifierInThread),
        scope
      ).pipe(Effect.orDie)
      const network = yield* hub.join(index).pipe(Scope.extend(scope))
      const { node, seats } = yield* makeChainNodeWithSeats({
        genesis,
        bft: {
          network,
          roster,
          blsSecretKey: devValidatorKeys(index).bls.secretKey,
          idleIntervalMs: options.idleIntervalMs ?? 1_000,
          baseTimeoutMs: options.baseTimeoutMs ?? 2_500
        },
        inclusionWait: "30 seconds"
      }).pipe(Effect.provide(context), Scope.extend(scope))
      const v: RunningValidator = { index, node, seats, store: Context.get(context, EventStore), scope }
      running.set(index, v)
      return v
    })

  const stop = (index: number) =>
    Effect.gen(function* () {
      const v = running.get(index)
      if (v === undefined) return
      running.delete(index)
      yield* Scope.close(v.scope, Exit.void)
    })

  const startAll = Effect.forEach(
    Array.from({ length: nodes }, (_, i) => i).filter((i) => !(options.absent ?? []).includes(i)),
    start
  )
  /** Stops every running validator and removes the harness's temp dir. */
  const stopAll: Effect.Effect<void> = Effect.suspend(() => Effect.forEach([...running.keys()], stop, { discard: true })).pipe(
    Effect.ensuring(Effect.sync(() => (live.delete(stopAll), rmSync(dir, { recursive: true, force: true }))))
  )
  live.add(stopAll)

  /** Each running validator's committed height of `shard`. */
  const heights = (shard: number) =>
    Effect.forEach([...running.values()], (v) => Effect.map(v.seats.get(shard)!.ledger, (l) => l.height))

  /** Until every running validator's ledger of `shard` is at least `height`. */
  const awaitHeight = (shard: number, height: number, timeoutMs = 40_000) =>
    Effect.gen(function* () {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const hs = yield* heights(shard)
        if (hs.every((h) => h >= height)) return hs
        if (Date.now() > deadline) return yield* Effect.dieMessage(`shard ${shard} heights ${hs.join(",")} never reached ${height}`)
        yield* Effect.sleep("100 millis")
      }
    })

  /** The event hashes of `stream` on validator `v`. */
  const hashes = (v: RunningValidator, stream: string) =>
    Effect.map(v.store.readStream(stream).pipe(Effect.orDie), (events) => events.map((e) => e.hash))

  const consensusRecords = (v: RunningValidator, shard: number, epoch = 0) =>
    Effect.map(v.store.readStream(consensusStream(shard, v.index, epoch)).pipe(Effect.orDie), (events) =>
      events.map((e) => ({ type: e.type, data: e.data as { view?: number } }))
    )

  return { dir, genesis, roster, hub, running, start, stop, startAll, stopAll, heights, awaitHeight, hashes, consensusRecords }
}

export type Harness = ReturnType<typeof makeHarness>
export { SignatureVerifier }

/**
 * `topai devnet --validators 4 --shards 2`: a BFT devnet in one process.
 * Each validator is a whole chain node — its own SQLite store and genesis
 * copy under `{data-dir}/validator-{i}`, a seat in every shard's committee,
 * RPC on `port + i` — and they reach each other over the in-memory consensus
 * network. Blocks come out of chained HotStuff, certified by BLS QCs.
 *
 * Every validator also runs the AI shard's services (model registry and
 * verification, tasks, the gateway) and serves their calls: each verifies
 * uploaded weights itself (fetched from the other validators) and attests
 * them with its account key, each settles the usage it served with it.
 * The devnet's in-process compute nodes serve every validator.
 *
 * `--candidates N` adds nodes with the next dev keys that are not genesis
 * validators: they observe every shard (checking and applying what the
 * committees certify) until they stake and register on the beacon and an
 * election seats them (see docs/ARCHITECTURE.md, "Epochs").
 *
 * Keys are deterministic (`devValidatorKeys`), so is the validator set; the
 * genesis is stamped with the time of the first start and kept in the data
 * dir. A restart on the same data dir resumes every validator from its store.
 */
import { copyFileSync, existsSync, mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { Command, Options } from "@effect/cli"
import { Effect, Layer, Option } from "effect"
import type { Context, Scope } from "effect"
import { TRANSFER_SHARDS_DEFAULT } from "../../../domain/chain/sharding.js"
import { devValidatorKeys, devValidators } from "../../../domain/chain/validators.js"
import { SignatureVerifier, SignatureVerifierLive, type SignatureVerifierService } from "../../../infra/crypto/SignatureVerifier.js"
import { SqliteEventStore } from "../../../infra/eventstore/SqliteEventStore.js"
import { makeMemoryNetworkHub } from "../../../infra/network/MemoryConsensusNetwork.js"
import { DEFAULT_HOST, DEFAULT_PORT, HTTP_PATH, WS_PATH } from "../../api/transport.js"
import { ChainNodeLive } from "../../node/ChainNodeLive.js"
import { startComputeNode, type ComputeNodeClient } from "../../worker/ComputeNode.js"
import { inProcessComputeNodeClient } from "../../worker/inProcessClient.js"
import type { EventStore } from "../../../infra/eventstore/EventStore.js"
import type { AiNode } from "../../node/ai/AiNode.js"
import type { ChainNode } from "../../node/ChainNode.js"
import { reportErrors } from "../output.js"
import {
  BLOBS_DIR,
  DEVNET_WORKER_CLASS,
  EVENTS_FILE,
  GENESIS_FILE,
  loadOrCreateGenesis,
  lockDataDir,
  NodeConfigError,
  candidatesOption,
  checkNodeCounts
} from "./node.js"
import { aiValidatorsOf, validatorServices } from "./validatorServices.js"
import { loadOrCreateWorkerKey } from "./worker.js"

export const DEFAULT_DEVNET_DIR = "data/devnet-bft"

export const DEVNET_VALIDATORS_DEFAULT = 4

const dataDir = Options.directory("data-dir", { exists: "either" }).pipe(
  Options.withDefault(DEFAULT_DEVNET_DIR),
  Options.withDescription(`Where the devnet keeps its genesis and each validator's store (default ${DEFAULT_DEVNET_DIR})`)
)
const validators = Options.integer("validators").pipe(
  Options.withDefault(DEVNET_VALIDATORS_DEFAULT),
  Options.withDescription("Validators in every shard's committee (≥ 4 tolerates one crash; see docs/ARCHITECTURE.md)")
)
const shards = Options.integer("shards").pipe(
  Options.optional,
  Options.withDescription(`Transfer shards of a new chain (default ${TRANSFER_SHARDS_DEFAULT})`)
)
const host = Options.text("host").pipe(Options.withDefault(DEFAULT_HOST), Options.withDescription("Interface to serve RPC on"))
const port = Options.integer("port").pipe(
  Options.withDefault(DEFAULT_PORT),
  Options.withDescription("Validator 0's RPC port; validator i serves on port + i")
)
const workers = Options.integer("workers").pipe(
  // Two by default: a compute node's claim that a run overran its limits is charged only once another confirms it.
  Options.withDefault(2),
  Options.withDescription("In-process compute nodes of validator 0 (CPU class; default 2, so one can confirm another's overrun); 0 for none")
)
const epochBlocks = Options.integer("epoch-blocks").pipe(Options.optional, Options.withDescription("Beacon blocks per epoch of a new chain"))
const beaconIntervalMs = Options.integer("beacon-interval-ms").pipe(
  Options.optional,
  Options.withDescription("Milliseconds between beacon blocks of a new chain (default 1000)")
)

export const startDevnet = (o: {
  readonly dataDir: string
  readonly validators: number
  readonly candidates: number
  readonly shards: Option.Option<number>
  readonly host: string
  readonly port: number
  readonly workers: number
  readonly epochBlocks: Option.Option<number>
  readonly beaconIntervalMs: Option.Option<number>
}) =>
  Effect.gen(function* () {
    yield* checkNodeCounts(o.validators, o.candidates)
    if (!Number.isSafeInteger(o.workers) || o.workers < 0) {
      return yield* new NodeConfigError({ detail: `--workers must be a whole number ≥ 0, got ${o.workers}` })
    }
    const root = resolve(o.dataDir)
    yield* Effect.try({
      try: () => mkdirSync(root, { recursive: true }),
      catch: (e) => new NodeConfigError({ detail: `cannot make ${root}: ${String(e)}` })
    })
    yield* lockDataDir(root)
    const genesis = yield* loadOrCreateGenesis(
      root,
      o.shards,
      Option.none(),
      { epochBlocks: o.epochBlocks, beaconIntervalMs: o.beaconIntervalMs },
      devValidators(o.validators)
    )
    const nodes = o.validators + o.candidates
    const hub = makeMemoryNetworkHub({ count: nodes })
    const roster = devValidators(nodes).map((v) => v.address)
    const urls = Array.from({ length: nodes }, (_, i) => `ws://${o.host}:${o.port + i}${WS_PATH}`)
    const aiValidators = aiValidatorsOf(o.validators)
    const inProcess = new Map<number, Effect.Effect<ComputeNodeClient, never, Scope.Scope>>()
    let verifier: SignatureVerifierService | undefined
    for (let i = 0; i < nodes; i++) {
      const dir = join(root, `validator-${i}`)
      mkdirSync(dir, { recursive: true })
      // Each validator's data dir is complete on its own: `topai audit replay --data-dir` reads its genesis there.
      if (!existsSync(join(dir, GENESIS_FILE))) copyFileSync(join(root, GENESIS_FILE), join(dir, GENESIS_FILE))
      const network = yield* hub.join(i)
      const store = SqliteEventStore.layer({ filename: join(dir, EVENTS_FILE) })
      const chain = ChainNodeLive({ genesis, bft: { network, roster, blsSecretKey: devValidatorKeys(i).bls.secretKey } }).pipe(
        Layer.provideMerge(SignatureVerifierLive),
        Layer.provideMerge(store)
      )
      const rpc = { host: o.host, port: o.port + i }
      const stack = validatorServices({
        genesis,
        seat: i,
        dataDir: dir,
        accountKey: devValidatorKeys(i).secp,
        rpc,
        // An AI validator fetches weights uploaded to another from the other AI validators.
        aiPeers: aiValidators.filter((j) => j !== i).map((j) => urls[j]!),
        chain
      })
      const services = yield* Layer.build(stack).pipe(
        Effect.catchTag("ServeError", (e) =>
          Effect.fail(new NodeConfigError({ detail: `validator ${i}: cannot serve RPC on ${rpc.host}:${rpc.port}: ${String(e.cause)}` }))
        ),
        Effect.catchTag("EventStoreError", (e) => Effect.fail(new NodeConfigError({ detail: `validator ${i}: ${e.message}` })))
      )
      // The in-process compute nodes call this validator's RPC handlers in memory (no socket, no framing).
      if (aiValidators.includes(i)) inProcess.set(i, yield* inProcessComputeNodeClient.pipe(Effect.provide(services as Context.Context<AiNode | ChainNode | EventStore>)))
      // The workers check requests with a validator's verifier: off the event loop, and not again (the process's memo).
      verifier ??= yield* SignatureVerifier.pipe(Effect.provide(services))
    }
    const v0 = join(root, "validator-0")
    for (let i = 0; i < o.workers; i++) {
      const workerDir = join(v0, `worker-${i}`)
      const key = yield* loadOrCreateWorkerKey(workerDir).pipe(Effect.mapError((e) => new NodeConfigError({ detail: e.message })))
      yield* startComputeNode({
        // Every AI validator (aiValidatorsOf: all of them).
        rpc: aiValidators.map((j) => inProcess.get(j)!),
        key: key.key,
        gpuClass: DEVNET_WORKER_CLASS,
        devices: 1,
        stake: 0n,
        endpoint: "in-process",
        verifier,
        dataDir: workerDir,
        blobDir: join(v0, BLOBS_DIR)
      }).pipe(Effect.mapError((e) => new NodeConfigError({ detail: `in-process worker: ${e.message}` })))
    }
    yield* Effect.logInfo(
      [
        `topai devnet ready: chain ${genesis.chainId}, ${o.validators} validators (BFT: chained HotStuff, BLS QCs), ${genesis.transferShards} transfer shards + beacon + AI shard, data ${root}`,
        ...Array.from(
          { length: nodes },
          (_, i) =>
            `  ${i < o.validators ? "validator" : "candidate"} ${i}: ws://${o.host}:${o.port + i}${WS_PATH}   http://${o.host}:${o.port + i}${HTTP_PATH}${aiValidators.includes(i) ? "   (+ AI shard, economy)" : ""}`
        ),
        `  ${o.workers} in-process compute node(s), serving validator(s) ${aiValidators.join(", ")}`,
        "  Ctrl-C stops; a restart on the same --data-dir resumes"
      ].join("\n")
    )
    return yield* Effect.never
  }).pipe(Effect.scoped)

export const devnetCommand = Command.make(
  "devnet",
  { dataDir, validators, candidates: candidatesOption, shards, host, port, workers, epochBlocks, beaconIntervalMs },
  (o) => startDevnet(o).pipe(reportErrors(false))
).pipe(Command.withDescription("Run a BFT devnet of several validators in one process until Ctrl-C"))

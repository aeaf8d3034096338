/**
 * `topai node start`: the whole devnet in one process — event store, shard
 * ledgers, block producers, chain index and RPC — until Ctrl-C. A restart on
 * the same data dir resumes where it stopped: everything is in its events.
 */
import { closeSync, mkdirSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { Command, Options } from "@effect/cli"
import { Clock, Effect, Layer, Option, Schema } from "effect"
import type { Scope } from "effect"
import { GenesisConfig, devAccounts, genesisSupply } from "../../../domain/chain/genesis.js"
import type { GenesisValidator } from "../../../domain/chain/validators.js"
import { EconomicsConfig } from "../../../domain/economics/config.js"
import { TRANSFER_SHARDS_DEFAULT } from "../../../domain/chain/sharding.js"
import { SignatureVerifier, SignatureVerifierLive } from "../../../infra/crypto/SignatureVerifier.js"
import { SqliteEventStore } from "../../../infra/eventstore/SqliteEventStore.js"
import { RpcServerLive } from "../../api/server.js"
import { DEFAULT_HOST, DEFAULT_PORT, WS_PATH, HTTP_PATH } from "../../api/transport.js"
import { ChainNodeLive } from "../../node/ChainNodeLive.js"
import { startComputeNode } from "../../worker/ComputeNode.js"
import { inProcessComputeNodeClient } from "../../worker/inProcessClient.js"
import { loadOrCreateWorkerKey } from "./worker.js"
import { AiNodeLive } from "../../node/ai/AiNode.js"
import { EconomyLive } from "../../node/economy/Economy.js"
import { DEFAULT_AI_SETTINGS } from "../../node/ai/AiConfig.js"
import { DEFAULT_RUN_DEADLINE_RULES, type RunDeadlineRules } from "../../../domain/ai/runDeadline.js"
import { workerStakeFloorProblem } from "../../../domain/ai/worker/stakeFloor.js"
import type { AiConfig } from "../../node/ai/AiConfig.js"
import { FsBlobStore } from "../../../infra/blobstore/FsBlobStore.js"
import { SandboxedSmokeRunLive } from "../../../infra/inference/SandboxedSmokeRun.js"
import { devProposerKey, type PrivateKey } from "../../../domain/chain/keys.js"
import { aiShardOf, BEACON_SHARD } from "../../../domain/chain/sharding.js"
import { reportErrors } from "../output.js"

/** The devnet's chain id (any id works; signatures commit to it). */
export const DEVNET_CHAIN_ID = 7_700n
export const DEFAULT_DATA_DIR = "data/devnet"
export const GENESIS_FILE = "genesis.json"
export const EVENTS_FILE = "events.db"
export const BLOBS_DIR = "blobs"
/** Where a verification copies the model for its sandbox child: inside the data dir, so a node killed mid-verification leaves nothing in the system's temp dir. */
export const VERIFY_SCRATCH_DIR = "verify-scratch"
/** The GPU class the devnet's in-process workers declare. */
export const DEVNET_WORKER_CLASS = "CPU"
/** Holds the pid of the node that has the data dir; removed when it stops. */
export const LOCK_FILE = "node.lock"

const dataDir = Options.directory("data-dir", { exists: "either" }).pipe(
  Options.withDefault(DEFAULT_DATA_DIR),
  Options.withDescription(`Where the node keeps its event store and genesis (default ${DEFAULT_DATA_DIR})`)
)
const host = Options.text("host").pipe(Options.withDefault(DEFAULT_HOST), Options.withDescription("Interface to serve RPC on"))
const port = Options.integer("port").pipe(Options.withDefault(DEFAULT_PORT), Options.withDescription("TCP port for RPC"))
const shards = Options.integer("shards").pipe(
  Options.optional,
  Options.withDescription(`Transfer shards of a new chain (default ${TRANSFER_SHARDS_DEFAULT}); must match an existing data dir`)
)
const workers = Options.integer("workers").pipe(
  Options.withDefault(1),
  Options.withDescription("In-process compute nodes to start (CPU class); 0 for none, e.g. when workers run as their own processes")
)
const devAccountCount = Options.integer("dev-accounts").pipe(
  Options.optional,
  Options.withDescription("Funded dev accounts in a new chain's genesis (default 10)")
)

const runDeadlineMaxMs = Options.integer("run-deadline-max-ms").pipe(
  Options.optional,
  Options.withDescription(
    `The longest one inference run may take, whatever the model's verified cost says (default ${DEFAULT_RUN_DEADLINE_RULES.capMillis} ms); a run past its deadline is stopped and charged`
  )
)
const epochBlocks = Options.integer("epoch-blocks").pipe(
  Options.optional,
  Options.withDescription("Beacon blocks per epoch of a new chain (default 60); must match an existing data dir")
)
const beaconIntervalMs = Options.integer("beacon-interval-ms").pipe(
  Options.optional,
  Options.withDescription("Milliseconds between beacon blocks of a new chain (default 1000); must match an existing data dir")
)

/** The economics a new chain's genesis gets from the command line (the rest: the devnet's defaults). */
export interface EconomicsFlags {
  readonly epochBlocks: Option.Option<number>
  readonly beaconIntervalMs: Option.Option<number>
}

const encodeGenesis = Schema.encodeSync(Schema.parseJson(GenesisConfig, { space: 2 }))
const decodeGenesis = Schema.decodeUnknownEither(Schema.parseJson(GenesisConfig))

export class NodeConfigError extends Schema.TaggedError<NodeConfigError>()("NodeConfigError", {
  detail: Schema.String
}) {
  override get message() {
    return this.detail
  }
}

/** `--candidates`: devnet nodes beyond the genesis validators (the next dev keys). */
export const candidatesOption = Options.integer("candidates").pipe(
  Options.withDefault(0),
  Options.withDescription(
    "Nodes beyond the genesis validators (the next dev keys): they observe every shard until they stake and register (`topai validator stake|register`) and the beacon elects them"
  )
)

/** A devnet's node counts: 1 to 64 validators, and candidates up to 64 nodes in all. */
export const checkNodeCounts = (validators: number, candidates: number): Effect.Effect<void, NodeConfigError> => {
  if (!Number.isSafeInteger(validators) || validators < 1 || validators > 64) {
    return Effect.fail(new NodeConfigError({ detail: `--validators must be from 1 to 64, got ${validators}` }))
  }
  if (!Number.isSafeInteger(candidates) || candidates < 0 || validators + candidates > 64) {
    return Effect.fail(new NodeConfigError({ detail: `--candidates must be from 0 to ${64 - validators}, got ${candidates}` }))
  }
  return Effect.void
}

/** The data dir's genesis, made on first start (written atomically: tmp file + rename). */
const stakeFloor = (genesis: GenesisConfig) => {
  const problem = workerStakeFloorProblem(genesis.devAccountCount, genesis.economics.minWorkerStake)
  return problem === undefined ? Effect.void : Effect.fail(new NodeConfigError({ detail: problem }))
}

export const loadOrCreateGenesis = (
  dir: string,
  shards: Option.Option<number>,
  devAccounts: Option.Option<number>,
  economics: EconomicsFlags,
  /** A new chain's BFT validators (the devnet's); absent: single producers. */
  validators?: ReadonlyArray<GenesisValidator> | undefined
) =>
  Effect.gen(function* () {
    const file = join(dir, GENESIS_FILE)
    if (existsSync(file)) {
      const genesis = decodeGenesis(readFileSync(file, "utf8"))
      if (genesis._tag === "Left") {
        return yield* new NodeConfigError({ detail: `${file} is not a valid genesis: ${genesis.left.message}` })
      }
      const existing = genesis.right
      const held = existing.validators?.length
      if (held !== validators?.length) {
        const what = held === undefined ? "a single-producer chain (topai node start)" : `a BFT devnet of ${held} validators (topai devnet)`
        return yield* new NodeConfigError({ detail: `${dir} holds ${what}; use that command, or a new --data-dir` })
      }
      const mismatch = (flag: string, given: Option.Option<number>, held: number, what: string) =>
        Option.isSome(given) && given.value !== held
          ? Effect.fail(new NodeConfigError({ detail: `${dir} holds a chain with ${held} ${what}; --${flag} ${given.value} would need a new --data-dir` }))
          : Effect.void
      yield* mismatch("shards", shards, existing.transferShards, "transfer shards")
      yield* mismatch("epoch-blocks", economics.epochBlocks, existing.economics.epochBlocks, "beacon blocks per epoch")
      yield* mismatch("beacon-interval-ms", economics.beaconIntervalMs, existing.economics.beaconIntervalMs, "ms between beacon blocks")
      yield* stakeFloor(existing)
      return existing
    }
    const genesis = yield* Effect.try({
      try: () => {
        const base = new GenesisConfig({
          chainId: DEVNET_CHAIN_ID,
          transferShards: Option.getOrElse(shards, () => TRANSFER_SHARDS_DEFAULT),
          ...(Option.isSome(devAccounts) ? { devAccountCount: devAccounts.value } : {}),
          ...(validators === undefined ? {} : { validators }),
          timestamp: 0
        })
        return new GenesisConfig({
          ...base,
          economics: new EconomicsConfig({
            ...base.economics,
            ...(Option.isSome(economics.epochBlocks) ? { epochBlocks: economics.epochBlocks.value } : {}),
            ...(Option.isSome(economics.beaconIntervalMs) ? { beaconIntervalMs: economics.beaconIntervalMs.value } : {})
          })
        })
      },
      catch: (e) => new NodeConfigError({ detail: `bad genesis settings: ${e instanceof Error ? e.message : String(e)}` })
    })
    yield* stakeFloor(genesis)
    const stamped = new GenesisConfig({ ...genesis, timestamp: yield* Clock.currentTimeMillis })
    mkdirSync(dir, { recursive: true })
    writeFileSync(`${file}.tmp`, encodeGenesis(stamped))
    renameSync(`${file}.tmp`, file)
    return stamped
  })

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM" // alive, someone else's
  }
}

/**
 * One node per data dir: two would append to the same event store from two
 * in-memory states. The lock file is created exclusively; one left by a
 * node that died (kill -9) names a pid that is gone and is taken over.
 */
export const lockDataDir = (dir: string): Effect.Effect<string, NodeConfigError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend((): Effect.Effect<string, NodeConfigError> => {
      const file = join(dir, LOCK_FILE)
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const fd = openSync(file, "wx")
          writeFileSync(fd, `${process.pid}\n`)
          closeSync(fd)
          return Effect.succeed(file)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
            return Effect.fail(new NodeConfigError({ detail: `cannot lock ${dir}: ${(error as Error).message}` }))
          }
          const pid = Number.parseInt(readFileSync(file, "utf8"), 10)
          if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
            return Effect.fail(
              new NodeConfigError({
                detail: `${dir} is in use by another topai node (pid ${pid}); stop it, or use another --data-dir (if no node runs, remove ${file})`
              })
            )
          }
          rmSync(file, { force: true }) // left by a node that is gone
        }
      }
      return Effect.fail(new NodeConfigError({ detail: `cannot lock ${dir}: ${file} keeps reappearing` }))
    }),
    (file) => Effect.sync(() => rmSync(file, { force: true }))
  )

/** `--run-deadline-max-ms N`: the default deadline rules with their cap at N (and the floor no higher than the cap). */
const runDeadlineRulesOf = (maxMs: Option.Option<number>) =>
  Option.match(maxMs, {
    onNone: () => Effect.succeed(undefined),
    onSome: (cap) =>
      Number.isSafeInteger(cap) && cap > 0
        ? Effect.succeed<RunDeadlineRules>({ ...DEFAULT_RUN_DEADLINE_RULES, capMillis: cap, floorMillis: Math.min(DEFAULT_RUN_DEADLINE_RULES.floorMillis, cap) })
        : Effect.fail(new NodeConfigError({ detail: `--run-deadline-max-ms must be a whole number of milliseconds > 0, got ${cap}` }))
  })

const describeCause = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "object" && cause !== null ? JSON.stringify(cause) : String(cause)

/**
 * The AI shard and the economy of a node whose data dir is `dir`: the model
 * registry, tasks and workers, the economy and its payouts (this node holds
 * the devnet's system keys), the blob store and the verification sandbox.
 */
export const aiShardLayer = (
  genesis: GenesisConfig,
  dir: string,
  settings: {
    readonly runDeadline?: RunDeadlineRules | undefined
    /** Other AI nodes' RPC URLs, to fetch weights uploaded to them (AiConfig.peers). */
    readonly peers?: ReadonlyArray<string> | undefined
    /** Signs this node's `model.attest` (a BFT validator: its account key); default the AI shard's proposer key (single producer). */
    readonly attestorKey?: PrivateKey | undefined
    /** The key that signs `usage.settle`: an AI committee member's (default: the AI shard's dev proposer, a single producer's attestor). */
    readonly settlerKey?: PrivateKey | undefined
  } = {}
) => {
  const verifyScratch = join(dir, VERIFY_SCRATCH_DIR)
  const ai: AiConfig = {
    ...DEFAULT_AI_SETTINGS,
    ...settings,
    verify: { tmpDir: verifyScratch },
    stakeMin: genesis.economics.minWorkerStake,
    validatorKey: devProposerKey(BEACON_SHARD),
    // Who may attest and settle: the AI shard's proposer on a single-producer chain, its committee on a BFT chain.
    attestorKey: settings.attestorKey ?? devProposerKey(aiShardOf(genesis.transferShards)),
    settlerKey: settings.settlerKey ?? devProposerKey(aiShardOf(genesis.transferShards))
  }
  // A verification interrupted by a crash leaves its copy of the model behind; each start clears it.
  const scratch = Layer.effectDiscard(
    Effect.sync(() => {
      rmSync(verifyScratch, { recursive: true, force: true })
      mkdirSync(verifyScratch, { recursive: true })
    })
  )
  return AiNodeLive(ai).pipe(
    Layer.provideMerge(scratch),
    Layer.provideMerge(EconomyLive({ economics: genesis.economics, totalSupply: genesisSupply(genesis), aiShard: aiShardOf(genesis.transferShards) })),
    Layer.provideMerge(Layer.mergeAll(FsBlobStore.layer(join(dir, BLOBS_DIR)), SandboxedSmokeRunLive()))
  )
}

export const startNode = (o: {
  readonly dataDir: string
  readonly host: string
  readonly port: number
  readonly shards: Option.Option<number>
  readonly devAccounts: Option.Option<number>
  readonly workers: number
  readonly epochBlocks?: Option.Option<number> | undefined
  readonly beaconIntervalMs?: Option.Option<number> | undefined
  readonly runDeadlineMaxMs?: Option.Option<number> | undefined
}) =>
  Effect.gen(function* () {
    const dir = resolve(o.dataDir)
    yield* Effect.try({
      try: () => mkdirSync(dir, { recursive: true }),
      catch: (e) => new NodeConfigError({ detail: `cannot make ${dir}: ${describeCause(e)}` })
    })
    if (!Number.isSafeInteger(o.workers) || o.workers < 0) {
      return yield* new NodeConfigError({ detail: `--workers must be a whole number ≥ 0, got ${o.workers}` })
    }
    const runDeadline = yield* runDeadlineRulesOf(o.runDeadlineMaxMs ?? Option.none())
    yield* lockDataDir(dir)
    const genesis = yield* loadOrCreateGenesis(dir, o.shards, o.devAccounts, {
      epochBlocks: o.epochBlocks ?? Option.none(),
      beaconIntervalMs: o.beaconIntervalMs ?? Option.none()
    })
    const stack = RpcServerLive({ host: o.host, port: o.port }).pipe(
      Layer.provideMerge(aiShardLayer(genesis, dir, { runDeadline })),
      Layer.provideMerge(ChainNodeLive({ genesis })),
      Layer.provideMerge(SignatureVerifierLive),
      Layer.provideMerge(SqliteEventStore.layer({ filename: join(dir, EVENTS_FILE) }))
    )
    const services = yield* Layer.build(stack).pipe(
      Effect.catchTag("ServeError", (e) =>
        Effect.fail(new NodeConfigError({ detail: `cannot serve RPC on ${o.host}:${o.port}: ${describeCause(e.cause)}` }))
      )
    )
    // The devnet's own compute nodes: real workers calling the node's own RPC handlers in memory, sharing its blob store.
    const inProcess = yield* inProcessComputeNodeClient.pipe(Effect.provide(services))
    // The workers check requests with the node's verifier: off the event loop, and not again (the process's memo).
    const verifier = yield* SignatureVerifier.pipe(Effect.provide(services))
    for (let i = 0; i < o.workers; i++) {
      const workerDir = join(dir, `worker-${i}`)
      yield* startComputeNode({
        rpc: inProcess,
        key: (yield* loadOrCreateWorkerKey(workerDir).pipe(Effect.mapError((e) => new NodeConfigError({ detail: e.message })))).key,
        gpuClass: DEVNET_WORKER_CLASS,
        devices: 1,
        stake: 0n,
        endpoint: "in-process",
        verifier,
        dataDir: workerDir,
        blobDir: join(dir, BLOBS_DIR)
      }).pipe(Effect.mapError((e) => new NodeConfigError({ detail: `in-process worker: ${e.message}` })))
    }
    const accounts = devAccounts(genesis)
    yield* Effect.logInfo(
      [
        `topai node ready: chain ${genesis.chainId}, ${genesis.transferShards} transfer shards + beacon + AI shard, data ${dir}`,
        `  beacon: a block every ${genesis.economics.beaconIntervalMs} ms, ${genesis.economics.epochBlocks} blocks an epoch`,
        `  RPC  ws://${o.host}:${o.port}${WS_PATH}   http://${o.host}:${o.port}${HTTP_PATH}`,
        accounts.length > 0
          ? `  ${accounts.length} funded dev accounts: \`topai key dev 0\` … \`topai key dev ${accounts.length - 1}\``
          : "  no dev accounts",
        `  ${o.workers} in-process compute node(s) (${DEVNET_WORKER_CLASS})`,
        "  Ctrl-C stops; a restart on the same --data-dir resumes"
      ].join("\n")
    )
    return yield* Effect.never
  }).pipe(Effect.scoped)

const config = Options.file("config", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription(
    "Run one validator of a BFT chain from this JSON file (its seat and keys, data dir, RPC and consensus addresses, peers, genesis; see src/cli/commands/validator.ts); the other options are then ignored"
  )
)

const start = Command.make(
  "start",
  { dataDir, host, port, shards, devAccounts: devAccountCount, workers, epochBlocks, beaconIntervalMs, runDeadlineMaxMs, config },
  (o) =>
    Option.match(o.config, {
      onNone: () => startNode(o),
      // Loaded on demand: validator.ts imports this module.
      onSome: (file) => Effect.flatMap(Effect.promise(() => import("./validator.js")), (validator) => validator.startValidator(file))
    }).pipe(reportErrors(false))
).pipe(Command.withDescription("Run a one-process devnet node (all shards, RPC), or with --config one validator of a BFT chain, until Ctrl-C"))

const configs = Command.make(
  "configs",
  {
    dir: Options.directory("dir", { exists: "either" }).pipe(Options.withDescription("Where to write the genesis, key files and configs")),
    validators: Options.integer("validators").pipe(Options.withDefault(4), Options.withDescription("Validators of the new chain (default 4)")),
    candidates: candidatesOption,
    shards,
    host: Options.text("host").pipe(
      Options.withDefault(DEFAULT_HOST),
      Options.withDescription("Where the other nodes reach validator i; {i} stands for i (e.g. validator-{i}: one container each)")
    ),
    listen: Options.text("listen").pipe(
      Options.optional,
      Options.withDescription("The interface every validator listens on (default: its --host; 0.0.0.0 in a container)")
    ),
    ifAbsent: Options.boolean("if-absent").pipe(
      Options.withDescription("Keep a --dir that already holds a genesis as it is, and exit 0 (for a container that runs this at every start)")
    ),
    rpcPort: Options.integer("rpc-port").pipe(Options.withDefault(DEFAULT_PORT), Options.withDescription("Validator 0's RPC port; validator i's is + i")),
    consensusPort: Options.integer("consensus-port").pipe(
      Options.withDefault(DEFAULT_PORT + 1000),
      Options.withDescription("Validator 0's consensus port; validator i's is + i")
    ),
    beaconIntervalMs
  },
  (o) =>
    Effect.flatMap(Effect.promise(() => import("./validator.js")), (validator) => validator.writeDevnetConfigs(o)).pipe(
      reportErrors(false)
    )
).pipe(Command.withDescription("Write a new BFT devnet's genesis and one `node start --config` file per validator (dev keys)"))

export const nodeCommand = Command.make("node").pipe(
  Command.withDescription("Run a node"),
  Command.withSubcommands([start, configs])
)

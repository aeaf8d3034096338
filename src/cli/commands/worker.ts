/**
 * `topai worker start`: run a compute node in this process until Ctrl-C —
 * it connects to a node over RPC (or to several: `--node` repeated or
 * comma-separated), registers, heartbeats and runs the inference tasks each
 * node sends it on one engine (src/worker/ComputeNode.ts).
 * `topai worker list`: the compute nodes a node knows.
 */
import { randomBytes } from "node:crypto"
import { existsSync, mkdirSync } from "node:fs"
import { hostname } from "node:os"
import { join, resolve } from "node:path"
import { Command, Options } from "@effect/cli"
import { Effect, Either, FiberRef, HashSet, Logger, Option } from "effect"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { PrivateKey } from "../../../domain/chain/keys.js"
import { runComputeNode } from "../../worker/ComputeNode.js"
import { json, rpcUrl } from "../options.js"
import { printResult, reportErrors } from "../output.js"
import { BadInput, parseAddress, parseAmount, parsePrivateKey } from "../parse.js"
import { loadOptionalKey, type KeySource } from "../keySource.js"
import { readSecretFile, writeSecretFileSync } from "../secretFile.js"
import { withClient } from "./query.js"
import { aiFeeOption, APPLY_WAIT, feeOption, keyOption, loadKey, parseFee, pollUntil, submitSigned, withNode } from "./aiSupport.js"
import type { StakeView } from "../../client/index.js"

export const DEFAULT_WORKER_DATA_DIR = "data/worker"
/** The worker's key when `--key` is not given: 32 bytes of hex, made on first start. */
export const WORKER_KEY_FILE = "worker.key"
const DEVICES_MAX = 1024
const RPC_URL = /^(wss?|https?):\/\/[^/\s]+/

const gpuClass = Options.text("gpu-class").pipe(
  Options.withDescription("The GPU class offered, one of the node's genesis table (e.g. CPU, RTX4090, A100, H100)")
)
const devices = Options.integer("devices").pipe(
  Options.withDefault(1),
  Options.withDescription("Devices offered: tasks run this many at a time, one inference thread each (default 1)")
)
const stake = Options.text("stake").pipe(Options.withDefault("0"), Options.withDescription("Stake in base units (default 0)"))
/** The worker's own key (not TOPAI_KEY, which names a sender): default the data dir's key file. */
const key = keyOption(`The worker (default: the key in the data dir's ${WORKER_KEY_FILE}, made 0600 on first start)`)
const dataDir = Options.directory("data-dir", { exists: "either" }).pipe(
  Options.withDefault(DEFAULT_WORKER_DATA_DIR),
  Options.withDescription(`Where the worker keeps its key and its cache of model weights (default ${DEFAULT_WORKER_DATA_DIR})`)
)
const provider = Options.choice("provider", ["cpu", "cuda"]).pipe(
  Options.withDefault("cpu" as const),
  Options.withDescription("onnxruntime execution provider (default cpu; cuda needs the CUDA provider libraries)")
)
const intraOpThreads = Options.integer("intra-op-threads").pipe(
  Options.withDefault(1),
  Options.withDescription("Threads one run's operators may use; 0 lets onnxruntime choose (default 1)")
)
const endpoint = Options.text("endpoint").pipe(
  Options.optional,
  Options.withDescription("How this worker names itself to the node (default: the host name)")
)
const nodes = Options.text("node").pipe(
  Options.repeated,
  Options.withDescription(
    "A node to serve, ws://HOST:PORT/ws or http://HOST:PORT/rpc; repeat it or separate URLs by commas to serve several nodes at once (default: --rpc)"
  )
)
const faultLie = Options.boolean("fault-lie").pipe(
  Options.withDescription("FOR TESTS ONLY: perturb every output so its fingerprint disagrees with honest workers' (a lying worker, for quorum tests)")
)

/** The data dir's worker key, made (0600, written atomically) on first start; refused if group or others can read it. */
export const loadOrCreateWorkerKey = (dir: string): Effect.Effect<{ readonly key: PrivateKey; readonly created: boolean }, BadInput> =>
  Effect.gen(function* () {
    const file = join(dir, WORKER_KEY_FILE)
    if (existsSync(file)) {
      const text = yield* readSecretFile(file, "worker key file")
      const key = yield* parsePrivateKey(text).pipe(
        Effect.mapError((e) => new BadInput(`${file} does not hold a key: ${e.message}`))
      )
      return { key, created: false }
    }
    for (;;) {
      const key = PrivateKey.fromBytes(randomBytes(32))
      if (Either.isLeft(key)) continue // ~2^-128
      yield* Effect.try({
        try: () => {
          mkdirSync(dir, { recursive: true })
          writeSecretFileSync(file, `${bytesToHex(key.right.exportBytes())}\n`)
        },
        catch: (e) => new BadInput(`cannot write ${file}: ${e instanceof Error ? e.message : String(e)}`)
      })
      return { key: key.right, created: true }
    }
  })

const start = Command.make(
  "start",
  { gpuClass, devices, stake, key, dataDir, rpcUrl, nodes, provider, intraOpThreads, endpoint, faultLie, json },
  (o) =>
    Effect.gen(function* () {
      if (o.gpuClass.trim() === "") return yield* Effect.fail(new BadInput("--gpu-class must not be empty"))
      if (!Number.isInteger(o.devices) || o.devices < 1 || o.devices > DEVICES_MAX) {
        return yield* Effect.fail(new BadInput(`--devices must be from 1 to ${DEVICES_MAX}, got ${o.devices}`))
      }
      if (!Number.isInteger(o.intraOpThreads) || o.intraOpThreads < 0) {
        return yield* Effect.fail(new BadInput(`--intra-op-threads must be 0 or more, got ${o.intraOpThreads}`))
      }
      // --node (repeated or comma-separated) names the nodes; without it, --rpc is the one node.
      const given = o.nodes.flatMap((n) => n.split(",")).map((n) => n.trim()).filter((n) => n !== "")
      const urls = given.length > 0 ? given : [o.rpcUrl]
      const flag = given.length > 0 ? "--node" : "--rpc"
      for (const url of urls) {
        if (!RPC_URL.test(url)) return yield* Effect.fail(new BadInput(`${flag} must be ws://HOST:PORT/ws or http://HOST:PORT/rpc, got "${url}"`))
      }
      const twice = urls.find((u, i) => urls.indexOf(u) !== i)
      if (twice !== undefined) return yield* Effect.fail(new BadInput(`--node ${twice} is given twice: a compute node registers once with each node`))
      const stakeValue = yield* parseAmount(o.stake, "--stake")
      const dir = resolve(o.dataDir)
      const keyGiven = yield* loadOptionalKey(o.key, { env: false })
      const key = Option.isSome(keyGiven)
        ? keyGiven.value
        : yield* loadOrCreateWorkerKey(dir).pipe(
            Effect.tap(({ key, created }) =>
              created ? Effect.logInfo(`made a new worker key in ${join(dir, WORKER_KEY_FILE)} (address ${key.publicKey.address})`) : Effect.void
            ),
            Effect.map(({ key }) => key)
          )
      yield* Effect.logInfo(`connecting to ${urls.join(", ")}; Ctrl-C stops`)
      return yield* runComputeNode({
        rpc: urls.length === 1 ? urls[0]! : urls,
        key,
        gpuClass: o.gpuClass.trim(),
        devices: o.devices,
        stake: stakeValue,
        endpoint: Option.getOrElse(o.endpoint, () => hostname()),
        dataDir: dir,
        engine: { executionProvider: o.provider, intraOpNumThreads: o.intraOpThreads },
        faultLie: o.faultLie
      }).pipe(Effect.onInterrupt(() => Effect.logInfo("stopping: in-flight tasks dropped (the node reassigns them), threads closed")))
    }).pipe(
      reportErrors(o.json),
      // --json: one JSON object per log line on stdout, for machines (instead of whatever loggers main set).
      o.json ? Effect.locally(FiberRef.currentLoggers, HashSet.make(Logger.withConsoleLog(Logger.jsonLogger))) : (self) => self
    )
).pipe(Command.withDescription("Run a compute node: connect to a node (or several), register, and run their inference tasks until Ctrl-C"))

const pad = (cells: ReadonlyArray<string>, widths: ReadonlyArray<number>) =>
  cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()

const list = Command.make("list", { rpcUrl, json }, ({ rpcUrl, json }) =>
  withClient(rpcUrl, (c) => c.worker.list()).pipe(
    Effect.flatMap((workers) =>
      printResult(json, workers, (ws) => {
        if (ws.length === 0) return "no compute nodes registered (start one: topai worker start --gpu-class CPU)"
        const header = ["WORKER", "CLASS", "DEVICES", "ONLINE", "IN-FLIGHT", "TASKS", "REPUTATION", "ENDPOINT"]
        const rows = ws.map((w) => [
          w.id,
          w.gpuClass,
          String(w.devices),
          w.online ? "yes" : "no",
          String(w.inFlight),
          String(w.tasksDone),
          String(w.reputation),
          w.endpoint
        ])
        const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
        return [pad(header, widths), ...rows.map((r) => pad(r, widths))].join("\n")
      })
    ),
    reportErrors(json)
  )
).pipe(Command.withDescription("List the compute nodes the node knows: class, devices, online, load, record"))

// ---------------------------------------------------------------- stakes

const stakeWorker = Options.text("worker").pipe(
  Options.optional,
  Options.withDescription("The worker whose stake it is (its address; default: the --key's own address)")
)
const stakeAmount = Options.text("amount").pipe(Options.withDescription("Amount in base units"))

export const stakeText = (s: Pick<StakeView, "worker" | "bonded" | "unbonding" | "epoch" | "owner" | "ownerBonded" | "ownerUnbonding">): string =>
  `worker ${s.worker}  bonded ${s.bonded}  unbonding ${s.unbonding}  (epoch ${s.epoch} open)` +
  (s.owner === null ? "" : `\n  of which ${s.owner}'s own: bonded ${s.ownerBonded ?? 0n}  unbonding ${s.ownerUnbonding ?? 0n}`)

/**
 * Sign a worker.stake / worker.unbond, wait for its block, then for the
 * economy to show it in the key's own bond, and show the stake. A worker's
 * stake is the sum of its owners' bonds: a bond always adds to the key's own,
 * an unbond takes only from it.
 */
const stakeCommand = (kind: "worker.stake" | "worker.unbond") =>
  (o: { readonly worker: Option.Option<string>; readonly amount: string; readonly key: KeySource; readonly fee: string; readonly rpcUrl: string; readonly json: boolean }) =>
    Effect.gen(function* () {
      const amount = yield* parseAmount(o.amount, "--amount", { positive: true })
      const key = yield* loadKey(o.key)
      const fee = yield* parseFee(o.fee)
      const owner = key.publicKey.address
      const worker = Option.isSome(o.worker) ? yield* parseAddress(o.worker.value, "--worker") : owner
      return yield* withNode(o.rpcUrl, (client) =>
        Effect.gen(function* () {
          const before = yield* client.stake.get({ worker, owner })
          const own = before.ownerBonded ?? 0n
          if (kind === "worker.unbond" && own < amount) {
            return yield* Effect.fail(new BadInput(`${owner} has ${own} bonded to worker ${worker}; cannot unbond ${amount} (an account unbonds only its own bond)`))
          }
          const tx = yield* submitSigned(client, key, { kind, worker, amount }, fee)
          // Only this owner's txs raise its bond; a decrease is its unbond (clamped while pending slashes hold part of the bond).
          const shown = (s: StakeView) => (kind === "worker.stake" ? (s.ownerBonded ?? 0n) >= own + amount : (s.ownerBonded ?? 0n) < own)
          const stake = yield* pollUntil(
            client.stake.get({ worker, owner }).pipe(Effect.map((s) => (shown(s) ? Option.some(s) : Option.none()))),
            {
              within: APPLY_WAIT,
              onTimeout: () =>
                new Error(
                  `${kind} ${tx.hash} is in a block, but the node's economy does not show it yet` +
                    (kind === "worker.unbond" ? " (what pending wrong-result slashes will take stays bonded until the epoch's close)" : "")
                )
            }
          )
          return {
            tx: tx.hash,
            block: `${tx.shard}/${tx.blockHeight ?? "?"}`,
            amount,
            worker: stake.worker,
            bonded: stake.bonded,
            unbonding: stake.unbonding,
            epoch: stake.epoch,
            owner: stake.owner,
            ownerBonded: stake.ownerBonded,
            ownerUnbonding: stake.ownerUnbonding
          }
        })
      )
    }).pipe(
      Effect.flatMap((r) =>
        printResult(o.json, r, (r) => `${kind} of ${r.amount} ${r.tx} included in block ${r.block}\n${stakeText(r)}`)
      ),
      reportErrors(o.json)
    )

const stakeCmd = Command.make(
  "stake",
  { worker: stakeWorker, amount: stakeAmount, key: keyOption("The bond's owner"), fee: feeOption, rpcUrl, json },
  stakeCommand("worker.stake")
).pipe(
  Command.withDescription("Bond --amount as a worker's stake (moved from the key's account to the stake pool); waits for the block and shows bonded/unbonding")
)

const unbondCmd = Command.make(
  "unbond",
  // worker.unbond runs on the AI shard, where the owner holds nothing: fee 0 by default.
  { worker: stakeWorker, amount: stakeAmount, key: keyOption("The bond's owner"), fee: aiFeeOption, rpcUrl, json },
  stakeCommand("worker.unbond")
).pipe(
  Command.withDescription("Ask for --amount of a worker's bonded stake back (returned after the unbonding epochs); waits for the block and shows bonded/unbonding")
)

export const workerCommand = Command.make("worker").pipe(
  Command.withDescription("Run a compute node, list them, or bond and unbond their stake"),
  Command.withSubcommands([start, list, stakeCmd, unbondCmd])
)

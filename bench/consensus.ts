/**
 * BFT consensus: committed transfers per second and commit latency (p50,
 * p99) for 4 validators in one process (the in-memory network) and for 4
 * validator processes on localhost (`topai node start --config`, the
 * WebSocket network), each against the rate at which the same cores verify
 * the same transactions' signatures alone (the node's verifier, worker
 * threads; the baseline of bench/transfers.ts). Target ≥ 0.7×.
 *
 * Workload: ACCOUNTS (200) dev accounts each send a chain of TXS_PER_ACCOUNT
 * (10) transfers in nonce order (2,000 a run: enough that the rate measures
 * throughput, not the few commit latencies a small run spans; 60 × 5 measured
 * 193 tx/s where 200 × 10 measured 371–382 on the same build), to validator (account mod 4), all accounts at
 * once, waiting only on each chain's last transfer (blocks keep a sender's
 * nonce order, so the last included means all were). A transfer counts once
 * the validator it was sent to has committed and applied it. Latency is
 * measured on each chain's last transfer: from its submission, behind the
 * rest of its chain, to its inclusion, under the full load.
 *
 * Also the deterministic simulator (test/simulation): scenarios per second,
 * against the rate that runs 1000 seeds in 5 minutes.
 *
 * Keep in mind when reading the ratio: every validator verifies every
 * transaction's signature once (on admission, or on gossip). In one process
 * the seats share the verifier's memo of checked signatures, so the process
 * verifies each once; 4 processes on the same cores do 4× the baseline's
 * signature work. The baseline runs on a verifier of its own without a memo
 * (its transactions are fresh anyway): the raw verification rate.
 *
 * And all the rest is 4 whole nodes' work on the same cores: each applies
 * every block to its own ledger and store, and signs its votes (BLS).
 *
 * `npm run bench -- consensus` runs every case; BENCH_CONSENSUS_CASES
 * (comma-separated: in-process, processes, simulator) picks some, and
 * BENCH_ACCOUNTS / BENCH_TXS change the workload.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { Context, Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { DEVNET_GOVERNANCE, GenesisConfig } from "../domain/chain/genesis.js"
import { bytesToHex } from "../domain/chain/hex.js"
import type { Transaction } from "../domain/chain/transaction.js"
import { devValidatorKeys, devValidators } from "../domain/chain/validators.js"
import { defaultEconomics, EconomicsConfig } from "../domain/economics/config.js"
import { SignatureVerifier, SignatureVerifierWorkers } from "../infra/crypto/SignatureVerifier.js"
import { SqliteEventStore } from "../infra/eventstore/SqliteEventStore.js"
import { makeMemoryNetworkHub } from "../infra/network/MemoryConsensusNetwork.js"
import { makeClient } from "../src/client/index.js"
import type { NodeClient } from "../src/client/index.js"
import { writeLocalValidatorConfigs } from "../src/cli/commands/validator.js"
import type { ChainNodeShape } from "../src/node/ChainNode.js"
import { makeChainNodeWithSeats } from "../src/node/ChainNodeLive.js"
import { scenarioOf } from "../test/simulation/scenario.js"
import { runScenario } from "../test/simulation/simulator.js"
import type { BenchModule, BenchResult } from "./lib.js"
import { compare, makeTransfers, percentile, report } from "./lib.js"
import { freePort } from "../test/support/freePort.js"

const CHAIN_ID = 7_700n
const VALIDATORS = 4
const TRANSFER_SHARDS = 2
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 200)
const TXS_PER_ACCOUNT = Number(process.env.BENCH_TXS ?? 10)
const REPEATS = 3
const FEE = 1_000n
const IDLE_MS = 1_000
const BASE_TIMEOUT_MS = 3_000
const SIM_SEEDS = 60
const SIM_RATE_TARGET = 1000 / 300 // 1000 seeds in 5 minutes

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url))
const CLI_MAIN = join(REPO_ROOT, "src", "cli", "main.ts")

const makeGenesis = () => {
  const base = new GenesisConfig({
    chainId: CHAIN_ID,
    transferShards: TRANSFER_SHARDS,
    devAccountCount: ACCOUNTS,
    timestamp: Date.now(),
    validators: devValidators(VALIDATORS)
  })
  return new GenesisConfig({ ...base, economics: new EconomicsConfig({ ...defaultEconomics(DEVNET_GOVERNANCE), beaconIntervalMs: IDLE_MS }) })
}

type Submit = (validator: number, raw: string, wait: boolean) => Effect.Effect<{ readonly status: string }, unknown>

/** One run of the workload: committed transfers/s and each chain's last-transfer latency (ms). */
const runWorkload = (chains: ReadonlyArray<ReadonlyArray<Transaction>>, submit: Submit) =>
  Effect.gen(function* () {
    const latencies: Array<number> = []
    const start = performance.now()
    yield* Effect.forEach(
      chains,
      (txs, account) =>
        Effect.forEach(
          txs,
          (tx, k) =>
            Effect.gen(function* () {
              const last = k === txs.length - 1
              const sent = performance.now()
              const r = yield* submit(account % VALIDATORS, bytesToHex(tx.encoded), last)
              if (last) {
                if (r.status !== "included") return yield* Effect.dieMessage(`a transfer was not included: ${r.status}`)
                latencies.push(performance.now() - sent)
              }
            }),
          { discard: true }
        ),
      { concurrency: "unbounded", discard: true }
    )
    const total = chains.reduce((n, c) => n + c.length, 0)
    return { rate: (total * 1_000) / (performance.now() - start), latencies }
  })

const verifyRate = (runtime: ManagedRuntime.ManagedRuntime<SignatureVerifier, never>, txs: ReadonlyArray<Transaction>) =>
  runtime.runPromise(
    Effect.gen(function* () {
      const verifier = yield* SignatureVerifier
      const start = performance.now()
      const valid = yield* verifier.verifyBatch(txs)
      if (valid.some((ok) => !ok)) return yield* Effect.dieMessage("a signature did not verify")
      return (txs.length * 1_000) / (performance.now() - start)
    })
  )

const measure = async (
  name: string,
  genesis: GenesisConfig,
  verifier: ManagedRuntime.ManagedRuntime<SignatureVerifier, never>,
  submit: Submit,
  details: Record<string, unknown>
): Promise<BenchResult> => {
  const latencies: Array<number> = []
  const result = await compare(
    REPEATS,
    async (repeat) => {
      const chains = makeTransfers(genesis, { nonceBase: BigInt((repeat + 1) * TXS_PER_ACCOUNT), perAccount: TXS_PER_ACCOUNT, fee: FEE })
      const r = await Effect.runPromise(runWorkload(chains, submit))
      if (repeat >= 0) latencies.push(...r.latencies)
      return r.rate
    },
    async (repeat) => verifyRate(verifier, makeTransfers(genesis, { nonceBase: BigInt(1_000 + repeat * TXS_PER_ACCOUNT), perAccount: TXS_PER_ACCOUNT, fee: FEE }).flat()),
    { warmups: 1 }
  )
  // One transfer at a time on an idle chain: the latency floor (3-chain commit and idle pacing).
  const idle: Array<number> = []
  const lone = makeTransfers(genesis, { nonceBase: BigInt((REPEATS + 1) * TXS_PER_ACCOUNT), perAccount: TXS_PER_ACCOUNT, fee: FEE })
  for (let i = 0; i < 5; i++) {
    const sent = performance.now()
    const r = await Effect.runPromise(submit(i % VALIDATORS, bytesToHex(lone[i]![0]!.encoded), true))
    if (r.status !== "included") throw new Error(`an idle transfer was not included: ${r.status}`)
    idle.push(performance.now() - sent)
  }
  return report({
    name,
    unit: "tx",
    ...result,
    target: { ratio: 0.7 },
    details: {
      ...details,
      validators: VALIDATORS,
      transferShards: TRANSFER_SHARDS,
      accounts: ACCOUNTS,
      transfersPerRun: ACCOUNTS * TXS_PER_ACCOUNT,
      repeats: REPEATS,
      loadedCommitLatencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), samples: latencies.length },
      idleCommitLatencyMs: { p50: percentile(idle, 50), p99: percentile(idle, 99), samples: idle.length }
    }
  })
}

// ---------------------------------------------------------------- 4 validators in one process

export const inProcess = async (): Promise<BenchResult> => {
  const dir = mkdtempSync(join(tmpdir(), "topai-bench-bft-"))
  const genesis = makeGenesis()
  // The nodes' verifier: what SignatureVerifierLive is (worker threads, one memo for the process's
  // seats), with a memo of its own so that earlier benchmarks of this process cannot warm it.
  const nodesVerifier = ManagedRuntime.make(SignatureVerifierWorkers({ cache: "own" }))
  const verifier = ManagedRuntime.make(SignatureVerifierWorkers({ cache: "none" }))
  const scope = Effect.runSync(Scope.make())
  try {
    const shared = await nodesVerifier.runtime()
    const hub = makeMemoryNetworkHub({ count: VALIDATORS })
    const nodes: Array<ChainNodeShape> = []
    for (let i = 0; i < VALIDATORS; i++) {
      mkdirSync(join(dir, `validator-${i}`), { recursive: true })
      const node = await Effect.runPromise(
        Effect.gen(function* () {
          const store = yield* Layer.build(SqliteEventStore.layer({ filename: join(dir, `validator-${i}`, "events.db") })).pipe(Effect.orDie)
          const network = yield* hub.join(i)
          const { node } = yield* makeChainNodeWithSeats({
            genesis,
            bft: { network, blsSecretKey: devValidatorKeys(i).bls.secretKey, idleIntervalMs: IDLE_MS, baseTimeoutMs: BASE_TIMEOUT_MS },
            inclusionWait: "60 seconds"
          }).pipe(Effect.provide(Context.merge(shared.context, store)))
          return node
        }).pipe(Scope.extend(scope))
      )
      nodes.push(node)
    }
    return await measure(
      "consensus-4-validators-in-process",
      genesis,
      verifier,
      (v, raw, wait) => nodes[v]!.submit(raw, wait),
      { network: "in-memory (MemoryConsensusNetwork)" }
    )
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await nodesVerifier.dispose()
    await verifier.dispose()
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------- 4 validator processes


export const processes = async (): Promise<BenchResult> => {
  const dir = mkdtempSync(join(tmpdir(), "topai-bench-bft-processes-"))
  const genesis = makeGenesis()
  const rpcPorts: Array<number> = []
  const consensusPorts: Array<number> = []
  for (let i = 0; i < VALIDATORS; i++) {
    rpcPorts.push(await freePort())
    consensusPorts.push(await freePort())
  }
  const configs = writeLocalValidatorConfigs({ dir, genesis, rpcPorts, consensusPorts, idleIntervalMs: IDLE_MS, baseTimeoutMs: BASE_TIMEOUT_MS })
  const children: Array<ChildProcess> = configs.map((config) =>
    spawn(process.execPath, ["--import", "tsx", CLI_MAIN, "node", "start", "--config", config], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "ignore", "inherit"]
    })
  )
  const verifier = ManagedRuntime.make(SignatureVerifierWorkers({ cache: "none" }))
  const scope = Effect.runSync(Scope.make())
  try {
    const clients: Array<NodeClient> = []
    for (let i = 0; i < VALIDATORS; i++) {
      const deadline = performance.now() + 60_000
      for (;;) {
        const client = await Effect.runPromise(
          makeClient(`ws://127.0.0.1:${rpcPorts[i]}/ws`).pipe(
            Effect.tap((c) => c.node.status()),
            Effect.timeout("1 second"),
            Effect.option,
            Scope.extend(scope)
          )
        )
        if (client._tag === "Some") {
          clients.push(client.value)
          break
        }
        if (performance.now() > deadline) throw new Error(`validator ${i} not ready`)
        await new Promise((r) => setTimeout(r, 200))
      }
    }
    return await measure(
      "consensus-4-validator-processes",
      genesis,
      verifier,
      (v, raw, wait) => clients[v]!.tx.submit({ raw, wait }),
      { network: "WebSocket (WsConsensusNetwork), 4 processes on localhost; client calls over the RPC WebSocket" }
    )
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await verifier.dispose()
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve()
            child.once("exit", () => resolve())
            child.kill("SIGKILL")
          })
      )
    )
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------- the simulator

export const simulator = async (): Promise<BenchResult> => {
  let seed = 1
  const result = await compare(
    REPEATS,
    async () => {
      const start = performance.now()
      for (let i = 0; i < SIM_SEEDS; i++) {
        const r = runScenario(scenarioOf(seed++))
        if (r.violation !== undefined) throw new Error(`simulator seed ${r.seed}: ${r.violation.kind}`)
      }
      return (SIM_SEEDS * 1_000) / (performance.now() - start)
    },
    async () => SIM_RATE_TARGET
  )
  return report({
    name: "consensus-simulator-scenarios",
    unit: "scenario",
    ...result,
    target: { opsPerSecond: SIM_RATE_TARGET },
    details: { seedsPerRun: SIM_SEEDS, baseline: "the rate that runs 1000 seeds in 5 minutes" }
  })
}

const CASES = { "in-process": inProcess, processes, simulator } as const

export const run: BenchModule["run"] = async () => {
  const wanted = (process.env.BENCH_CONSENSUS_CASES ?? Object.keys(CASES).join(",")).split(",").map((c) => c.trim())
  const unknown = wanted.filter((c) => !(c in CASES))
  if (unknown.length > 0) throw new Error(`BENCH_CONSENSUS_CASES: unknown ${unknown.join(", ")}; known: ${Object.keys(CASES).join(", ")}`)
  const results: Array<BenchResult> = []
  for (const [name, runCase] of Object.entries(CASES)) if (wanted.includes(name)) results.push(await runCase())
  return results
}

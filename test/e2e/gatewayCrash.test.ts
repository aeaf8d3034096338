/**
 * A gateway crash loses no paid work (issue 12, item 5), with one process
 * per validator: four `topai node start --config` validators on localhost,
 * each running the AI shard's services, and one `topai worker start`
 * compute node serving all four. A developer makes two calls at once (the
 * real `topai infer --stream`) through validator 1's gateway; validator 1 is
 * killed (SIGKILL) the moment the first is validated, its usage receipt just
 * signed, while the second is requested or running. The second call, run
 * with `--failover` validator 2, sends the same signed request there (the
 * same task id: had validator 1 signed its receipt too, the ledger settles
 * the task once) and completes; a later call through validator 2 too. On
 * the surviving validators' AI ledger each task settles at most once and the
 * developer's escrow went down by exactly the price of each settled task.
 * Validator 1 restarted catches up with the same ledger (the same AI block)
 * and has nothing left unsettled or reserved: every call the developer got
 * a result for is settled exactly once (the failed-over one too), and the
 * developer paid exactly price × results.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { GenesisConfig } from "../../domain/chain/genesis.js"
import { DEVNET_GOVERNANCE } from "../../domain/chain/genesis.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devKey } from "../../domain/chain/keys.js"
import { aiShardOf } from "../../domain/chain/sharding.js"
import { devValidators } from "../../domain/chain/validators.js"
import { defaultEconomics, EconomicsConfig } from "../../domain/economics/config.js"
import { writeLocalValidatorConfigs } from "../../src/cli/commands/validator.js"
import { gemmChainModel } from "../ai/support/models.js"
import { registerModel, submitIncluded, uploadWeights } from "./support/ai.js"
import { DEV, DEVNET_CHAIN_ID, TRANSFER_SHARDS, waitFor } from "./support/chain.js"
import { openClient, type TestClient } from "./support/client.js"
import { CLI_MAIN, cleanup, freePort, makeTempDir, REPO_ROOT, runCli, spawnNode, wsUrl, type CliResult, type NodeProcess } from "./support/processes.js"

const N = 4
const GATEWAY = 1
const FAILOVER = 2
const AI_SHARD = aiShardOf(TRANSFER_SHARDS)
const MILLI = 10n ** 15n
const PRICE = 10n * MILLI
const DEPOSIT = 100n * PRICE
const PROVIDER = DEV[1]!.key
const DEVELOPER = DEV[3]!.key
const WORKER = devKey(61)
/** A GEMM chain that runs a few hundred ms: validator 1 is killed while the worker runs it. */
const N_GEMM = 512
const K_GEMM = 100
const MODEL_BYTES = gemmChainModel(N_GEMM, K_GEMM)
const INPUT = { x: { type: "float32", dims: [1, N_GEMM], data: Array.from({ length: N_GEMM }, (_, i) => Math.fround(Math.cos(i / 5))) } }

const log = (line: string) => console.log(`[gateway crash ${new Date().toISOString().slice(11, 23)}] ${line}`)

afterAll(cleanup)

interface Settled {
  readonly taskId: string
  readonly price: bigint
}

/** The AI ledger's settled receipts on one validator (its AI shard stream's `UsageSettled` events). */
const settledOn = async (c: TestClient): Promise<ReadonlyArray<Settled>> => {
  const events = await c.run(c.client.events.read({ stream: `shard-${AI_SHARD}`, from: 0, limit: 10_000 }))
  return events
    .filter((e) => e.type === "UsageSettled")
    .map((e) => e.data as { readonly taskId: string; readonly price: string })
    .map((d) => ({ taskId: d.taskId, price: BigInt(d.price) }))
}

describe(`kill -9 an AI gateway of ${N} validator processes`, () => {
  it(
    "calls through validator 1, killed mid-task: the interrupted call fails over to validator 2 with the same signed request and completes; each task settles once on the survivors' AI ledger, charged price × settled; validator 1 restarted catches up, every call with a result settled exactly once",
    async () => {
      const t0 = performance.now()
      const since = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`
      const root = makeTempDir("gateway-crash")
      const rpcPorts: Array<number> = []
      const consensusPorts: Array<number> = []
      for (let i = 0; i < N; i++) {
        rpcPorts.push(await freePort())
        consensusPorts.push(await freePort())
      }
      const base = new GenesisConfig({ chainId: DEVNET_CHAIN_ID, transferShards: TRANSFER_SHARDS, timestamp: Date.now(), validators: devValidators(N) })
      const genesis = new GenesisConfig({ ...base, economics: new EconomicsConfig({ ...defaultEconomics(DEVNET_GOVERNANCE), beaconIntervalMs: 1_000 }) })
      const configs = writeLocalValidatorConfigs({ dir: root, genesis, rpcPorts, consensusPorts, idleIntervalMs: 1_000, baseTimeoutMs: 1_500 })
      const urls = rpcPorts.map((p) => wsUrl(p))
      const via = (i: number) => ["--rpc", urls[i]!]
      const nodes: Array<NodeProcess | undefined> = []
      const clients: Array<TestClient | undefined> = []
      const start = async (i: number) => {
        nodes[i] = await spawnNode({ dataDir: join(root, `validator-${i}`), port: rpcPorts[i], command: ["node", "start", "--config", configs[i]!], readyTimeoutMs: 60_000 })
        clients[i] = await openClient(urls[i]!)
      }
      const survivors = () => clients.flatMap((c, i) => (c === undefined || i === GATEWAY ? [] : [c]))

      const workerArgs = ["--import", "tsx", CLI_MAIN, "worker", "start", "--gpu-class", "CPU", "--data-dir", makeTempDir("gateway-crash-worker"), "--key", bytesToHex(WORKER.exportBytes())]
      const worker = spawn(process.execPath, [...workerArgs, ...urls.flatMap((u) => ["--node", u])], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] })
      let workerOutput = ""
      worker.stdout.on("data", (chunk: Buffer) => (workerOutput += chunk.toString()))
      worker.stderr.on("data", (chunk: Buffer) => (workerOutput += chunk.toString()))
      const workerExited = new Promise<void>((resolve) => worker.once("exit", () => resolve()))
      const inFlight: Array<ChildProcess> = []

      const input = join(makeTempDir("gateway-crash-input"), "input.json")
      writeFileSync(input, JSON.stringify(INPUT))
      let model = ""
      const infer = (i: number) => ["infer", model, "--input", input, "--key", bytesToHex(DEVELOPER.exportBytes()), "--timeout", "90", "--json", ...via(i)]
      const results: Array<{ task: string; charged: string; workers: ReadonlyArray<string> }> = []
      const completed = (r: CliResult, through: number) => {
        expect({ through, code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ through, code: 0, stderr: "" })
        const result = JSON.parse(r.stdout) as (typeof results)[number]
        expect(result).toMatchObject({ charged: String(PRICE), workers: [WORKER.publicKey.address] })
        results.push(result)
      }

      try {
        await Promise.all(Array.from({ length: N }, (_, i) => start(i)))
        log(`${N} validator processes ready at ${since()}`)
        const [v0] = clients as [TestClient]

        // The model, uploaded to validator 0: every validator fetches the weights from its peers, verifies and attests.
        model = await registerModel(v0, PROVIDER, MODEL_BYTES, {
          name: "gemm-chain",
          version: "1",
          pricePerCall: String(PRICE),
          minGpuClass: "CPU",
          license: "MIT",
          description: "a GEMM chain that runs long enough to kill its gateway mid-task",
          validation: { kind: "single", sampleRatePerMillion: 0 }
        }, 90_000)
        await uploadWeights(v0, PROVIDER, MODEL_BYTES)
        await submitIncluded(clients[GATEWAY]!, DEVELOPER, { kind: "escrow.deposit", model: model as never, amount: DEPOSIT }, 90_000)
        await waitFor(
          "the model Verified by the committee, the escrow credited, and the worker online at validators 1 and 2, on every validator",
          async () => {
            for (const [i, c] of clients.entries()) {
              const m = await c!.run(c!.client.model.get({ model }))
              const e = await c!.run(c!.client.escrow.get({ developer: DEVELOPER.publicKey.address, model }))
              if (m.status === "Rejected") throw new Error(`model rejected on validator ${i}: ${m.reason}`)
              if (m.status !== "Verified" || e.onLedger !== DEPOSIT) return undefined
              if ((i === GATEWAY || i === FAILOVER) && !(await c!.run(c!.client.worker.list())).some((w) => w.id === WORKER.publicKey.address && w.online)) return undefined
            }
            return true
          },
          { timeoutMs: 90_000, intervalMs: 250 }
        )
        log(`model verified by the committee, escrow credited, worker online at ${since()}`)

        // Two calls through validator 1 at once (`--stream`: each stage on stderr); the one worker runs them in turn.
        // Validator 1 is killed the moment the first is validated (its result, with the charge, in the developer's
        // hands; its usage receipt just signed, and the settler sends every 2 s), the second call requested, waiting
        // for the worker or running.
        const calls = [0, 1].map(() => {
          const child = spawn(process.execPath, ["--import", "tsx", CLI_MAIN, ...infer(GATEWAY), "--stream", "--failover", urls[FAILOVER]!], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] })
          inFlight.push(child)
          const call = { out: "", err: "", code: undefined as number | null | undefined }
          child.stdout.on("data", (chunk: Buffer) => (call.out += chunk.toString()))
          child.stderr.on("data", (chunk: Buffer) => (call.err += chunk.toString()))
          const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve((call.code = code))))
          return { call, exit }
        })
        const validated = /^\s+validated\s/m
        const first = await waitFor(
          "a call through validator 1 validated while the other is requested",
          async () => {
            const ended = calls.find((c) => c.call.code !== undefined && !validated.test(c.call.err))
            if (ended !== undefined) throw new Error(`a call ended before its result: ${ended.call.code}: ${ended.call.err}`)
            const done = calls.find((c) => validated.test(c.call.err))
            if (done === undefined) return undefined
            return /^\s+requested\s/m.test(calls.find((c) => c !== done)!.call.err) ? done : undefined
          },
          { timeoutMs: 120_000, intervalMs: 2 }
        )
        const gateway = nodes[GATEWAY]!
        expect((await gateway.stop("SIGKILL")).signal).toBe("SIGKILL")
        nodes[GATEWAY] = undefined
        await clients[GATEWAY]!.close()
        clients[GATEWAY] = undefined
        // The first call has its result whether or not its stream ended before the kill.
        expect(await first.exit).toBe(0)
        completed({ code: 0, signal: null, stdout: first.call.out, stderr: "", ms: 0, timedOut: false }, GATEWAY)
        const second = calls.find((c) => c !== first)!
        const code = await second.exit
        const failedOver = second.call.err.includes(`no answer from ${urls[GATEWAY]}`)
        log(`validator ${GATEWAY} killed at ${since()} as a call was validated; the other ${failedOver ? `failed over to validator ${FAILOVER}` : "completed at validator 1"}: ${code === 0 ? "completed" : "failed"}`)
        // The interrupted call completes: its stream ended with the gateway, and the same signed request went to validator 2
        // (the same task id, charged once); or its result came before the kill.
        completed({ code, signal: null, stdout: second.call.out, stderr: second.call.err, ms: 0, timedOut: false }, failedOver ? FAILOVER : GATEWAY)

        // A new call through validator 2: it completes there.
        completed(await runCli(infer(FAILOVER), { timeoutMs: 90_000 }), FAILOVER)
        log(`the call through validator ${FAILOVER} completed at ${since()}`)

        // The survivors' AI ledger: no task settled twice, the developer charged exactly price × settled.
        const expectLedger = async (cs: ReadonlyArray<TestClient>, including: ReadonlyArray<string>) =>
          waitFor(
            `tasks ${including.join(", ")} settled, every receipt once, on ${cs.length} validators`,
            async () => {
              const views: Array<string> = []
              for (const c of cs) {
                const settled = await settledOn(c)
                const ids = settled.map((s) => s.taskId)
                expect(new Set(ids).size, `task ids settled on the AI ledger: ${ids.join(" ")}`).toBe(ids.length)
                for (const s of settled) expect(s.price).toBe(PRICE)
                const escrow = await c.run(c.client.escrow.get({ developer: DEVELOPER.publicKey.address, model }))
                // A block settled more between the reads: read again.
                if ((await settledOn(c)).length !== settled.length) return undefined
                expect(escrow.onLedger).toBe(DEPOSIT - PRICE * BigInt(settled.length))
                if (!including.every((id) => ids.includes(id))) return undefined
                views.push(ids.slice().sort().join(","))
              }
              return views.every((v) => v === views[0]) ? views[0]!.split(",") : undefined
            },
            { timeoutMs: 60_000, intervalMs: 250 }
          )
        // Validator 2 settles the receipt of the call it served; validator 1's are settled once, if it sent them before it died.
        const beforeRestart = await expectLedger(survivors(), [results[results.length - 1]!.task])
        log(`survivors: ${beforeRestart.length} task(s) settled once each at ${since()}; validator 1's receipt ${beforeRestart.includes(results[0]!.task) ? "settled before it died" : "waits for its restart"}`)

        // Validator 1 restarted: it catches up with the chain and settles the receipts it signed.
        await start(GATEWAY)
        log(`validator ${GATEWAY} restarted at ${since()}`)
        const paid = results.map((r) => r.task).sort()
        const settled = await expectLedger(clients.map((c) => c!), paid)
        // Validator 1 has nothing left to settle: every receipt it signed is on the ledger.
        await waitFor(
          "validator 1's book: nothing unsettled, nothing reserved (its run of the interrupted call released)",
          async () => {
            const e = await clients[GATEWAY]!.run(clients[GATEWAY]!.client.escrow.get({ developer: DEVELOPER.publicKey.address, model }))
            return e.unsettled === 0n && e.reserved === 0n ? true : undefined
          },
          { timeoutMs: 30_000, intervalMs: 250 }
        )
        // Every call the developer got a result for, once (the failed-over one once, whichever gateway's receipt came first).
        expect(settled).toEqual(paid)
        const ledgers = await Promise.all(clients.map((c) => c!.run(c!.client.node.status())))
        const height = Math.min(...ledgers.map((s) => s.shards.find((x) => x.shard === AI_SHARD)!.height))
        const hashes = await Promise.all(clients.map((c) => c!.run(c!.client.block.get({ shard: AI_SHARD, height })).then((b) => b.hash)))
        expect(new Set(hashes).size, `AI shard block ${height}: ${hashes.join(" ")}`).toBe(1)
        log(`all ${N}: ${settled.length} tasks settled once each, the developer charged ${PRICE * BigInt(settled.length)}, AI block ${height} the same, at ${since()}`)
      } catch (error) {
        for (const [i, node] of nodes.entries()) {
          if (node !== undefined) console.log(`--- validator ${i}'s last output:\n${node.output().split("\n").slice(-25).join("\n")}`)
        }
        console.log(`--- the worker's last output:\n${workerOutput.split("\n").slice(-25).join("\n")}`)
        throw error
      } finally {
        for (const c of clients) await c?.close()
        for (const child of inFlight) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        if (worker.exitCode === null && worker.signalCode === null) worker.kill("SIGKILL")
        await workerExited
        for (const node of nodes) if (node !== undefined) await node.stop()
      }
    },
    360_000
  )
})

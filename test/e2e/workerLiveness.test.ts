/**
 * Workers' liveness on chain, on the 4-validator devnet `npm start` runs
 * (`topai devnet --validators 4`, short epochs, no in-process compute node):
 * a `topai worker start` process serving all four validators is seen by
 * every member's gateway, each submits `worker.liveness`, and the AI ledger
 * puts it online by stake — it earns online mining at the epochs' closes,
 * the same on every validator. Killed (-9), the gateways see it gone, report
 * it offline, and the epochs that close after that pay it no online mining.
 * Each member also runs the seeded benchmark on it and submits
 * `worker.measure`: its units on chain are the members' median, capped by its
 * declared H100's 10 units.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { afterAll, describe, expect, it } from "vitest"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devKey } from "../../domain/chain/keys.js"
import { waitFor } from "./support/chain.js"
import { openClient, type TestClient } from "./support/client.js"
import { CLI_MAIN, cleanup, makeTempDir, REPO_ROOT, spawnNode, type NodeProcess } from "./support/processes.js"

const VALIDATORS = 4
const EPOCH_FLAGS = ["--epoch-blocks", "4", "--beacon-interval-ms", "500"]
const WORKER = devKey(91)
const W = WORKER.publicKey.address

let devnet: NodeProcess | undefined
let worker: ChildProcess | undefined
let exited: Promise<void> = Promise.resolve()
let output = ""
const clients: Array<TestClient> = []

afterAll(async () => {
  if (worker !== undefined && worker.exitCode === null && worker.signalCode === null) worker.kill("SIGKILL")
  await exited
  for (const c of clients) await c.close().catch(() => undefined)
  await devnet?.stop("SIGINT").catch(() => undefined)
  await cleanup()
})

/** The online mining paid to the worker in each closed epoch's reward ledger, as validator `c` has it. */
const onlineMiningIn = async (c: TestClient, epoch: number): Promise<bigint> => {
  const ledger = await c.run(c.client.rewards.epoch({ epoch }))
  return ledger.events
    .filter((e) => e._tag === "RewardCredited" && e.kind === "OnlineMining" && e.to === W)
    .reduce((sum, e) => sum + BigInt((e as { amount: bigint | string }).amount), 0n)
}

describe("workers' liveness on the AI ledger (4-validator devnet)", () => {
  it(
    "a compute node serving all 4 validators is reported online by the committee, measured by the seeded benchmark, and earns online mining at the closes, the same on every validator; killed, it is reported offline and earns none after",
    async () => {
      devnet = await spawnNode({
        dataDir: makeTempDir("worker-liveness"),
        command: ["devnet", "--validators", String(VALIDATORS), "--shards", "1"],
        extraArgs: ["--workers", "0", ...EPOCH_FLAGS],
        readyTimeoutMs: 40_000
      })
      const urls = Array.from({ length: VALIDATORS }, (_, i) => `ws://127.0.0.1:${devnet!.port + i}/ws`)
      for (const url of urls) clients.push(await openClient(url))
      const [v0] = clients as [TestClient]

      const args = ["--import", "tsx", CLI_MAIN, "worker", "start", "--gpu-class", "H100", "--data-dir", makeTempDir("liveness-worker"), "--key", bytesToHex(WORKER.exportBytes())]
      worker = spawn(process.execPath, [...args, ...urls.flatMap((u) => ["--node", u])], {
        cwd: REPO_ROOT,
        env: { ...process.env, NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      worker.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
      worker.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
      const child = worker
      exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))

      await waitFor(
        `the worker connected to all ${VALIDATORS} validators (worker output: ${output.slice(-400)})`,
        async () => {
          const lists = await Promise.all(clients.map((c) => c.run(c.client.worker.list())))
          return lists.every((l) => l.some((w) => w.id === W && w.online)) ? true : undefined
        },
        { timeoutMs: 90_000 }
      )
      // Measured: each member runs the seeded benchmark and logs what it submits; once members holding > 1/2 of the
      // stake (3 of 4 equal stakes) have, the ledger's units are their median capped by the class (H100 × 1: 10_000).
      const logged = () =>
        [...devnet!.output().matchAll(new RegExp(`measured worker ${W}: (\\d+) milli-units`, "g"))].map((m) => BigInt(m[1]!))
      const measured = await waitFor(
        "the worker's units on chain within the measurements the members logged",
        async () => {
          const units = (await v0.run(v0.client.worker.onChain({ address: W }))).gpuUnitsMilli
          const values = logged()
          if (values.length < 3) return undefined
          const capped = values.map((v) => (v < 10_000n ? v : 10_000n))
          const [lo, hi] = [capped.reduce((a, b) => (a < b ? a : b)), capped.reduce((a, b) => (a > b ? a : b))]
          return units >= lo && units <= hi ? units : undefined
        },
        { timeoutMs: 90_000, intervalMs: 500 }
      ).catch((e: Error) => {
        const lines = devnet!.output().split("\n").filter((l) => /benchmark|measure/.test(l))
        throw new Error(`${e.message}\ndevnet: ${lines.slice(-8).join("\n")}\nworker: ${output.slice(-800)}`)
      })
      expect(measured).toBeGreaterThan(0n)

      // Online on chain: an epoch closes that pays it online mining (its units × its online time in the window).
      const paidEpoch = await waitFor(
        "a closed epoch paying the worker online mining",
        async () => {
          const s = await v0.run(v0.client.supply())
          if (s.lastClosed === null) return undefined
          for (let e = 0; e <= s.lastClosed; e++) if ((await onlineMiningIn(v0, e)) > 0n) return e
          return undefined
        },
        { timeoutMs: 90_000, intervalMs: 500 }
      )
      // Every validator's ledger of that epoch pays the same.
      const paid = await Promise.all(clients.map((c) => onlineMiningIn(c, paidEpoch)))
      expect(paid.every((x) => x === paid[0] && x > 0n)).toBe(true)
      const statement = await v0.run(v0.client.rewards.show({ address: W }))
      expect(BigInt(statement.total.onlineMining)).toBeGreaterThan(0n)

      // Killed: the gateways lose its connection and report it offline; epochs that close after that pay it nothing.
      worker.kill("SIGKILL")
      await exited
      await waitFor(
        "the worker offline at every validator",
        async () => {
          const lists = await Promise.all(clients.map((c) => c.run(c.client.worker.list())))
          return lists.every((l) => !l.some((w) => w.id === W && w.online)) ? true : undefined
        },
        { timeoutMs: 60_000 }
      )
      const killedBy = (await v0.run(v0.client.supply())).epoch // the open epoch when every gateway saw it gone
      const quiet = await waitFor(
        "two closed epochs after the kill that pay the worker no online mining",
        async () => {
          const s = await v0.run(v0.client.supply())
          if (s.lastClosed === null || s.lastClosed < killedBy + 3) return undefined
          const after = [s.lastClosed - 1, s.lastClosed]
          const amounts = await Promise.all(after.map((e) => onlineMiningIn(v0, e)))
          return amounts.every((x) => x === 0n) ? after : undefined
        },
        { timeoutMs: 90_000, intervalMs: 500 }
      )
      for (const c of clients) for (const e of quiet) expect(await onlineMiningIn(c, e)).toBe(0n)
    },
    300_000
  )
})

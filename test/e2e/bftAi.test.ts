/**
 * The AI shard and the rewards on top of BFT consensus: `topai devnet
 * --validators 4 --shards 2` as a process, with short epochs and its
 * in-process compute node on validator 0, driven through the real CLI and
 * the typed client.
 *
 * A provider uploads silero (its `model.register` committed through
 * HotStuff, seen in the same block on another validator) and sees it
 * verified; a developer deposits into escrow and calls it twice. The
 * escrow's payouts — provider, worker, burn address — are transfers that
 * commit through consensus: validator 2 shows the provider exactly its
 * service fees less the computing fees (plus the epoch rewards its
 * statement lists, less its one tx fee), validator 3 shows the worker what
 * its statement says and the burn address the protocol fees. Epochs close
 * (the beacon's EpochEnded out of consensus): epoch 0's ledger is closed and
 * the supply balances. All 4 validators agree on those balances. After
 * Ctrl-C, `topai audit replay` passes on every validator's data dir, and
 * validator 0's rebuilds every reward ledger.
 */
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { PrivateKey } from "../../domain/chain/keys.js"
import { BURN_ADDRESS } from "../../domain/economics/accounts.js"
import { defaultEconomics } from "../../domain/economics/config.js"
import { DEV, waitFor } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { auditArgs, cleanup, makeTempDir, runCli, runCliAll, spawnNode } from "./support/processes.js"
import type { CliResult, NodeProcess } from "./support/processes.js"
import { SILERO_CLI_FLAGS, SILERO_PATH, writeSileroInput } from "../ai/support/models.js"


const VALIDATORS = 4
const PRICE = 10n * 10n ** 15n // 0.01 token a call
const DEPOSIT = 10n ** 18n // one token
const CALLS = 2
const EPOCH_FLAGS = ["--epoch-blocks", "4", "--beacon-interval-ms", "500"]
const ECONOMICS = defaultEconomics(DEV[0]!.address)
const PROTOCOL_FEE = (PRICE * ECONOMICS.protocolFeePpm) / 1_000_000n

const PROVIDER = DEV[1]!
const DEVELOPER = DEV[3]!

const hexKey = (key: PrivateKey) => "0x" + Buffer.from(key.exportBytes()).toString("hex")
const json = <A>(r: CliResult): A => {
  // The whole stderr in the diff when a command fails (toMatchObject would leave it out).
  expect({ code: r.code, timedOut: r.timedOut, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, timedOut: false, stderr: "" })
  return JSON.parse(r.stdout) as A
}

let devnet: NodeProcess | undefined
const clients: Array<TestClient> = []

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined)
  await cleanup()
})

describe("the AI shard and the rewards on a 4-validator BFT devnet", () => {
  it(
    "upload, escrow, two calls: the payouts commit through consensus and every validator agrees; epochs close; supply balances; audit passes on every validator",
    async () => {
      const dataDir = makeTempDir("bft-ai")
      devnet = await spawnNode({
        dataDir,
        command: ["devnet", "--validators", String(VALIDATORS), "--shards", "2"],
        extraArgs: ["--workers", "1", ...EPOCH_FLAGS],
        readyTimeoutMs: 40_000
      })
      const rpc = ["--rpc", devnet.url]
      for (let i = 0; i < VALIDATORS; i++) clients.push(await openClient(`ws://127.0.0.1:${devnet.port + i}/ws`))
      const [v0, , v2, v3] = clients as [TestClient, TestClient, TestClient, TestClient]
      const balanceOn = async (c: TestClient, address: string) => (await c.run(c.client.account.get({ address }))).balance

      const providerBefore = await balanceOn(v2, PROVIDER.address)
      const burnBefore = await balanceOn(v3, BURN_ADDRESS)

      // The upload: model.register committed through HotStuff, the verdict out of the AI shard.
      const upload = await runCli(
        ["model", "upload", SILERO_PATH, "--name", "silero-bft", "--price", String(PRICE), ...SILERO_CLI_FLAGS, "--key", hexKey(PROVIDER.key), ...rpc, "--json"],
        { timeoutMs: 60_000 }
      )
      const model = json<{ id: string; status: string; provider: string }>(upload)
      expect(model).toMatchObject({ status: "Verified", provider: PROVIDER.address })
      const register = upload.stderr.match(/model\.register (0x[0-9a-f]{64}) included in block (\d+)\/(\d+)/)
      expect(register, upload.stderr).not.toBeNull()
      const [, registerTx, shard, height] = register!
      // The same committed block on another validator.
      const block = await clients[1]!.run(clients[1]!.client.block.get({ shard: Number(shard), height: Number(height) }))
      expect(block.transactions).toContain(registerTx)

      json(await runCli(["escrow", "deposit", model.id, String(DEPOSIT), "--key", hexKey(DEVELOPER.key), ...rpc, "--json"]))
      const input = writeSileroInput(makeTempDir("bft-ai-input"))
      const calls = (
        await runCliAll(Array.from({ length: CALLS }, () => ["infer", model.id, "--input", input, "--key", hexKey(DEVELOPER.key), ...rpc, "--json"]), CALLS)
      ).map((r) => json<{ charged: string; workers: ReadonlyArray<string> }>(r))
      for (const call of calls) expect(call.charged).toBe(String(PRICE))
      const worker = calls[0]!.workers[0]!
      for (const call of calls) expect(call.workers).toEqual([worker])

      // The provider's statement, once the calls' epoch has closed: its service fees are the price less the protocol fee.
      const statementOf = async (address: string) => v0.run(v0.client.rewards.show({ address }))
      const provider = await waitFor(
        "the epoch of the calls closed in the provider's statement",
        async () => {
          const s = await statementOf(PROVIDER.address)
          return s.total.serviceFees === BigInt(CALLS) * (PRICE - PROTOCOL_FEE) ? s : undefined
        },
        { timeoutMs: 40_000, intervalMs: 250 }
      )
      const p = (k: Exclude<keyof typeof provider.total, symbol>) => provider.total[k] as bigint
      expect(p("launchReward")).toBe(ECONOMICS.launchReward)
      expect(p("providerNet")).toBe(p("taskMining") + p("launchReward") + p("serviceFees") - p("computeFeesPaid"))

      // Validator 2: the provider received exactly price × calls − protocol fees − computing fees (and its epoch rewards);
      // its model.register ran on the AI shard with fee 0, so its transfer-shard balance paid no fee.
      const providerExpected =
        providerBefore + BigInt(CALLS) * PRICE - BigInt(CALLS) * PROTOCOL_FEE - p("computeFeesPaid") + p("taskMining") + p("launchReward")
      await waitFor("the provider's payouts on validator 2", async () => ((await balanceOn(v2, PROVIDER.address)) === providerExpected ? true : undefined), {
        timeoutMs: 30_000,
        intervalMs: 200
      })
      // Validator 3: the protocol fees at the burn address; the computing fees among what the worker received.
      await waitFor(
        "the protocol fees burned on validator 3",
        async () => ((await balanceOn(v3, BURN_ADDRESS)) === burnBefore + BigInt(CALLS) * PROTOCOL_FEE ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 200 }
      )
      const workerStatement = await waitFor(
        "the worker's statement equal to its balance on validator 3",
        async () => {
          const s = await statementOf(worker)
          return s.total.net === (await balanceOn(v3, worker)) && s.total.computeFeesEarned === p("computeFeesPaid") ? s : undefined
        },
        { timeoutMs: 30_000, intervalMs: 200 }
      )
      const w = (k: Exclude<keyof typeof workerStatement.total, symbol>) => workerStatement.total[k] as bigint
      expect(w("computeFeesEarned")).toBeGreaterThan(0n)
      expect(w("net")).toBe(w("onlineMining") + w("taskMining") + w("computeFeesEarned") + w("subsidy"))

      // Every validator agrees on the provider, the worker and the burn address (the worker's online mining goes on: a consistent snapshot).
      const agreed = await waitFor(
        "the same balances on all 4 validators",
        async () => {
          const rows = await Promise.all(
            clients.map(async (c) => (await Promise.all([PROVIDER.address, worker, BURN_ADDRESS].map((a) => balanceOn(c, a)))).map(String).join(","))
          )
          return rows.every((r) => r === rows[0]) ? rows[0] : undefined
        },
        { timeoutMs: 30_000, intervalMs: 200 }
      )
      expect(agreed.split(",")[0]).toBe(String(providerExpected))
      expect(agreed.split(",")[2]).toBe(String(burnBefore + BigInt(CALLS) * PROTOCOL_FEE))

      // Epoch 0's ledger, closed out of consensus; the supply balances.
      const [ledgerRun, supplyRun] = await runCliAll([
        ["rewards", "epoch", "0", ...rpc, "--json"],
        ["supply", ...rpc, "--json"]
      ])
      const ledger = json<{ epoch: number; closed: boolean; events: ReadonlyArray<{ _tag: string }> }>(ledgerRun!)
      expect(ledger).toMatchObject({ epoch: 0, closed: true })
      expect(ledger.events[ledger.events.length - 1]!._tag).toBe("EpochClosed")
      const supply = json<{ balanced: boolean; lastClosed: number | null }>(supplyRun!)
      expect(supply.balanced).toBe(true)
      expect(supply.lastClosed).toBeGreaterThanOrEqual(1)

      for (const c of clients.splice(0)) await c.close()
      const stopped = await devnet.stop("SIGINT", 20_000)
      expect(stopped).toMatchObject({ code: 0, forced: false })

      // Two at a time (each re-executes its validator's whole log and checks every QC).
      const audit = (i: number) => runCli([...auditArgs(join(dataDir, `validator-${i}`)), "--json"], { timeoutMs: 90_000 })
      const audits = [...(await Promise.all([audit(0), audit(1)])), ...(await Promise.all([audit(2), audit(3)]))]
      const reports = audits.map((a) => {
        expect(a.code, a.stdout + a.stderr).toBe(0)
        return JSON.parse(a.stdout) as { ok: boolean; economy?: { epochsEnded: number; epochsChecked: ReadonlyArray<number> } }
      })
      for (const r of reports) expect(r.ok).toBe(true)
      // Validator 0 keeps the reward ledgers: each closed epoch rebuilt and compared.
      expect(reports[0]!.economy!.epochsChecked.length).toBeGreaterThanOrEqual(supply.lastClosed! + 1)
    },
    180_000
  )
})

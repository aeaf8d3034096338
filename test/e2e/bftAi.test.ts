/**
 * The AI shard as a real shard, on the devnet `npm start` runs: `topai devnet
 * --validators 4 --shards 2` as a process, with short epochs and an
 * in-process compute node serving every validator, driven through the real
 * CLI and the typed client. Every validator is an AI gateway and verifier:
 * the model is uploaded to validator 1 and attested by the committee (its
 * verdict the same on all four), the developer deposits through validator 2
 * and calls validator 2, then validator 3 (outputs equal to a bare
 * onnxruntime run), the usage receipts settle on the AI shard's ledger and
 * its payouts leave keyless accounts by receipts. Every validator shows the
 * same statements and the same reward ledgers.
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
import { BURN_ADDRESS } from "../../domain/economics/accounts.js"
import { defaultEconomics } from "../../domain/economics/config.js"
import { DEV, waitFor } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { auditArgs, cleanup, makeTempDir, runCli, runCliAll, spawnNode, hexKey, expectJson } from "./support/processes.js"
import type { NodeProcess } from "./support/processes.js"
import { readFileSync } from "node:fs"
import { SILERO_CLI_FLAGS, SILERO_PATH, sileroBytes, writeSileroInput } from "../ai/support/models.js"
import { bareRun, expectSameOutputs } from "./support/ai.js"



const VALIDATORS = 4
const PRICE = 10n * 10n ** 15n // 0.01 token a call
const DEPOSIT = 10n ** 18n // one token
const CALLS = 2
const EPOCH_FLAGS = ["--epoch-blocks", "4", "--beacon-interval-ms", "500"]
const ECONOMICS = defaultEconomics(DEV[0]!.address)
const PROTOCOL_FEE = (PRICE * ECONOMICS.protocolFeePpm) / 1_000_000n

const PROVIDER = DEV[1]!
const DEVELOPER = DEV[3]!


let devnet: NodeProcess | undefined
const clients: Array<TestClient> = []

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined)
  await cleanup()
})

describe("the AI shard and the rewards on a 4-validator BFT devnet", () => {
  it(
    "upload to validator 1 → attested Verified by all 4; calls through validators 2 and 3 equal bare onnxruntime; receipts settle on the AI ledger, payouts by receipt; statements and reward ledgers equal on all 4; audit passes on every validator",
    async () => {
      const dataDir = makeTempDir("bft-ai")
      devnet = await spawnNode({
        dataDir,
        command: ["devnet", "--validators", String(VALIDATORS), "--shards", "2"],
        extraArgs: ["--workers", "1", ...EPOCH_FLAGS],
        readyTimeoutMs: 40_000
      })
      const rpc = ["--rpc", devnet.url]
      const via = (i: number) => ["--rpc", `ws://127.0.0.1:${devnet!.port + i}/ws`]
      for (let i = 0; i < VALIDATORS; i++) clients.push(await openClient(`ws://127.0.0.1:${devnet.port + i}/ws`))
      const [v0, , v2, v3] = clients as [TestClient, TestClient, TestClient, TestClient]
      const balanceOn = async (c: TestClient, address: string) => (await c.run(c.client.account.get({ address }))).balance

      const providerBefore = await balanceOn(v2, PROVIDER.address)
      const burnBefore = await balanceOn(v3, BURN_ADDRESS)

      // The upload to validator 1: model.register committed through HotStuff, the verdict the committee's attestations.
      const upload = await runCli(
        ["model", "upload", SILERO_PATH, "--name", "silero-bft", "--price", String(PRICE), ...SILERO_CLI_FLAGS, "--key", hexKey(PROVIDER.key), ...via(1), "--json"],
        { timeoutMs: 90_000 }
      )
      const model = expectJson<{ id: string; status: string; provider: string }>(upload)
      expect(model).toMatchObject({ status: "Verified", provider: PROVIDER.address })
      const register = upload.stderr.match(/model\.register (0x[0-9a-f]{64}) included in block (\d+)\/(\d+)/)
      expect(register, upload.stderr).not.toBeNull()
      const [, registerTx, shard, height] = register!
      // The same committed block on another validator.
      const block = await clients[1]!.run(clients[1]!.client.block.get({ shard: Number(shard), height: Number(height) }))
      expect(block.transactions).toContain(registerTx)
      // Every validator verified the weights on its own and attested: the same verdict and fingerprint on all four.
      const views = await waitFor(
        "the model Verified on every validator by the committee's attestations",
        async () => {
          const vs = await Promise.all(clients.map((c) => c.run(c.client.model.get({ model: model.id }))))
          // > 2/3 of four equal stakes is three: the fourth attests too late (the model is no longer Pending).
          return vs.every((v) => v.status === "Verified" && v.attestations >= 3) ? vs : undefined
        },
        { timeoutMs: 60_000, intervalMs: 250 }
      )
      for (const v of views) expect({ fingerprint: v.referenceFingerprint, attestations: v.attestations }).toEqual({ fingerprint: views[0]!.referenceFingerprint, attestations: views[0]!.attestations })

      expectJson(await runCli(["escrow", "deposit", model.id, String(DEPOSIT), "--key", hexKey(DEVELOPER.key), ...via(2), "--json"], { timeoutMs: 60_000 }))
      // Each gateway admits against its own view of the AI ledger: wait until validator 3's shows the escrow too.
      await waitFor("the escrow on validators 2 and 3", async () => {
        const [a, b] = await Promise.all([v2, v3].map((c) => c.run(c.client.escrow.get({ developer: DEVELOPER.address, model: model.id }))))
        return a!.onLedger === DEPOSIT && b!.onLedger === DEPOSIT ? true : undefined
      }, { timeoutMs: 30_000, intervalMs: 200 })
      const input = writeSileroInput(makeTempDir("bft-ai-input"))
      const bare = await bareRun(sileroBytes(), JSON.parse(readFileSync(input, "utf8")))
      // Validator 2, then validator 3: any member is a gateway.
      const calls: Array<{ charged: string; workers: ReadonlyArray<string>; outputs: unknown }> = []
      for (let i = 0; i < CALLS; i++) {
        const r = await runCli(["infer", model.id, "--input", input, "--key", hexKey(DEVELOPER.key), ...via(2 + (i % 2)), "--json"], { timeoutMs: 60_000 })
        calls.push(expectJson(r))
      }
      for (const call of calls) expect(call.charged).toBe(String(PRICE))
      for (const call of calls) expectSameOutputs(call.outputs, bare)
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

      // The same statements on every validator: each folds the AI shard's own events (epochs close every 2 s, so
      // each validator is compared over the epochs all of them have closed).
      const statements = await Promise.all(clients.map((c) => c.run(c.client.rewards.show({ address: PROVIDER.address }))))
      const common = Math.min(...statements.map((st) => st.epochs.length))
      expect(common).toBeGreaterThan(0)
      for (const st of statements) expect(st.epochs.slice(0, common)).toEqual(statements[0]!.epochs.slice(0, common))

      // Epoch 0's ledger, closed in the AI shard's ledger; the supply balances.
      const [ledgerRun, supplyRun] = await runCliAll([
        ["rewards", "epoch", "0", ...rpc, "--json"],
        ["supply", ...rpc, "--json"]
      ])
      const ledger = expectJson<{ epoch: number; closed: boolean; events: ReadonlyArray<{ _tag: string }> }>(ledgerRun!)
      expect(ledger).toMatchObject({ epoch: 0, closed: true })
      expect(ledger.events[ledger.events.length - 1]!._tag).toBe("EpochClosed")
      const supply = expectJson<{ balanced: boolean; lastClosed: number | null }>(supplyRun!)
      expect(supply.balanced).toBe(true)
      expect(supply.lastClosed).toBeGreaterThanOrEqual(1)
      // Every validator wrote the same reward ledgers (the AI shard's execution, not one node's fold).
      const closedEverywhere = Math.min(common - 1, supply.lastClosed!)
      for (let e = 0; e <= closedEverywhere; e++) {
        const ledgers = await Promise.all(clients.map((c) => c.run(c.client.rewards.epoch({ epoch: e }))))
        for (const l of ledgers) expect(l).toEqual(ledgers[0])
      }

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
      // Every validator keeps the reward ledgers: each closed epoch rebuilt from its AI shard and compared.
      for (const r of reports) expect(r.economy!.epochsChecked.length).toBeGreaterThanOrEqual(supply.lastClosed! + 1)
    },
    300_000
  )
})

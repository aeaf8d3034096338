/**
 * Epoch closes and payouts survive kill -9. A devnet with 1 s epochs and its
 * in-process compute node (online mining every epoch) is killed at seeded
 * random moments — during closes, during payouts — and restarted on the same
 * data dir. Afterwards every epoch ledger exists once, the worker holds
 * exactly what its statement says it earned (never a payout twice, none
 * lost), the supply balances and the audit rebuilds every ledger.
 */
import { afterAll, describe, expect, it } from "vitest"
import { waitFor } from "./support/chain.js"
import { openClient, type TestClient } from "./support/client.js"
import { auditArgs, cleanup, makeTempDir, runCli, spawnNode, type NodeProcess } from "./support/processes.js"
import { mulberry32 } from "../support/mulberry32.js"

const SEED = Number(process.env["TOPAI_CRASH_SEED"] ?? 5)
const KILLS = 3
const ARGS = ["--workers", "1", "--epoch-blocks", "5", "--beacon-interval-ms", "200"] // 1 s epochs, one compute node


const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

afterAll(cleanup)

describe(`economy under kill -9 (seed ${SEED})`, () => {
  it(
    "closes and payouts repeat without paying twice: the worker's balance is exactly its statement, every ledger once, supply balances, audit passes",
    async () => {
      const random = mulberry32(SEED)
      const dataDir = makeTempDir("economy-crash")
      const delays: Array<number> = []
      let node: NodeProcess = await spawnNode({ dataDir, extraArgs: ARGS })
      for (let i = 0; i < KILLS; i++) {
        const delay = Math.round(2_500 + random() * 2_500)
        delays.push(delay)
        await sleep(delay)
        await node.stop("SIGKILL")
        node = await spawnNode({ dataDir, extraArgs: ARGS })
      }

      const c: TestClient = await openClient(node.url)
      try {
        const worker = await waitFor("the in-process worker", async () => (await c.run(c.client.worker.list()))[0]?.id)
        // A consistent moment: nothing owed unpaid, and no epoch closed while we read.
        const seen = await waitFor(
          `a settled moment (kill delays ${JSON.stringify(delays)} ms)`,
          async () => {
            const before = await c.run(c.client.supply())
            if (before.lastClosed === null || before.lastClosed < 4 || !before.sources.every((s) => s.owed === s.paid)) return undefined
            const statement = await c.run(c.client.rewards.show({ address: worker }))
            const balance = (await c.run(c.client.account.get({ address: worker }))).balance
            const after = await c.run(c.client.supply())
            const settled = after.lastClosed === before.lastClosed && after.sources.every((s) => s.owed === s.paid)
            return settled ? { supply: after, statement, balance } : undefined
          },
          { timeoutMs: 60_000, intervalMs: 100 }
        )
        expect(seen.statement.total.onlineMining).toBeGreaterThan(0n)
        expect(seen.balance).toBe(seen.statement.total.net)
        expect(seen.supply.balanced).toBe(true)
        // Every closed epoch has one ledger, ending in its one header.
        for (let epoch = 0; epoch <= seen.supply.lastClosed!; epoch++) {
          const ledger = await c.run(c.client.rewards.epoch({ epoch }))
          expect(ledger.events.filter((e) => e._tag === "EpochClosed").length).toBe(1)
          expect(ledger.events[ledger.events.length - 1]!._tag).toBe("EpochClosed")
        }
      } finally {
        await c.close()
      }
      await node.stop("SIGKILL")
      const audit = await runCli([...auditArgs(dataDir), "--json"])
      expect(audit.code, audit.stderr + audit.stdout).toBe(0)
    },
    150_000
  )
})

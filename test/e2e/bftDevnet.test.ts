/**
 * `topai devnet --validators 4 --shards 2` as a process: transfers sent
 * with the typed client to different validators commit through BFT
 * consensus, every validator shows the same balances, and after Ctrl-C
 * `topai audit replay` passes on each validator's own data dir (its shard
 * streams re-executed, each block's QC checked against the validators' BLS
 * keys).
 */
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { devPair, GENESIS_BALANCE, signTransfer, waitFor } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { auditArgs, cleanup, makeTempDir, runCli, spawnNode, wsUrl } from "./support/processes.js"

const VALIDATORS = 4

afterAll(cleanup)

describe("topai devnet (4 BFT validators in one process)", () => {
  it("commits transfers sent to different validators; every validator's data dir passes the audit", async () => {
    const dataDir = makeTempDir("topai-bft-devnet-")
    const devnet = await spawnNode({
      dataDir,
      command: ["devnet", "--validators", String(VALIDATORS), "--shards", "2"],
      extraArgs: ["--beacon-interval-ms", "2000"],
      readyTimeoutMs: 40_000
    })
    const clients: Array<TestClient> = []
    try {
      for (let i = 0; i < VALIDATORS; i++) clients.push(await openClient(wsUrl(devnet.port + i)))
      const [a, b] = devPair(true)
      // Another sender, on the other shard, to someone neither a nor b.
      let skip = 0
      while (devPair(false, skip, a.shard === 1 ? 2 : 1)[1] === b || devPair(false, skip, a.shard === 1 ? 2 : 1)[1] === a) skip++
      const [c, d] = devPair(false, skip, a.shard === 1 ? 2 : 1)
      const same = signTransfer({ key: a.key, to: b.address, amount: 1_000n, nonce: 0n })
      const cross = signTransfer({ key: c.key, to: d.address, amount: 2_000n, nonce: 0n })
      const r1 = await clients[0]!.run(clients[0]!.client.tx.submit({ raw: same.raw, wait: true }), 40_000)
      const r2 = await clients[2]!.run(clients[2]!.client.tx.submit({ raw: cross.raw, wait: true }), 40_000)
      expect(r1.status).toBe("included")
      expect(r2.status).toBe("included")
      for (const client of clients) {
        await waitFor(
          "the credits on every validator",
          async () => {
            const [ab, db] = await Promise.all([
              client.run(client.client.account.get({ address: b.address })),
              client.run(client.client.account.get({ address: d.address }))
            ])
            return ab.balance === GENESIS_BALANCE + 1_000n && db.balance === GENESIS_BALANCE + 2_000n ? true : undefined
          },
          { timeoutMs: 30_000 }
        )
        const block = await client.run(client.client.block.get({ shard: a.shard, height: r1.blockHeight! }))
        expect(block.transactions).toContain(same.hash)
      }
    } finally {
      for (const client of clients) await client.close()
      const stopped = await devnet.stop()
      expect(stopped.forced).toBe(false)
    }
    const audits = await Promise.all(
      Array.from({ length: VALIDATORS }, (_, i) =>
        runCli(auditArgs(join(dataDir, `validator-${i}`)), { timeoutMs: 120_000 })
      )
    )
    for (const audit of audits) expect(audit.code, audit.stdout + audit.stderr).toBe(0)
  }, 180_000)
})

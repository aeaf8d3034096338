/**
 * Epoch closes and payouts survive kill -9, on both kinds of node: the
 * single-producer node (`topai node start`) and the 4-validator BFT devnet
 * (`topai devnet`, every validator running the AI shard and the economy). The node,
 * with short epochs (1 s; 6 s on the devnet) and its in-process compute node
 * (registered on chain; online mining from the committee's liveness reports), serves a paid call (`topai infer`: its usage receipt
 * settles on the AI ledger and pays the worker its compute fee out of escrow)
 * before each kill at a seeded random moment — during settlements, closes,
 * payouts — and is restarted on the same data dir. Afterwards every call is
 * charged once, every epoch ledger exists once, the worker holds exactly
 * what its statement says it earned, and that is more than nothing (never a
 * payout twice, none lost), the supply balances and the audit rebuilds every
 * ledger.
 *
 * The mining reserve is a keyless account on the AI shard, so every payout
 * crosses shards: it leaves the reserve in the AI block (`AiPayout` +
 * `CrossShardSent`) and is credited a (certified) block later at the
 * worker's `CrossShardReceived`. Until then it is in flight (the supply's
 * `inFlight`), so a settled moment is one with nothing owed unpaid and
 * nothing in flight; the economy once counted a payout paid at the send, and
 * on the devnet a settled moment could catch the worker holding half its
 * statement (6.08e18 vs 3.04e18: its last payout still in flight).
 */
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { bytesToHex } from "../../domain/chain/hex.js"
import { SILERO_CLI_FLAGS, SILERO_PATH, writeSileroInput } from "../ai/support/models.js"
import { PrivateKey } from "../../domain/chain/keys.js"
import { writeSecretFileSync } from "../../src/cli/secretFile.js"
import { WORKER_KEY_FILE } from "../../src/cli/commands/worker.js"
import { afterAll, describe, expect, it } from "vitest"
import { DEV, waitFor } from "./support/chain.js"
import { openClient, type TestClient } from "./support/client.js"
import { auditArgs, cleanup, makeTempDir, runCli, spawnNode, type NodeProcess, hexKey } from "./support/processes.js"
import { mulberry32 } from "../support/mulberry32.js"

const SEED = Number(process.env["TOPAI_CRASH_SEED"] ?? 5)
const KILLS = 3
const PRICE = 10n * 10n ** 15n
const DEPOSIT = 10n ** 18n
const PROVIDER = DEV[1]!.key
const DEVELOPER = DEV[3]!.key

interface NodeKind {
  readonly name: string
  readonly command: ReadonlyArray<string>
  /**
   * The epoch length. On the devnet a payout arrives a certified block of the worker's shard after it left the
   * reserve's, and rounds run every 2 s: an epoch must outlast a round and its arrival for a moment with nothing
   * owed unpaid to exist.
   */
  readonly epochs: ReadonlyArray<string>
  /** In-process compute nodes: one, whose statement the story checks to the unit. */
  readonly workers: number
  /** The data dir `topai audit replay` reads: the devnet's economy lives in validator 0's store. */
  readonly auditDir: (dataDir: string) => string
  /** Where the node keeps its in-process worker's key. */
  readonly workerDir: (dataDir: string) => string
  readonly readyTimeoutMs: number
}

const KINDS: ReadonlyArray<NodeKind> = [
  { name: "the single-producer node", command: ["node", "start"], epochs: ["--epoch-blocks", "5", "--beacon-interval-ms", "200"], workers: 1, auditDir: (d) => d, workerDir: (d) => join(d, "worker-0"), readyTimeoutMs: 20_000 },
  {
    name: "the 4-validator BFT devnet",
    command: ["devnet", "--validators", "4", "--shards", "2"],
    epochs: ["--epoch-blocks", "8", "--beacon-interval-ms", "750"],
    workers: 1,
    auditDir: (d) => join(d, "validator-0"),
    workerDir: (d) => join(d, "validator-0", "worker-0"),
    readyTimeoutMs: 40_000
  }
]
const ONLY = process.env["TOPAI_CRASH_KIND"] // "node" or "devnet": run one kind

/** A fresh worker key (no genesis balance): its balance is exactly what it was paid. Any transfer shard: every payout crosses from the AI shard. */
const freshWorkerKey = (): PrivateKey => {
  const key = PrivateKey.fromBytes(new Uint8Array(32).fill(1))
  if (key._tag !== "Right") throw new Error("the worker key does not parse")
  return key.right
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

afterAll(cleanup)

describe.each(KINDS.filter((k) => ONLY === undefined || k.command[0] === ONLY))(`economy under kill -9 (seed ${SEED}) on $name`, (kind) => {
  it(
    "closes and payouts repeat without paying twice: each worker's balance is exactly its statement, every ledger once, supply balances, audit passes",
    async () => {
      const random = mulberry32(SEED)
      const dataDir = makeTempDir("economy-crash")
      const workerKey = freshWorkerKey()
      mkdirSync(kind.workerDir(dataDir), { recursive: true })
      writeSecretFileSync(join(kind.workerDir(dataDir), WORKER_KEY_FILE), `${bytesToHex(workerKey.exportBytes())}\n`)
      const delays: Array<number> = []
      const start = () =>
        spawnNode({ dataDir, command: kind.command, extraArgs: ["--workers", String(kind.workers), ...kind.epochs], readyTimeoutMs: kind.readyTimeoutMs })
      let node: NodeProcess = await start()
      const cli = async (args: ReadonlyArray<string>) => {
        const r = await runCli([...args, "--rpc", node.url, "--json"], { timeoutMs: 90_000 })
        expect({ args, code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ args, code: 0, stderr: "" })
        return JSON.parse(r.stdout) as Record<string, unknown>
      }
      const model = String((await cli(["model", "upload", SILERO_PATH, "--name", "silero-crash", "--price", String(PRICE), ...SILERO_CLI_FLAGS, "--key", hexKey(PROVIDER)]))["id"])
      await cli(["escrow", "deposit", model, String(DEPOSIT), "--key", hexKey(DEVELOPER)])
      const input = writeSileroInput(makeTempDir("economy-crash-input"))
      /** A paid call, once the in-process worker is back online (after a restart). */
      const call = async () => {
        const c = await openClient(node.url)
        try {
          await waitFor("the worker online", async () => ((await c.run(c.client.worker.list())).some((w) => w.id === workerKey.publicKey.address && w.online) ? true : undefined), { timeoutMs: 60_000, intervalMs: 100 })
        } finally {
          await c.close()
        }
        expect(await cli(["infer", model, "--input", input, "--key", hexKey(DEVELOPER)])).toMatchObject({ charged: String(PRICE), workers: [workerKey.publicKey.address] })
      }
      for (let i = 0; i < KILLS; i++) {
        await call()
        const delay = Math.round(random() * 2_500)
        delays.push(delay)
        await sleep(delay)
        await node.stop("SIGKILL")
        node = await start()
      }
      await call()
      const calls = KILLS + 1

      const c: TestClient = await openClient(node.url)
      try {
        const workers = await waitFor(`the ${kind.workers} in-process worker(s)`, async () => {
          const listed = (await c.run(c.client.worker.list())).map((w) => w.id)
          return listed.length === kind.workers ? listed : undefined
        })
        expect(workers).toContain(workerKey.publicKey.address)
        // Every call's receipt settled on the AI ledger (the settler resends what a kill interrupted). A statement
        // counts an epoch once it is closed: the settlements' fees are in it once the epoch open now has closed.
        const openAtSettled = await waitFor(
          `every call settled on the AI ledger (kill delays ${JSON.stringify(delays)} ms)`,
          async () => {
            const open = ((await c.run(c.client.supply())).lastClosed ?? -1) + 1
            const escrow = await c.run(c.client.escrow.get({ developer: DEVELOPER.publicKey.address, model }))
            return escrow.onLedger === DEPOSIT - BigInt(calls) * PRICE ? open : undefined
          },
          { timeoutMs: 60_000, intervalMs: 100 }
        )
        // A consistent moment: nothing owed unpaid, and no epoch closed while we read.
        const seen = await waitFor(
          `a settled moment after epoch ${openAtSettled} closed (kill delays ${JSON.stringify(delays)} ms)`,
          async () => {
            const before = await c.run(c.client.supply())
            if (before.lastClosed === null || before.lastClosed < Math.max(4, openAtSettled) || !before.sources.every((s) => s.owed === s.paid)) return undefined
            const each: Array<{ worker: string; net: bigint; onlineMining: bigint; computeFeesEarned: bigint; balance: bigint }> = []
            for (const worker of workers) {
              const statement = await c.run(c.client.rewards.show({ address: worker }))
              const balance = (await c.run(c.client.account.get({ address: worker }))).balance
              each.push({ worker, net: statement.total.net, onlineMining: statement.total.onlineMining, computeFeesEarned: statement.total.computeFeesEarned, balance })
            }
            const after = await c.run(c.client.supply())
            const settled = after.lastClosed === before.lastClosed && after.sources.every((s) => s.owed === s.paid)
            return settled ? { supply: after, each } : undefined
          },
          { timeoutMs: 90_000, intervalMs: 100 }
        )
        for (const w of seen.each) {
          // Online mining from chain data (the committee's worker.liveness): the in-process worker earns it while the node runs.
          expect(w.onlineMining, `worker ${w.worker}`).toBeGreaterThan(0n)
          // Its compute fees for the calls at least (online mining above is on top).
          expect(w.computeFeesEarned, `worker ${w.worker}'s compute fees`).toBeGreaterThan(0n)
          expect({ worker: w.worker, balance: w.balance }).toEqual({ worker: w.worker, balance: w.net })
        }
        // Each call charged once: the escrow's payouts went out once per receipt.
        const escrow = await c.run(c.client.escrow.get({ developer: DEVELOPER.publicKey.address, model }))
        expect(escrow.onLedger).toBe(DEPOSIT - BigInt(calls) * PRICE)
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
      const audit = await runCli([...auditArgs(kind.auditDir(dataDir), dataDir), "--json"])
      expect(audit.code, audit.stderr + audit.stdout).toBe(0)
    },
    300_000
  )
})

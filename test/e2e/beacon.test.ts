/**
 * The beacon as a user meets it: `topai node start --epoch-blocks 2
 * --beacon-interval-ms 200` makes beacon blocks while nothing else happens,
 * ends an epoch every two of them, shows its height and epoch in `topai
 * status`, keeps its epoch settings across a restart (and refuses other ones
 * for the same data dir), and `topai audit replay` re-executes it.
 *
 * The tests of this file are steps of one story and share one data dir.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { aiShardOf } from "../../domain/chain/sharding.js"
import { SYSTEM_BEACON } from "../../domain/economics/accounts.js"
import type { EventView } from "../../src/client/index.js"
import { devPair, signTransfer, waitFor } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { auditArgs, cleanup, makeTempDir, runCli, spawnNode } from "./support/processes.js"
import type { NodeProcess } from "./support/processes.js"

const EPOCH_BLOCKS = 2
const INTERVAL_MS = 200
const FLAGS = ["--epoch-blocks", String(EPOCH_BLOCKS), "--beacon-interval-ms", String(INTERVAL_MS)]

interface EpochEndedData {
  readonly epoch: number
  readonly height: number
  readonly startAt: number
  readonly endAt: number
}

let dataDir: string
let node: NodeProcess
let c: TestClient

const beacon = async () => (await c.run(c.client.node.status())).shards.find((s) => s.shard === 0)!
const beaconEvents = (): Promise<ReadonlyArray<EventView>> =>
  c.run(c.client.events.read({ stream: "shard-0", from: 0, limit: 10_000 }))
const untilBeaconHeight = (height: number) =>
  waitFor(`beacon height ${height}`, async () => ((await beacon()).height >= height ? true : undefined), { timeoutMs: 15_000 })
const genesisTimestamp = () => (JSON.parse(readFileSync(join(dataDir, "genesis.json"), "utf8")) as { timestamp: number }).timestamp

/** Every EpochEnded of the beacon's stream, checked against its block and its predecessor. */
const expectEpochClock = (events: ReadonlyArray<EventView>) => {
  const ended = events.filter((e) => e.type === "EpochEnded").map((e) => e.data as EpochEndedData)
  const sealedAt = new Map(
    events.filter((e) => e.type === "BlockExecuted").map((e) => [(e.data as { height: number }).height, (e.data as { timestamp: number }).timestamp])
  )
  ended.forEach((e, i) => {
    expect(e.epoch).toBe(i)
    expect(e.height).toBe((i + 1) * EPOCH_BLOCKS)
    expect(e.startAt).toBe(i === 0 ? genesisTimestamp() : ended[i - 1]!.endAt)
    expect(e.endAt).toBe(sealedAt.get(e.height))
  })
  // Each EpochEnded sits inside its block, followed by the epoch receipt that tells the AI shard
  // (amount 0, from the keyless beacon system address, purpose epoch with the same window), then
  // that block's BlockExecuted.
  events.forEach((e, i) => {
    if (e.type !== "EpochEnded") return
    const d = e.data as EpochEndedData
    expect(events[i + 1]!.type).toBe("CrossShardSent")
    expect(events[i + 1]!.data).toMatchObject({
      sourceShard: 0,
      destShard: aiShardOf(2),
      from: SYSTEM_BEACON,
      purpose: { kind: "epoch", epoch: d.epoch, startAt: d.startAt, endAt: d.endAt }
    })
    expect(BigInt((events[i + 1]!.data as { amount: string | number }).amount)).toBe(0n)
    expect(events[i + 2]!.type).toBe("BlockExecuted")
    expect((events[i + 2]!.data as { height: number }).height).toBe(d.height)
  })
  return ended
}

beforeAll(async () => {
  dataDir = makeTempDir("beacon")
  node = await spawnNode({ dataDir, extraArgs: FLAGS })
  c = await openClient(node.url)
})

afterAll(async () => {
  await c?.close()
  await cleanup()
})

describe("the beacon: the chain's epoch clock", () => {
  it("makes blocks while the chain is idle and ends an epoch every epochBlocks blocks", async () => {
    await untilBeaconHeight(5)
    const status = await c.run(c.client.node.status())
    expect(status.shards.map((s) => [s.shard, s.kind])).toEqual([[0, "beacon"], [1, "transfer"], [2, "transfer"], [3, "ai"]])
    // Nothing was sent: the transfer shards made no block (the AI shard takes the beacon's epoch receipts).
    expect(status.shards.slice(1, 3).map((s) => s.height)).toEqual([0, 0])
    const ended = expectEpochClock(await beaconEvents())
    expect(ended.length).toBeGreaterThanOrEqual(2)
    expect((await beacon()).epoch).toBeGreaterThanOrEqual(ended.length)
    const block = await c.run(c.client.block.get({ shard: 0, height: EPOCH_BLOCKS }))
    expect([block.shard, block.height, block.transactions, block.receipts]).toEqual([0, EPOCH_BLOCKS, [], []])
    expect(block.timestamp).toBe(ended[0]!.endAt)
  })

  it("topai status shows the beacon's height and epoch", async () => {
    const text = await runCli(["status", "--rpc", node.url])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^shard 0 \(beacon\): height \d+ {2}epoch \d+ {2}head 0x[0-9a-f]{64}/m)
    expect(text.stdout).toMatch(/^shard 1 \(transfer\): height 0 {2}head /m)
  })

  it("transfers still go to the transfer shards", async () => {
    const [a, b] = devPair(false)
    const tx = signTransfer({ key: a.key, to: b.address, amount: 1_000n, nonce: 0n })
    const result = await c.run(c.client.tx.submit({ raw: tx.raw, wait: true }))
    expect([result.status, result.shard]).toEqual(["included", a.shard])
  })

  it("a restart keeps the epoch settings and the numbering; other settings for the data dir are refused", async () => {
    await c.close()
    expect((await node.stop("SIGINT")).code).toBe(0)
    const before = await (async () => {
      const refused = await runCli(["node", "start", "--data-dir", dataDir, "--workers", "0", "--epoch-blocks", "3"])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toContain(`holds a chain with ${EPOCH_BLOCKS} beacon blocks per epoch; --epoch-blocks 3 would need a new --data-dir`)
      const slower = await runCli(["node", "start", "--data-dir", dataDir, "--workers", "0", "--beacon-interval-ms", "1000"])
      expect(slower.code).toBe(1)
      expect(slower.stderr).toContain(`--beacon-interval-ms 1000 would need a new --data-dir`)
      return JSON.parse(readFileSync(join(dataDir, "genesis.json"), "utf8")) as { economics: { epochBlocks: number } }
    })()
    expect(before.economics.epochBlocks).toBe(EPOCH_BLOCKS)

    node = await spawnNode({ dataDir }) // the settings come from the data dir's genesis
    c = await openClient(node.url)
    const resumedAt = (await beacon()).height
    await untilBeaconHeight(resumedAt + 2 * EPOCH_BLOCKS)
    expectEpochClock(await beaconEvents())
  })

  it("topai audit replay re-executes the beacon with the other shards", async () => {
    await c.close()
    expect((await node.stop("SIGINT")).code).toBe(0)
    const events = await (async () => {
      const json = await runCli([...auditArgs(dataDir), "--json"])
      expect(json.code).toBe(0)
      return JSON.parse(json.stdout) as { ok: boolean; shards: Array<{ shard: number; height: number; accounts: number }> }
    })()
    expect(events.ok).toBe(true)
    const beaconSummary = events.shards.find((s) => s.shard === 0)!
    expect(beaconSummary.height).toBeGreaterThanOrEqual(4 * EPOCH_BLOCKS)
    expect(beaconSummary.accounts).toBe(0)
    expect(events.shards.map((s) => s.shard)).toEqual([0, 1, 2, 3])
  })
})

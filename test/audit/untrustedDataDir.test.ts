/**
 * The auditor trusts nothing in the directory it audits. A real log (the
 * econ-sim workload through the real actors into SQLite) is tampered the way
 * a forger with write access would (the hash chain re-forged after the
 * change): a stored event that is not JSON, not an object, or not its
 * event's schema fails the audit naming its stream and revision, never a
 * crash. And the genesis comes from the operator: `--genesis FILE` or
 * `--genesis-hash H`, checked against the data dir's pinned genesis.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import { Effect, Logger, LogLevel, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runEconSim, simGenesis } from "../../bench/econWorkload.js"
import { GenesisConfig, genesisConfigHash } from "../../domain/chain/genesis.js"
import { aiShardOf } from "../../domain/chain/sharding.js"
import { auditEventLog, type AuditReport } from "../../src/audit/auditEventLog.js"
import { SqliteEventStore } from "../../infra/eventstore/SqliteEventStore.js"
import { rewriteRehashed, type Row } from "../e2e/support/tamper.js"
import { cleanup, expectUserError, runCli } from "../e2e/support/processes.js"

/** The AI shard's stream of the sim's chain. */
const AI_STREAM = `shard-${aiShardOf(simGenesis().transferShards)}`
let dir: string
const dbFile = () => join(dir, "events.db")

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "topai-untrusted-"))
  await Effect.runPromise(
    runEconSim({ epochs: 2, workers: 3, models: 1, seed: 7 }).pipe(
      Effect.scoped,
      Effect.provide(SqliteEventStore.layer({ filename: dbFile() })),
      Logger.withMinimumLogLevel(LogLevel.Warning)
    )
  )
})

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await cleanup()
})

let copies = 0
/** A copy of the log with the first event of `type` (in `stream` prefix) rewritten to `data`, the chain re-forged. */
const tampered = async (type: string, data: (before: string) => string): Promise<{ file: string; row: Row }> => {
  const file = join(dir, `tampered-${copies++}.db`)
  const src = new Database(dbFile(), { readonly: true })
  await src.backup(file)
  src.close()
  const db = new Database(file)
  const row = db.prepare<[string], Row>("SELECT * FROM events WHERE type = ? ORDER BY position LIMIT 1").get(type)!
  rewriteRehashed(db, row, data(row.data))
  db.close()
  return { file, row }
}

const audit = (file: string, stream: string): Promise<AuditReport> =>
  Effect.runPromise(auditEventLog(file, { stream, genesis: simGenesis() }))

describe("a malformed stored event fails the audit at that event", () => {
  const cases: ReadonlyArray<readonly [string, string, string, (before: string) => string, string, RegExp]> = [
    ["a shard event that is not JSON, rebuilding an epoch", "AiStakeBonded", "reward-epoch-0", (d) => d.slice(0, -3), "MalformedEvent", /^AiStakeBonded: its data is not JSON/],
    ["a shard event that is not JSON, auditing its shard", "AiStakeBonded", AI_STREAM, (d) => `${d}}`, "MalformedEvent", /^AiStakeBonded: its data is not JSON/],
    ["a shard event that is an array, auditing its shard", "AiStakeBonded", AI_STREAM, () => "[1,2]", "MalformedEvent", /^AiStakeBonded: its data is not a JSON object but an array$/],
    ["a shard event whose amount is not a number, auditing its shard", "AiStakeBonded", AI_STREAM, (d) => d.replace(/"amount":"\d+"/, '"amount":"lots"'), "UndecodableEvent", /amount/],
    // The economy reads the AI shard's events: one of them undecodable fails the rebuild there.
    ["an AI shard event whose amount is not a number, rebuilding an epoch", "RewardCredited", "reward-epoch-0", (d) => d.replace(/"amount":"\d+"/, '"amount":"lots"'), "EconomyReplayFailed", /lots/],
    ["a worker event that is null, rebuilding an epoch", "WorkerRegistered", "reward-epoch-1", () => "null", "MalformedEvent", /^WorkerRegistered: its data is not a JSON object but null$/],
    ["a reward ledger's header that is a number", "EpochClosed", "reward-epoch-0", () => "7", "MalformedEvent", /^EpochClosed: its data is not a JSON object but number$/]
  ]
  it.each(cases)("%s", async (_name, type, stream, data, reason, detail) => {
    const { file, row } = await tampered(type, data)
    const r = await audit(file, stream)
    expect(r.ok).toBe(false)
    expect(r.failure).toMatchObject({ stream: row.stream, revision: row.revision, position: row.position, reason })
    expect(r.failure?.detail).toMatch(detail)
  })

  it("an AI stream's event of the wrong schema, auditing that stream", async () => {
    const { file, row } = await tampered("WorkerRegistered", (d) => d.replace(/"at":\d+/, '"at":"yesterday"'))
    const r = await audit(file, row.stream)
    expect(r.failure).toMatchObject({ stream: row.stream, revision: row.revision, reason: "UndecodableEvent" })
  })
})

describe("topai audit replay takes the genesis from the operator", () => {
  const encode = Schema.encodeSync(Schema.parseJson(GenesisConfig))
  const dataDir = () => {
    const d = join(dir, "node")
    mkdirSync(d, { recursive: true })
    return d
  }

  it("refuses to run without one; refuses another chain's genesis or hash; passes with the right one and prints its hash", { timeout: 240_000 }, async () => {
    const d = dataDir()
    const src = new Database(dbFile(), { readonly: true })
    await src.backup(join(d, "events.db"))
    src.close()
    writeFileSync(join(d, "genesis.json"), encode(simGenesis()))
    const other = join(dir, "other-genesis.json")
    writeFileSync(other, encode(new GenesisConfig({ ...simGenesis(), chainId: 7_701n })))
    const right = join(dir, "right-genesis.json")
    writeFileSync(right, encode(simGenesis()))
    const hash = genesisConfigHash(simGenesis())
    const epoch = ["--stream", "reward-epoch-0"]
    const cli = (...args: ReadonlyArray<string>) => runCli(["audit", "replay", "--data-dir", d, ...args, ...epoch], { timeoutMs: 60_000 })
    // One at a time: each is a process of its own on a small machine.
    const none = await cli()
    const both = await cli("--genesis", right, "--genesis-hash", hash)
    const wrongFile = await cli("--genesis", other)
    const wrongHash = await cli("--genesis-hash", genesisConfigHash(new GenesisConfig({ ...simGenesis(), chainId: 7_701n })))
    const badHash = await cli("--genesis-hash", "0x12")
    const byFile = await cli("--genesis", right)
    const byHash = await cli("--genesis-hash", hash.toUpperCase().replace("0X", "0x"))
    const refusal = /^error: give the network's genesis: --genesis FILE or --genesis-hash HASH \(exactly one\); the auditor does not take it from the data dir it audits$/
    expectUserError(["no genesis"], none, refusal)
    expectUserError(["both"], both, refusal)
    expectUserError(["--genesis other"], wrongFile, new RegExp(`^error: the data dir's genesis \\(.*genesis\\.json, hash ${hash}\\) is not the given one \\(hash 0x[0-9a-f]{64}\\): this is another chain's history$`))
    expectUserError(["--genesis-hash other"], wrongHash, new RegExp(`^error: the data dir's genesis \\(.*genesis\\.json\\) hashes to ${hash}, not 0x[0-9a-f]{64}: this is another chain's history$`))
    expectUserError(["--genesis-hash 0x12"], badHash, /^error: --genesis-hash must be 0x followed by 64 hex digits, got "0x12"$/)
    for (const ok of [byFile, byHash]) {
      expect(ok.code, ok.stderr).toBe(0)
      expect(ok.stdout).toContain("audit passed")
      expect(ok.stdout).toContain(`genesis hash ${hash} (the operator's)`)
    }
  })
})

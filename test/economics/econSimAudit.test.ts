/**
 * The economy's simulation and its audit, offline and real: the econ-sim
 * workload runs through the real actors (workers, models, tasks, the
 * RewardActor) into a SQLite event store; the auditor rebuilds every epoch
 * ledger from the log with the node's own fold and compares it field by
 * field. An untouched log passes; a reward amount changed with the hash
 * chain re-forged, or a deleted epoch ledger, fails with each difference
 * named. The same seed gives the same CSV.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import { Effect, Logger, LogLevel } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runEconSim, simGenesis, totalsCsv, type EconSimOptions } from "../../bench/econWorkload.js"
import { auditEventLog } from "../../src/audit/auditEventLog.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { SqliteEventStore } from "../../infra/eventstore/SqliteEventStore.js"
import { rewriteRehashed, type Row } from "../e2e/support/tamper.js"

const OPTIONS: EconSimOptions = { epochs: 4, workers: 8, models: 2, seed: 7 }
const quiet = Logger.withMinimumLogLevel(LogLevel.Warning)

const csvOf = (o: EconSimOptions) =>
  Effect.runPromise(runEconSim(o).pipe(Effect.map(totalsCsv), Effect.scoped, Effect.provide(MemoryEventStore.layer), quiet))

let dir: string
const dbFile = () => join(dir, "events.db")
const audit = (stream?: string) => Effect.runPromise(auditEventLog(dbFile(), { stream, genesis: simGenesis() }))


beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "topai-econ-sim-"))
  await Effect.runPromise(runEconSim(OPTIONS).pipe(Effect.scoped, Effect.provide(SqliteEventStore.layer({ filename: dbFile() })), quiet))
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("econ-sim", () => {
  it("is deterministic: the same seed gives the same CSV, another seed another", async () => {
    const [a, b, c] = await Promise.all([csvOf(OPTIONS), csvOf(OPTIONS), csvOf({ ...OPTIONS, seed: 8 })])
    expect(a).toBe(b)
    expect(c).not.toBe(a)
    expect(a.split("\n")[0]).toBe("epoch,issuance,launch,online,taskWorkers,taskProviders,subsidy,minted,serviceFees,computeFees,protocolFees,slashed,burned,released,reserve,tasks")
    expect(a.trim().split("\n")).toHaveLength(1 + OPTIONS.epochs)
  })
})

describe("audit replay of the reward ledgers", () => {
  it("passes on an untouched log: every epoch rebuilt, every ledger identical", async () => {
    for (let epoch = 0; epoch < OPTIONS.epochs; epoch++) {
      const r = await audit(`reward-epoch-${epoch}`)
      expect(r.failure).toBeUndefined()
      expect(r.ok).toBe(true)
      expect(r.economy?.epochsEnded).toBe(OPTIONS.epochs)
      expect(r.economy?.epochsChecked).toEqual([epoch])
      expect(r.economy?.differenceCount).toBe(0)
    }
  })

  it("fails on a reward amount changed with its hash chain re-forged, naming the event, the field and both values", async () => {
    const file = dbFile()
    const copy = join(dir, "forged.db")
    const src = new Database(file, { readonly: true })
    await src.backup(copy)
    src.close()
    const db = new Database(copy)
    const row = db.prepare<[], Row>("SELECT * FROM events WHERE type = 'RewardCredited' AND stream = 'reward-epoch-1' ORDER BY revision LIMIT 1").get()!
    const data = JSON.parse(row.data) as { amount: string }
    const forged = (BigInt(data.amount) + 1n).toString()
    rewriteRehashed(db, row, JSON.stringify({ ...data, amount: forged }))
    db.close()

    const r = await Effect.runPromise(auditEventLog(copy, { stream: "reward-epoch-1", genesis: simGenesis() }))
    expect(r.ok).toBe(false)
    expect(r.failure?.reason).toBe("RewardLedgerMismatch")
    expect(r.economy?.differences).toEqual([
      { epoch: 1, stream: "reward-epoch-1", index: row.revision, position: row.position, event: "RewardCredited", field: "amount", stored: JSON.stringify(forged), rebuilt: JSON.stringify(data.amount) }
    ])
  })

  it("fails when an ended epoch's ledger is missing while a later one is stored", async () => {
    const copy = join(dir, "deleted.db")
    const src = new Database(dbFile(), { readonly: true })
    await src.backup(copy)
    src.close()
    const db = new Database(copy)
    db.prepare("DELETE FROM events WHERE stream = 'reward-epoch-0'").run()
    const headsTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'streams'").get()
    if (headsTable !== undefined) db.prepare("DELETE FROM streams WHERE stream = 'reward-epoch-0'").run()
    db.close()
    const r = await Effect.runPromise(auditEventLog(copy, { stream: "reward-epoch-0", genesis: simGenesis() }))
    expect(r.ok).toBe(false)
    expect(r.economy?.differences[0]).toMatchObject({ stream: "reward-epoch-0", field: "(stream)", stored: "missing" })
  })
})

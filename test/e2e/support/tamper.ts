/**
 * What an attacker with write access to a node's data dir could do to its
 * event log, for the auditor to catch: copy the data dir, then change a byte,
 * drop a row, or rewrite an event and re-forge the hash chain after it.
 */
import { copyFileSync, existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import Database from "better-sqlite3"
import { eventHash } from "../../../infra/eventstore/eventHash.js"

export const EVENTS_DB = "events.db"

/** An `events` row as SQLite stores it. */
export interface Row {
  readonly position: number
  readonly stream: string
  readonly revision: number
  readonly id: string
  readonly type: string
  readonly data: string
  readonly metadata: string
  readonly prev_hash: string
  readonly hash: string
}

/** Copy a stopped node's data dir (genesis, the SQLite file and any WAL) into `to`. */
export const copyDataDir = (from: string, to: string): void => {
  for (const name of readdirSync(from)) {
    if (name === "genesis.json" || name.startsWith(EVENTS_DB)) copyFileSync(join(from, name), join(to, name))
  }
}

const withDb = <A>(dataDir: string, f: (db: Database.Database) => A): A => {
  const file = join(dataDir, EVENTS_DB)
  if (!existsSync(file)) throw new Error(`no ${file}`)
  const db = new Database(file)
  try {
    return f(db)
  } finally {
    db.close()
  }
}

export interface Tampered {
  readonly stream: string
  readonly revision: number
  readonly before: string
  readonly after: string
}

/** Change one digit of the `"amount"` of the first event of `type` (the row's hash is left as it was). */
export const changeAmountDigit = (dataDir: string, type: string): Tampered =>
  withDb(dataDir, (db) => {
    const row = db.prepare<[string], Row>("SELECT * FROM events WHERE type = ? ORDER BY position LIMIT 1").get(type)
    if (row === undefined) throw new Error(`no ${type} event to tamper with`)
    const after = flipAmountDigit(row.data)
    db.prepare("UPDATE events SET data = ? WHERE position = ?").run(after, row.position)
    return { stream: row.stream, revision: row.revision, before: row.data, after }
  })

/** `"amount":"123"` → `"amount":"124"`: one byte, still a valid amount. */
const flipAmountDigit = (data: string): string => {
  const match = /"amount":"(\d+)"/.exec(data)
  if (match === null) throw new Error(`no amount in ${data}`)
  const at = match.index + match[0].length - 2 // the last digit
  const digit = Number(data[at])
  return data.slice(0, at) + String((digit + 1) % 10) + data.slice(at + 1)
}

/** Delete the event at `revision` of `stream` (a row in the middle of the stream). */
export const deleteEvent = (dataDir: string, stream: string, revision: number): void =>
  withDb(dataDir, (db) => {
    const info = db.prepare("DELETE FROM events WHERE stream = ? AND revision = ?").run(stream, revision)
    if (info.changes !== 1) throw new Error(`no event ${stream}@${revision}`)
  })

/**
 * Replace `first`'s data with `after` and recompute the hash chain of its
 * stream from there on: a forger who knows the hashing. Only re-execution
 * can catch it.
 */
export const rewriteRehashed = (db: Database.Database, first: Row, after: string): void => {
  const rows = db
    .prepare<[string, number], Row>("SELECT * FROM events WHERE stream = ? AND revision >= ? ORDER BY revision")
    .all(first.stream, first.revision)
  const update = db.prepare("UPDATE events SET data = ?, prev_hash = ?, hash = ? WHERE position = ?")
  db.transaction(() => {
    let prevHash = first.prev_hash
    for (const row of rows) {
      const data = row.position === first.position ? after : row.data
      const hash = eventHash({ prevHash, stream: row.stream, revision: row.revision, id: row.id, type: row.type, dataJson: data, metadataJson: row.metadata })
      update.run(data, prevHash, hash, row.position)
      prevHash = hash
    }
    // A store that keeps stream heads in a table of their own gets the forged head too.
    const headsTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'streams'").get()
    if (headsTable !== undefined) db.prepare("UPDATE streams SET hash = ? WHERE stream = ?").run(prevHash, first.stream)
  })()
}

/**
 * Change an amount digit of the first event of `type`, then recompute the hash
 * of that event and of every later one in its stream (and the stream head), so
 * the hash chain holds again: only re-execution can tell.
 */
export const forgeAmountWithChain = (dataDir: string, type: string): Tampered =>
  withDb(dataDir, (db) => {
    const first = db.prepare<[string], Row>("SELECT * FROM events WHERE type = ? ORDER BY position LIMIT 1").get(type)
    if (first === undefined) throw new Error(`no ${type} event to forge`)
    const after = flipAmountDigit(first.data)
    rewriteRehashed(db, first, after)
    return { stream: first.stream, revision: first.revision, before: first.data, after }
  })

/** Stream and revision of the first event of `type` that is neither first nor last of its stream. */
export const middleEvent = (dataDir: string, type: string): { readonly stream: string; readonly revision: number } =>
  withDb(dataDir, (db) => {
    const row = db
      .prepare<[string], Row>(
        `SELECT e.* FROM events e
         WHERE e.type = ? AND e.revision > 0
           AND e.revision < (SELECT MAX(revision) FROM events l WHERE l.stream = e.stream)
         ORDER BY e.position LIMIT 1`
      )
      .get(type)
    if (row === undefined) throw new Error(`no ${type} event in the middle of a stream`)
    return { stream: row.stream, revision: row.revision }
  })

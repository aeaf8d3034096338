/**
 * The SQLite file format of the event store: tables, version stamps, and the
 * connection settings. Shared by the driver and the auditor's raw reader.
 */
import Database from "better-sqlite3"

/** Bumped on any change to the tables below; a newer file is refused. */
export const SCHEMA_VERSION = 1

/** Stamped into the file header ("tpes"), so a stranger's database is refused. */
export const APPLICATION_ID = 0x74706573

/** How long a statement waits for another connection's lock before failing. */
export const BUSY_TIMEOUT_MS = 5_000

export type Synchronous = "NORMAL" | "FULL"

// One row per event, position = rowid = global commit order. (stream,
// revision) orders a stream and finds its head (the last entry of its index
// range); (stream, id) makes ids unique per stream and finds idempotent
// retries. There is no heads table: it would add a page to every commit
// (~15% of the append rate at batch size 1), and heads() walks the
// (stream, revision) index from stream to stream instead.
const CREATE_TABLES = `
CREATE TABLE IF NOT EXISTS events (
  position  INTEGER PRIMARY KEY,
  stream    TEXT    NOT NULL,
  revision  INTEGER NOT NULL,
  id        TEXT    NOT NULL,
  type      TEXT    NOT NULL,
  data      TEXT    NOT NULL,
  metadata  TEXT    NOT NULL,
  prev_hash TEXT    NOT NULL,
  hash      TEXT    NOT NULL,
  UNIQUE (stream, revision)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_stream_id ON events (stream, id);
DROP TABLE IF EXISTS streams;
`

/** Columns of events under the names of RawEventRow; SqliteEventStore reads them by index in this order. */
export const RAW_ROW_COLUMNS =
  "position, stream, revision, id, type, data AS dataJson, metadata AS metadataJson, prev_hash AS prevHash, hash"

/** Throws (as better-sqlite3 does) when the file is not ours or is too new. */
export const checkStamps = (db: Database.Database, allowBlank: boolean): void => {
  const applicationId = db.pragma("application_id", { simple: true }) as number
  const version = db.pragma("user_version", { simple: true }) as number
  const blank = applicationId === 0 && version === 0
  if (blank && allowBlank) return
  if (applicationId !== APPLICATION_ID) {
    throw new Error(`not a topai event store (application_id ${applicationId})`)
  }
  if (version > SCHEMA_VERSION) {
    throw new Error(`schema version ${version} is newer than this program's ${SCHEMA_VERSION}`)
  }
}

/**
 * Opens the writer connection: WAL (readers never block the writer), the
 * given durability, tables created if missing. Throws on a corrupt file.
 *
 * synchronous=NORMAL in WAL mode survives a crash of the process (kill -9):
 * committed transactions are in the OS page cache. It may lose the last
 * transactions (never tear one) on power loss or an OS crash; FULL syncs the
 * WAL at every commit and survives those too, at a cost in append rate.
 */
export const openWriter = (filename: string, synchronous: Synchronous): Database.Database => {
  const db = new Database(filename, { timeout: BUSY_TIMEOUT_MS })
  try {
    db.pragma("journal_mode = WAL") // the first read of the file: a corrupt header fails here
    db.pragma(`synchronous = ${synchronous}`)
    checkStamps(db, true)
    db.transaction(() => {
      db.exec(CREATE_TABLES)
      db.pragma(`application_id = ${APPLICATION_ID}`)
      db.pragma(`user_version = ${SCHEMA_VERSION}`)
    }).immediate()
    return db
  } catch (error) {
    db.close()
    throw error
  }
}

/** Opens an existing store read-only (no tables created, nothing written). */
export const openReader = (filename: string): Database.Database => {
  const db = new Database(filename, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS })
  try {
    checkStamps(db, false)
    return db
  } catch (error) {
    db.close()
    throw error
  }
}

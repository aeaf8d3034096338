/**
 * The SQLite driver: one raw better-sqlite3 connection with prepared
 * statements (the effect/sql client costs ~40 µs a statement; an append here
 * is a few µs of SQL).
 *
 * Gap safety (RELIABILITY item 4): SQLite lets one write transaction run at a
 * time, and an event's position is its rowid, taken as max + 1 inside that
 * transaction. better-sqlite3 commits synchronously, so when an append
 * returns its events are committed, and every later commit gets larger
 * positions. Positions are therefore assigned in commit order: a reader that
 * has seen position p can never later find a new event below p. This holds
 * across processes too (the write lock is SQLite's), but live notification is
 * in-process: open one store per file, in one process; others may read.
 */
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import type { Scope } from "effect"
import type {
  AppendError,
  AppendResult,
  EventStoreShape,
  ExpectedRevision,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  StreamHead
} from "./EventStore.js"
import { EventStore, EventStoreError, InvalidAppend } from "./EventStore.js"
import { eventHash } from "./eventHash.js"
import type { PreparedEvent } from "./prepareBatch.js"
import { prepareBatch } from "./prepareBatch.js"
import type { AppendPlan, HeadView, StoredEventView, StreamView } from "./planAppend.js"
import { planAppend } from "./planAppend.js"
import { allRange, streamRange } from "./readBounds.js"
import type { Synchronous } from "./sqliteSchema.js"
import { openWriter, RAW_ROW_COLUMNS } from "./sqliteSchema.js"
import { makeCommitSignal } from "./commitSignal.js"
import { subscriptionsOf } from "./subscription.js"

export interface SqliteEventStoreOptions {
  readonly filename: string
  /** NORMAL (default) survives kill -9 of the process; FULL also survives power loss. */
  readonly synchronous?: Synchronous | undefined
}

/** SQLite's LIMIT for "no limit". */
const NO_LIMIT = -1

const sqlLimit = (limit: number) => (Number.isFinite(limit) ? limit : NO_LIMIT)

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const storeError = (operation: string) => (error: unknown) => new EventStoreError({ operation, detail: describe(error) })

/** A row of RAW_ROW_COLUMNS as an array: raw mode skips one object per row on replay. */
type RowTuple = readonly [
  position: number,
  stream: string,
  revision: number,
  id: string,
  type: string,
  dataJson: string,
  metadataJson: string,
  prevHash: string,
  hash: string
]

const fromTuple = (row: RowTuple): RecordedEvent => ({
  stream: row[1],
  revision: row[2],
  position: row[0],
  id: row[3],
  type: row[4],
  data: JSON.parse(row[5]),
  metadata: JSON.parse(row[6]),
  prevHash: row[7],
  hash: row[8]
})

const isIdConflict = (error: unknown): boolean =>
  error instanceof Database.SqliteError &&
  error.code === "SQLITE_CONSTRAINT_UNIQUE" &&
  error.message.includes("events.stream, events.id")

type Outcome =
  | Exclude<AppendPlan, { readonly _tag: "Write" }>
  | { readonly _tag: "Written"; readonly result: AppendResult }

const makeShape = (db: Database.Database, signal: ReturnType<typeof makeCommitSignal>) => {
  const selectHead = db.prepare<[string], HeadView>(
    "SELECT revision, hash, position FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1"
  )
  const selectRevisionOfId = db
    .prepare<[string, string], number>("SELECT revision FROM events WHERE stream = ? AND id = ?")
    .pluck()
  const selectEventAt = db.prepare<[string, number], StoredEventView>(
    "SELECT id, type, data AS dataJson, position FROM events WHERE stream = ? AND revision = ?"
  )
  const insertEvent = db.prepare<[string, number, string, string, string, string, string, string], unknown>(
    "INSERT INTO events (stream, revision, id, type, data, metadata, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
  )
  const selectForwards = db
    .prepare<[string, number, number, number], RowTuple>(
      `SELECT ${RAW_ROW_COLUMNS} FROM events WHERE stream = ? AND revision >= ? AND revision <= ? ORDER BY revision ASC LIMIT ?`
    )
    .raw(true)
  const selectBackwards = db
    .prepare<[string, number, number, number], RowTuple>(
      `SELECT ${RAW_ROW_COLUMNS} FROM events WHERE stream = ? AND revision >= ? AND revision <= ? ORDER BY revision DESC LIMIT ?`
    )
    .raw(true)
  const selectAll = db
    .prepare<[number, number], RowTuple>(
      `SELECT ${RAW_ROW_COLUMNS} FROM events WHERE position > ? ORDER BY position ASC LIMIT ?`
    )
    .raw(true)
  const selectStreamHead = db.prepare<[string], StreamHead>(
    "SELECT stream, revision, hash, position FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1"
  )
  const selectNextStream = db
    .prepare<[string], string>("SELECT stream FROM events WHERE stream > ? ORDER BY stream LIMIT 1")
    .pluck()
  // One index seek per stream, in one read transaction (a consistent snapshot).
  const readHeads = db.transaction((): Array<StreamHead> => {
    const heads: Array<StreamHead> = []
    for (let stream = selectNextStream.get(""); stream !== undefined; stream = selectNextStream.get(stream)) {
      heads.push(selectStreamHead.get(stream)!)
    }
    return heads
  })
  const selectLastPosition = db.prepare<[], number>("SELECT COALESCE(MAX(position), 0) FROM events").pluck()

  const viewOf = (stream: string): StreamView => ({
    head: () => selectHead.get(stream),
    revisionOfId: (id) => selectRevisionOfId.get(stream, id),
    eventAt: (revision) => selectEventAt.get(stream, revision)
  })

  // Runs as one IMMEDIATE transaction: every row of the batch, or none.
  const appendTransaction = db.transaction(
    (stream: string, batch: ReadonlyArray<PreparedEvent>, expected: ExpectedRevision): Outcome => {
      const plan = planAppend(stream, batch, expected, viewOf(stream))
      if (plan._tag !== "Write") return plan
      let prevHash = plan.prevHash
      let revision = plan.firstRevision
      let position = 0
      for (const event of batch) {
        const hash = eventHash({ prevHash, stream, revision, ...event })
        const info = insertEvent.run(stream, revision, event.id, event.type, event.dataJson, event.metadataJson, prevHash, hash)
        position = Number(info.lastInsertRowid)
        prevHash = hash
        revision++
      }
      return { _tag: "Written", result: { nextRevision: revision - 1, position, written: true } }
    }
  )

  const append: EventStoreShape["append"] = (stream, events, expected) =>
    Effect.suspend((): Effect.Effect<AppendResult, AppendError> => {
      const batch = prepareBatch(stream, events, expected)
      if (batch instanceof InvalidAppend) return Effect.fail(batch)
      let outcome: Outcome
      try {
        outcome = appendTransaction.immediate(stream, batch, expected)
      } catch (error) {
        if (isIdConflict(error)) {
          return Effect.fail(
            new InvalidAppend({ stream, reason: "IdConflict", detail: "an event id of the batch is already in the stream" })
          )
        }
        return Effect.fail(storeError("append")(error))
      }
      switch (outcome._tag) {
        case "Written":
          signal.publish(outcome.result.position)
          return Effect.succeed(outcome.result)
        case "AlreadyWritten":
          return Effect.succeed(outcome.result)
        case "Reject":
          return Effect.fail(outcome.error)
      }
    })

  const readStream = (stream: string, options?: ReadStreamOptions) =>
    Effect.try({
      try: (): ReadonlyArray<RecordedEvent> => {
        const range = streamRange(options)
        if (range === undefined) return []
        const statement = range.direction === "forwards" ? selectForwards : selectBackwards
        return statement.all(stream, range.low, range.high, sqlLimit(range.limit)).map(fromTuple)
      },
      catch: storeError("readStream")
    })

  const readAll = (options?: ReadAllOptions) =>
    Effect.try({
      try: (): ReadonlyArray<RecordedEvent> => {
        const range = allRange(options)
        if (range === undefined) return []
        return selectAll.all(range.after, sqlLimit(range.limit)).map(fromTuple)
      },
      catch: storeError("readAll")
    })

  const store: EventStoreShape = {
    append,
    readStream,
    readAll,
    ...subscriptionsOf(signal, readAll, readStream),
    head: (stream) => Effect.try({ try: () => selectStreamHead.get(stream), catch: storeError("head") }),
    heads: Effect.try({
      // Sorted here, not by SQL: JS string order is what every store promises.
      try: () => readHeads.deferred().sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0)),
      catch: storeError("heads")
    }),
    lastPosition: Effect.try({ try: () => selectLastPosition.get() ?? 0, catch: storeError("lastPosition") })
  }
  return { store, lastPosition: () => selectLastPosition.get() ?? 0 }
}

/** Opens the store; closing the scope closes the file and ends live subscriptions. */
const make = (options: SqliteEventStoreOptions): Effect.Effect<EventStoreShape, EventStoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const db = yield* Effect.acquireRelease(
      Effect.try({ try: () => openWriter(options.filename, options.synchronous ?? "NORMAL"), catch: storeError("open") }),
      (db) => Effect.sync(() => db.close())
    )
    const signal = makeCommitSignal(0)
    yield* Effect.addFinalizer(() => Effect.sync(() => signal.close()))
    return yield* Effect.try({
      try: () => {
        const { store, lastPosition } = makeShape(db, signal)
        signal.publish(lastPosition())
        return store
      },
      catch: storeError("open")
    })
  })

export const SqliteEventStore = {
  make,
  layer: (options: SqliteEventStoreOptions): Layer.Layer<EventStore, EventStoreError> =>
    Layer.scoped(EventStore, make(options))
} as const

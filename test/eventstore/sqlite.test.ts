import { Chunk, Effect, Fiber, Stream } from "effect"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { EventStoreError } from "../../infra/eventstore/EventStore.js"
import { SqliteEventStore } from "../../infra/eventstore/SqliteEventStore.js"
import { readRawRows } from "../../infra/eventstore/sqliteRaw.js"
import { APPLICATION_ID, SCHEMA_VERSION } from "../../infra/eventstore/sqliteSchema.js"
import { eventStoreConformance } from "./conformance.js"
import { TEST_TIMEOUT_MS, event, events, failureOf } from "./conformanceKit.js"
import { tempDir } from "./tempDir.js"

const storeFile = Effect.map(tempDir("eventstore"), (dir) => join(dir, "events.db"))

eventStoreConformance("sqlite", () =>
  Effect.map(storeFile, (filename) => ({
    open: SqliteEventStore.make({ filename }),
    rawRows: Effect.map(Stream.runCollect(readRawRows(filename)), Chunk.toReadonlyArray)
  }))
)

const openFailure = (filename: string) =>
  Effect.flatMap(failureOf(Effect.scoped(SqliteEventStore.make({ filename }))), (error) =>
    Effect.sync(() => {
      expect(error).toBeInstanceOf(EventStoreError)
      expect(error.operation).toBe("open")
      return error
    })
  )

describe("SqliteEventStore specifics", () => {
  it.scopedLive(
    "a corrupt, foreign, too new or unreachable file is an EventStoreError at open",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("eventstore")
        const garbage = join(dir, "garbage.db")
        writeFileSync(garbage, "this is not a database ".repeat(200))
        expect((yield* openFailure(garbage)).detail).toContain("not a database")

        const foreign = join(dir, "foreign.db")
        const other = new Database(foreign)
        other.exec("CREATE TABLE t (x)")
        other.pragma("application_id = 42")
        other.close()
        expect((yield* openFailure(foreign)).detail).toContain("not a topai event store")

        const newer = join(dir, "newer.db")
        yield* Effect.scoped(SqliteEventStore.make({ filename: newer }))
        const bump = new Database(newer)
        bump.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
        bump.close()
        expect((yield* openFailure(newer)).detail).toContain("newer")

        yield* openFailure(join(dir, "missing-dir", "events.db"))
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "the file is stamped with the application id and schema version, in WAL mode",
    () =>
      Effect.gen(function* () {
        const filename = yield* storeFile
        yield* Effect.scoped(SqliteEventStore.make({ filename, synchronous: "FULL" }))
        const db = new Database(filename, { readonly: true })
        expect(db.pragma("application_id", { simple: true })).toBe(APPLICATION_ID)
        expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION)
        expect(db.pragma("journal_mode", { simple: true })).toBe("wal")
        db.close()
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "synchronous FULL stores and reopens like NORMAL",
    () =>
      Effect.gen(function* () {
        const filename = yield* storeFile
        yield* Effect.scoped(
          Effect.flatMap(SqliteEventStore.make({ filename, synchronous: "FULL" }), (store) =>
            store.append("s", events("e", 3), "no_stream")
          )
        )
        const store = yield* SqliteEventStore.make({ filename })
        expect((yield* store.head("s"))?.revision).toBe(2)
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "the raw reader sees committed rows while the writer is open",
    () =>
      Effect.gen(function* () {
        const filename = yield* storeFile
        const store = yield* SqliteEventStore.make({ filename })
        yield* store.append("s", [event("a", { text: "exact  text" })], "no_stream")
        const rows = Chunk.toReadonlyArray(yield* Stream.runCollect(readRawRows(filename)))
        expect(rows.map((r) => r.dataJson)).toEqual(['{"text":"exact  text"}'])
        yield* store.append("s", [event("b")], 0)
        const after = Chunk.toReadonlyArray(yield* Stream.runCollect(readRawRows(filename, { after: 1 })))
        expect(after.map((r) => r.id)).toEqual(["b"])
        const missing = yield* failureOf(Stream.runCollect(readRawRows(`${filename}.missing`)))
        expect(missing).toBeInstanceOf(EventStoreError)
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "closing the store ends live subscriptions with an EventStoreError, and later calls fail typed",
    () =>
      Effect.gen(function* () {
        const filename = yield* storeFile
        const { store, subscriber } = yield* Effect.scoped(
          Effect.gen(function* () {
            const store = yield* SqliteEventStore.make({ filename })
            yield* store.append("s", [event("a")], "no_stream")
            const subscriber = yield* Effect.fork(Stream.runDrain(store.subscribeAll()))
            yield* Effect.sleep(5)
            return { store, subscriber }
          })
        )
        const failure = yield* Effect.flip(Fiber.join(subscriber))
        expect(failure).toBeInstanceOf(EventStoreError)
        expect(failure.operation).toBe("subscribe")
        expect(yield* failureOf(store.readAll())).toBeInstanceOf(EventStoreError)
        expect(yield* failureOf(store.append("s", [event("b")], 0))).toBeInstanceOf(EventStoreError)
      }),
    TEST_TIMEOUT_MS
  )
})

/**
 * Raw, read-only access to a SQLite event store file for auditors: rows in
 * position order with the exact stored JSON text and hashes, so the hash
 * chain can be recomputed (eventHash, findChainBreak) without trusting the
 * driver's parsing. Opens its own read-only connection; safe beside a writer.
 */
import { Chunk, Effect, Option, Stream } from "effect"
import { EventStoreError } from "./EventStore.js"
import type { RawEventRow } from "./RawEventRow.js"
import { openReader, RAW_ROW_COLUMNS } from "./sqliteSchema.js"

/** Rows fetched per query, so memory stays flat on any log size. */
export const RAW_PAGE_SIZE = 1000

const storeError = (operation: string) => (error: unknown) =>
  new EventStoreError({ operation, detail: error instanceof Error ? error.message : String(error) })

export interface ReadRawRowsOptions {
  /** Rows with position strictly greater than this (default 0: all). */
  readonly after?: number | undefined
}

/** Every row of the file after `after`, in position order; the file is closed when the stream ends. */
export const readRawRows = (
  filename: string,
  options?: ReadRawRowsOptions
): Stream.Stream<RawEventRow, EventStoreError> =>
  Stream.acquireRelease(
    Effect.try({ try: () => openReader(filename), catch: storeError("readRawRows") }),
    (db) => Effect.sync(() => db.close())
  ).pipe(
    Stream.flatMap((db) => {
      const page = db.prepare<[number, number], RawEventRow>(
        `SELECT ${RAW_ROW_COLUMNS} FROM events WHERE position > ? ORDER BY position ASC LIMIT ?`
      )
      return Stream.paginateChunkEffect(options?.after ?? 0, (after) =>
        Effect.try({
          try: () => {
            const rows = page.all(after, RAW_PAGE_SIZE)
            const last = rows[rows.length - 1]
            const next = last === undefined || rows.length < RAW_PAGE_SIZE ? Option.none() : Option.some(last.position)
            return [Chunk.unsafeFromArray(rows), next] as const
          },
          catch: storeError("readRawRows")
        })
      )
    })
  )

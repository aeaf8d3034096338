/**
 * The in-memory driver, for simulations and tests. Same rules as SQLite: it
 * keeps the JSON text, hashes it the same way, and shares input checks,
 * append rules, read bounds and subscriptions with every other driver.
 *
 * The storage is a separate value so a simulated node can "restart": close
 * the store's scope and open a new store over the same storage.
 */
import { Effect, Layer } from "effect"
import type { AppendResult, EventStoreShape, RecordedEvent, StreamHead } from "./EventStore.js"
import { EventStore, InvalidAppend } from "./EventStore.js"
import { eventHash } from "./eventHash.js"
import { prepareBatch } from "./prepareBatch.js"
import { planAppend } from "./planAppend.js"
import type { StreamView } from "./planAppend.js"
import type { RawEventRow } from "./RawEventRow.js"
import { toRecordedEvent } from "./RawEventRow.js"
import { allRange, streamRange } from "./readBounds.js"
import { makeCommitSignal } from "./commitSignal.js"
import { subscriptionsOf } from "./subscription.js"

interface MemoryStream {
  /** Index = revision. */
  readonly rows: Array<RawEventRow>
  readonly revisionById: Map<string, number>
}

/** The data of a memory store; outlives any one store opened over it. */
export interface MemoryStorage {
  /** Index = position - 1. */
  readonly log: Array<RawEventRow>
  readonly streams: Map<string, MemoryStream>
}

const makeStorage = (): MemoryStorage => ({ log: [], streams: new Map() })

const viewOf = (stream: MemoryStream | undefined): StreamView => ({
  head: () => {
    const last = stream?.rows[stream.rows.length - 1]
    return last === undefined ? undefined : { revision: last.revision, hash: last.hash, position: last.position }
  },
  revisionOfId: (id) => stream?.revisionById.get(id),
  eventAt: (revision) => stream?.rows[revision]
})

const headOf = (row: RawEventRow): StreamHead => ({
  stream: row.stream,
  revision: row.revision,
  hash: row.hash,
  position: row.position
})

const makeWith = (storage: MemoryStorage): Effect.Effect<EventStoreShape> =>
  Effect.sync(() => {
    const signal = makeCommitSignal(storage.log.length)

    const readStream = (name: string, options?: Parameters<EventStoreShape["readStream"]>[1]) =>
      Effect.sync((): ReadonlyArray<RecordedEvent> => {
        const range = streamRange(options)
        const rows = storage.streams.get(name)?.rows
        if (range === undefined || rows === undefined) return []
        const high = Math.min(range.high, rows.length - 1)
        const out: Array<RecordedEvent> = []
        if (range.direction === "forwards") {
          for (let r = range.low; r <= high && out.length < range.limit; r++) out.push(toRecordedEvent(rows[r]!))
        } else {
          for (let r = high; r >= range.low && out.length < range.limit; r--) out.push(toRecordedEvent(rows[r]!))
        }
        return out
      })

    const readAll = (options?: Parameters<EventStoreShape["readAll"]>[0]) =>
      Effect.sync((): ReadonlyArray<RecordedEvent> => {
        const range = allRange(options)
        if (range === undefined) return []
        const end = Math.min(storage.log.length, range.after + range.limit)
        const out: Array<RecordedEvent> = []
        for (let i = range.after; i < end; i++) out.push(toRecordedEvent(storage.log[i]!))
        return out
      })

    const append: EventStoreShape["append"] = (name, events, expected) =>
      Effect.suspend(() => {
        const batch = prepareBatch(name, events, expected)
        if (batch instanceof InvalidAppend) return Effect.fail(batch)
        const existing = storage.streams.get(name)
        const plan = planAppend(name, batch, expected, viewOf(existing))
        if (plan._tag === "Reject") return Effect.fail(plan.error)
        if (plan._tag === "AlreadyWritten") return Effect.succeed(plan.result)
        // Check every id before changing anything, so a conflict writes nothing.
        for (const event of batch) {
          if (existing?.revisionById.has(event.id)) {
            return Effect.fail(
              new InvalidAppend({
                stream: name,
                reason: "IdConflict",
                detail: `event id ${event.id} is already in the stream`
              })
            )
          }
        }
        const stream = existing ?? { rows: [], revisionById: new Map<string, number>() }
        if (existing === undefined) storage.streams.set(name, stream)
        let prevHash = plan.prevHash
        let revision = plan.firstRevision
        for (const event of batch) {
          const fields = { prevHash, stream: name, revision, ...event }
          const row: RawEventRow = { ...fields, position: storage.log.length + 1, hash: eventHash(fields) }
          storage.log.push(row)
          stream.rows.push(row)
          stream.revisionById.set(row.id, revision)
          prevHash = row.hash
          revision++
        }
        const result: AppendResult = { nextRevision: revision - 1, position: storage.log.length, written: true }
        signal.publish(result.position)
        return Effect.succeed(result)
      })

    const store: EventStoreShape = {
      append,
      readStream,
      readAll,
      ...subscriptionsOf(signal, readAll, readStream),
      head: (name) =>
        Effect.sync(() => {
          const rows = storage.streams.get(name)?.rows
          const last = rows?.[rows.length - 1]
          return last === undefined ? undefined : headOf(last)
        }),
      heads: Effect.sync(() =>
        [...storage.streams.keys()].sort().map((name) => {
          const rows = storage.streams.get(name)!.rows
          return headOf(rows[rows.length - 1]!)
        })
      ),
      lastPosition: Effect.sync(() => storage.log.length)
    }
    return store
  })

const layerWith = (storage: MemoryStorage): Layer.Layer<EventStore> => Layer.effect(EventStore, makeWith(storage))

export const MemoryEventStore = {
  /** A fresh, empty store. */
  make: Effect.suspend(() => makeWith(makeStorage())),
  /** A layer with a fresh, empty store each time it is built. */
  layer: Layer.effect(EventStore, Effect.suspend(() => makeWith(makeStorage()))),
  /** Empty storage, to open stores over (and reopen after a simulated restart). */
  makeStorage,
  makeWith,
  layerWith,
  /** The stored rows in position order, with the exact JSON text (for auditors and tests). */
  rawRows: (storage: MemoryStorage): ReadonlyArray<RawEventRow> => storage.log.slice()
} as const

/**
 * Event store benchmarks:
 * (a) SqliteEventStore.append vs raw better-sqlite3 inserts of the same rows
 *     into the same table and indexes, same batch size, same durability
 *     (target: ≥ 0.5× the raw rate). The raw side gets its JSON text and
 *     hashes precomputed, so the ratio is the store's whole overhead.
 * (b) Replay: readAll / readStream of 100k events vs a raw SELECT + JSON.parse
 *     (target: ≥ 200k events/s).
 */
import Database from "better-sqlite3"
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { EventStoreShape, NewEvent } from "../infra/eventstore/EventStore.js"
import { GENESIS_HASH } from "../infra/eventstore/EventStore.js"
import { eventHash } from "../infra/eventstore/eventHash.js"
import { SqliteEventStore } from "../infra/eventstore/SqliteEventStore.js"
import { openWriter } from "../infra/eventstore/sqliteSchema.js"
import type { BenchResult } from "./lib.js"
import { compare, opsPerSecond, report } from "./lib.js"

const REPEATS = 5
/** Appends are spread over this many streams, each written with its exact revision. */
const STREAMS = 100
const APPEND_EVENTS = { 1: 20_000, 100: 200_000 } as const
const APPEND_RATIO_TARGET = 0.5
const REPLAY_EVENTS = 100_000
const REPLAY_WRITE_BATCH = 1_000
const REPLAY_TARGET_EVENTS_PER_SECOND = 200_000
/** Unrecorded replays first: the first pass over the file runs cold. */
const REPLAY_WARMUPS = 1

/** A transfer-like payload of about 200 bytes of JSON. */
const payload = (n: number) => ({
  from: `0x${(n * 7919).toString(16).padStart(40, "0")}`,
  to: `0x${(n * 104_729).toString(16).padStart(40, "0")}`,
  amount: String(1_000_000_000n + BigInt(n)),
  nonce: n,
  memo: "benchmark transfer"
})

const newEvent = (n: number): NewEvent => ({ id: `ev-${n}`, type: "Transferred", data: payload(n), metadata: { n } })

interface Append {
  readonly stream: string
  readonly expected: number | "no_stream"
  readonly events: ReadonlyArray<NewEvent>
}

/** Batches round-robin over the streams, each with the revision it expects. */
const appendPlan = (events: number, batchSize: number): ReadonlyArray<Append> => {
  const heads = new Map<string, number>()
  const plan: Array<Append> = []
  for (let n = 0; n < events; n += batchSize) {
    const stream = `stream-${(n / batchSize) % STREAMS}`
    const head = heads.get(stream)
    plan.push({
      stream,
      expected: head ?? "no_stream",
      events: Array.from({ length: batchSize }, (_, k) => newEvent(n + k))
    })
    heads.set(stream, (head ?? -1) + batchSize)
  }
  return plan
}

type Row = readonly [string, number, string, string, string, string, string, string]

/** The rows the store will write for the plan, JSON text and hashes included. */
const rowsOf = (plan: ReadonlyArray<Append>): ReadonlyArray<ReadonlyArray<Row>> => {
  const heads = new Map<string, { revision: number; hash: string }>()
  return plan.map((append) => {
    let head = heads.get(append.stream) ?? { revision: -1, hash: GENESIS_HASH }
    const rows = append.events.map((e): Row => {
      const fields = {
        prevHash: head.hash,
        stream: append.stream,
        revision: head.revision + 1,
        id: e.id,
        type: e.type,
        dataJson: JSON.stringify(e.data),
        metadataJson: JSON.stringify(e.metadata)
      }
      const hash = eventHash(fields)
      head = { revision: fields.revision, hash }
      return [fields.stream, fields.revision, fields.id, fields.type, fields.dataJson, fields.metadataJson, fields.prevHash, hash]
    })
    heads.set(append.stream, head)
    return rows
  })
}

const withTempFile = async <A>(use: (filename: string) => Promise<A>): Promise<A> => {
  const dir = mkdtempSync(join(tmpdir(), "topai-bench-"))
  try {
    return await use(join(dir, "events.db"))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const runScoped = <A>(filename: string, use: (store: EventStoreShape) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(SqliteEventStore.make({ filename }), use)))

const storeAppendRate = (plan: ReadonlyArray<Append>, events: number) =>
  withTempFile((filename) =>
    runScoped(filename, (store) =>
      Effect.promise(() =>
        opsPerSecond(events, () =>
          Effect.runPromise(
            Effect.forEach(plan, (append) => store.append(append.stream, append.events, append.expected), {
              discard: true
            })
          )
        )
      )
    )
  )

const rawAppendRate = (rows: ReadonlyArray<ReadonlyArray<Row>>, events: number) =>
  withTempFile(async (filename) => {
    const db = openWriter(filename, "NORMAL") // the same tables and indexes
    try {
      const insert = db.prepare(
        "INSERT INTO events (stream, revision, id, type, data, metadata, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
      )
      const insertBatch = db.transaction((batch: ReadonlyArray<Row>) => {
        for (const row of batch) insert.run(...row)
      })
      return await opsPerSecond(events, () => {
        for (const batch of rows) insertBatch.immediate(batch)
      })
    } finally {
      db.close()
    }
  })

const appendBench = async (batchSize: 1 | 100): Promise<BenchResult> => {
  const events = APPEND_EVENTS[batchSize]
  const plan = appendPlan(events, batchSize)
  const rows = rowsOf(plan)
  const { subject, baseline } = await compare(
    REPEATS,
    () => storeAppendRate(plan, events),
    () => rawAppendRate(rows, events)
  )
  return report({
    name: `eventstore.append.batch${batchSize}`,
    unit: "events",
    subject,
    baseline,
    target: { ratio: APPEND_RATIO_TARGET },
    details: { events, batchSize, streams: STREAMS, synchronous: "NORMAL", repeats: REPEATS }
  })
}

const replayBench = async (): Promise<ReadonlyArray<BenchResult>> =>
  withTempFile(async (filename) => {
    await runScoped(filename, (store) =>
      Effect.forEach(
        Array.from({ length: REPLAY_EVENTS / REPLAY_WRITE_BATCH }, (_, b) => b),
        (b) =>
          store.append(
            "replay",
            Array.from({ length: REPLAY_WRITE_BATCH }, (_, k) => newEvent(b * REPLAY_WRITE_BATCH + k)),
            b === 0 ? "no_stream" : b * REPLAY_WRITE_BATCH - 1
          ),
        { discard: true }
      )
    )
    const raw = new Database(filename, { readonly: true })
    const select = raw.prepare<[], { data: string; metadata: string }>(
      "SELECT position, stream, revision, id, type, data, metadata, prev_hash, hash FROM events ORDER BY position"
    )
    const rawRate = () =>
      opsPerSecond(REPLAY_EVENTS, () => {
        const rows = select.all()
        for (const row of rows) {
          JSON.parse(row.data)
          JSON.parse(row.metadata)
        }
        if (rows.length !== REPLAY_EVENTS) throw new Error(`raw read ${rows.length} rows`)
      })
    try {
      return await runScoped(filename, (store) =>
        Effect.promise(async () => {
          const replay = async (name: string, read: Effect.Effect<ReadonlyArray<unknown>, unknown>) => {
            const { subject, baseline } = await compare(
              REPEATS,
              () =>
                opsPerSecond(REPLAY_EVENTS, async () => {
                  const events = await Effect.runPromise(read)
                  if (events.length !== REPLAY_EVENTS) throw new Error(`${name} read ${events.length} events`)
                }),
              rawRate,
              { warmups: REPLAY_WARMUPS }
            )
            return report({
              name,
              unit: "events",
              subject,
              baseline,
              target: { opsPerSecond: REPLAY_TARGET_EVENTS_PER_SECOND },
              details: { events: REPLAY_EVENTS, repeats: REPEATS }
            })
          }
          return [
            await replay("eventstore.replay.readAll", store.readAll()),
            await replay("eventstore.replay.readStream", store.readStream("replay"))
          ]
        })
      )
    } finally {
      raw.close()
    }
  })

export const run = async (): Promise<ReadonlyArray<BenchResult>> => [
  await appendBench(1),
  await appendBench(100),
  ...(await replayBench())
]

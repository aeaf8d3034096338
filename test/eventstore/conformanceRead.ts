/**
 * Conformance: reads. Global order, stream reads with bounds and limits
 * (RELIABILITY item 9), heads, the hash chain, payload fidelity, big streams.
 */
import { Effect } from "effect"
import { expect, it } from "@effect/vitest"
import type { ReadStreamOptions } from "../../infra/eventstore/EventStore.js"
import { GENESIS_HASH } from "../../infra/eventstore/EventStore.js"
import { eventHash } from "../../infra/eventstore/eventHash.js"
import { findChainBreak } from "../../infra/eventstore/RawEventRow.js"
import type { MakeStore } from "./conformanceKit.js"
import { TEST_TIMEOUT_MS, event, events, expectConsecutive, range } from "./conformanceKit.js"

/** Events in the stream the bound cases read (revisions 0..9). */
const BOUNDED_STREAM_LENGTH = 10

/** [options, expected revisions] for a stream with revisions 0..9. */
const READ_CASES: ReadonlyArray<readonly [ReadStreamOptions | undefined, ReadonlyArray<number>]> = [
  [undefined, range(10)],
  [{ from: 4 }, [4, 5, 6, 7, 8, 9]],
  [{ to: 3 }, [0, 1, 2, 3]],
  [{ limit: 3 }, [0, 1, 2]],
  [{ from: 2, to: 5 }, [2, 3, 4, 5]],
  [{ from: 2, to: 8, limit: 2 }, [2, 3]],
  [{ from: 5, to: 5 }, [5]],
  [{ from: 7, limit: 1 }, [7]],
  [{ limit: 0 }, []],
  [{ from: 6, to: 5 }, []],
  [{ from: 10 }, []],
  [{ from: 50, to: 60 }, []],
  [{ from: -3, limit: 2 }, [0, 1]],
  [{ to: 100 }, range(10)],
  [{ direction: "backwards" }, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]],
  [{ direction: "backwards", from: 4 }, [4, 3, 2, 1, 0]],
  [{ direction: "backwards", to: 7 }, [9, 8, 7]],
  [{ direction: "backwards", limit: 2 }, [9, 8]],
  [{ direction: "backwards", from: 6, to: 4 }, [6, 5, 4]],
  [{ direction: "backwards", from: 3, to: 3 }, [3]],
  [{ direction: "backwards", from: 4, to: 6 }, []],
  [{ direction: "backwards", limit: 0 }, []],
  [{ direction: "backwards", from: 100, limit: 1 }, [9]],
  [{ direction: "backwards", from: -1 }, []]
]

/** Payloads whose exact values must survive storage. */
const FAITHFUL_PAYLOADS: ReadonlyArray<unknown> = [
  "ASCII",
  "Grüße, café, naïve",
  "中文账户 日本語 한국어",
  "emoji 🙂👩🏽‍🚀🇯🇵",
  "RTL עברית العربية",
  "combining e\u0301 vs é",
  "nul \u0000 inside, tab \t, newline \n, line sep \u2028",
  "lone surrogate \ud800 kept by JSON escaping",
  "quotes \" and backslash \\",
  { nested: { array: [1, "two", null, true, { deep: ["x"] }] }, "key with spaces": 1, "ключ": "значение" },
  [1e21, 1e-7, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0.1, 3.141592653589793],
  null,
  true,
  0,
  "",
  {},
  []
]

/** A big stream: events, appended in batches of this size. */
const BIG_STREAM_EVENTS = 10_000
const BIG_STREAM_BATCH = 100

export const readConformance = (makeStore: MakeStore) => {
  it.scopedLive(
    "$all: global order across streams, read after a position with a limit",
    () =>
      Effect.gen(function* () {
        const store = yield* (yield* makeStore()).open
        const order: Array<string> = []
        for (const k of range(30)) {
          const stream = `s-${k % 3}`
          const size = (k % 4) + 1
          const batch = events(`e${k}`, size)
          yield* store.append(stream, batch, "any")
          order.push(...batch.map((e) => `${stream}/${e.id}`))
        }
        const all = yield* store.readAll()
        expect(all.map((e) => `${e.stream}/${e.id}`)).toEqual(order)
        expectConsecutive(all.map((e) => e.position), 1, order.length)
        expect(yield* store.lastPosition).toBe(order.length)
        expect((yield* store.readAll({ after: 10, limit: 5 })).map((e) => e.position)).toEqual([11, 12, 13, 14, 15])
        expect((yield* store.readAll({ after: order.length - 2 })).map((e) => e.position)).toEqual([
          order.length - 1,
          order.length
        ])
        expect(yield* store.readAll({ after: order.length })).toEqual([])
        expect(yield* store.readAll({ limit: 0 })).toEqual([])
        expect((yield* store.readAll({ after: -5, limit: 1 })).map((e) => e.position)).toEqual([1])
        // Every stream's events in $all are that stream's revisions in order.
        for (const stream of ["s-0", "s-1", "s-2"]) {
          const fromAll = all.filter((e) => e.stream === stream)
          expect(fromAll).toEqual(yield* store.readStream(stream))
        }
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "readStream: replay all, from, to, limit, both bounds, one, none (Akka journal cases), unknown stream",
    () =>
      Effect.gen(function* () {
        const store = yield* (yield* makeStore()).open
        yield* store.append("bounded", events("b", BOUNDED_STREAM_LENGTH), "no_stream")
        yield* store.append("noise", events("n", 3), "no_stream")
        for (const [options, revisions] of READ_CASES) {
          const read = yield* store.readStream("bounded", options)
          expect(read.map((e) => e.revision), JSON.stringify(options)).toEqual(revisions)
          expect(read.every((e) => e.stream === "bounded")).toBe(true)
        }
        expect(yield* store.readStream("unknown")).toEqual([])
        expect(yield* store.readStream("unknown", { direction: "backwards" })).toEqual([])
        expect(yield* store.head("unknown")).toBeUndefined()
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "payloads round-trip exactly: unicode, escapes, numbers, nesting; metadata too",
    () =>
      Effect.gen(function* () {
        const store = yield* (yield* makeStore()).open
        const stream = "账户-é-🙂"
        const batch = FAITHFUL_PAYLOADS.map((data, k) => ({
          id: `ü-${k}-🙂`,
          type: `Typ-ß-${k}`,
          data,
          metadata: { note: data, k }
        }))
        yield* store.append(stream, batch, "no_stream")
        const read = yield* store.readStream(stream)
        expect(read.length).toBe(batch.length)
        read.forEach((recorded, k) => {
          expect(recorded.data).toStrictEqual(batch[k]!.data)
          expect(recorded.metadata).toStrictEqual(batch[k]!.metadata)
          expect(recorded.id).toBe(batch[k]!.id)
          expect(recorded.type).toBe(batch[k]!.type)
          expect(recorded.stream).toBe(stream)
        })
        expect(yield* store.readAll()).toEqual(read)
        // No metadata given reads back as an empty object.
        yield* store.append("plain", [event("p")], "no_stream")
        expect((yield* store.readStream("plain"))[0]?.metadata).toEqual({})
        // Readers get their own copies: mutating one does not change the store.
        const [first] = yield* store.readStream("plain")
        ;(first!.data as Record<string, unknown>)["id"] = "mutated"
        expect((yield* store.readStream("plain"))[0]?.data).toEqual({ id: "p" })
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "heads and hash chain: prevHash links each stream, hashes recompute over the stored text",
    () =>
      Effect.gen(function* () {
        const sut = yield* makeStore()
        const store = yield* sut.open
        for (const k of range(12)) yield* store.append(`chain-${"cab"[k % 3]}`, events(`k${k}`, (k % 3) + 1), "any")
        const all = yield* store.readAll()
        const heads = yield* store.heads
        expect(heads.map((h) => h.stream)).toEqual(["chain-a", "chain-b", "chain-c"])
        for (const head of heads) {
          const stream = yield* store.readStream(head.stream)
          const last = stream[stream.length - 1]!
          expect(head).toEqual({ stream: head.stream, revision: last.revision, hash: last.hash, position: last.position })
          expect(yield* store.head(head.stream)).toEqual(head)
          expect(stream[0]!.prevHash).toBe(GENESIS_HASH)
          stream.forEach((e, k) => {
            if (k > 0) expect(e.prevHash).toBe(stream[k - 1]!.hash)
          })
        }
        // JS string order, which differs from UTF-8 byte order for these two.
        yield* store.append("z-\u{1F600}", [event("emoji")], "no_stream")
        yield* store.append("z-\uFF5E", [event("fullwidth")], "no_stream")
        expect((yield* store.heads).map((h) => h.stream)).toEqual(["chain-a", "chain-b", "chain-c", "z-\u{1F600}", "z-\uFF5E"])
        const raw = yield* sut.rawRows
        const chainRows = raw.filter((r) => r.stream.startsWith("chain-"))
        expect(chainRows.map((r) => [r.position, r.stream, r.revision, r.id, r.prevHash, r.hash])).toEqual(
          all.map((e) => [e.position, e.stream, e.revision, e.id, e.prevHash, e.hash])
        )
        for (const row of raw) expect(eventHash(row)).toBe(row.hash)
        expect(findChainBreak(raw)).toBeUndefined()
        // One changed byte of stored text breaks the chain exactly there.
        const tampered = raw.map((r, k) => (k === 5 ? { ...r, dataJson: r.dataJson.replace("}", " }") } : r))
        expect(findChainBreak(tampered)).toEqual({ ...at(raw[5]!), reason: "HashMismatch" })
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "the hash of a known event is the same in every store (golden value)",
    () =>
      Effect.gen(function* () {
        const store = yield* (yield* makeStore()).open
        yield* store.append("a", [{ id: "1", type: "T", data: { x: 1 } }], "no_stream")
        expect((yield* store.head("a"))?.hash).toBe("9f2497bde976660c64fbba08fbcc84589db2a2f7e389ab37fa8dc67fce6c9c7e")
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    `a ${BIG_STREAM_EVENTS}-event stream: written in batches, read whole, both ways, chain intact`,
    () =>
      Effect.gen(function* () {
        const sut = yield* makeStore()
        const store = yield* sut.open
        for (const b of range(BIG_STREAM_EVENTS / BIG_STREAM_BATCH)) {
          const expected = b === 0 ? "no_stream" : b * BIG_STREAM_BATCH - 1
          yield* store.append("big", events("big", BIG_STREAM_BATCH, b * BIG_STREAM_BATCH), expected)
        }
        const forwards = yield* store.readStream("big")
        expectConsecutive(forwards.map((e) => e.revision), 0, BIG_STREAM_EVENTS)
        const backwards = yield* store.readStream("big", { direction: "backwards" })
        expect(backwards.map((e) => e.revision)).toEqual(forwards.map((e) => e.revision).reverse())
        expect((yield* store.head("big"))?.revision).toBe(BIG_STREAM_EVENTS - 1)
        expect((yield* store.readAll()).length).toBe(BIG_STREAM_EVENTS)
        expect(findChainBreak(yield* sut.rawRows)).toBeUndefined()
      }),
    TEST_TIMEOUT_MS
  )
}

const at = (row: { readonly position: number; readonly stream: string; readonly revision: number }) => ({
  position: row.position,
  stream: row.stream,
  revision: row.revision
})

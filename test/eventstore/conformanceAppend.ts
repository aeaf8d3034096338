/**
 * Conformance: appends. Expectation matrix, contention, idempotent retries,
 * id conflicts, input checks and size limits (RELIABILITY items 1, 2, 8).
 */
import { Effect, Either } from "effect"
import { expect, it } from "@effect/vitest"
import type { ExpectedRevision } from "../../infra/eventstore/EventStore.js"
import { InvalidAppend, MAX_EVENT_BYTES, WrongExpectedRevision } from "../../infra/eventstore/EventStore.js"
import type { MakeStore, StoreCapabilities } from "./conformanceKit.js"
import { TEST_TIMEOUT_MS, event, events, expectConsecutive, failureOf, range, snapshot } from "./conformanceKit.js"

/** Head revision of the "existing" stream in the matrix (3 events). */
const EXISTING_HEAD = 2
const ABSENT = -1

interface MatrixCase {
  readonly state: "absent" | "existing"
  readonly expected: ExpectedRevision
  /** Revision written, or "wrong" for WrongExpectedRevision. */
  readonly outcome: number | "wrong"
}

const MATRIX: ReadonlyArray<MatrixCase> = [
  { state: "absent", expected: "no_stream", outcome: 0 },
  { state: "absent", expected: "any", outcome: 0 },
  { state: "absent", expected: "stream_exists", outcome: "wrong" },
  { state: "absent", expected: 0, outcome: "wrong" },
  { state: "absent", expected: EXISTING_HEAD, outcome: "wrong" },
  { state: "existing", expected: "no_stream", outcome: "wrong" },
  { state: "existing", expected: "any", outcome: EXISTING_HEAD + 1 },
  { state: "existing", expected: "stream_exists", outcome: EXISTING_HEAD + 1 },
  { state: "existing", expected: EXISTING_HEAD, outcome: EXISTING_HEAD + 1 },
  { state: "existing", expected: EXISTING_HEAD - 1, outcome: "wrong" },
  { state: "existing", expected: EXISTING_HEAD + 1, outcome: "wrong" },
  { state: "existing", expected: EXISTING_HEAD + 100, outcome: "wrong" }
]

/** Expectations that are caller bugs, not a stream that moved: InvalidExpectedRevision. */
const MALFORMED_EXPECTATIONS: ReadonlyArray<unknown> = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "1", "exact", null]

/** Contention: writers per round and rounds (RELIABILITY item 1). */
const WRITERS = 50
const ROUNDS = 200

export const appendConformance = (makeStore: MakeStore, capabilities: StoreCapabilities) => {
  it.scopedLive(
    "expectation matrix: every expectation against an absent and an existing stream",
    () =>
      Effect.gen(function* () {
        const store = yield* (yield* makeStore()).open
        for (const [k, c] of MATRIX.entries()) {
          const stream = `matrix-${k}`
          if (c.state === "existing") yield* store.append(stream, events(stream, EXISTING_HEAD + 1), "no_stream")
          const before = yield* snapshot(store)
          const result = yield* Effect.either(store.append(stream, [event(`${stream}-new`)], c.expected))
          const label = `${c.state} stream, expected ${c.expected}`
          if (c.outcome === "wrong") {
            expect(Either.isLeft(result), label).toBe(true)
            const error = Either.getLeft(result)
            expect(error._tag === "Some" && error.value instanceof WrongExpectedRevision, label).toBe(true)
            if (error._tag === "Some" && error.value instanceof WrongExpectedRevision) {
              expect(error.value.actual, label).toBe(c.state === "absent" ? ABSENT : EXISTING_HEAD)
              expect(error.value.expected, label).toBe(c.expected)
              expect(error.value.stream, label).toBe(stream)
            }
            expect(yield* snapshot(store), label).toEqual(before)
          } else {
            expect(Either.getOrThrow(result), label).toEqual({
              nextRevision: c.outcome,
              position: before.lastPosition + 1,
              written: true
            })
            expect((yield* store.head(stream))?.revision, label).toBe(c.outcome)
          }
        }
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "malformed expectations are InvalidAppend InvalidExpectedRevision and write nothing",
    () =>
      Effect.gen(function* () {
        const store = yield* (yield* makeStore()).open
        yield* store.append("s", [event("a")], "no_stream")
        const before = yield* snapshot(store)
        for (const expected of MALFORMED_EXPECTATIONS) {
          const error = yield* failureOf(store.append("s", [event("b")], expected as ExpectedRevision))
          expect(error instanceof InvalidAppend && error.reason === "InvalidExpectedRevision", String(expected)).toBe(true)
          // Also when the batch is an exact repeat: a malformed expectation is never acknowledged.
          const repeat = yield* failureOf(store.append("s", [event("a")], expected as ExpectedRevision))
          expect(repeat instanceof InvalidAppend && repeat.reason === "InvalidExpectedRevision", String(expected)).toBe(true)
        }
        expect(yield* snapshot(store)).toEqual(before)
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    `contention: ${WRITERS} writers x ${ROUNDS} rounds on one stream, exactly one winner per round`,
    () =>
      Effect.gen(function* () {
        const store = yield* (yield* makeStore()).open
        for (const round of range(ROUNDS)) {
          const expected: ExpectedRevision = round === 0 ? "no_stream" : round - 1
          const results = yield* Effect.forEach(
            range(WRITERS),
            (writer) =>
              Effect.yieldNow().pipe(
                Effect.zipRight(Effect.either(store.append("contended", [event(`r${round}-w${writer}`)], expected)))
              ),
            { concurrency: "unbounded" }
          )
          const winners = results.filter(Either.isRight)
          if (winners.length !== 1) expect.fail(`round ${round} had ${winners.length} winners`)
          expect(winners[0]!.right.nextRevision).toBe(round)
          for (const result of results) {
            if (Either.isLeft(result)) {
              const error = result.left
              if (!(error instanceof WrongExpectedRevision) || error.actual !== round) {
                expect.fail(`round ${round}: unexpected loser error ${JSON.stringify(error)}`)
              }
            }
          }
        }
        const stream = yield* store.readStream("contended")
        expectConsecutive(stream.map((e) => e.revision), 0, ROUNDS)
        expectConsecutive(stream.map((e) => e.position), 1, ROUNDS)
        expect((yield* store.head("contended"))?.revision).toBe(ROUNDS - 1)
        expect(yield* store.lastPosition).toBe(ROUNDS)
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "idempotent retry: same ids at the expected place are acknowledged and write nothing",
    () =>
      Effect.gen(function* () {
        const sut = yield* makeStore()
        const store = yield* sut.open
        const first = events("a", 2)
        const second = events("a", 3, 2)
        expect(yield* store.append("acct", first, "no_stream")).toEqual({ nextRevision: 1, position: 2, written: true })
        expect(yield* store.append("acct", second, 1)).toEqual({ nextRevision: 4, position: 5, written: true })
        const before = yield* snapshot(store)
        // Retries of the second batch, after a lost acknowledgement.
        expect(yield* store.append("acct", second, 1)).toEqual({ nextRevision: 4, position: 5, written: false })
        expect(yield* store.append("acct", second, "any")).toEqual({ nextRevision: 4, position: 5, written: false })
        expect(yield* store.append("acct", second, "stream_exists")).toEqual({ nextRevision: 4, position: 5, written: false })
        // A retry of the first batch, after the head moved on.
        expect(yield* store.append("acct", first, "no_stream")).toEqual({ nextRevision: 1, position: 2, written: false })
        expect(yield* store.append("acct", first, "any")).toEqual({ nextRevision: 1, position: 2, written: false })
        // A retry of a prefix of a batch is the same events again.
        expect(yield* store.append("acct", second.slice(0, 1), 1)).toEqual({ nextRevision: 2, position: 3, written: false })
        // Metadata may differ between attempts (times, trace ids).
        const withMetadata = second.map((e) => ({ ...e, metadata: { attempt: 2 } }))
        expect(yield* store.append("acct", withMetadata, 1)).toEqual({ nextRevision: 4, position: 5, written: false })
        expect(yield* snapshot(store)).toEqual(before)
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    `idempotent retry after reopening the store (${capabilities.survivesReopen ? "durable" : "not durable"})`,
    () =>
      Effect.gen(function* () {
        const sut = yield* makeStore()
        const batch = events("tx", 3)
        yield* Effect.scoped(
          Effect.flatMap(sut.open, (store) =>
            Effect.andThen(store.append("acct", [event("open")], "no_stream"), store.append("acct", batch, 0))
          )
        )
        const store = yield* sut.open
        const retry = yield* Effect.either(store.append("acct", batch, 0))
        if (capabilities.survivesReopen) {
          expect(Either.getOrThrow(retry)).toEqual({ nextRevision: 3, position: 4, written: false })
          expect(yield* store.lastPosition).toBe(4)
        } else {
          // A store that forgets on close no longer has the stream the retry expects.
          const error = Either.getLeft(retry)
          expect(error._tag === "Some" && error.value instanceof WrongExpectedRevision && error.value.actual === ABSENT).toBe(true)
        }
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "id conflicts: ids already in the stream, in the wrong place or with other content, are typed errors",
    () =>
      Effect.gen(function* () {
        const store = yield* (yield* makeStore()).open
        yield* store.append("s", [event("a"), event("b")], "no_stream")
        yield* store.append("s", [event("c")], 1)
        const before = yield* snapshot(store)
        const conflict = (batch: Parameters<typeof store.append>[1], expected: ExpectedRevision, label: string) =>
          Effect.map(failureOf(store.append("s", batch, expected)), (error) => {
            expect(error instanceof InvalidAppend && error.reason === "IdConflict", `${label}: ${JSON.stringify(error)}`).toBe(true)
          })
        yield* conflict([event("b"), event("x")], 0, "batch partly written before")
        yield* conflict([event("x"), event("a")], 2, "a later id is already in the stream")
        yield* conflict([event("x"), event("a")], "any", "a later id is already in the stream, any")
        yield* conflict([event("a")], 2, "an old id at the head")
        yield* conflict([event("c")], 0, "a retry expecting another place")
        yield* conflict([event("b", { other: true })], 0, "same id, other data")
        yield* conflict([event("b", { id: "b" }, "OtherType")], 0, "same id, other type")
        yield* conflict([event("b"), event("c"), event("d")], 0, "a retry with an extra event")
        yield* conflict([event("c"), event("b")], "any", "ids out of order")
        expect(yield* snapshot(store)).toEqual(before)
        // Ids are unique per stream, not globally.
        expect((yield* store.append("other", [event("a")], "no_stream")).written).toBe(true)
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "bad input: empty batch, bad stream names, bad ids, types and payloads are typed errors that write nothing",
    () =>
      Effect.gen(function* () {
        const store = yield* (yield* makeStore()).open
        const circular: Record<string, unknown> = {}
        circular["self"] = circular
        const cases: ReadonlyArray<readonly [string, Parameters<typeof store.append>[1], InvalidAppend["reason"]]> = [
          ["ok", [], "EmptyBatch"],
          ["", [event("a")], "InvalidStreamName"],
          ["$all", [event("a")], "InvalidStreamName"],
          ["line\nbreak", [event("a")], "InvalidStreamName"],
          ["nul\u0000", [event("a")], "InvalidStreamName"],
          ["lone\ud800", [event("a")], "InvalidStreamName"],
          ["x".repeat(257), [event("a")], "InvalidStreamName"],
          ["ok", [event("a"), event("a")], "DuplicateIdInBatch"],
          ["ok", [event("")], "InvalidEvent"],
          ["ok", [event("a\u0000b")], "InvalidEvent"],
          ["ok", [event("a", {}, "")], "InvalidEvent"],
          ["ok", [event("a", undefined)].map((e) => ({ ...e, data: undefined })), "InvalidEvent"],
          ["ok", [event("a", 1n)], "InvalidEvent"],
          ["ok", [event("a", circular)], "InvalidEvent"],
          ["ok", [event("a", () => 1)], "InvalidEvent"],
          ["ok", [{ ...event("a"), metadata: [1] as unknown as Record<string, unknown> }], "InvalidEvent"],
          ["ok", [{ ...event("a"), metadata: { big: 1n } }], "InvalidEvent"],
          ["ok", [event("a"), event("b", 2n)], "InvalidEvent"]
        ]
        for (const [stream, batch, reason] of cases) {
          const error = yield* failureOf(store.append(stream, batch, "any"))
          const label = `${JSON.stringify(stream)} ${reason}`
          expect(error instanceof InvalidAppend, label).toBe(true)
          if (error instanceof InvalidAppend) expect(error.reason, label).toBe(reason)
        }
        expect(yield* store.lastPosition).toBe(0)
        expect(yield* store.heads).toEqual([])
      }),
    TEST_TIMEOUT_MS
  )

  it.scopedLive(
    "size limit: an event of exactly MAX_EVENT_BYTES (data + metadata, UTF-8) round-trips; one byte more is EventTooLarge",
    () =>
      Effect.gen(function* () {
        const store = yield* (yield* makeStore()).open
        const quotes = 2
        const emptyMetadata = "{}".length
        const atLimit = "x".repeat(MAX_EVENT_BYTES - quotes - emptyMetadata)
        yield* store.append("big", [event("max", atLimit)], "no_stream")
        const [stored] = yield* store.readStream("big")
        expect(stored?.data === atLimit).toBe(true)

        const tooLarge = yield* failureOf(store.append("big", [event("over", atLimit + "x")], "any"))
        expect(tooLarge instanceof InvalidAppend && tooLarge.reason === "EventTooLarge").toBe(true)
        // Metadata counts too.
        const overByMetadata = { ...event("meta", atLimit), metadata: { m: 1 } }
        const metaError = yield* failureOf(store.append("big", [overByMetadata], "any"))
        expect(metaError instanceof InvalidAppend && metaError.reason === "EventTooLarge").toBe(true)
        // Bytes count, not characters: "é" is 2 bytes in UTF-8.
        const twoByte = "é".repeat((MAX_EVENT_BYTES - quotes - emptyMetadata) / 2)
        yield* store.append("big", [event("utf8-max", twoByte)], "any")
        const utf8Error = yield* failureOf(store.append("big", [event("utf8-over", twoByte + "x")], "any"))
        expect(utf8Error instanceof InvalidAppend && utf8Error.reason === "EventTooLarge").toBe(true)
        expect(yield* store.lastPosition).toBe(2)
      }),
    TEST_TIMEOUT_MS
  )
}

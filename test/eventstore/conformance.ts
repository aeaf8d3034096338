/**
 * The event-store conformance suite: one function every store's test file
 * calls with a way to make fresh storage, so every driver is held to the same
 * behaviours (RELIABILITY.md, event store items 1-9).
 *
 * Not covered, because the EventStore contract has no such operation: deleted
 * streams (item 1's "deleted" state, item 9's "highest revision survives
 * deletions"). Checkpoint storage (item 6) and rebuild-equals-live (item 7)
 * belong to projections, not to the store.
 */
import { Effect } from "effect"
import { describe, expect, it } from "@effect/vitest"
import type { MakeStore, StoreCapabilities } from "./conformanceKit.js"
import { DEFAULT_CAPABILITIES, TEST_TIMEOUT_MS, event, events } from "./conformanceKit.js"
import { appendConformance } from "./conformanceAppend.js"
import { readConformance } from "./conformanceRead.js"
import { subscribeConformance } from "./conformanceSubscribe.js"

export type { MakeStore, StoreCapabilities, StoreUnderTest } from "./conformanceKit.js"

export const eventStoreConformance = (
  name: string,
  makeStore: MakeStore,
  capabilities: StoreCapabilities = DEFAULT_CAPABILITIES
) =>
  describe(`EventStore conformance: ${name}`, () => {
    describe("append", () => appendConformance(makeStore, capabilities))
    describe("read", () => readConformance(makeStore))
    describe("subscribe", () => subscribeConformance(makeStore))
    describe("reopen", () => reopenConformance(makeStore, capabilities))
  })

const reopenConformance = (makeStore: MakeStore, capabilities: StoreCapabilities) =>
  it.scopedLive(
    `closing and reopening ${capabilities.survivesReopen ? "keeps every event, head and hash" : "starts empty"}`,
    () =>
      Effect.gen(function* () {
        const sut = yield* makeStore()
        const before = yield* Effect.scoped(
          Effect.gen(function* () {
            const store = yield* sut.open
            yield* store.append("a", events("a", 3), "no_stream")
            yield* store.append("b", events("b", 2), "no_stream")
            yield* store.append("a", events("a", 2, 3), 2)
            return { all: yield* store.readAll(), heads: yield* store.heads, lastPosition: yield* store.lastPosition }
          })
        )
        const store = yield* sut.open
        if (!capabilities.survivesReopen) {
          expect(yield* store.lastPosition).toBe(0)
          return
        }
        expect(yield* store.readAll()).toEqual(before.all)
        expect(yield* store.heads).toEqual(before.heads)
        expect(yield* store.lastPosition).toBe(before.lastPosition)
        // Appends continue the chain where it stopped.
        const result = yield* store.append("a", [event("a-5")], 4)
        expect(result).toEqual({ nextRevision: 5, position: before.lastPosition + 1, written: true })
        const [last] = yield* store.readStream("a", { direction: "backwards", limit: 1 })
        expect(last?.prevHash).toBe(before.heads.find((h) => h.stream === "a")?.hash)
      }),
    TEST_TIMEOUT_MS
  )

/**
 * Catch-up-then-live subscriptions, shared by every driver that has a
 * CommitSignal. The subscriber reads pages from its own cursor; when a page
 * comes back empty it waits for the committed position to pass the one it saw
 * before that read. Any commit the read missed published a larger position
 * afterwards, so nothing is skipped, and the cursor never repeats an event.
 * Pages are pulled on demand, so a slow consumer holds at most one page.
 */
import { Chunk, Effect, Option, Stream } from "effect"
import type { EventStoreError, RecordedEvent } from "./EventStore.js"
import type { CommitSignal } from "./commitSignal.js"

/** Events read per page while catching up. */
export const SUBSCRIPTION_PAGE_SIZE = 1000

export const catchUpThenLive = <Cursor>(options: {
  readonly signal: CommitSignal
  readonly start: Cursor
  readonly readPage: (cursor: Cursor, limit: number) => Effect.Effect<ReadonlyArray<RecordedEvent>, EventStoreError>
  /** The cursor that reads strictly after this event. */
  readonly after: (event: RecordedEvent) => Cursor
}): Stream.Stream<RecordedEvent, EventStoreError> =>
  Stream.unfoldChunkEffect(options.start, (cursor) =>
    Effect.suspend(() => {
      const seen = options.signal.position()
      return Effect.flatMap(options.readPage(cursor, SUBSCRIPTION_PAGE_SIZE), (page) => {
        const last = page[page.length - 1]
        if (last !== undefined) {
          return Effect.succeed(Option.some([Chunk.unsafeFromArray(page), options.after(last)] as const))
        }
        return Effect.as(options.signal.awaitAfter(seen), Option.some([Chunk.empty<RecordedEvent>(), cursor] as const))
      })
    })
  )

/** `subscribeAll` and `subscribeStream` of a store, from its reads and its commit signal. */
export const subscriptionsOf = (
  signal: CommitSignal,
  readAll: (options: { readonly after: number; readonly limit: number }) => Effect.Effect<ReadonlyArray<RecordedEvent>, EventStoreError>,
  readStream: (
    stream: string,
    options: { readonly from: number; readonly limit: number }
  ) => Effect.Effect<ReadonlyArray<RecordedEvent>, EventStoreError>
) => ({
  subscribeAll: (after = 0) =>
    catchUpThenLive({
      signal,
      start: after,
      readPage: (cursor, limit) => readAll({ after: cursor, limit }),
      after: (event) => event.position
    }),
  subscribeStream: (stream: string, from = 0) =>
    catchUpThenLive({
      signal,
      start: from,
      readPage: (cursor, limit) => readStream(stream, { from: cursor, limit }),
      after: (event) => event.revision + 1
    })
})

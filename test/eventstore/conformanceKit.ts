/**
 * What the conformance suite needs from a store under test, and the small
 * helpers its sections share.
 */
import { Effect, Either } from "effect"
import type { Scope } from "effect"
import { expect } from "@effect/vitest"
import type { EventStoreError, EventStoreShape, NewEvent } from "../../infra/eventstore/EventStore.js"
import type { RawEventRow } from "../../infra/eventstore/RawEventRow.js"

/** One storage (a temp file, a memory value) a store can be opened over, more than once. */
export interface StoreUnderTest {
  /** Opens a store over this storage; closing the scope closes the store. */
  readonly open: Effect.Effect<EventStoreShape, EventStoreError, Scope.Scope>
  /** The stored rows in position order with the exact JSON text, read around the store. */
  readonly rawRows: Effect.Effect<ReadonlyArray<RawEventRow>, EventStoreError>
}

/**
 * What a store declares it can or cannot do. A behaviour a store lacks is
 * tested as lacking, never skipped.
 */
export interface StoreCapabilities {
  /** Events survive closing the store and opening it again over the same storage. */
  readonly survivesReopen: boolean
}

/** Fresh, empty storage per test; the scope removes it. */
export type MakeStore = () => Effect.Effect<StoreUnderTest, unknown, Scope.Scope>

export const DEFAULT_CAPABILITIES: StoreCapabilities = { survivesReopen: true }

/** Per-test time bound (ms): the whole suite must stay well under a minute on 2 cores. */
export const TEST_TIMEOUT_MS = 20_000

export const event = (id: string, data: unknown = { id }, type = "Happened"): NewEvent => ({ id, type, data })

export const events = (prefix: string, count: number, from = 0): ReadonlyArray<NewEvent> =>
  Array.from({ length: count }, (_, k) => event(`${prefix}-${from + k}`, { n: from + k }))

export const range = (count: number): ReadonlyArray<number> => Array.from({ length: count }, (_, k) => k)

/** The typed error an effect fails with (the test fails if it succeeds). */
export const failureOf = <A, E>(effect: Effect.Effect<A, E, never>): Effect.Effect<E> =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result) ? Effect.succeed(result.left) : Effect.die(new Error(`expected a failure, got ${JSON.stringify(result.right)}`))
  )

/** The store's visible state, to show that a rejected append wrote nothing. */
export const snapshot = (store: EventStoreShape) =>
  Effect.all({ lastPosition: store.lastPosition, heads: store.heads, all: store.readAll() })

export const expectConsecutive = (values: ReadonlyArray<number>, first: number, count: number) => {
  expect(values.length).toBe(count)
  values.forEach((value, k) => {
    if (value !== first + k) expect.fail(`value ${k} is ${value}, expected ${first + k}`)
  })
}

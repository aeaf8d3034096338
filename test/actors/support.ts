/**
 * Test support: a fault-injecting, counting wrapper around a REAL event store
 * (never a mock), and the checks every crash test ends with.
 */
import { Effect, Fiber, Schema } from "effect"
import { expect } from "@effect/vitest"
import { fold } from "../../domain/Decider.js"
import type { EventStoreShape } from "../../infra/eventstore/EventStore.js"
import { EventStoreError } from "../../infra/eventstore/EventStore.js"
import type { RestartPolicy } from "../../actors/kernel/Supervisor.js"
import type { BankEvent, BankState } from "./bank.js"
import { bank, BankEvent as BankEventSchema } from "./bank.js"

/** What the wrapper does to one append. */
export type Fault =
  | "fail" // typed EventStoreError, nothing written
  | "die" // defect before the commit
  | "dieAfterCommit" // the events are written, then a defect: the asker cannot know
  | "interrupt" // the actor's fiber is interrupted (by itself) before the commit
  | "interruptFromOutside" // another fiber interrupts the actor's fiber during the append

export interface Instrumented {
  readonly store: EventStoreShape
  /** Append calls made to `stream` (faulty ones included). */
  readonly appends: (stream: string) => number
  /** Events returned by readStream for `stream`. */
  readonly eventsRead: (stream: string) => number
}

export interface InstrumentOptions {
  /** Fault for the n-th (1-based) append to `stream`, if any. */
  readonly faultAt?: (n: number, stream: string) => Fault | undefined
  /** When given, every append waits for this latch to be open. */
  readonly gate?: Effect.Latch
  /** Whether the n-th (1-based) readStream of `stream` fails with EventStoreError. */
  readonly readFailsAt?: (n: number, stream: string) => boolean
}

const bump = (counts: Map<string, number>, key: string, by: number) => {
  const next = (counts.get(key) ?? 0) + by
  counts.set(key, next)
  return next
}

export const instrument = (inner: EventStoreShape, options: InstrumentOptions = {}): Instrumented => {
  const appendCounts = new Map<string, number>()
  const readCounts = new Map<string, number>()
  const readCalls = new Map<string, number>()
  const faulty = (fault: Fault, write: Effect.Effect<unknown, unknown>) => {
    switch (fault) {
      case "fail":
        return Effect.fail(new EventStoreError({ operation: "append", detail: "injected failure" }))
      case "die":
        return Effect.die(new Error("injected: store died before commit"))
      case "dieAfterCommit":
        return Effect.zipRight(write, Effect.die(new Error("injected: store died after commit")))
      case "interrupt":
        return Effect.interrupt
      case "interruptFromOutside":
        return Effect.withFiberRuntime((self) => Effect.zipRight(Effect.forkDaemon(Fiber.interrupt(self)), Effect.never))
    }
  }
  const store: EventStoreShape = {
    ...inner,
    append: (stream, events, expected) =>
      Effect.suspend(() => {
        const n = bump(appendCounts, stream, 1)
        const fault = options.faultAt?.(n, stream)
        const write = inner.append(stream, events, expected)
        const run = fault === undefined ? write : (faulty(fault, write) as typeof write)
        return options.gate === undefined ? run : Effect.zipRight(options.gate.await, run)
      }),
    readStream: (stream, readOptions) =>
      Effect.suspend(() => {
        if (options.readFailsAt?.(bump(readCalls, stream, 1), stream)) {
          return Effect.fail(new EventStoreError({ operation: "readStream", detail: "injected failure" }))
        }
        return Effect.tap(inner.readStream(stream, readOptions), (events) => {
          bump(readCounts, stream, events.length)
        })
      })
  }
  return {
    store,
    appends: (stream) => appendCounts.get(stream) ?? 0,
    eventsRead: (stream) => readCounts.get(stream) ?? 0
  }
}

/** Fast restarts for tests. */
export const quickRestart: RestartPolicy = { minDelay: "1 millis", maxDelay: "20 millis" }

const decodeBankEvent = Schema.decodeUnknownSync(BankEventSchema)

/**
 * Read the whole stream straight from the store and check it: revisions
 * 0..n-1 with no gap, every ref at most once. Returns the events and the
 * state rebuilt from them with the decider's own fold.
 */
export const readBack = (store: EventStoreShape, stream: string) =>
  Effect.gen(function* () {
    const recorded = yield* store.readStream(stream)
    recorded.forEach((event, index) => {
      expect(event.revision).toBe(index)
    })
    const events: ReadonlyArray<BankEvent> = recorded.map((event) =>
      decodeBankEvent({ ...(event.data as object), _tag: event.type })
    )
    const refs = events.flatMap((event) => ("ref" in event ? [event.ref] : []))
    expect(new Set(refs).size).toBe(refs.length)
    const state: BankState = fold(bank.evolve, bank.initialState, events)
    return { recorded, events, refs: new Set(refs), state }
  })

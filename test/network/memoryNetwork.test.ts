/**
 * The in-memory consensus network: frames arrive in send order on a later
 * turn of the event loop (never within the sender's), a validator that left
 * misses what is sent meanwhile, and with `encode` a frame that does not
 * decode is dropped and counted.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Queue, Scope, Exit } from "effect"
import { makeMemoryNetworkHub } from "../../infra/network/MemoryConsensusNetwork.js"
import { numbered, numberOf } from "./support.js"

const nextTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

describe("MemoryConsensusNetwork", () => {
  it.scoped("delivers in send order, on a later turn of the event loop", () =>
    Effect.gen(function* () {
      const hub = makeMemoryNetworkHub({ count: 3 })
      const [a, b, c] = yield* Effect.all([hub.join(0), hub.join(1), hub.join(2)])
      for (let n = 0; n < 5; n++) yield* a!.send(1, numbered(n))
      yield* a!.broadcast(numbered(5))
      yield* c!.send(1, numbered(6))
      expect(yield* Queue.size(b!.inbound)).toBe(0) // not within the sender's turn
      yield* nextTurn
      const got = Chunk.toReadonlyArray(yield* Queue.takeAll(b!.inbound))
      expect(got.map(numberOf)).toEqual([0, 1, 2, 3, 4, 5, 6])
      expect(got.map((e) => e.from)).toEqual([0, 0, 0, 0, 0, 0, 2])
      expect(Chunk.toReadonlyArray(yield* Queue.takeAll(c!.inbound)).map(numberOf)).toEqual([5])
      expect(hub.sent()).toEqual({ TxRequest: 8 })
    }))

  it.effect("a validator that left misses the frames sent meanwhile; with encode, garbage is dropped", () =>
    Effect.gen(function* () {
      const hub = makeMemoryNetworkHub({ count: 2, encode: true })
      const scope0 = yield* Scope.make()
      const a = yield* hub.join(0).pipe(Scope.extend(scope0))
      const scope1 = yield* Scope.make()
      const b = yield* hub.join(1).pipe(Scope.extend(scope1))
      yield* a.send(1, numbered(1))
      yield* nextTurn
      expect(Chunk.toReadonlyArray(yield* Queue.takeAll(b.inbound)).map(numberOf)).toEqual([1])
      yield* a.send(1, numbered(2))
      yield* Scope.close(scope1, Exit.void) // gone before the frame arrives
      yield* nextTurn
      const b2 = yield* hub.join(1).pipe(Scope.extend(yield* Scope.make()))
      yield* nextTurn
      expect(yield* Queue.size(b2.inbound)).toBe(0)
      yield* hub.inject(1, 0, "{not json")
      yield* hub.inject(1, 0, JSON.stringify({ _tag: "Nonsense" }))
      yield* nextTurn
      expect(hub.malformed()).toBe(2)
      expect(yield* Queue.size(a.inbound)).toBe(0)
      yield* Scope.close(scope0, Exit.void)
    }))
})

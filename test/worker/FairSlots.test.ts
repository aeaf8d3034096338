/**
 * FairSlots: slots are granted strictly in arrival order (a newcomer never
 * takes a slot a waiter is owed); an interrupted waiter takes none; the
 * count of free slots is back to the start once everyone released.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as fc from "fast-check"
import { makeFairSlots } from "../../src/worker/FairSlots.js"

describe("FairSlots", () => {
  it.effect("a freed slot goes to the longest waiter, not to a newcomer asking at that moment", () =>
    Effect.gen(function* () {
      const slots = yield* makeFairSlots(1)
      const order: Array<string> = []
      yield* slots.take
      const a = yield* Effect.fork(slots.take.pipe(Effect.zipRight(Effect.sync(() => order.push("a")))))
      yield* Effect.yieldNow()
      expect(yield* slots.waiting).toBe(1)
      yield* slots.release
      // Asks right as the slot is freed: must wait behind "a".
      const late = yield* Effect.fork(slots.take.pipe(Effect.zipRight(Effect.sync(() => order.push("late")))))
      yield* Fiber.join(a)
      expect(order).toEqual(["a"])
      expect(yield* slots.free).toBe(0)
      yield* slots.release
      yield* Fiber.join(late)
      expect(order).toEqual(["a", "late"])
      yield* slots.release
      expect(yield* slots.free).toBe(1)
    })
  )

  it.effect("an interrupted waiter takes no slot and leaves the queue", () =>
    Effect.gen(function* () {
      const slots = yield* makeFairSlots(1)
      yield* slots.take
      const w = yield* Effect.fork(slots.take)
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(w)
      expect(yield* slots.waiting).toBe(0)
      yield* slots.release
      expect(yield* slots.free).toBe(1)
    })
  )

  it("any schedule: at most `n` held at once, grants in arrival order, all slots back at the end", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 30 }), (n, work) =>
        Effect.runPromise(
          Effect.gen(function* () {
            const slots = yield* makeFairSlots(n)
            let held = 0
            let most = 0
            const granted: Array<number> = []
            const fibers = []
            for (const [i, yields] of work.entries()) {
              fibers.push(
                yield* Effect.fork(
                  Effect.uninterruptibleMask((restore) =>
                    Effect.flatMap(restore(slots.take), (grant) =>
                      Effect.gen(function* () {
                        granted[i] = grant
                        held++
                        most = Math.max(most, held)
                        for (let k = 0; k < yields; k++) yield* Effect.yieldNow()
                        held--
                      }).pipe(Effect.ensuring(slots.release))
                    )
                  )
                )
              )
              yield* Effect.yieldNow()
            }
            yield* Fiber.joinAll(fibers)
            expect(most).toBeLessThanOrEqual(n)
            // The i-th to ask was the i-th served.
            expect(granted).toEqual(work.map((_, i) => i))
            expect(yield* slots.free).toBe(n)
            expect(yield* slots.waiting).toBe(0)
          })
        )
      ),
      { numRuns: 200 }
    )
  })
})

/**
 * The typed client as a test uses it: open once (a Scope held until close),
 * run calls as promises with a deadline, so a lost reply fails the test
 * instead of hanging it.
 */
import { Cause, Effect, Exit, Scope } from "effect"
import { makeClient } from "../../../src/client/index.js"
import type { NodeClient } from "../../../src/client/index.js"

/** A single call that takes longer than this fails the test. */
export const CALL_TIMEOUT_MS = 15_000

export interface TestClient {
  readonly client: NodeClient
  /** Run an effect (usually one client call) with a deadline. */
  readonly run: <A, E>(effect: Effect.Effect<A, E>, timeoutMs?: number) => Promise<A>
  /** Run an effect that must fail; resolves with its typed error. */
  readonly fail: <A, E>(effect: Effect.Effect<A, E>, timeoutMs?: number) => Promise<E>
  readonly close: () => Promise<void>
}

class CallTimedOut extends Error {}

export const openClient = async (url: string): Promise<TestClient> => {
  const scope = await Effect.runPromise(Scope.make())
  const client = await Effect.runPromise(Scope.extend(makeClient(url), scope))
  const bounded = <A, E>(effect: Effect.Effect<A, E>, timeoutMs: number) =>
    Effect.timeoutFail(effect, {
      duration: timeoutMs,
      onTimeout: () => new CallTimedOut(`no reply from ${url} within ${timeoutMs} ms`)
    })
  return {
    client,
    run: async (effect, timeoutMs = CALL_TIMEOUT_MS) => {
      const exit = await Effect.runPromiseExit(bounded(effect, timeoutMs))
      if (Exit.isSuccess(exit)) return exit.value
      throw new Error(Cause.pretty(exit.cause))
    },
    fail: async (effect, timeoutMs = CALL_TIMEOUT_MS) => {
      const result = await Effect.runPromise(Effect.either(bounded(effect, timeoutMs)))
      if (result._tag === "Right") throw new Error(`expected a failure, got ${JSON.stringify(result.right)}`)
      if (result.left instanceof CallTimedOut) throw result.left
      return result.left as Exclude<typeof result.left, CallTimedOut>
    },
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

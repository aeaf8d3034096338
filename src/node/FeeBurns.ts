/**
 * Transaction fees the shards burned (every `FeeCharged`), summed from the
 * event log — catch-up, then live — for the supply figures. A projection of
 * its own: the economy's fold does not need them.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import type { EventStore } from "../../infra/eventstore/EventStore.js"
import { followLog } from "./followLog.js"

export interface FeeBurns {
  /** Fees burned so far, over every shard. */
  readonly total: Effect.Effect<bigint>
}

export const makeFeeBurns = (): Effect.Effect<FeeBurns, never, EventStore | Scope.Scope> =>
  Effect.gen(function* () {
    let total = 0n
    yield* followLog("fee burns", (e) =>
      Effect.sync(() => {
        if (e.type === "FeeCharged" && e.stream.startsWith("shard-")) total += BigInt((e.data as { readonly fee: string }).fee)
      })
    )
    return { total: Effect.sync(() => total) }
  })

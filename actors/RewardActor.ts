/**
 * RewardActor: one epoch's reward ledger (`reward-epoch-{n}`). On a node it
 * records the ledger the AI shard's block emitted (`RecordEpoch`: the same
 * events in the same order on every validator); `CloseEpoch` computes one
 * from an economy (tools, tests). The whole ledger is one append, so a crash
 * leaves either all of it or none, and closing again appends nothing.
 */
import type { Effect, Scope } from "effect"
import { epochDecider, RewardEvent } from "../domain/economics/epochDecider.js"
import type { EpochCommand, EpochRejected, EpochStreamState } from "../domain/economics/epochDecider.js"
import type { EventStore } from "../infra/eventstore/EventStore.js"
import { makeActorSystem } from "./kernel/ActorSystem.js"
import type { ActorSystem } from "./kernel/ActorSystem.js"

export { rewardEpochStreamId as rewardStream } from "../domain/economics/events.js"

export type RewardActors = ActorSystem<EpochStreamState, EpochCommand, RewardEvent, EpochRejected>

export const makeRewardActors = (): Effect.Effect<RewardActors, never, EventStore | Scope.Scope> =>
  makeActorSystem((stream) => ({
    stream,
    decider: epochDecider,
    eventSchema: RewardEvent,
    // One close per stream, one append: the index is the identity, so a retried close writes nothing.
    eventId: (_cmd, index) => `${stream}:${index}`
  }))

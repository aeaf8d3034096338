/**
 * RewardActor: one epoch's reward ledger (`reward-epoch-{n}`). Its one
 * command closes the epoch from the economy as it stood at the beacon's
 * `EpochEnded`; the whole ledger is one append, so a crash leaves either all
 * of it or none, and closing again appends nothing.
 */
import type { Effect, Scope } from "effect"
import { epochDecider, RewardEvent } from "../domain/economics/epochDecider.js"
import type { CloseEpoch, EpochRejected, EpochStreamState } from "../domain/economics/epochDecider.js"
import type { EventStore } from "../infra/eventstore/EventStore.js"
import { makeActorSystem } from "./kernel/ActorSystem.js"
import type { ActorSystem } from "./kernel/ActorSystem.js"

export { rewardEpochStreamId as rewardStream } from "../domain/economics/events.js"

export type RewardActors = ActorSystem<EpochStreamState, CloseEpoch, RewardEvent, EpochRejected>

export const makeRewardActors = (): Effect.Effect<RewardActors, never, EventStore | Scope.Scope> =>
  makeActorSystem((stream) => ({
    stream,
    decider: epochDecider,
    eventSchema: RewardEvent,
    // One close per stream, one append: the index is the identity, so a retried close writes nothing.
    eventId: (_cmd, index) => `${stream}:${index}`
  }))

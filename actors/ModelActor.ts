/** ModelActor: one model's upload, attestations, verdict, price and deprecation (`model-{id}`). */
import type { Effect, Scope } from "effect"
import { makeModelDecider } from "../domain/ai/model/decide.js"
import type { ModelState } from "../domain/ai/model/decide.js"
import type { ModelCommand, ModelError, ModelRules } from "../domain/ai/model/commands.js"
import { ModelEvent } from "../domain/ai/model/events.js"
import type { EventStore } from "../infra/eventstore/EventStore.js"
import { makeActorSystem } from "./kernel/ActorSystem.js"
import type { ActorSystem } from "./kernel/ActorSystem.js"
import { causedBy } from "./causation.js"

export type ModelActors = ActorSystem<ModelState, ModelCommand, ModelEvent, ModelError>

export const modelStream = (modelId: string): string => `model-${modelId}`

export const makeModelActors = (rules: ModelRules): Effect.Effect<ModelActors, never, EventStore | Scope.Scope> => {
  const decider = makeModelDecider(rules)
  return makeActorSystem((stream) => ({ stream, decider, eventSchema: ModelEvent, ...causedBy(stream) }))
}

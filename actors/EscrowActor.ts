/** EscrowActor: one developer's escrow for one model (`escrow-{developer}-{model}`). */
import type { Effect, Scope } from "effect"
import { escrowDecider } from "../domain/ai/escrow/decide.js"
import type { EscrowState } from "../domain/ai/escrow/decide.js"
import type { EscrowCommand, EscrowError } from "../domain/ai/escrow/commands.js"
import { EscrowEvent } from "../domain/ai/escrow/events.js"
import type { EventStore } from "../infra/eventstore/EventStore.js"
import { causedBy } from "./causation.js"
import { makeActorSystem } from "./kernel/ActorSystem.js"
import type { ActorSystem } from "./kernel/ActorSystem.js"

export type EscrowActors = ActorSystem<EscrowState, EscrowCommand, EscrowEvent, EscrowError>

export { escrowStreamId as escrowStream } from "../domain/ai/escrow/events.js"

export const makeEscrowActors = (): Effect.Effect<EscrowActors, never, EventStore | Scope.Scope> =>
  makeActorSystem((stream) => ({ stream, decider: escrowDecider, eventSchema: EscrowEvent, ...causedBy(stream) }))

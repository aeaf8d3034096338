/** GpuWorkerActor: one compute node's registration, heartbeats and record (`worker-{address}`). */
import type { Effect, Scope } from "effect"
import { makeWorkerDecider } from "../domain/ai/worker/decide.js"
import type { WorkerState } from "../domain/ai/worker/decide.js"
import type { WorkerCommand, WorkerError, WorkerRules } from "../domain/ai/worker/commands.js"
import { WorkerEvent } from "../domain/ai/worker/events.js"
import type { EventStore } from "../infra/eventstore/EventStore.js"
import { causedBy } from "./causation.js"
import { makeActorSystem } from "./kernel/ActorSystem.js"
import type { ActorSystem } from "./kernel/ActorSystem.js"

export type WorkerActors = ActorSystem<WorkerState, WorkerCommand, WorkerEvent, WorkerError>

export const workerStream = (workerId: string): string => `worker-${workerId}`

export const makeWorkerActors = (rules: WorkerRules): Effect.Effect<WorkerActors, never, EventStore | Scope.Scope> => {
  const decider = makeWorkerDecider(rules)
  return makeActorSystem((stream) => ({ stream, decider, eventSchema: WorkerEvent, ...causedBy(stream) }))
}

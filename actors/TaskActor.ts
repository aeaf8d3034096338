/** TaskActor: one inference task from request to settlement (`task-{id}`). */
import type { Effect, Scope } from "effect"
import { makeTaskDecider } from "../domain/ai/task/decide.js"
import type { TaskState } from "../domain/ai/task/decide.js"
import type { TaskCommand, TaskError, TaskRules } from "../domain/ai/task/commands.js"
import { TaskEvent } from "../domain/ai/task/events.js"
import type { EventStore } from "../infra/eventstore/EventStore.js"
import { causedBy } from "./causation.js"
import { makeActorSystem } from "./kernel/ActorSystem.js"
import type { ActorSystem } from "./kernel/ActorSystem.js"

export type TaskActors = ActorSystem<TaskState, TaskCommand, TaskEvent, TaskError>

export const taskStream = (taskId: string): string => `task-${taskId}`

export const makeTaskActors = (rules: TaskRules): Effect.Effect<TaskActors, never, EventStore | Scope.Scope> => {
  const decider = makeTaskDecider(rules)
  return makeActorSystem((stream) => ({ stream, decider, eventSchema: TaskEvent, ...causedBy(stream) }))
}

/**
 * A registry of actors of one kind (one per model, per task, ...): the actor
 * for a stream is made on first use and kept until the system's scope closes.
 * Exactly one actor per stream in this process, so appends with an exact
 * expected revision do not fight each other.
 *
 * Local only: spreading actors over machines is @effect/cluster's job.
 */
import { Effect, ExecutionStrategy, Exit, Scope } from "effect"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import type { Actor, ActorSpec } from "./Actor.js"
import { makeActor } from "./Actor.js"

export interface ActorSystem<State, Command, Event, Err> {
  /** The actor of `stream`, started (replaying) on first use. */
  readonly get: (stream: string) => Effect.Effect<Actor<State, Command, Event, Err>>
  /** Streams with a live actor. */
  readonly streams: Effect.Effect<ReadonlyArray<string>>
  /**
   * Stop the actor of `stream` and forget it (its events stay; a later `get`
   * replays them). For actors whose work is over — a settled task — so a
   * long-running node does not keep one fiber per stream it ever touched.
   */
  readonly release: (stream: string) => Effect.Effect<void>
}

export const makeActorSystem = <State, Command, Event extends { readonly _tag: string }, Err>(
  specOf: (stream: string) => ActorSpec<State, Command, Event, Err>
): Effect.Effect<ActorSystem<State, Command, Event, Err>, never, EventStore | Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const store = yield* EventStore
    const actors = new Map<string, Actor<State, Command, Event, Err>>()
    const scopes = new Map<string, Scope.CloseableScope>()
    // Creation runs a few effects; the lock keeps two first uses from making two actors.
    const lock = yield* Effect.makeSemaphore(1)

    const create = (stream: string) =>
      Effect.suspend(() => {
        const existing = actors.get(stream)
        if (existing !== undefined) return Effect.succeed(existing)
        // Each actor lives in its own child scope, so it can be released alone.
        return Scope.fork(scope, ExecutionStrategy.sequential).pipe(
          Effect.flatMap((child) =>
            makeActor(specOf(stream)).pipe(
              Effect.tap((actor) => {
                actors.set(stream, actor)
                scopes.set(stream, child)
              }),
              Effect.provideService(EventStore, store),
              Scope.extend(child)
            )
          )
        )
      })

    return {
      get: (stream) =>
        Effect.suspend(() => {
          const existing = actors.get(stream)
          return existing !== undefined ? Effect.succeed(existing) : lock.withPermits(1)(create(stream))
        }),
      streams: Effect.sync(() => [...actors.keys()]),
      release: (stream) =>
        lock.withPermits(1)(
          Effect.suspend(() => {
            const child = scopes.get(stream)
            actors.delete(stream)
            scopes.delete(stream)
            return child === undefined ? Effect.void : Scope.close(child, Exit.void)
          })
        )
    }
  })

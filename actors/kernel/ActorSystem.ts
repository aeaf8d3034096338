/**
 * A registry of actors of one kind (one per model, per task, ...): the actor
 * for a stream is made on first use and kept until the system's scope closes.
 * Exactly one actor per stream in this process, so appends with an exact
 * expected revision do not fight each other.
 *
 * Local only: spreading actors over machines is @effect/cluster's job.
 */
import { Effect, Scope } from "effect"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import type { Actor, ActorSpec } from "./Actor.js"
import { makeActor } from "./Actor.js"

export interface ActorSystem<State, Command, Event, Err> {
  /** The actor of `stream`, started (replaying) on first use. */
  readonly get: (stream: string) => Effect.Effect<Actor<State, Command, Event, Err>>
  /** Streams with a live actor. */
  readonly streams: Effect.Effect<ReadonlyArray<string>>
}

export const makeActorSystem = <State, Command, Event extends { readonly _tag: string }, Err>(
  specOf: (stream: string) => ActorSpec<State, Command, Event, Err>
): Effect.Effect<ActorSystem<State, Command, Event, Err>, never, EventStore | Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const store = yield* EventStore
    const actors = new Map<string, Actor<State, Command, Event, Err>>()
    // Creation runs a few effects; the lock keeps two first uses from making two actors.
    const lock = yield* Effect.makeSemaphore(1)

    const create = (stream: string) =>
      Effect.suspend(() => {
        const existing = actors.get(stream)
        if (existing !== undefined) return Effect.succeed(existing)
        return makeActor(specOf(stream)).pipe(
          Effect.tap((actor) => actors.set(stream, actor)),
          Effect.provideService(EventStore, store),
          Scope.extend(scope)
        )
      })

    return {
      get: (stream) =>
        Effect.suspend(() => {
          const existing = actors.get(stream)
          return existing !== undefined ? Effect.succeed(existing) : lock.withPermits(1)(create(stream))
        }),
      streams: Effect.sync(() => [...actors.keys()])
    }
  })

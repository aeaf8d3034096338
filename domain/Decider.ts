/**
 * A decider holds one aggregate's rules as three pure functions (Emmett's
 * shape): `decide` turns a command into events or a typed error, `evolve`
 * folds an event into state. Time and randomness arrive inside commands,
 * never read here, so replaying the events always rebuilds the same state.
 */
import type { Either } from "effect"

export interface Decider<State, Command, Event, Err> {
  readonly initialState: State
  readonly decide: (state: State, command: Command) => Either.Either<ReadonlyArray<Event>, Err>
  readonly evolve: (state: State, event: Event) => State
}

/** Rebuild a state from its events. */
export const fold = <State, Event>(
  evolve: (state: State, event: Event) => State,
  initialState: State,
  events: Iterable<Event>
): State => {
  let state = initialState
  for (const event of events) state = evolve(state, event)
  return state
}

/**
 * What can go wrong between an asker and an actor, besides the decider's own
 * typed errors and the store's append errors (which reach the asker as they are).
 *
 * `started` tells the asker whether its command may have run: false means it
 * was still queued and never will run (safe to retry); true means it was in the
 * batch being processed, so it may have been committed (read the state or the
 * stream before retrying, or retry with deterministic event ids).
 */
import { Schema } from "effect"

/** The reply did not come in time. A command still queued is withdrawn. */
export class ActorTimeout extends Schema.TaggedError<ActorTimeout>()("ActorTimeout", {
  stream: Schema.String,
  timeoutMillis: Schema.Number,
  started: Schema.Boolean
}) {
  override get message() {
    return `actor ${this.stream}: no reply within ${this.timeoutMillis} ms (${this.started ? "in progress, may commit" : "withdrawn, never ran"})`
  }
}

/** The actor was shut down (its scope closed) before it replied. */
export class ActorStopped extends Schema.TaggedError<ActorStopped>()("ActorStopped", {
  stream: Schema.String,
  started: Schema.Boolean
}) {
  override get message() {
    return `actor ${this.stream} stopped (${this.started ? "command was in progress, may have committed" : "command never ran"})`
  }
}

/**
 * The actor's fiber died while the command was in its batch (a defect in
 * decide/evolve, a store defect, an interrupt). The command may have been
 * committed; the actor restarts from the store.
 */
export class ActorCrashed extends Schema.TaggedError<ActorCrashed>()("ActorCrashed", {
  stream: Schema.String,
  /** How many times the actor has been restarted, this crash included. */
  restarts: Schema.Number,
  /** The crash's cause, rendered. */
  defect: Schema.String
}) {
  override get message() {
    return `actor ${this.stream} crashed (restart ${this.restarts}): ${this.defect}`
  }
}

export type ActorError = ActorTimeout | ActorStopped | ActorCrashed

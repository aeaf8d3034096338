/**
 * The RewardActor's decider for one `reward-epoch-{n}` stream. Closing is
 * idempotent: once the stream holds its ledger (it ends with EpochClosed,
 * and an append is atomic), closing again decides nothing, so a crash while
 * closing repeats the close without paying twice. A command for another
 * epoch than the stream's, or an economy not standing at that epoch, is a
 * typed error.
 */
import { Data, Either, Schema } from "effect"
import type { Decider } from "../Decider.js"
import { closeEpoch, type EpochWindow } from "./closeEpoch.js"
import type { EconomicsConfig } from "./config.js"
import type { EpochLedger, RewardEvent } from "./events.js"
import type { EconomyState } from "./state.js"

export { RewardEvent } from "./events.js"

export class CloseEpoch extends Data.TaggedClass("CloseEpoch")<{
  readonly epoch: number
  readonly window: EpochWindow
  readonly economy: EconomyState
  readonly config: EconomicsConfig
}> {}

/**
 * Write the ledger the AI shard's block emitted for `epoch` (the node's
 * case: the ledger decided it on chain; every node writes the same events).
 */
export class RecordEpoch extends Data.TaggedClass("RecordEpoch")<{
  readonly epoch: number
  readonly ledger: EpochLedger
}> {}

export type EpochCommand = CloseEpoch | RecordEpoch

export class EpochRejected extends Schema.TaggedError<EpochRejected>()("EpochRejected", {
  reason: Schema.Literal("WrongEpoch", "WindowMismatch", "EconomyElsewhere"),
  detail: Schema.String
}) {
  override get message(): string {
    return `epoch close rejected, ${this.reason}: ${this.detail}`
  }
}

export interface EpochStreamState {
  /** The stream's epoch, known from its first event. */
  readonly epoch: number | null
  readonly closed: boolean
  readonly events: ReadonlyArray<RewardEvent>
}

export const initialEpochStreamState: EpochStreamState = { epoch: null, closed: false, events: [] }

const decide = (s: EpochStreamState, cmd: EpochCommand): Either.Either<ReadonlyArray<RewardEvent>, EpochRejected> => {
  const reject = (reason: EpochRejected["reason"], detail: string) => Either.left(new EpochRejected({ reason, detail }))
  if (s.epoch !== null && s.epoch !== cmd.epoch) return reject("WrongEpoch", `this stream is epoch ${s.epoch}, the command closes ${cmd.epoch}`)
  if (s.closed) return Either.right([])
  if (cmd._tag === "RecordEpoch") {
    const stray = cmd.ledger.find((e) => e.epoch !== cmd.epoch)
    if (stray !== undefined) return reject("WrongEpoch", `a ${stray._tag} of epoch ${stray.epoch} in the ledger of epoch ${cmd.epoch}`)
    if (cmd.ledger.at(-1)?._tag !== "EpochClosed") return reject("WindowMismatch", `the ledger of epoch ${cmd.epoch} does not end with its EpochClosed header`)
    return Either.right(cmd.ledger)
  }
  if (cmd.window.epoch !== cmd.epoch) return reject("WindowMismatch", `window of epoch ${cmd.window.epoch} for epoch ${cmd.epoch}`)
  if (cmd.economy.epoch !== cmd.epoch) return reject("EconomyElsewhere", `the economy stands at epoch ${cmd.economy.epoch}, not ${cmd.epoch}`)
  return Either.right(closeEpoch(cmd.config, cmd.economy, cmd.window))
}

const evolve = (s: EpochStreamState, e: RewardEvent): EpochStreamState => ({
  epoch: e.epoch,
  closed: s.closed || e._tag === "EpochClosed",
  events: [...s.events, e]
})

export const epochDecider: Decider<EpochStreamState, EpochCommand, RewardEvent, EpochRejected> = {
  initialState: initialEpochStreamState,
  decide,
  evolve
}

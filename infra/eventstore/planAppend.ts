/**
 * The decision every driver takes inside its write transaction: write the
 * batch, acknowledge it as already written (idempotent retry), or reject it.
 * Drivers give a view of the stream; this file holds the rules, so every
 * store answers alike.
 *
 * Rules (KurrentDB's, with ids unique per stream):
 * 1. If the batch's first id is already in the stream, the batch is a retry:
 *    every id must be there, in order, at consecutive revisions starting right
 *    after the expected revision (anywhere for "any"/"stream_exists"), with
 *    the same type and data. Then nothing is written and the append is
 *    acknowledged; otherwise IdConflict. Metadata is not compared: it may hold
 *    facts about the attempt (times, trace ids).
 * 2. Otherwise the expectation must hold, or WrongExpectedRevision.
 * 3. A later id of the batch that is already in the stream is an IdConflict;
 *    the driver detects it while writing and rolls the batch back.
 */
import type { AppendResult, ExpectedRevision } from "./EventStore.js"
import { GENESIS_HASH, InvalidAppend, WrongExpectedRevision } from "./EventStore.js"
import type { PreparedEvent } from "./prepareBatch.js"

/** Revision of an absent stream's (non-existent) last event, as errors report it. */
export const NO_STREAM_REVISION = -1

export interface HeadView {
  readonly revision: number
  readonly hash: string
  readonly position: number
}

export interface StoredEventView {
  readonly id: string
  readonly type: string
  readonly dataJson: string
  readonly position: number
}

/** What the rules need to see of one stream, read inside the driver's transaction. */
export interface StreamView {
  readonly head: () => HeadView | undefined
  readonly revisionOfId: (id: string) => number | undefined
  readonly eventAt: (revision: number) => StoredEventView | undefined
}

export type AppendPlan =
  | { readonly _tag: "Write"; readonly firstRevision: number; readonly prevHash: string }
  | { readonly _tag: "AlreadyWritten"; readonly result: AppendResult }
  | { readonly _tag: "Reject"; readonly error: WrongExpectedRevision | InvalidAppend }

export const expectationHolds = (expected: ExpectedRevision, head: HeadView | undefined): boolean => {
  switch (expected) {
    case "any":
      return true
    case "no_stream":
      return head === undefined
    case "stream_exists":
      return head !== undefined
    default:
      return head !== undefined && head.revision === expected
  }
}

/** Where a retried batch must start, or undefined when any place will do. */
const retryStart = (expected: ExpectedRevision): number | undefined => {
  switch (expected) {
    case "any":
    case "stream_exists":
      return undefined
    case "no_stream":
      return 0
    default:
      return expected + 1
  }
}

const planRetry = (
  stream: string,
  batch: ReadonlyArray<PreparedEvent>,
  expected: ExpectedRevision,
  firstRevision: number,
  view: StreamView
): AppendPlan => {
  const conflict = (detail: string): AppendPlan => ({
    _tag: "Reject",
    error: new InvalidAppend({ stream, reason: "IdConflict", detail })
  })
  const start = retryStart(expected)
  if (start !== undefined && start !== firstRevision) {
    return conflict(`event id ${batch[0]!.id} is already at revision ${firstRevision}, the batch expects it at ${start}`)
  }
  let position = 0
  for (let k = 0; k < batch.length; k++) {
    const wanted = batch[k]!
    const stored = view.eventAt(firstRevision + k)
    if (stored === undefined || stored.id !== wanted.id) {
      return conflict(`the batch partly repeats earlier events (event ${k}, id ${wanted.id}, differs)`)
    }
    if (stored.type !== wanted.type || stored.dataJson !== wanted.dataJson) {
      return conflict(`event id ${wanted.id} was written before with other content`)
    }
    position = stored.position
  }
  return {
    _tag: "AlreadyWritten",
    result: { nextRevision: firstRevision + batch.length - 1, position, written: false }
  }
}

/** `expected` must have passed isExpectedRevision (prepareBatch checks it). */
export const planAppend = (
  stream: string,
  batch: ReadonlyArray<PreparedEvent>,
  expected: ExpectedRevision,
  view: StreamView
): AppendPlan => {
  const firstRevision = view.revisionOfId(batch[0]!.id)
  if (firstRevision !== undefined) return planRetry(stream, batch, expected, firstRevision, view)
  const head = view.head()
  if (!expectationHolds(expected, head)) {
    return {
      _tag: "Reject",
      error: new WrongExpectedRevision({ stream, expected, actual: head?.revision ?? NO_STREAM_REVISION })
    }
  }
  return {
    _tag: "Write",
    firstRevision: head === undefined ? 0 : head.revision + 1,
    prevHash: head?.hash ?? GENESIS_HASH
  }
}

/**
 * Online time within an epoch's window [startAt, endAt). A worker's online
 * intervals run from its join (or the heartbeat that ended an outage) to
 * when it went offline or left; one still open at the close counts until
 * `endAt` and carries on into the next epoch, which counts it from its own
 * `startAt`. Time outside the window is not counted here (a fact folded
 * late, with a time in an epoch already closed, earns nothing).
 */
import type { WorkerRecord } from "./state.js"

export const overlapMs = (from: number, to: number, startAt: number, endAt: number): number =>
  Math.max(0, Math.min(to, endAt) - Math.max(from, startAt))

export const onlineMsIn = (w: WorkerRecord, startAt: number, endAt: number): number => {
  let ms = 0
  for (const [from, to] of w.intervals) ms += overlapMs(from, to, startAt, endAt)
  if (w.onlineSince !== null) ms += overlapMs(w.onlineSince, endAt, startAt, endAt)
  return ms
}

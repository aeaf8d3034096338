/**
 * One reading of ReadStreamOptions / ReadAllOptions for every driver
 * (Akka persistence test-kit semantics): limit 0, crossed bounds or an
 * unknown stream give nothing; an absent limit means no limit.
 */
import type { ReadAllOptions, ReadStreamOptions } from "./EventStore.js"

export interface StreamRange {
  readonly direction: "forwards" | "backwards"
  /** Lowest and highest revision to read, inclusive. */
  readonly low: number
  readonly high: number
  /** Most events to return; Infinity for no limit. */
  readonly limit: number
}

export interface AllRange {
  /** Positions strictly greater than this. */
  readonly after: number
  readonly limit: number
}

const given = (n: number | undefined): n is number => n !== undefined && !Number.isNaN(n)

export const normalizeLimit = (limit: number | undefined): number =>
  given(limit) ? Math.max(0, Math.floor(limit)) : Number.POSITIVE_INFINITY

/** The range to read, or undefined when it is certainly empty. */
export const streamRange = (options: ReadStreamOptions | undefined): StreamRange | undefined => {
  const direction = options?.direction ?? "forwards"
  const limit = normalizeLimit(options?.limit)
  const from = options?.from
  const to = options?.to
  const low = Math.max(0, Math.ceil(direction === "forwards" ? (given(from) ? from : 0) : given(to) ? to : 0))
  const high = Math.floor(
    direction === "forwards"
      ? given(to) ? to : Number.MAX_SAFE_INTEGER
      : given(from) ? from : Number.MAX_SAFE_INTEGER
  )
  if (limit === 0 || low > high) return undefined
  return { direction, low, high: Math.min(high, Number.MAX_SAFE_INTEGER), limit }
}

export const allRange = (options: ReadAllOptions | undefined): AllRange | undefined => {
  const limit = normalizeLimit(options?.limit)
  if (limit === 0) return undefined
  const after = options?.after
  return { after: given(after) ? Math.max(0, Math.floor(after)) : 0, limit }
}

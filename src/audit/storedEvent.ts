/**
 * A stored event as the auditor first sees it: bytes from a file it does not
 * trust. Its data and metadata must be JSON objects before any replay reads
 * a field of them; anything else fails the audit at that event, never a
 * crash. (The hash chain cannot vouch for them: anyone who can write the
 * file can recompute an unkeyed chain.)
 */
import { Either } from "effect"
import type { RawEventRow } from "../../infra/eventstore/RawEventRow.js"

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const parseObject = (text: string, what: string): Either.Either<Record<string, unknown>, string> => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return Either.left(`its ${what} is not JSON (${reasonOf(e)})`)
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return Either.left(`its ${what} is not a JSON object but ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`)
  }
  return Either.right(value as Record<string, unknown>)
}

/** The event's data as a JSON object (metadata checked too), or why the stored event is malformed. */
export const storedData = (row: RawEventRow): Either.Either<Record<string, unknown>, string> =>
  Either.flatMap(parseObject(row.metadataJson, "metadata"), () => parseObject(row.dataJson, "data"))

/**
 * Input checks every driver runs before touching storage, so every store
 * rejects the same batches with the same typed errors. The output is the JSON
 * text the store keeps and hashes.
 */
import type { ExpectedRevision, NewEvent } from "./EventStore.js"
import { InvalidAppend, MAX_EVENT_BYTES } from "./EventStore.js"

/** Longest stream name, event id and event type, in UTF-16 code units. */
export const MAX_STREAM_NAME_LENGTH = 256
export const MAX_EVENT_ID_LENGTH = 256
export const MAX_EVENT_TYPE_LENGTH = 256

/** Prefix reserved for the store's own streams (as in KurrentDB's `$all`). */
export const RESERVED_STREAM_PREFIX = "$"

export interface PreparedEvent {
  readonly id: string
  readonly type: string
  readonly dataJson: string
  readonly metadataJson: string
}

const EMPTY_METADATA_JSON = "{}"
const MAX_UTF8_BYTES_PER_UNIT = 3

// Control characters would make names ambiguous in logs and in the hash input
// (fields are joined with U+0000); lone surrogates do not survive UTF-8.
const UNSAFE_CHARACTER = /[\u0000-\u001f\u007f]|\p{Cs}/u

const nameProblem = (value: unknown, maxLength: number): string | undefined => {
  if (typeof value !== "string") return "must be a string"
  if (value.length === 0) return "must not be empty"
  if (value.length > maxLength) return `must be at most ${maxLength} characters`
  if (UNSAFE_CHARACTER.test(value)) return "must not contain control characters or lone surrogates"
  return undefined
}

/** JSON text of a value, or undefined when it has none (undefined, functions, bigint, cycles). */
const toJson = (value: unknown): string | undefined => {
  try {
    const text: unknown = JSON.stringify(value)
    return typeof text === "string" ? text : undefined
  } catch {
    return undefined
  }
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

export const validateStreamName = (stream: string): InvalidAppend | undefined => {
  const problem = nameProblem(stream, MAX_STREAM_NAME_LENGTH)
  if (problem !== undefined) {
    return new InvalidAppend({ stream: String(stream), reason: "InvalidStreamName", detail: `stream name ${problem}` })
  }
  if (stream.startsWith(RESERVED_STREAM_PREFIX)) {
    return new InvalidAppend({
      stream,
      reason: "InvalidStreamName",
      detail: `names starting with ${RESERVED_STREAM_PREFIX} are reserved`
    })
  }
  return undefined
}

const prepareEvent = (stream: string, event: NewEvent, index: number): PreparedEvent | InvalidAppend => {
  const invalid = (detail: string) => new InvalidAppend({ stream, reason: "InvalidEvent", detail: `event ${index}: ${detail}` })
  if (typeof event !== "object" || event === null) return invalid("must be an object")
  const idProblem = nameProblem(event.id, MAX_EVENT_ID_LENGTH)
  if (idProblem !== undefined) return invalid(`id ${idProblem}`)
  const typeProblem = nameProblem(event.type, MAX_EVENT_TYPE_LENGTH)
  if (typeProblem !== undefined) return invalid(`type ${typeProblem}`)
  const dataJson = toJson(event.data)
  if (dataJson === undefined) return invalid("data is not JSON-serializable")
  let metadataJson = EMPTY_METADATA_JSON
  if (event.metadata !== undefined) {
    if (!isPlainObject(event.metadata)) return invalid("metadata must be a JSON object")
    const text = toJson(event.metadata)
    if (text === undefined) return invalid("metadata is not JSON-serializable")
    metadataJson = text
  }
  // Skip counting bytes when it cannot matter: a UTF-16 unit is at most 3 UTF-8 bytes.
  const lengthBound = (dataJson.length + metadataJson.length) * MAX_UTF8_BYTES_PER_UNIT
  if (lengthBound > MAX_EVENT_BYTES) {
    const bytes = Buffer.byteLength(dataJson, "utf8") + Buffer.byteLength(metadataJson, "utf8")
    if (bytes > MAX_EVENT_BYTES) {
      return new InvalidAppend({
        stream,
        reason: "EventTooLarge",
        detail: `event ${index} (${event.id}) has ${bytes} bytes of data and metadata, the limit is ${MAX_EVENT_BYTES}`
      })
    }
  }
  return { id: event.id, type: event.type, dataJson, metadataJson }
}

const NAMED_EXPECTATIONS: ReadonlySet<unknown> = new Set(["no_stream", "any", "stream_exists"])

/** A named expectation or a revision (non-negative safe integer); anything else is a caller bug. */
export const isExpectedRevision = (expected: unknown): expected is ExpectedRevision =>
  NAMED_EXPECTATIONS.has(expected) || (typeof expected === "number" && Number.isSafeInteger(expected) && expected >= 0)

/** Checks a batch and its expectation and renders the JSON text; the first problem found is the error. */
export const prepareBatch = (
  stream: string,
  events: ReadonlyArray<NewEvent>,
  expected: ExpectedRevision
): ReadonlyArray<PreparedEvent> | InvalidAppend => {
  const streamProblem = validateStreamName(stream)
  if (streamProblem !== undefined) return streamProblem
  if (!isExpectedRevision(expected)) {
    return new InvalidAppend({
      stream,
      reason: "InvalidExpectedRevision",
      detail: `expected revision ${String(expected)} is neither no_stream, any, stream_exists nor a non-negative integer`
    })
  }
  if (!Array.isArray(events) || events.length === 0) {
    return new InvalidAppend({ stream, reason: "EmptyBatch", detail: "a batch needs at least one event" })
  }
  const prepared: Array<PreparedEvent> = []
  const seen = new Set<string>()
  for (let index = 0; index < events.length; index++) {
    const event = prepareEvent(stream, events[index]!, index)
    if (event instanceof InvalidAppend) return event
    if (seen.has(event.id)) {
      return new InvalidAppend({ stream, reason: "DuplicateIdInBatch", detail: `event id ${event.id} appears twice` })
    }
    seen.add(event.id)
    prepared.push(event)
  }
  return prepared
}

/**
 * An event exactly as a store keeps it: the JSON text of data and metadata,
 * not the parsed values. Auditors hash these bytes; readers parse them.
 */
import type { RecordedEvent } from "./EventStore.js"
import { GENESIS_HASH } from "./EventStore.js"
import type { HashedFields } from "./eventHash.js"
import { eventHash } from "./eventHash.js"

export interface RawEventRow extends HashedFields {
  readonly position: number
  readonly hash: string
}

export const toRecordedEvent = (row: RawEventRow): RecordedEvent => ({
  stream: row.stream,
  revision: row.revision,
  position: row.position,
  id: row.id,
  type: row.type,
  data: JSON.parse(row.dataJson),
  metadata: JSON.parse(row.metadataJson),
  prevHash: row.prevHash,
  hash: row.hash
})

/** Where a stream's hash chain first fails to hold. */
export interface ChainBreak {
  readonly position: number
  readonly stream: string
  readonly revision: number
  readonly reason: "RevisionGap" | "PrevHashMismatch" | "HashMismatch" | "PositionNotIncreasing"
}

/**
 * Checks rows given one at a time in global position order: positions
 * strictly increase, each stream's revisions run 0, 1, 2, ..., each prevHash
 * is the previous event's hash (GENESIS_HASH first) and each hash recomputes
 * over the stored text. `check` returns the first break (and every later
 * call returns it again), so a log of any size streams through in O(streams)
 * memory.
 */
export const makeChainChecker = () => {
  const last = new Map<string, { readonly revision: number; readonly hash: string }>()
  let lastPosition = 0
  let broken: ChainBreak | undefined
  const inspect = (row: RawEventRow): ChainBreak | undefined => {
    const at = { position: row.position, stream: row.stream, revision: row.revision }
    if (row.position <= lastPosition) return { ...at, reason: "PositionNotIncreasing" }
    lastPosition = row.position
    const previous = last.get(row.stream)
    const expectedRevision = previous === undefined ? 0 : previous.revision + 1
    if (row.revision !== expectedRevision) return { ...at, reason: "RevisionGap" }
    if (row.prevHash !== (previous === undefined ? GENESIS_HASH : previous.hash)) {
      return { ...at, reason: "PrevHashMismatch" }
    }
    if (eventHash(row) !== row.hash) return { ...at, reason: "HashMismatch" }
    last.set(row.stream, { revision: row.revision, hash: row.hash })
    return undefined
  }
  return {
    check: (row: RawEventRow): ChainBreak | undefined => (broken ??= inspect(row)),
    /** Each stream's last checked revision and hash. */
    heads: (): ReadonlyMap<string, { readonly revision: number; readonly hash: string }> => last
  }
}

/** The first break in rows given in global position order, or undefined when the whole log holds. */
export const findChainBreak = (rows: Iterable<RawEventRow>): ChainBreak | undefined => {
  const checker = makeChainChecker()
  for (const row of rows) {
    const found = checker.check(row)
    if (found !== undefined) return found
  }
  return undefined
}

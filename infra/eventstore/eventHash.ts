/**
 * The hash chain that links each event to the one before it in its stream.
 *
 * The hash covers the exact JSON text the store keeps, so changing any byte of
 * a stored event (or reordering, inserting or dropping one) breaks the chain at
 * that revision. node:crypto's sha256 is ~20x faster than a JS one here.
 */
import { createHash } from "node:crypto"

export interface HashedFields {
  readonly prevHash: string
  readonly stream: string
  readonly revision: number
  readonly id: string
  readonly type: string
  /** JSON.stringify(data), exactly as stored. */
  readonly dataJson: string
  /** JSON.stringify(metadata), exactly as stored. */
  readonly metadataJson: string
}

const SEP = "\u0000"

// One update over the joined text hashes the same bytes as one update per
// field, at about half the cost (each update is a native call).
export const eventHash = (f: HashedFields): string =>
  createHash("sha256")
    .update(
      f.prevHash + SEP + f.stream + SEP + String(f.revision) + SEP + f.id + SEP + f.type + SEP + f.dataJson + SEP +
        f.metadataJson
    )
    .digest("hex")

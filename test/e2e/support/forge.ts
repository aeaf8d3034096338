/**
 * A forger with write access to a data dir: rewrite one event's data with
 * `mutate` and recompute the hash of it and of every later event of its
 * stream (and the stream head, where the store keeps one), so the hash
 * chain holds again and only the auditor's rebuild can tell — or, with
 * `rehash: false`, leave the hashes as they were (a clumsy forger).
 */
import { existsSync } from "node:fs"
import { join } from "node:path"
import Database from "better-sqlite3"
import { EVENTS_DB, rewriteRehashed } from "./tamper.js"
import type { Row } from "./tamper.js"


export interface Forged {
  readonly stream: string
  readonly revision: number
  readonly type: string
  readonly before: string
  readonly after: string
}

/** The first event of `type` in a stream whose name starts with `prefix`. */
export const forgeEvent = (
  dataDir: string,
  prefix: string,
  type: string,
  mutate: (data: Record<string, unknown>) => Record<string, unknown>,
  options: { readonly rehash?: boolean } = {}
): Forged => {
  const file = join(dataDir, EVENTS_DB)
  if (!existsSync(file)) throw new Error(`no ${file}`)
  const db = new Database(file)
  try {
    const first = db
      .prepare<[string, string], Row>("SELECT * FROM events WHERE type = ? AND stream LIKE ? ORDER BY position LIMIT 1")
      .get(type, `${prefix}%`)
    if (first === undefined) throw new Error(`no ${type} event in a ${prefix}* stream`)
    const after = JSON.stringify(mutate(JSON.parse(first.data) as Record<string, unknown>))
    if (options.rehash === false) {
      db.prepare("UPDATE events SET data = ? WHERE position = ?").run(after, first.position)
      return { stream: first.stream, revision: first.revision, type, before: first.data, after }
    }
    rewriteRehashed(db, first, after)
    return { stream: first.stream, revision: first.revision, type, before: first.data, after }
  } finally {
    db.close()
  }
}

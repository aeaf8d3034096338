/**
 * Files that hold private keys: written 0600 (atomically, so a crash leaves
 * the old file or the new one), and refused on read when group or others may
 * read or write them — a key another user could read is no longer secret.
 */
import { chmodSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { Effect } from "effect"
import { BadInput } from "./parse.js"

/** The permission bits a key file must not have: any for group or others. */
export const SHARED_BITS = 0o077

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** Writes `text` to `file` with mode 0600, whatever the umask or a stale temporary file. */
export const writeSecretFileSync = (file: string, text: string): void => {
  const tmp = `${file}.tmp`
  rmSync(tmp, { force: true })
  writeFileSync(tmp, text, { mode: 0o600, flag: "wx" })
  chmodSync(tmp, 0o600)
  renameSync(tmp, file)
}

export const writeSecretFile = (file: string, text: string): Effect.Effect<void, BadInput> =>
  Effect.try({ try: () => writeSecretFileSync(file, text), catch: (e) => new BadInput(`cannot write ${file}: ${reasonOf(e)}`) })

/** The text of a key file, refused when it is not a regular file or group/others have any access to it. */
export const readSecretFile = (file: string, what: string): Effect.Effect<string, BadInput> =>
  Effect.try({
    try: () => {
      const stat = statSync(file)
      if (!stat.isFile()) throw new BadInput(`${what} ${file} is not a file`)
      const mode = stat.mode & 0o777
      if ((mode & SHARED_BITS) !== 0) {
        throw new BadInput(
          `${what} ${file} has mode ${mode.toString(8).padStart(4, "0")}: group or others can use it; run \`chmod 600 ${file}\` (and make a new key if others may have read it)`
        )
      }
      return readFileSync(file, "utf8")
    },
    catch: (e) => (e instanceof BadInput ? e : new BadInput(`cannot read ${what} ${file}: ${reasonOf(e)}`))
  })

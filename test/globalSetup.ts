/**
 * onnxruntime-node 1.30 leaves an empty `mat-debug-<pid>.log` in the temp
 * folder for every process that loads it (the tests start many: workers,
 * sandboxed smoke runs). The suite removes the ones made while it ran, so a
 * run leaves the machine as it found it.
 */
import { readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const ORT_DEBUG_LOG = /^mat-debug-\d+\.log$/

export default function setup(): () => void {
  const startedMs = Date.now()
  return () => {
    for (const name of readdirSync(tmpdir())) {
      if (!ORT_DEBUG_LOG.test(name)) continue
      const file = join(tmpdir(), name)
      const stat = statSync(file, { throwIfNoEntry: false })
      if (stat !== undefined && stat.size === 0 && stat.mtimeMs >= startedMs) rmSync(file, { force: true })
    }
  }
}

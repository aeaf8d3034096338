/**
 * Runs every benchmark module listed below, one after another (2 cores: no
 * parallel runs). `npm run bench` runs all; `npm run bench -- eventstore`
 * runs the named ones; `--strict` exits 1 when a target is missed.
 * Add a module: export `run` (see BenchModule in lib.ts) and list it here.
 */
import type { BenchModule, BenchResult } from "./lib.js"
import removeOrtDebugLogs from "../test/globalSetup.js"

const BENCHES: ReadonlyArray<{ readonly name: string; readonly load: () => Promise<BenchModule> }> = [
  { name: "eventstore", load: () => import("./eventstore.js") },
  { name: "transfers", load: () => import("./transfers.js") },
  { name: "scheduling", load: () => import("./scheduling.js") },
  { name: "inference", load: () => import("./inference.js") },
  { name: "tensors", load: () => import("./tensors.js") },
  { name: "settlement", load: () => import("./settlement.js") },
  { name: "consensus", load: () => import("./consensus.js") }
]

const args = process.argv.slice(2)
const strict = args.includes("--strict")
const only = args.filter((arg) => !arg.startsWith("--"))
const selected = BENCHES.filter((bench) => only.length === 0 || only.includes(bench.name))
if (selected.length === 0) {
  console.error(`no benchmark named ${only.join(", ")}; known: ${BENCHES.map((b) => b.name).join(", ")}`)
  process.exit(1)
}

// The same clean-up as the tests: onnxruntime leaves an empty log per process in the temp folder.
const cleanUp = removeOrtDebugLogs()
const results: Array<BenchResult> = []
for (const bench of selected) {
  console.log(`# ${bench.name}`)
  results.push(...(await (await bench.load()).run()))
}
cleanUp()
const missed = results.filter((result) => !result.pass)
console.log(`\n${results.length - missed.length}/${results.length} targets met${missed.length > 0 ? `; missed: ${missed.map((r) => r.name).join(", ")}` : ""}`)
if (strict && missed.length > 0) process.exit(1)

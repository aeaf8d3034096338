// The smoke-run child process (see SandboxedSmokeRun.ts). Plain JavaScript so
// that node starts it as is: it reads one JSON request line on stdin, starts
// its watchdog, and only then registers tsx and loads smokeCheck.ts, which
// does the work (static checks, seeded inputs, two runs, fingerprint) and
// writes JSON lines on stdout; the protocol is in SandboxedSmokeRun.ts.
// The parent keeps stdin open while it waits; when stdin ends, the parent is
// gone, and the child exits rather than run on unwatched.
//
// onnxruntime-node's loadModel and run are synchronous on the calling thread
// (behind a setImmediate), so while a model loads or runs this thread sees no
// stdin. A watchdog thread, whose event loop stays free, covers that time: it
// SIGKILLs the whole process when the parent is gone (our ppid changes) or
// when the request's deadline passes, so a model that loops for ever cannot
// outlive a node that died while it ran.
import { Worker } from "node:worker_threads"

const WATCHDOG = `
const { workerData } = require("node:worker_threads")
const kill = () => process.kill(process.pid, "SIGKILL")
setInterval(() => { if (process.ppid !== workerData.parent) kill() }, workerData.pollMillis)
setTimeout(kill, workerData.deadlineMillis)
`
// Read now, on this thread: the watchdog thread may start after the parent is already gone.
const PARENT_PID = process.ppid
const startWatchdog = (deadlineMillis) =>
  new Worker(WATCHDOG, { eval: true, workerData: { parent: PARENT_PID, deadlineMillis, pollMillis: 100 } }).unref()

const send = (message) => new Promise((resolve) => process.stdout.write(JSON.stringify(message) + "\n", () => resolve()))
const fail = (detail) => send({ event: "failed", reason: "Crashed", detail: String(detail?.message ?? detail).slice(0, 2000) }).then(() => process.exit(0))

const serve = async (request) => {
  const { register } = await import("tsx/esm/api")
  register()
  const { smokeCheck } = await import("./smokeCheck.ts")
  await smokeCheck(request, send)
  process.exit(0)
}

let buffered = ""
let started = false
process.stdin.setEncoding("utf8")
process.stdin.on("data", (chunk) => {
  if (started) return
  buffered += chunk
  const newline = buffered.indexOf("\n")
  if (newline < 0) return
  started = true
  let request
  try {
    request = JSON.parse(buffered.slice(0, newline))
  } catch (e) {
    fail(`input: ${e?.message ?? e}`)
    return
  }
  buffered = ""
  startWatchdog(request.deadlineMillis)
  serve(request).catch((e) => fail(`input: ${e?.message ?? e}`))
})
process.stdin.on("end", () => process.exit(0))

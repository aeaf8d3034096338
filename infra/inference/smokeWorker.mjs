// The smoke-run child process (see SandboxedSmokeRun.ts). Plain JavaScript so
// that node starts it without a compiler. It reads one JSON request line on
// stdin — {modelPath, inputs: {name: {type, dims, dataBase64}}, intraOpNumThreads,
// outputBytesMax, deadlineMillis} — and writes JSON lines on stdout:
//   {"event":"loaded","millis":n}                          session created
//   {"event":"done","millis":n,"outputs":{name: {type, dims, dataBase64}}}
//   {"event":"error","stage":"input"|"load"|"run"|"output","message":"..."}
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
import ort from "onnxruntime-node"

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

const send = (message, then) => process.stdout.write(JSON.stringify(message) + "\n", then)
const fail = (stage, error) => send({ event: "error", stage, message: String(error?.message ?? error).slice(0, 2000) }, () => process.exit(0))

const ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  bool: Uint8Array
}

const decode = ({ type, dims, dataBase64 }) => {
  const Ctor = ARRAYS[type]
  const raw = Buffer.from(dataBase64, "base64")
  const data = new Ctor(raw.length / Ctor.BYTES_PER_ELEMENT)
  new Uint8Array(data.buffer).set(raw)
  return new ort.Tensor(type, data, dims)
}

const encode = (tensor) => {
  const data = tensor.data
  if (!ArrayBuffer.isView(data)) throw new Error(`a ${tensor.type} output is not a typed array`)
  return {
    type: tensor.type,
    dims: Array.from(tensor.dims),
    dataBase64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64")
  }
}

const serve = async (request) => {
  let feeds
  try {
    feeds = Object.fromEntries(Object.entries(request.inputs).map(([name, t]) => [name, decode(t)]))
  } catch (e) {
    return fail("input", e)
  }
  let session
  const loadStart = performance.now()
  try {
    session = await ort.InferenceSession.create(request.modelPath, {
      executionProviders: ["cpu"],
      intraOpNumThreads: request.intraOpNumThreads,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
      logSeverityLevel: 3
    })
  } catch (e) {
    return fail("load", e)
  }
  send({ event: "loaded", millis: performance.now() - loadStart })
  let outputs
  const runStart = performance.now()
  try {
    outputs = await session.run(feeds)
  } catch (e) {
    return fail("run", e)
  }
  const millis = performance.now() - runStart
  try {
    let bytes = 0
    for (const value of Object.values(outputs)) bytes += value.data?.byteLength ?? 0
    if (bytes > request.outputBytesMax) return fail("output", `outputs are ${bytes} bytes, over the ${request.outputBytesMax} limit`)
    const encoded = Object.fromEntries(Object.entries(outputs).map(([name, t]) => [name, encode(t)]))
    send({ event: "done", millis, outputs: encoded }, () => process.exit(0))
  } catch (e) {
    fail("output", e)
  }
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
    fail("input", e)
    return
  }
  buffered = ""
  startWatchdog(request.deadlineMillis)
  serve(request)
})
process.stdin.on("end", () => process.exit(0))

/**
 * One InferenceEngine child process: an OnnxSessionPool driven by messages
 * over the IPC channel (the protocol is in InferenceThread.ts). Runs execute
 * one at a time, in arrival order; just before a run starts (its model
 * loaded) the child says `started`, so the parent's deadline measures the
 * run itself, not the wait behind the previous one nor the first load.
 *
 * onnxruntime's run is synchronous on this thread, so while a model runs the
 * IPC channel is not read. A watchdog thread, whose event loop stays free,
 * kills this process when its parent is gone (the ppid changes): a model
 * looping in native code never outlives the node that started it.
 *
 * The same program still runs as a worker thread (`parentPort`), for code
 * that hosts it in-process.
 */
import { parentPort, Worker, workerData } from "node:worker_threads"
import { Cause, Effect, Exit, Scope } from "effect"
import type { ErrorData, ThreadConfig, ThreadReply, ThreadRequest } from "./InferenceThread.js"
import { buffersOf, CHILD_CONFIG_ENV, fromWire, toWire } from "./InferenceThread.js"
import { InferenceError, makeOnnxSessionPool } from "./OnnxSessionPool.js"

interface Channel {
  readonly config: ThreadConfig
  readonly send: (reply: ThreadReply, transfer?: Array<ArrayBuffer>) => void
  readonly onMessage: (handler: (m: ThreadRequest) => void) => void
}

const WATCHDOG = `
const { workerData } = require("node:worker_threads")
setInterval(() => { if (process.ppid !== workerData.parent) process.kill(process.pid, "SIGKILL") }, workerData.pollMillis)
`

const channelOf = (): Channel => {
  if (parentPort !== null) {
    const port = parentPort
    return {
      config: workerData as ThreadConfig,
      send: (reply, transfer = []) => port.postMessage(reply, transfer),
      onMessage: (handler) => port.on("message", handler)
    }
  }
  const send = process.send?.bind(process)
  const raw = process.env[CHILD_CONFIG_ENV]
  if (send === undefined || raw === undefined) throw new Error("inferenceThreadWorker runs in a worker thread or an IPC child of the InferenceEngine")
  new Worker(WATCHDOG, { eval: true, workerData: { parent: process.ppid, pollMillis: 100 } }).unref()
  // The channel closing means the parent is gone (or let us go): nothing more to serve.
  process.on("disconnect", () => process.exit(0))
  return {
    config: JSON.parse(raw) as ThreadConfig,
    send: (reply) => {
      send(reply)
    },
    onMessage: (handler) => process.on("message", (m) => handler(m as ThreadRequest))
  }
}

const channel = channelOf()
const config = channel.config
const paths = new Map<string, string>()

const errorData = (cause: Cause.Cause<unknown>, modelHash: string): ErrorData => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some" && failure.value instanceof InferenceError) {
    return { reason: failure.value.reason, modelHash: failure.value.modelHash, detail: failure.value.detail }
  }
  return { reason: "RunFailed", modelHash, detail: Cause.pretty(cause).slice(0, 2000) }
}

const scope = Effect.runSync(Scope.make())
const started = await Effect.runPromiseExit(
  makeOnnxSessionPool({
    executionProvider: config.executionProvider,
    intraOpNumThreads: config.intraOpNumThreads,
    sessionsMax: config.sessionsMax,
    locate: (hash) => {
      const path = paths.get(hash)
      return path === undefined
        ? Effect.fail(new InferenceError({ reason: "ModelNotFound", modelHash: hash, detail: "no path given for this model" }))
        : Effect.succeed({ path })
    }
  }).pipe(Scope.extend(scope))
)

if (Exit.isFailure(started)) {
  channel.send({ kind: "init-failed", error: errorData(started.cause, "") })
  channel.onMessage((m) => {
    if (m.kind === "close") process.exit(0)
  })
} else {
  const pool = started.value
  /** Runs one after another, so `started` is said when a run really starts. */
  let previous: Promise<unknown> = Promise.resolve()
  const serially = (effect: Effect.Effect<void>) => {
    previous = previous.then(() => Effect.runPromise(effect))
  }
  channel.onMessage((m) => {
    switch (m.kind) {
      case "run": {
        paths.set(m.hash, m.path)
        serially(
          pool.warm(m.hash).pipe(
            Effect.tap(() => Effect.sync(() => channel.send({ kind: "started", id: m.id }))),
            Effect.zipRight(pool.run(m.hash, fromWire(m.inputs))),
            Effect.exit,
            Effect.map((exit) => {
              if (Exit.isSuccess(exit)) {
                const outputs = toWire(exit.value)
                channel.send({ kind: "ran", id: m.id, outputs }, buffersOf(outputs))
              } else channel.send({ kind: "failed", id: m.id, error: errorData(exit.cause, m.hash) })
            })
          )
        )
        return
      }
      case "close": {
        // After the runs already sent (this process runs them in order): release the sessions and end.
        serially(Scope.close(scope, Exit.void).pipe(Effect.zipRight(Effect.sync(() => process.exit(0)))))
        return
      }
      case "crash":
        throw new Error("crash requested by the engine (test hook)")
      case "warm": {
        paths.set(m.hash, m.path)
        serially(
          pool.warm(m.hash).pipe(
            Effect.exit,
            Effect.map((exit) =>
              channel.send(
                Exit.isSuccess(exit)
                  ? { kind: "warmed", id: m.id, info: { inputNames: [...exit.value.inputNames], outputNames: [...exit.value.outputNames] } }
                  : { kind: "failed", id: m.id, error: errorData(exit.cause, m.hash) }
              )
            )
          )
        )
        return
      }
    }
  })
  channel.send({ kind: "ready" })
}

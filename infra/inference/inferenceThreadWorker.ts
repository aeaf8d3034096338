/**
 * One InferenceEngine thread: an OnnxSessionPool driven by messages (the
 * protocol is in InferenceThread.ts). Runs execute one at a time — each
 * `session.run` holds this thread until it ends — in arrival order.
 * Outputs go back transferred, without a copy.
 */
import { parentPort, workerData } from "node:worker_threads"
import { Cause, Effect, Exit, Scope } from "effect"
import type { ErrorData, ThreadConfig, ThreadReply, ThreadRequest } from "./InferenceThread.js"
import { buffersOf, fromWire, toWire } from "./InferenceThread.js"
import { InferenceError, makeOnnxSessionPool } from "./OnnxSessionPool.js"

const port = parentPort
if (port === null) throw new Error("inferenceThreadWorker runs in a worker thread")
const config = workerData as ThreadConfig
const paths = new Map<string, string>()

const errorData = (cause: Cause.Cause<unknown>, modelHash: string): ErrorData => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some" && failure.value instanceof InferenceError) {
    return { reason: failure.value.reason, modelHash: failure.value.modelHash, detail: failure.value.detail }
  }
  return { reason: "RunFailed", modelHash, detail: Cause.pretty(cause).slice(0, 2000) }
}

const send = (reply: ThreadReply, transfer: Array<ArrayBuffer> = []) => port.postMessage(reply, transfer)

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
  send({ kind: "init-failed", error: errorData(started.cause, "") })
  port.on("message", (m: ThreadRequest) => {
    if (m.kind === "close") process.exit(0)
  })
} else {
  const pool = started.value
  port.on("message", (m: ThreadRequest) => {
    switch (m.kind) {
      case "run": {
        paths.set(m.hash, m.path)
        Effect.runCallback(pool.run(m.hash, fromWire(m.inputs)), {
          onExit: (exit) => {
            if (Exit.isSuccess(exit)) {
              const outputs = toWire(exit.value)
              send({ kind: "ran", id: m.id, outputs }, buffersOf(outputs))
            } else send({ kind: "failed", id: m.id, error: errorData(exit.cause, m.hash) })
          }
        })
        return
      }
      case "close": {
        // Between runs (this thread runs them synchronously): safe to release the sessions and end.
        Effect.runCallback(Scope.close(scope, Exit.void), { onExit: () => process.exit(0) })
        return
      }
      case "crash":
        throw new Error("crash requested by the engine (test hook)")
      case "warm": {
        paths.set(m.hash, m.path)
        Effect.runCallback(pool.warm(m.hash), {
          onExit: (exit) =>
            send(
              Exit.isSuccess(exit)
                ? { kind: "warmed", id: m.id, info: { inputNames: [...exit.value.inputNames], outputNames: [...exit.value.outputNames] } }
                : { kind: "failed", id: m.id, error: errorData(exit.cause, m.hash) }
            )
        })
        return
      }
    }
  })
  send({ kind: "ready" })
}

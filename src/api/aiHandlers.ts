/** The AI shard's RPC handlers: each delegates to the AiNode service. */
import { Effect } from "effect"
import { AiNode } from "../node/ai/AiNode.js"
import { AiRpcs } from "./AiRpcs.js"

export const AiRpcHandlers = AiRpcs.toLayer(
  Effect.gen(function* () {
    const ai = yield* AiNode
    return {
      "model.upload": (r) => ai.upload(r),
      "model.get": ({ model }) => ai.model(model),
      "model.list": ({ provider }) => ai.list(provider),
      "escrow.get": ({ developer, model }) => ai.escrow(developer, model),
      "session.open": (g) => ai.openSession(g),
      infer: ({ inputs, session, ...signed }) => ai.infer(session, inputs, signed),
      "infer.stream": ({ inputs, session, ...signed }) => ai.inferStream(session, inputs, signed),
      "task.get": ({ task }) => ai.task(task),
      "worker.list": () => ai.workers,
      "worker.onChain": ({ address }) => ai.workerOnChain(address),
      "worker.register": (r) => ai.register(r),
      "worker.heartbeat": ({ session }) => ai.heartbeat(session),
      "worker.tasks": ({ session }) => ai.tasks(session),
      "worker.result": (r) => ai.result(r),
      "worker.failed": ({ session, task, detail, overrun }) => ai.failed(session, task, detail, overrun),
      "blob.get": ({ hash, offset, length }) => ai.blob(hash, offset, length),
      "usage.receipts": ({ receipts }) => ai.shareReceipts(receipts)
    }
  })
)

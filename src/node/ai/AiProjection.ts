/**
 * Follows the event log (from the start, on every start) and turns what the
 * chain decided into the AI shard's commands: models registered on the AI
 * shard (AiModelRegistered) and the ledger's verdicts on them
 * (AiModelVerified, AiModelRejected: a node serves only what it verified
 * itself, ModelRegistry.ts; price and deprecation are read from the AI
 * ledger where needed); escrow credited by the AI ledger (`EscrowCredited`, caused by
 * its receipt id). Every command carries its cause, so replaying after a
 * restart appends nothing twice. It feeds the Settler: each task's usage
 * receipt (its `TaskSettled`) is pending until the AI ledger settles or
 * refuses it, so a restart re-derives what is still to settle; a refused
 * one's capture goes back to the escrow book (once per task); and the
 * Challenger, with the proofs of wrong results each `TaskSettled` keeps. Once caught
 * up, it ends tasks a crash left unfinished, releasing their escrow.
 */
import { Clock, Effect, Schema } from "effect"
import { Deposit, Release } from "../../../domain/ai/escrow/commands.js"
import { AbandonTask } from "../../../domain/ai/task/commands.js"
import { AiModelRegistered, EscrowCredited, UsageRefused, UsageSettled } from "../../../domain/ai/ledger/events.js"
import { TaskSettled } from "../../../domain/ai/task/events.js"
import type { Address } from "../../../domain/chain/keys.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { withCause } from "../../../actors/causation.js"
import { escrowStream } from "../../../actors/EscrowActor.js"
import { taskStream } from "../../../actors/TaskActor.js"
import { followLog } from "../followLog.js"
import { EventStore } from "../../../infra/eventstore/EventStore.js"
import type { RecordedEvent } from "../../../infra/eventstore/EventStore.js"
import type { ModelRegistry } from "./ModelRegistry.js"
import type { Challenger } from "./Challenger.js"
import type { Settler } from "./Settler.js"
import { onUsageRefused } from "./refusedReceipt.js"
import type { TaskRunner } from "./TaskRunner.js"
import type { WorkerHub } from "./WorkerHub.js"

const decodeRegistered = Schema.decodeUnknownSync(AiModelRegistered)
const decodeCredited = Schema.decodeUnknownSync(EscrowCredited)
const decodeSettled = Schema.decodeUnknownSync(UsageSettled)
const decodeRefused = Schema.decodeUnknownSync(UsageRefused)
const decodeTaskSettled = Schema.decodeUnknownSync(TaskSettled)

interface Data {
  readonly [key: string]: unknown
}

export const makeAiProjection = (
  models: ModelRegistry,
  runner: TaskRunner,
  hub: WorkerHub,
  settler: Settler,
  aiShard: number | undefined,
  challenger?: Challenger
) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const aiStream = aiShard === undefined ? undefined : `shard-${aiShard}`
    const unfinished = new Map<string, { readonly developer: string; readonly model: string }>()
    const caughtUpAt = yield* store.lastPosition.pipe(Effect.orElseSucceed(() => 0))
    let recovered = false
    const refused = onUsageRefused(settler, runner.escrows)

    const recover = Effect.gen(function* () {
      recovered = true
      const at = yield* Clock.currentTimeMillis
      for (const [id, t] of unfinished) {
        const actor = yield* runner.tasks.get(taskStream(id))
        yield* actor.ask(new AbandonTask({ cause: "TimedOut", detail: "the node restarted during the task", at })).pipe(Effect.ignore)
        const escrow = yield* runner.escrows.get(escrowStream(t.developer as Address, t.model as Hash32))
        yield* escrow.ask(new Release({ taskId: id as Hash32 })).pipe(Effect.ignore)
        yield* runner.tasks.release(taskStream(id))
        yield* Effect.logInfo(`task ${id} was interrupted by a restart: ended, nothing charged`)
      }
    })

    /** The AI ledger's events: models to verify, escrow credits feed the local book, settled and refused receipts leave the Settler. */
    const onAiShard = (e: RecordedEvent, data: Data) =>
      Effect.gen(function* () {
        const tagged = { ...data, _tag: e.type }
        switch (e.type) {
          case "AiModelRegistered":
            return yield* models.onRegistered(decodeRegistered(tagged), yield* Clock.currentTimeMillis)
          case "AiModelVerified":
          case "AiModelRejected":
            return yield* models.onVerdict(String(data["model"]))
          case "EscrowCredited": {
            const d = decodeCredited(tagged)
            const escrow = yield* runner.escrows.get(escrowStream(d.developer, d.model))
            const cmd = new Deposit({ developer: d.developer, modelId: d.model, amount: d.amount, txHash: d.receiptId, at: yield* Clock.currentTimeMillis })
            return yield* escrow.ask(withCause(cmd, d.receiptId)).pipe(
              Effect.catchAll((err) => Effect.logWarning(`escrow credit ${d.receiptId} not recorded: ${err.message}`))
            )
          }
          case "UsageSettled":
            return yield* settler.settled(decodeSettled(tagged).taskId)
          case "UsageRefused":
            return yield* refused(decodeRefused(tagged))
        }
      })

    const onTask = (e: RecordedEvent, data: Data) =>
      Effect.gen(function* () {
        const id = e.stream.slice("task-".length)
        switch (e.type) {
          case "TaskRequested":
            unfinished.set(id, { developer: data["developer"] as string, model: data["modelId"] as string })
            return
          case "TaskFailed":
            unfinished.delete(id)
            return
          case "TaskSettled": {
            unfinished.delete(id)
            const settled = decodeTaskSettled({ ...data, _tag: e.type })
            if (settled.receipt !== undefined) yield* settler.add(settled.receipt, settled.developer)
            for (const proof of settled.challenges ?? []) yield* challenger?.add(proof) ?? Effect.void
            return
          }
        }
      })

    const apply = (e: RecordedEvent): Effect.Effect<void> =>
      Effect.gen(function* () {
        const data = e.data as Data
        if (e.stream === aiStream) yield* onAiShard(e, data)
        else if (e.stream.startsWith("task-")) yield* onTask(e, data)
        else if (e.stream.startsWith("worker-") && e.type === "WorkerRegistered") yield* hub.remember(e.stream.slice("worker-".length))
        if (!recovered && e.position >= caughtUpAt) yield* recover
      }).pipe(Effect.catchAllDefect((d) => Effect.logError(`AI projection: event ${e.stream}@${e.revision} not applied`, d)))

    if (caughtUpAt === 0) recovered = true
    yield* followLog("AI projection", apply)
  })

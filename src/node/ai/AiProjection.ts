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
 * refuses it, so a restart re-derives what is still to settle (its own
 * receipts and those other gateways shared, `shared-receipts`); a refused
 * one's capture goes back to the escrow book (once per task); and the
 * Challenger, with the proofs of wrong results each `TaskSettled` keeps. Once caught
 * up, it ends tasks a crash left unfinished, releasing their escrow.
 */
import { Clock, Effect, Either } from "effect"
import { Deposit, Release } from "../../../domain/ai/escrow/commands.js"
import { AbandonTask } from "../../../domain/ai/task/commands.js"
import type { TaskEvent } from "../../../domain/ai/task/events.js"
import type { ShardEvent } from "../../../domain/chain/events.js"
import { decodeEventOf, type EventOf, type StreamKind } from "../../../domain/streamEvents.js"
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
import type { SharedReceipts } from "./SharedReceipts.js"
import { SHARED_RECEIPTS_STREAM } from "../../../domain/ai/shared/events.js"
import { onUsageRefused } from "./refusedReceipt.js"
import type { TaskRunner } from "./TaskRunner.js"
import type { WorkerHub } from "./WorkerHub.js"

/** The AI shard's event types this projection reads. */
const AI_SHARD_TYPES: ReadonlySet<string> = new Set<ShardEvent["_tag"]>([
  "AiModelRegistered",
  "AiModelVerified",
  "AiModelRejected",
  "EscrowCredited",
  "UsageSettled",
  "UsageRefused"
])
/** A task stream's event types this projection reads. */
const TASK_TYPES: ReadonlySet<string> = new Set<TaskEvent["_tag"]>(["TaskRequested", "TaskFailed", "TaskSettled"])

export const makeAiProjection = (
  models: ModelRegistry,
  runner: TaskRunner,
  hub: WorkerHub,
  settler: Settler,
  aiShard: number | undefined,
  challenger?: Challenger,
  shared?: SharedReceipts
) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const aiStream = aiShard === undefined ? undefined : `shard-${aiShard}`
    /** Tasks requested and not yet ended, by task id. */
    const unfinished = new Map<string, { readonly taskId: Hash32; readonly developer: Address; readonly model: Hash32 }>()
    const caughtUpAt = yield* store.lastPosition.pipe(Effect.orElseSucceed(() => 0))
    let recovered = false
    const refused = onUsageRefused(settler, runner.escrows)

    const recover = Effect.gen(function* () {
      recovered = true
      const at = yield* Clock.currentTimeMillis
      for (const [id, t] of unfinished) {
        const actor = yield* runner.tasks.get(taskStream(id))
        yield* actor.ask(new AbandonTask({ cause: "TimedOut", detail: "the node restarted during the task", at })).pipe(Effect.ignore)
        const escrow = yield* runner.escrows.get(escrowStream(t.developer, t.model))
        yield* escrow.ask(new Release({ taskId: t.taskId })).pipe(Effect.ignore)
        yield* runner.tasks.release(taskStream(id))
        yield* Effect.logInfo(`task ${id} was interrupted by a restart: ended, nothing charged`)
      }
    })

    /** The AI ledger's events: models to verify, escrow credits feed the local book, settled and refused receipts leave the Settler. */
    const onAiShard = (event: ShardEvent) =>
      Effect.gen(function* () {
        switch (event._tag) {
          case "AiModelRegistered":
            return yield* models.onRegistered(event, yield* Clock.currentTimeMillis)
          case "AiModelVerified":
          case "AiModelRejected":
            return yield* models.onVerdict(event.model)
          case "EscrowCredited": {
            const escrow = yield* runner.escrows.get(escrowStream(event.developer, event.model))
            const cmd = new Deposit({ developer: event.developer, modelId: event.model, amount: event.amount, txHash: event.receiptId, at: yield* Clock.currentTimeMillis })
            return yield* escrow.ask(withCause(cmd, event.receiptId)).pipe(
              Effect.catchAll((err) => Effect.logWarning(`escrow credit ${event.receiptId} not recorded: ${err.message}`))
            )
          }
          case "UsageSettled":
            return yield* settler.settled(event.taskId)
          case "UsageRefused":
            return yield* refused(event)
        }
      })

    const onTask = (id: string, event: TaskEvent) =>
      Effect.gen(function* () {
        switch (event._tag) {
          case "TaskRequested":
            unfinished.set(id, { taskId: event.taskId, developer: event.developer, model: event.modelId })
            return
          case "TaskFailed":
            unfinished.delete(id)
            return
          case "TaskSettled": {
            unfinished.delete(id)
            if (event.receipt !== undefined) yield* settler.add(event.receipt, event.developer)
            if (event.overran !== undefined) yield* settler.add(event.overran, event.developer)
            for (const proof of event.challenges ?? []) yield* challenger?.add(proof) ?? Effect.void
            return
          }
        }
      })

    /** Decoded by its stream's one schema (`streamEvents.ts`); only the types this projection reads are decoded. */
    const decoded = <K extends StreamKind>(kind: K, e: RecordedEvent): Effect.Effect<EventOf<K> | undefined> => {
      const d = decodeEventOf(kind, e.type, e.data)
      return Either.isRight(d) ? Effect.succeed(d.right) : Effect.as(Effect.logError(`AI projection: ${e.stream}@${e.revision} does not decode: ${d.left}`), undefined)
    }

    const apply = (e: RecordedEvent): Effect.Effect<void> =>
      Effect.gen(function* () {
        if (e.stream === aiStream && AI_SHARD_TYPES.has(e.type)) {
          const event = yield* decoded("shard", e)
          if (event !== undefined) yield* onAiShard(event)
        } else if (e.stream.startsWith("task-") && TASK_TYPES.has(e.type)) {
          const event = yield* decoded("task", e)
          if (event !== undefined) yield* onTask(e.stream.slice("task-".length), event)
        } else if (e.stream === SHARED_RECEIPTS_STREAM && shared !== undefined) {
          const event = yield* decoded("shared", e)
          if (event !== undefined) yield* shared.replayed(event)
        } else if (e.stream.startsWith("worker-") && e.type === "WorkerRegistered") yield* hub.remember(e.stream.slice("worker-".length))
        if (!recovered && e.position >= caughtUpAt) yield* recover
      }).pipe(Effect.catchAllDefect((d) => Effect.logError(`AI projection: event ${e.stream}@${e.revision} not applied`, d)))

    if (caughtUpAt === 0) recovered = true
    yield* followLog("AI projection", apply)
  })

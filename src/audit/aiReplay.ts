/**
 * The AI shard in the auditor's replay: every model, task, worker and escrow
 * stream rebuilt by folding its decider's `evolve` over its decoded events
 * (evolve asserts each aggregate's invariants, so a corrupt stream throws
 * and the audit names its stream and revision), then checked against the
 * chain and against each other:
 *
 *   - a model's `ModelUploaded` is the AI ledger's `AiModelRegistered` of
 *     the same transaction: same id,
 *     provider, weights hash, size and manifest;
 *   - every deposit an escrow counts (keyed by its receipt id) is the AI
 *     ledger's `EscrowCredited` of that receipt, and that receipt is the one
 *     an executed `escrow.deposit` sent (`receiptIdOf` its tx hash, beside
 *     the transfer shard's `EscrowDeposited`): same developer, model and
 *     amount on all three;
 *   - each stream holds what its name says (model-{id}, task-{id},
 *     worker-{id}, escrow-{developer}-{model});
 *   - a developer pays once, and never for a failed task: a settled task's
 *     amount was captured from its own escrow for that task, and no escrow
 *     captured for a task that failed or does not exist (a task's own
 *     evolve refuses a second charge).
 *
 * What the chain decided but the AI shard has not recorded is counted, not
 * failed: a node that stopped before projecting its last block applies it
 * when it starts again, and a registration the model actor refuses (an
 * unknown minimum GPU class) never gets a stream.
 */
import { Either, HashMap, Schema } from "effect"
import { evolve as evolveEscrow, initialEscrowState } from "../../domain/ai/escrow/state.js"
import type { EscrowState } from "../../domain/ai/escrow/state.js"
import { ModelManifest } from "../../domain/ai/manifest.js"
import { evolve as evolveModel, initialModelState } from "../../domain/ai/model/state.js"
import type { ModelState } from "../../domain/ai/model/state.js"
import { evolve as evolveTask, initialTaskState } from "../../domain/ai/task/state.js"
import type { TaskState } from "../../domain/ai/task/state.js"
import { evolve as evolveWorker, initialWorkerState } from "../../domain/ai/worker/state.js"
import type { WorkerState } from "../../domain/ai/worker/state.js"
import type { EscrowCredited } from "../../domain/ai/ledger/events.js"
import type { EscrowDeposited, ShardEvent } from "../../domain/chain/events.js"
import { receiptIdOf } from "../../domain/chain/receipt.js"
import { decodeEventOf } from "../../domain/streamEvents.js"
import type { RawEventRow } from "../../infra/eventstore/RawEventRow.js"

export interface AiFailure {
  readonly stream: string
  readonly revision: number
  readonly position: number
  readonly reason: string
  readonly detail: string
}

export class AiAuditFailed {
  constructor(readonly failure: AiFailure) {}
}

export interface AiSummary {
  /** The models the AI ledger registered, by its verdict (Pending, Verified, Rejected): the committee's, not this node's. */
  readonly models: { readonly total: number; readonly byStatus: Readonly<Record<string, number>>; readonly deprecated: number }
  readonly tasks: { readonly total: number; readonly byStatus: Readonly<Record<string, number>>; readonly charged: bigint }
  readonly workers: { readonly total: number; readonly byStatus: Readonly<Record<string, number>> }
  readonly escrows: {
    readonly total: number
    readonly deposited: bigint
    readonly available: bigint
    readonly reserved: bigint
    readonly captured: bigint
  }
  /** Chain facts the AI shard has not recorded (refused, or applied when the node starts again). */
  readonly unprojected: { readonly registrations: number; readonly deposits: number }
}

/** The AI aggregates' stream kinds. */
type Kind = "model" | "task" | "worker" | "escrow"

/** A model as the chain registered it. */
interface Registration {
  readonly txHash: string
  readonly provider: string
  readonly weightsHash: string
  readonly sizeBytes: bigint
  readonly manifest: string
}

interface Located {
  readonly row: Pick<RawEventRow, "stream" | "revision" | "position">
}

interface Rebuilt<S> {
  state: S
  /** The stream's first event, for failures about the whole stream. */
  readonly first: Located["row"]
  /** Per aggregate: rows worth naming later (the upload, each deposit, each capture, the settlement). */
  readonly marks: Map<string, Located["row"]>
}

const decodeManifestJson = Schema.decodeUnknownEither(Schema.parseJson(ModelManifest))
const manifestJson = (m: ModelManifest) => JSON.stringify(Schema.encodeSync(ModelManifest)(m))

const count = (values: Iterable<string>): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const v of values) out[v] = (out[v] ?? 0) + 1
  return out
}

const at = (row: Located["row"]) => ({ stream: row.stream, revision: row.revision, position: row.position })

export const makeAiReplay = () => {
  const models = new Map<string, Rebuilt<ModelState>>()
  const tasks = new Map<string, Rebuilt<TaskState>>()
  const workers = new Map<string, Rebuilt<WorkerState>>()
  const escrows = new Map<string, Rebuilt<EscrowState>>()
  /** Model id (its model.register's hash) → what the AI ledger registered. */
  const registered = new Map<string, Registration>()
  /** Receipt id (`receiptIdOf` the escrow.deposit's hash) → the transfer shard's deposit. */
  const deposited = new Map<string, EscrowDeposited>()
  /** Model id → the AI ledger's verdict on it (the committee's, by consensus; not this node's own verification). */
  const verdicts = new Map<string, { readonly status: "Pending" | "Verified" | "Rejected"; readonly deprecated: boolean }>()
  /** Receipt id → the AI ledger's credit of it. */
  const credited = new Map<string, EscrowCredited>()
  /** Task id → what an escrow captured for it, where. */
  const captures = new Map<string, { readonly amount: bigint; readonly row: Located["row"] }>()

  const fail: (row: Located["row"], reason: string, detail: string) => never = (row, reason, detail) => {
    throw new AiAuditFailed({ ...at(row), reason, detail })
  }

  const fold = <S, E>(
    table: Map<string, Rebuilt<S>>,
    initial: S,
    evolve: (s: S, e: E) => S,
    row: RawEventRow,
    event: E,
    mark?: string
  ): void => {
    let r = table.get(row.stream)
    if (r === undefined) table.set(row.stream, (r = { state: initial, first: at(row), marks: new Map() }))
    try {
      r.state = evolve(r.state, event)
    } catch (e) {
      fail(row, "InvariantViolated", e instanceof Error ? e.message : String(e))
    }
    if (mark !== undefined) r.marks.set(mark, at(row))
  }

  /** One stored event of an AI stream (in position order, after its hash chain checked out), decoded by its kind's schema. */
  /** `stored`: the row's data, already checked to be a JSON object (`storedEvent.ts`). */
  const add = (row: RawEventRow, kind: Kind, stored: Record<string, unknown>): void => {
    const undecodable = (why: string): never => fail(row, "UndecodableEvent", why)
    switch (kind) {
      case "model": {
        const event = Either.getOrElse(decodeEventOf("model", row.type, stored), undecodable)
        if (event._tag === "ModelUploaded" && row.stream !== `model-${event.modelId}`) {
          fail(row, "StreamMismatch", `the upload of model ${event.modelId} is in stream ${row.stream}`)
        }
        return fold(models, initialModelState, evolveModel, row, event, event._tag === "ModelUploaded" ? "upload" : undefined)
      }
      case "task": {
        const event = Either.getOrElse(decodeEventOf("task", row.type, stored), undecodable)
        if (event._tag === "TaskRequested" && row.stream !== `task-${event.taskId}`) {
          fail(row, "StreamMismatch", `the request of task ${event.taskId} is in stream ${row.stream}`)
        }
        return fold(tasks, initialTaskState, evolveTask, row, event, event._tag === "TaskSettled" ? "settled" : undefined)
      }
      case "worker": {
        const event = Either.getOrElse(decodeEventOf("worker", row.type, stored), undecodable)
        if (event._tag === "WorkerRegistered" && row.stream !== `worker-${event.workerId}`) {
          fail(row, "StreamMismatch", `the registration of worker ${event.workerId} is in stream ${row.stream}`)
        }
        return fold(workers, initialWorkerState, evolveWorker, row, event)
      }
      case "escrow": {
        const event = Either.getOrElse(decodeEventOf("escrow", row.type, stored), undecodable)
        if (event._tag === "EscrowDeposited" && row.stream !== `escrow-${event.developer}-${event.modelId}`) {
          fail(row, "StreamMismatch", `a deposit of ${event.developer} for model ${event.modelId} is in stream ${row.stream}`)
        }
        fold(escrows, initialEscrowState, evolveEscrow, row, event, event._tag === "EscrowDeposited" ? `deposit:${event.txHash}` : undefined)
        if (event._tag === "EscrowCaptured") {
          if (captures.has(event.taskId)) fail(row, "ChargeMismatch", `task ${event.taskId} captured a second time (first in ${captures.get(event.taskId)!.row.stream})`)
          captures.set(event.taskId, { amount: event.amount, row: at(row) })
        }
        return
      }
    }
  }

  /** A decoded chain event the AI shard follows (from a shard's replay). */
  const chainEvent = (event: ShardEvent): void => {
    switch (event._tag) {
      case "AiModelRegistered":
        // The AI ledger's registration (issue 12): the model's id is the registering tx's hash.
        registered.set(event.model, { txHash: event.model, provider: event.provider, weightsHash: event.weightsHash, sizeBytes: event.sizeBytes, manifest: event.manifest })
        verdicts.set(event.model, { status: "Pending", deprecated: false })
        return
      case "AiModelVerified":
      case "AiModelRejected": {
        const v = verdicts.get(event.model)
        if (v !== undefined) verdicts.set(event.model, { ...v, status: event._tag === "AiModelVerified" ? "Verified" : "Rejected" })
        return
      }
      case "AiModelDeprecated": {
        const v = verdicts.get(event.model)
        if (v !== undefined) verdicts.set(event.model, { ...v, deprecated: true })
        return
      }
      case "EscrowDeposited":
        deposited.set(receiptIdOf(event.txHash), event)
        return
      case "EscrowCredited":
        credited.set(event.receiptId, event)
        return
    }
  }

  /** The cross-checks of the module doc, once every stream is rebuilt (not when one stream alone was replayed). */
  const finish = (crossCheck: boolean): void => {
    if (!crossCheck) return
    for (const [stream, m] of models) {
      const u = m.state.upload
      if (u === null) continue
      const row = m.marks.get("upload") ?? m.first
      const r = registered.get(u.modelId)
      if (r === undefined) fail(row, "ChainMismatch", `model ${u.modelId} was uploaded, but no executed model.register has that hash`)
      const differences: Array<string> = []
      if (r.provider !== u.provider) differences.push(`provider ${u.provider}, the chain's ${r.provider}`)
      if (r.weightsHash !== u.weightsHash) differences.push(`weights ${u.weightsHash}, the chain's ${r.weightsHash}`)
      if (BigInt(u.sizeBytes) !== r.sizeBytes) differences.push(`size ${u.sizeBytes}, the chain's ${r.sizeBytes}`)
      const chainManifest = decodeManifestJson(r.manifest)
      if (Either.isLeft(chainManifest) || manifestJson(chainManifest.right) !== manifestJson(u.manifest)) {
        differences.push("a manifest other than the registered one")
      }
      if (differences.length > 0) fail(row, "ChainMismatch", `${stream} differs from its model.register ${r.txHash}: ${differences.join("; ")}`)
    }
    for (const [stream, e] of escrows) {
      // The escrow stream keys a deposit by the receipt the AI ledger credited.
      for (const [receiptId, amount] of HashMap.toEntries(e.state.deposits)) {
        const row = e.marks.get(`deposit:${receiptId}`) ?? e.first
        const c = credited.get(receiptId)
        if (c === undefined) fail(row, "ChainMismatch", `${stream} counts deposit ${receiptId}, which the AI ledger never credited (no EscrowCredited)`)
        const d = deposited.get(receiptId)
        if (d === undefined) fail(row, "ChainMismatch", `${stream} counts deposit ${receiptId}, which no executed escrow.deposit sent`)
        const owner = e.state.owner
        const same = (x: { readonly developer: string; readonly model: string; readonly amount: bigint }) =>
          owner !== null && x.developer === owner.developer && x.model === owner.modelId && x.amount === amount
        if (!same(c) || !same(d)) {
          fail(
            row,
            "ChainMismatch",
            `${stream} counts deposit ${receiptId} as ${amount} from ${owner?.developer} for ${owner?.modelId}; ` +
              `the AI ledger credited ${c.amount} from ${c.developer} for ${c.model}; ` +
              `escrow.deposit ${d.txHash} sent ${d.amount} from ${d.developer} for ${d.model}`
          )
        }
      }
    }
    // Charged once, never for a failure: settlements and captures agree.
    // (A capture whose task is Validated but not yet Settled is a settlement in flight, or cut by a stop.)
    for (const [stream, t] of tasks) {
      const s = t.state
      if (s.status !== "Settled" || s.request === null || s.settlement === null) continue
      const row = t.marks.get("settled") ?? t.first
      const escrowStream = `escrow-${s.request.developer}-${s.request.modelId}`
      const captured = captures.get(s.request.taskId)
      if (captured === undefined || captured.row.stream !== escrowStream) {
        fail(row, "ChargeMismatch", `${stream} is settled, but ${escrowStream} captured nothing for it`)
      }
      if (captured.amount !== s.settlement.amount) {
        fail(row, "ChargeMismatch", `${stream} settled ${s.settlement.amount}, but its escrow captured ${captured.amount}`)
      }
    }
    for (const [taskId, captured] of captures) {
      const t = tasks.get(`task-${taskId}`)
      const where = captured.row.stream
      if (t === undefined) fail(captured.row, "ChargeMismatch", `${where} captured for task ${taskId}, which has no stream`)
      if (t.state.status === "Failed") fail(captured.row, "ChargeMismatch", `${where} captured for task ${taskId}, which failed`)
      const request = t.state.request
      if (request === null || where !== `escrow-${request.developer}-${request.modelId}`) {
        fail(captured.row, "ChargeMismatch", `${where} captured for task ${taskId}, a task of another developer or model`)
      }
    }
  }

  const summary = (): AiSummary => {
    const modelStates = [...models.values()].map((m) => m.state)
    const taskStates = [...tasks.values()].map((t) => t.state)
    const escrowStates = [...escrows.values()].map((e) => e.state.totals)
    const uploaded = new Set(modelStates.flatMap((m) => (m.upload === null ? [] : [m.upload.modelId as string])))
    const counted = new Set<string>([...escrows.values()].flatMap((e) => [...HashMap.keys(e.state.deposits)]))
    const sum = (f: (t: EscrowState["totals"]) => bigint) => escrowStates.reduce((acc, t) => acc + f(t), 0n)
    return {
      models: {
        total: verdicts.size,
        byStatus: count([...verdicts.values()].map((v) => v.status)),
        deprecated: [...verdicts.values()].filter((v) => v.deprecated).length
      },
      tasks: {
        total: taskStates.length,
        byStatus: count(taskStates.map((t) => t.status)),
        charged: taskStates.reduce((acc, t) => acc + t.charged, 0n)
      },
      workers: { total: workers.size, byStatus: count([...workers.values()].map((w) => w.state.status)) },
      escrows: {
        total: escrows.size,
        deposited: sum((t) => t.deposited),
        available: sum((t) => t.available),
        reserved: sum((t) => t.reserved),
        captured: sum((t) => t.captured)
      },
      unprojected: {
        registrations: [...registered.keys()].filter((id) => !uploaded.has(id)).length,
        deposits: [...deposited.keys()].filter((receiptId) => !counted.has(receiptId)).length
      }
    }
  }

  return { add, chainEvent, finish, summary }
}

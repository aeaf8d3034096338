/**
 * The AI shard in the auditor's replay: every model, task, worker and escrow
 * stream rebuilt by folding its decider's `evolve` over its decoded events
 * (evolve asserts each aggregate's invariants, so a corrupt stream throws
 * and the audit names its stream and revision), then checked against the
 * chain and against each other:
 *
 *   - a model's `ModelUploaded` is the chain's `ModelRegistered` (the AI
 *     ledger's `AiModelRegistered`) of the same transaction: same id,
 *     provider, weights hash, size and manifest;
 *   - every deposit an escrow counts is an `EscrowDeposited` the chain
 *     executed (or the AI ledger's `EscrowCredited` of the escrow receipt,
 *     by receipt id), with the same developer, model and amount;
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
import { EscrowEvent } from "../../domain/ai/escrow/events.js"
import { evolve as evolveEscrow, initialEscrowState } from "../../domain/ai/escrow/state.js"
import type { EscrowState } from "../../domain/ai/escrow/state.js"
import { ModelManifest } from "../../domain/ai/manifest.js"
import { ModelEvent } from "../../domain/ai/model/events.js"
import { evolve as evolveModel, initialModelState } from "../../domain/ai/model/state.js"
import type { ModelState } from "../../domain/ai/model/state.js"
import { TaskEvent } from "../../domain/ai/task/events.js"
import { evolve as evolveTask, initialTaskState } from "../../domain/ai/task/state.js"
import type { TaskState } from "../../domain/ai/task/state.js"
import { WorkerEvent } from "../../domain/ai/worker/events.js"
import { evolve as evolveWorker, initialWorkerState } from "../../domain/ai/worker/state.js"
import type { WorkerState } from "../../domain/ai/worker/state.js"
import type { EscrowDeposited, ModelRegistered } from "../../domain/chain/events.js"
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

type Kind = "model" | "task" | "worker" | "escrow"

const PREFIXES: ReadonlyArray<readonly [string, Kind]> = [
  ["model-", "model"],
  ["task-", "task"],
  ["worker-", "worker"],
  ["escrow-", "escrow"]
]

/** Which AI aggregate a stream holds, if any. */
export const aiKindOf = (stream: string): Kind | undefined => PREFIXES.find(([prefix]) => stream.startsWith(prefix))?.[1]

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

const decoders = {
  model: Schema.decodeUnknownEither(ModelEvent),
  task: Schema.decodeUnknownEither(TaskEvent),
  worker: Schema.decodeUnknownEither(WorkerEvent),
  escrow: Schema.decodeUnknownEither(EscrowEvent)
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
  const registered = new Map<string, ModelRegistered>()
  const deposited = new Map<string, EscrowDeposited>()
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

  /** One stored event of an AI stream (in position order, after its hash chain checked out). */
  /** `stored`: the row's data, already checked to be a JSON object (`storedEvent.ts`). */
  const add = (row: RawEventRow, kind: Kind, stored: Record<string, unknown>): void => {
    const data = { ...stored, _tag: row.type }
    const decoded: Either.Either<unknown, { readonly message: string }> = decoders[kind](data)
    if (Either.isLeft(decoded)) return fail(row, "UndecodableEvent", `${row.type}: ${decoded.left.message}`)
    const e = decoded.right
    switch (kind) {
      case "model": {
        const event = e as ModelEvent
        if (event._tag === "ModelUploaded" && row.stream !== `model-${event.modelId}`) {
          fail(row, "StreamMismatch", `the upload of model ${event.modelId} is in stream ${row.stream}`)
        }
        return fold(models, initialModelState, evolveModel, row, event, event._tag === "ModelUploaded" ? "upload" : undefined)
      }
      case "task": {
        const event = e as TaskEvent
        if (event._tag === "TaskRequested" && row.stream !== `task-${event.taskId}`) {
          fail(row, "StreamMismatch", `the request of task ${event.taskId} is in stream ${row.stream}`)
        }
        return fold(tasks, initialTaskState, evolveTask, row, event, event._tag === "TaskSettled" ? "settled" : undefined)
      }
      case "worker": {
        const event = e as WorkerEvent
        if (event._tag === "WorkerRegistered" && row.stream !== `worker-${event.workerId}`) {
          fail(row, "StreamMismatch", `the registration of worker ${event.workerId} is in stream ${row.stream}`)
        }
        return fold(workers, initialWorkerState, evolveWorker, row, event)
      }
      case "escrow": {
        const event = e as EscrowEvent
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

  /** A chain event the AI shard follows (from a shard's replay). */
  const chainEvent = (event: { readonly _tag: string }): void => {
    if (event._tag === "ModelRegistered") {
      const r = event as ModelRegistered
      registered.set(r.txHash, r)
    } else if (event._tag === "AiModelRegistered") {
      // The AI ledger's registration (issue 12): the model's id is the registering tx's hash.
      const r = event as unknown as { readonly model: string; readonly provider: string; readonly weightsHash: string; readonly sizeBytes: bigint; readonly manifest: string }
      registered.set(r.model, { txHash: r.model, provider: r.provider, weightsHash: r.weightsHash, sizeBytes: r.sizeBytes, manifest: r.manifest } as ModelRegistered)
    } else if (event._tag === "EscrowDeposited") {
      const d = event as EscrowDeposited
      deposited.set(d.txHash, d)
    } else if (event._tag === "EscrowCredited") {
      // The AI ledger's credit of an escrow receipt (issue 12): the escrow book's deposit is caused by its receipt id.
      const c = event as unknown as { readonly receiptId: string; readonly developer: string; readonly model: string; readonly amount: bigint }
      deposited.set(c.receiptId, { txHash: c.receiptId, developer: c.developer, model: c.model, amount: c.amount } as EscrowDeposited)
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
      for (const [txHash, amount] of HashMap.toEntries(e.state.deposits)) {
        const row = e.marks.get(`deposit:${txHash}`) ?? e.first
        const d = deposited.get(txHash)
        if (d === undefined) fail(row, "ChainMismatch", `${stream} counts deposit ${txHash}, which no executed escrow.deposit made`)
        const owner = e.state.owner
        if (owner === null || d.developer !== owner.developer || d.model !== owner.modelId || d.amount !== amount) {
          fail(
            row,
            "ChainMismatch",
            `${stream} counts deposit ${txHash} as ${amount} from ${owner?.developer} for ${owner?.modelId}; ` +
              `the chain's is ${d.amount} from ${d.developer} for ${d.model}`
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
        total: modelStates.length,
        byStatus: count(modelStates.map((m) => m.status)),
        deprecated: modelStates.filter((m) => m.deprecated).length
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
        deposits: [...deposited.keys()].filter((tx) => !counted.has(tx)).length
      }
    }
  }

  return { add, chainEvent, finish, summary }
}

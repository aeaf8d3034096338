/**
 * The AI shard's RPC surface: models, escrow, inference, tasks, and the
 * protocol compute nodes speak to a node (register, heartbeat, take tasks,
 * return results, fetch weights). Merged into NodeRpcs, so one client has
 * it all.
 */
import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { InvalidRequest, NodeUnavailable, NotFound } from "./NodeRpcs.js"

/** Uploads and weight downloads move in chunks of at most this many bytes. */
export const BLOB_CHUNK_BYTES = 1 << 20

// ---- views ----

export class ModelView extends Schema.Class<ModelView>("ModelView")({
  id: Schema.String,
  provider: Schema.String,
  status: Schema.Literal("Pending", "Verified", "Rejected"),
  deprecated: Schema.Boolean,
  name: Schema.String,
  version: Schema.String,
  price: Schema.BigInt,
  minGpuClass: Schema.String,
  license: Schema.String,
  description: Schema.String,
  weightsHash: Schema.String,
  sizeBytes: Schema.Number,
  weightsUploaded: Schema.Boolean,
  /** Why it was rejected, in words. */
  reason: Schema.optional(Schema.String),
  referenceFingerprint: Schema.optional(Schema.String),
  attestations: Schema.Number,
  inputs: Schema.Array(Schema.Struct({ name: Schema.String, type: Schema.String, dims: Schema.Array(Schema.Union(Schema.Number, Schema.String)) })),
  outputs: Schema.Array(Schema.Struct({ name: Schema.String, type: Schema.String, dims: Schema.Array(Schema.Union(Schema.Number, Schema.String)) }))
}) {}

export class EscrowView extends Schema.Class<EscrowView>("EscrowView")({
  developer: Schema.String,
  model: Schema.String,
  deposited: Schema.BigInt,
  available: Schema.BigInt,
  reserved: Schema.BigInt,
  captured: Schema.BigInt,
  /** The AI ledger's escrow for (developer, model): the money (the figures above are this gateway's book). */
  onLedger: Schema.optional(Schema.BigInt),
  /** What this gateway captured and the ledger has not settled yet. */
  unsettled: Schema.optional(Schema.BigInt)
}) {}

export class WorkerView extends Schema.Class<WorkerView>("WorkerView")({
  id: Schema.String,
  gpuClass: Schema.String,
  devices: Schema.Number,
  online: Schema.Boolean,
  inFlight: Schema.Number,
  reputation: Schema.Number,
  endpoint: Schema.String,
  tasksDone: Schema.Number
}) {}

/** A worker as the AI shard's ledger holds it: registered by its own signed `worker.register`, units computed by the ledger. */
export class OnChainWorkerView extends Schema.Class<OnChainWorkerView>("OnChainWorkerView")({
  worker: Schema.String,
  owner: Schema.String,
  publicKey: Schema.String,
  gpuClass: Schema.String,
  /** GPU units in thousandths, as the ledger computed them (devices × the class's coefficient). */
  gpuUnitsMilli: Schema.BigInt,
  endpoint: Schema.String,
  registeredHeight: Schema.Number,
  /** Stake bonded to it on the AI shard (all owners' bonds). */
  bonded: Schema.BigInt
}) {}

export class TaskView extends Schema.Class<TaskView>("TaskView")({
  id: Schema.String,
  model: Schema.String,
  developer: Schema.String,
  status: Schema.String,
  price: Schema.BigInt,
  workers: Schema.Array(Schema.String),
  fingerprint: Schema.optional(Schema.String),
  charged: Schema.Boolean,
  retries: Schema.Number,
  events: Schema.Array(Schema.Struct({ type: Schema.String, revision: Schema.Number }))
}) {}

export class InferResult extends Schema.Class<InferResult>("InferResult")({
  task: Schema.String,
  /** The outputs in the tensor JSON form. */
  outputs: Schema.Unknown,
  fingerprint: Schema.String,
  workers: Schema.Array(Schema.String),
  charged: Schema.BigInt,
  millis: Schema.Number
}) {}

/** What `infer.stream` reports as the task moves. The last one carries the result. */
export class TaskProgress extends Schema.Class<TaskProgress>("TaskProgress")({
  task: Schema.String,
  stage: Schema.Literal("requested", "assigned", "result", "validated", "retrying", "failed"),
  detail: Schema.String,
  result: Schema.optional(InferResult)
}) {}

/**
 * The developer's signed request for a task, as the compute node gets it:
 * with the node's chain id, the assignment's model and the inputs' hash, its
 * digest must be the task id and its signature the grant key's
 * (`checkTaskRequest`), or the worker does not run it.
 */
export const AssignedRequest = Schema.Struct({
  /** The session grant's key (the developer's), 0x-hex compressed. */
  publicKey: Schema.String,
  /** The session grant's nonce. */
  grantNonce: Schema.String,
  nonce: Schema.String,
  signature: Schema.String
})
export type AssignedRequest = typeof AssignedRequest.Type

/** A task as a compute node receives it. */
export class TaskAssignment extends Schema.Class<TaskAssignment>("TaskAssignment")({
  task: Schema.String,
  model: Schema.String,
  request: AssignedRequest,
  weightsHash: Schema.String,
  sizeBytes: Schema.Number,
  outputTolerance: Schema.Number,
  inputs: Schema.Unknown,
  /** The node gives up on this worker for this task after this many ms. */
  deadlineMs: Schema.Number,
  /** The run itself is killed after this many ms (from the model's verified cost; see domain/ai/runDeadline.ts). */
  runDeadlineMs: Schema.optional(Schema.Number)
}) {}

/**
 * A worker's engine stopped the task's run at a limit: confirmed by a second
 * worker, the call is charged (domain/ai/task/overrun.ts) on chain in
 * `usage.overran`, so the claim is signed like a result.
 */
export const WorkerOverrun = Schema.Struct({
  kind: Schema.Literal("Deadline", "LoadDeadline", "Memory"),
  millis: Schema.NonNegativeInt,
  limit: Schema.NonNegativeInt,
  /** secp256k1 over `overrunDigest(task, kind, millis, limit)` (domain/ai/signedMessages.ts), by the worker's registered key. */
  signature: Schema.String
})
export type WorkerOverrun = typeof WorkerOverrun.Type

// ---- errors ----

export class InferenceRejected extends Schema.TaggedError<InferenceRejected>()("InferenceRejected", {
  reason: Schema.Literal(
    "BadSession",
    "StaleGrant",
    "ReplayedGrant",
    "SessionSpendExceeded",
    "ModelNotServable",
    "InsufficientEscrow",
    "BadInputs",
    "InputsOutOfBounds",
    "NoWorkerAvailable",
    "Overran",
    "TaskFailed",
    "TimedOut",
    /** The request's signature does not verify for the session grant's key (or its nonce or signature is malformed). */
    "BadRequestSignature",
    /** The `task` the client named is not the digest of its request (the inputs or the nonce differ from what it signed). */
    "TaskIdMismatch",
    /** This session ran a task of this id already: a request is used once. */
    "ReplayedTask"
  ),
  detail: Schema.String
}) {
  override get message() {
    return `inference rejected (${this.reason}): ${this.detail}`
  }
}

export class UploadRejected extends Schema.TaggedError<UploadRejected>()("UploadRejected", {
  reason: Schema.Literal(
    "UnknownModel",
    "NotProvider",
    "BadSignature",
    "TooManyUploads",
    "HashMismatch",
    "TooLarge",
    "BadChunk",
    "AlreadyStored"
  ),
  detail: Schema.String
}) {
  override get message() {
    return `upload rejected (${this.reason}): ${this.detail}`
  }
}

export class WorkerRejected extends Schema.TaggedError<WorkerRejected>()("WorkerRejected", {
  reason: Schema.Literal(
    "BadSignature",
    "BadRegistration",
    "StaleRegistration",
    "ReplayedRegistration",
    "UnknownWorker",
    "UnknownTask",
    "BadResult",
    /** No `worker.register` of this key on the AI shard yet (the node may not have applied its block). */
    "NotOnChain",
    /** The connection declares a GPU class other than the worker's registration on chain. */
    "ClassMismatch"
  ),
  detail: Schema.String
}) {
  override get message() {
    return `worker request rejected (${this.reason}): ${this.detail}`
  }
}

/**
 * `usage.receipts` refused, the whole batch (nothing of it is held):
 * TooMany: more than SHARE_BATCH_MAX receipts; NotAReceipt: one does not
 * decode as a usage receipt; BadReceipt: the AI ledger's rules refuse one
 * (`ledgerReason`: its UsageRefusal, e.g. BadGrantSignature, WrongChain);
 * Full: this member holds FOREIGN_HELD_MAX foreign receipts already;
 * NoAiShard: this node runs no AI ledger.
 */
export class ReceiptsRefused extends Schema.TaggedError<ReceiptsRefused>()("ReceiptsRefused", {
  reason: Schema.Literal("TooMany", "NotAReceipt", "BadReceipt", "Full", "NoAiShard"),
  /** The receipt at fault (its index in the batch), when one is. */
  index: Schema.optional(Schema.Number),
  ledgerReason: Schema.optional(Schema.String),
  detail: Schema.String
}) {
  override get message() {
    return `usage receipts refused (${this.reason}${this.ledgerReason === undefined ? "" : `: ${this.ledgerReason}`}): ${this.detail}`
  }
}

const Common = Schema.Union(InvalidRequest, NodeUnavailable)

/**
 * One paid call: the session, the inputs, and the developer's request for
 * this task signed with the grant's key (`signTaskRequest`): the task id is
 * the digest of (chain, model, grant nonce, inputs' hash, nonce).
 */
const InferPayload = {
  session: Schema.String,
  inputs: Schema.Unknown,
  /** Fresh per call: 0x + 32 lowercase hex. */
  nonce: Schema.String,
  /** The grant key's signature over `taskRequestDigest` (domain/ai/signedMessages.ts). */
  signature: Schema.String,
  /** The task id the client computed: when given, the node refuses a request whose digest is another (`TaskIdMismatch`). */
  task: Schema.optional(Schema.String)
}

// ---- the group ----

export class AiRpcs extends RpcGroup.make(
  // weights: chunked, each chunk at its offset; the last one commits if the whole hashes right
  Rpc.make("model.upload", {
    payload: {
      weightsHash: Schema.String,
      sizeBytes: Schema.Number,
      offset: Schema.Number,
      data: Schema.String,
      /** The registering provider's key; the signature covers chain, hash, size, offset and the chunk's sha256. */
      publicKey: Schema.String,
      signature: Schema.String
    },
    success: Schema.Struct({ received: Schema.Number, complete: Schema.Boolean }),
    error: Schema.Union(UploadRejected, Common)
  }),
  Rpc.make("model.get", { payload: { model: Schema.String }, success: ModelView, error: Schema.Union(NotFound, Common) }),
  Rpc.make("model.list", {
    payload: { provider: Schema.optional(Schema.String) },
    success: Schema.Array(ModelView),
    error: Common
  }),
  Rpc.make("escrow.get", {
    payload: { developer: Schema.String, model: Schema.String },
    success: EscrowView,
    error: Common
  }),
  // a developer authenticates once per session: one ECDSA check, then requests ride on the session id
  Rpc.make("session.open", {
    payload: {
      publicKey: Schema.String,
      model: Schema.String,
      /** ms since the epoch, signed: within SESSION_GRANT_WINDOW_MS of the node's clock, and since it started. */
      issuedAt: Schema.Number,
      /** ms since the epoch; at most SESSION_LIFETIME_MAX_MS ahead. */
      expiresAt: Schema.Number,
      /** The most the session may spend, in base units. */
      spendMax: Schema.BigInt,
      /** 0x + 32 hex, fresh per grant: a grant opens one session. */
      nonce: Schema.String,
      signature: Schema.String
    },
    success: Schema.Struct({ session: Schema.String, developer: Schema.String }),
    error: Schema.Union(InferenceRejected, Common)
  }),
  Rpc.make("infer", {
    payload: InferPayload,
    success: InferResult,
    error: Schema.Union(InferenceRejected, Common)
  }),
  Rpc.make("infer.stream", {
    payload: InferPayload,
    success: TaskProgress,
    error: Schema.Union(InferenceRejected, Common),
    stream: true
  }),
  Rpc.make("task.get", { payload: { task: Schema.String }, success: TaskView, error: Schema.Union(NotFound, Common) }),
  Rpc.make("worker.list", { success: Schema.Array(WorkerView), error: Common }),
  // a worker's registration on the AI shard's ledger (what a compute node checks before it submits worker.register)
  Rpc.make("worker.onChain", { payload: { address: Schema.String }, success: OnChainWorkerView, error: Schema.Union(NotFound, Common) }),
  // compute nodes
  Rpc.make("worker.register", {
    payload: {
      publicKey: Schema.String,
      gpuClass: Schema.String,
      devices: Schema.Number,
      stake: Schema.BigInt,
      endpoint: Schema.String,
      /** ms since the epoch, signed: the node refuses one outside its window. */
      at: Schema.Number,
      /** 0x + 32 hex, fresh per registration, signed: a replay is refused. */
      nonce: Schema.String,
      signature: Schema.String
    },
    success: Schema.Struct({ worker: Schema.String, session: Schema.String }),
    error: Schema.Union(WorkerRejected, Common)
  }),
  Rpc.make("worker.heartbeat", {
    payload: { session: Schema.String },
    success: Schema.Struct({ online: Schema.Boolean }),
    error: Schema.Union(WorkerRejected, Common)
  }),
  Rpc.make("worker.tasks", {
    payload: { session: Schema.String },
    success: TaskAssignment,
    error: Schema.Union(WorkerRejected, Common),
    stream: true
  }),
  Rpc.make("worker.result", {
    payload: {
      session: Schema.String,
      task: Schema.String,
      outputs: Schema.Unknown,
      fingerprint: Schema.String,
      millis: Schema.Number,
      /** secp256k1 over `resultDigest(task, fingerprint, execMsOf(millis))` (domain/ai/signedMessages.ts). */
      signature: Schema.String
    },
    success: Schema.Struct({ accepted: Schema.Boolean }),
    error: Schema.Union(WorkerRejected, Common)
  }),
  Rpc.make("worker.failed", {
    payload: { session: Schema.String, task: Schema.String, detail: Schema.String, overrun: Schema.optional(WorkerOverrun) },
    success: Schema.Struct({ accepted: Schema.Boolean }),
    error: Schema.Union(WorkerRejected, Common)
  }),
  // model weights only, at most BLOB_CHUNK_BYTES a call
  Rpc.make("blob.get", {
    payload: { hash: Schema.String, offset: Schema.Number, length: Schema.Number },
    success: Schema.Struct({ data: Schema.String, size: Schema.Number }),
    error: Schema.Union(NotFound, Common)
  }),
  // validated tasks' usage receipts another gateway shares, so any member can settle them (decoded and checked by the node)
  Rpc.make("usage.receipts", {
    payload: { receipts: Schema.Array(Schema.Unknown) },
    success: Schema.Struct({ held: Schema.Number, known: Schema.Number }),
    error: Schema.Union(ReceiptsRefused, Common)
  })
) {}

/**
 * The off-chain messages of the AI shard and what their signatures cover.
 * Each digest is keccak256 of a domain-separated text, so a signature made
 * for one purpose (or one chain) can never pass for another.
 */
import { Buffer } from "node:buffer"
import { Either } from "effect"
import { keccak256, sha256, type Hash32 } from "../chain/hash.js"
import { bytesToHex, hexToBytes, utf8 } from "../chain/hex.js"
import { PUBLIC_KEY_BYTES, PublicKey, SIGNATURE_BYTES, verifyDigest } from "../chain/keys.js"
import type { PrivateKey } from "../chain/keys.js"

export interface SessionGrant {
  readonly chainId: bigint
  readonly model: string
  /** ms since the epoch. */
  readonly expiresAt: number
  /** ms since the epoch, when it was signed: the node opens only a fresh grant signed since it started. */
  readonly issuedAt: number
  /** The most the session may spend (base units); the node refuses a task past it. */
  readonly spendMax: bigint
  /** Fresh per grant (0x + 32 hex): a grant is opened once; a replay is refused. */
  readonly nonce: string
}

export interface WorkerRegistration {
  readonly chainId: bigint
  readonly gpuClass: string
  readonly devices: number
  readonly stake: bigint
  readonly endpoint: string
  /** ms since the epoch; the node refuses a registration outside its window around its own clock. */
  readonly at: number
  /** Fresh per registration (0x + 32 hex): a replay within the window is refused. */
  readonly nonce: string
}

/** A model provider's upload of one chunk of a registered model's weights. */
export interface WeightsChunk {
  readonly chainId: bigint
  readonly weightsHash: string
  readonly sizeBytes: number
  readonly offset: number
  /** sha256 of the chunk's bytes, 0x-hex: the signature covers the bytes, not only where they go. */
  readonly chunkHash: string
}

export const sessionGrantDigest = (g: SessionGrant): Uint8Array =>
  keccak256(utf8(`topai-session\n${g.chainId}\n${g.model}\n${g.issuedAt}\n${g.expiresAt}\n${g.spendMax}\n${g.nonce}`))

export const workerRegistrationDigest = (r: WorkerRegistration): Uint8Array =>
  keccak256(utf8(`topai-worker\n${r.chainId}\n${r.gpuClass}\n${r.devices}\n${r.stake}\n${r.endpoint}\n${r.at}\n${r.nonce}`))

export const weightsChunkDigest = (c: WeightsChunk): Uint8Array =>
  keccak256(utf8(`topai-weights\n${c.chainId}\n${c.weightsHash}\n${c.sizeBytes}\n${c.offset}\n${c.chunkHash}`))

/** The signed request that carries one chunk of weights: what `model.upload` takes. */
export const signWeightsChunk = (
  key: PrivateKey,
  chainId: bigint,
  weightsHash: string,
  sizeBytes: number,
  offset: number,
  chunk: Uint8Array
): { readonly weightsHash: string; readonly sizeBytes: number; readonly offset: number; readonly data: string; readonly publicKey: string; readonly signature: string } => ({
  weightsHash,
  sizeBytes,
  offset,
  data: Buffer.from(chunk).toString("base64"),
  publicKey: key.publicKey.hex,
  signature: signMessage(weightsChunkDigest({ chainId, weightsHash, sizeBytes, offset, chunkHash: bytesToHex(sha256(chunk)) }), key)
})

/**
 * The developer's request for one task, signed with the grant's key: it
 * binds the task to the grant (its nonce), the model and the inputs (their
 * hash over the decoded tensors, `inputHash.ts`). The task id IS its digest,
 * so a worker's result signature (over the task id) covers the inputs too,
 * and nobody holding the grant can make a task the developer did not ask for.
 */
export interface TaskRequest {
  readonly chainId: bigint
  readonly model: Hash32
  /** The session grant's nonce (0x + 32 hex). */
  readonly grantNonce: string
  /** `inputHash` of the decoded input tensors. */
  readonly inputHash: Hash32
  /** Fresh per call (0x + 32 hex): two calls with the same inputs are two tasks. */
  readonly nonce: string
}

export const taskRequestDigest = (r: TaskRequest): Uint8Array =>
  keccak256(utf8(`topai-task\n${r.chainId}\n${r.model}\n${r.grantNonce}\n${r.inputHash}\n${r.nonce}`))

/** The task id of a request: its digest as 0x-hex. */
export const taskIdOf = (r: TaskRequest): Hash32 => bytesToHex(taskRequestDigest(r)) as Hash32

/** Why a signed task request does not hold: the id is not its digest, or the developer did not sign it. */
export interface TaskRequestProblem {
  readonly reason: "TaskIdMismatch" | "BadRequestSignature"
  readonly detail: string
}

/**
 * The one check of a signed task request, at the gateway, the compute node
 * and the ledger: `taskId` must be the digest of `request`, and `signature`
 * over it must verify for the grant's `publicKey`.
 */
export const checkTaskRequest = (
  request: TaskRequest,
  taskId: string,
  publicKeyHex: string,
  signature: string
): Either.Either<void, TaskRequestProblem> => {
  const digest = taskRequestDigest(request)
  const expected = bytesToHex(digest)
  if (taskId.toLowerCase() !== expected) {
    return Either.left({
      reason: "TaskIdMismatch",
      detail: `task ${taskId} is not the digest of the request (chain ${request.chainId}, model ${request.model}, grant nonce ${request.grantNonce}, inputs ${request.inputHash}, nonce ${request.nonce}), which is ${expected}: the inputs or the nonce are not what was signed`
    })
  }
  const signer = verifyMessage(digest, publicKeyHex, signature)
  return Either.isLeft(signer)
    ? Either.left({ reason: "BadRequestSignature", detail: `task request ${expected}: ${signer.left} for the grant's key ${publicKeyHex}` })
    : Either.right(undefined)
}

/** The request fields a developer sends with each call (the task id is derived from them). */
export const signTaskRequest = (key: PrivateKey, r: TaskRequest): { readonly task: Hash32; readonly nonce: string; readonly signature: string } => {
  const digest = taskRequestDigest(r)
  return { task: bytesToHex(digest) as Hash32, nonce: r.nonce, signature: signMessage(digest, key) }
}

/** A message nonce: 0x + 32 lowercase hex (16 random bytes). */
export const NONCE_PATTERN = /^0x[0-9a-f]{32}$/

/**
 * A worker's signed result: the task, its outputs' fingerprint and the
 * execution units it claims (whole ms of run time, `execMsOf`). The units
 * are signed because they are paid (compute fee, task mining): a gateway
 * that relays the result cannot inflate them.
 */
export const resultDigest = (task: string, fingerprint: string, execMs: number): Uint8Array =>
  keccak256(utf8(`topai-result\n${task}\n${fingerprint}\n${execMs}`))

/**
 * A worker's signed overrun claim: its engine stopped the run of `task` at a
 * limit (`kind`: "Deadline", "LoadDeadline" or "Memory") after `millis` ms
 * (whole ms, `execMsOf`), the limit being `limit` (ms, or bytes for memory).
 * Signed because a confirmed overrun is charged and the `millis` are paid
 * (compute fee): a gateway cannot make one up nor inflate it.
 */
export const overrunDigest = (task: string, kind: string, millis: number, limit: number): Uint8Array =>
  keccak256(utf8(`topai-overrun\n${task}\n${kind}\n${millis}\n${limit}`))

/** The whole ms a run of `millis` counts for (what `resultDigest` and a usage receipt's `execMs` carry). */
export const execMsOf = (millis: number): number => (Number.isFinite(millis) && millis > 0 ? Math.min(Math.round(millis), Number.MAX_SAFE_INTEGER) : 0)

export const signMessage = (digest: Uint8Array, key: PrivateKey): string => bytesToHex(key.signDigest(digest))

/** The signer's public key if `signature` (0x-hex, 64 bytes) over `digest` verifies for `publicKeyHex`. */
export const verifyMessage = (
  digest: Uint8Array,
  publicKeyHex: string,
  signature: string
): Either.Either<PublicKey, string> => {
  const key = Either.flatMap(
    Either.mapLeft(hexToBytes(publicKeyHex.toLowerCase(), PUBLIC_KEY_BYTES), (e) => e.message),
    (bytes) => Either.mapLeft(PublicKey.fromBytes(bytes), (e) => e.message)
  )
  if (Either.isLeft(key)) return Either.left(`public key: ${key.left}`)
  const sig = hexToBytes(signature.toLowerCase(), SIGNATURE_BYTES)
  if (Either.isLeft(sig)) return Either.left(`signature: ${sig.left.message}`)
  return verifyDigest(sig.right, digest, key.right) ? Either.right(key.right) : Either.left("the signature does not verify")
}

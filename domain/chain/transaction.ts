/**
 * Transactions. The canonical form is RLP:
 *
 *   signed   = [chainId, nonce, fee, kind, payload, publicKey, signature]
 *   digest   = keccak256(rlp([chainId, nonce, fee, kind, payload, publicKey]))
 *   hash     = keccak256(rlp(signed))
 *
 * `kind` is the payload's name as UTF-8 bytes and `payload` its own RLP list
 * (transfer: [to, amount]); new kinds (the AI shard's model and escrow
 * transactions, governance, worker stakes) add a schema and a codec below. The sender is the address of
 * `publicKey`, so no recovery is needed. The wire form is the signed RLP
 * (hex in JSON); `Transaction` is the decoded value with its hash, digest and
 * bytes computed once.
 */
import { Either, ParseResult, Schema } from "effect"
import { Hash32, HASH_BYTES, hashBytes, keccak256, keccakHex } from "./hash.js"
import { bytesToHex, equalBytes, fixedHex, HexString, hexToBytes, utf8 } from "./hex.js"
import { Address, ADDRESS_BYTES, addressBytes, PublicKey, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, verifyDigest, type PrivateKey } from "./keys.js"
import { ModelManifest } from "../ai/manifest.js"
import { PPM } from "../economics/config.js"
import { BLS_PUBLIC_KEY_BYTES, BLS_SIGNATURE_BYTES } from "../consensus/bls.js"
import { decodeRlp, encodeRlp, rlpBytes, rlpList, rlpToBigInt, type RlpInput, type RlpItem } from "./rlp.js"
import { decodeResultChallenge, encodeResultChallenge, resultChallengePayloadOf } from "./payloads/resultChallenge.js"
import { decodeUsageOverran, encodeUsageOverran, usageOverranSchemasOf } from "./payloads/usageOverran.js"
import { workerLivenessCodec, WorkerLivenessPayload, workerMeasureCodec, WorkerMeasurePayload } from "./payloads/workerLiveness.js"

/** Bigger transactions are refused before any decoding work. */
export const MAX_TRANSACTION_BYTES = 4096
/** chainId, nonce, fee and amounts are uint256. */
export const UINT_BYTES_MAX = 32
const UINT_LIMIT = 1n << BigInt(8 * UINT_BYTES_MAX)
const SIGNED_FIELDS = 7

export const Uint256 = Schema.BigInt.pipe(Schema.nonNegativeBigInt(), Schema.lessThanBigInt(UINT_LIMIT))
export const PositiveAmount = Schema.BigInt.pipe(Schema.positiveBigInt(), Schema.lessThanBigInt(UINT_LIMIT))

// ---------------------------------------------------------------- payloads (one per kind)

export const TransferPayload = Schema.Struct({
  kind: Schema.Literal("transfer"),
  to: Address,
  amount: PositiveAmount
})
export type TransferPayload = typeof TransferPayload.Type

/** Pay into the AI shard's escrow for calls to `model` (a transfer to the escrow account). */
export const EscrowDepositPayload = Schema.Struct({
  kind: Schema.Literal("escrow.deposit"),
  model: Hash32,
  amount: PositiveAmount
})
export type EscrowDepositPayload = typeof EscrowDepositPayload.Type

/** Publish a model: its weights' sha256, size and manifest (JSON). The model's id is this tx's hash. */
export const ModelRegisterPayload = Schema.Struct({
  kind: Schema.Literal("model.register"),
  weightsHash: Hash32,
  sizeBytes: PositiveAmount,
  manifest: Schema.String
})
export type ModelRegisterPayload = typeof ModelRegisterPayload.Type

export const ModelPricePayload = Schema.Struct({
  kind: Schema.Literal("model.price"),
  model: Hash32,
  price: Uint256
})
export type ModelPricePayload = typeof ModelPricePayload.Type

export const ModelDeprecatePayload = Schema.Struct({
  kind: Schema.Literal("model.deprecate"),
  model: Hash32
})
export type ModelDeprecatePayload = typeof ModelDeprecatePayload.Type

/** Parts per million: an integer in [0, 10^6]. */
export const PpmValue = Schema.BigInt.pipe(Schema.betweenBigInt(0n, PPM))

/**
 * Governance proposes how each epoch's issuance is split between shard kinds
 * (ppm, summing to exactly 10^6). Only the chain's governance address may send it.
 */
export const GovShardSharesPayload = Schema.Struct({
  kind: Schema.Literal("gov.shard-shares"),
  ai: PpmValue,
  beacon: PpmValue,
  transfer: PpmValue
}).pipe(Schema.filter((p) => p.ai + p.beacon + p.transfer === PPM || `shard shares must sum to ${PPM} ppm`))
export type GovShardSharesPayload = typeof GovShardSharesPayload.Type

/** Bond `amount` as `worker`'s stake: the amount moves from the sender (the owner) to the stake pool. */
export const WorkerStakePayload = Schema.Struct({
  kind: Schema.Literal("worker.stake"),
  worker: Address,
  amount: PositiveAmount
})
export type WorkerStakePayload = typeof WorkerStakePayload.Type

/** Ask for `amount` of `worker`'s bonded stake back; the economy releases it from the pool after unbonding. */
export const WorkerUnbondPayload = Schema.Struct({
  kind: Schema.Literal("worker.unbond"),
  worker: Address,
  amount: PositiveAmount
})
export type WorkerUnbondPayload = typeof WorkerUnbondPayload.Type

/**
 * Send `amount` to the sender's own account on the beacon, where a
 * validator's stake lives (its stake is its beacon balance). A transfer-shard
 * transaction: the money crosses by a receipt to shard 0.
 */
export const ValidatorStakePayload = Schema.Struct({
  kind: Schema.Literal("validator.stake"),
  amount: PositiveAmount
})
export type ValidatorStakePayload = typeof ValidatorStakePayload.Type

export const BLS_PUBLIC_KEY_HEX = fixedHex(BLS_PUBLIC_KEY_BYTES)
export const BLS_PROOF_HEX = fixedHex(BLS_SIGNATURE_BYTES)
/** A validator's endpoint (for example ws://host:port), in characters. */
export const ENDPOINT_CHARS_MIN = 1
export const ENDPOINT_CHARS_MAX = 200
export const ValidatorEndpoint = Schema.String.pipe(Schema.minLength(ENDPOINT_CHARS_MIN), Schema.maxLength(ENDPOINT_CHARS_MAX))

/**
 * Join (or update) the beacon's validator registry with a BLS key, its proof
 * of possession and an endpoint. A beacon transaction: the sender's beacon
 * account pays the fee.
 */
export const ValidatorRegisterPayload = Schema.Struct({
  kind: Schema.Literal("validator.register"),
  blsPublicKey: BLS_PUBLIC_KEY_HEX,
  proofOfPossession: BLS_PROOF_HEX,
  endpoint: ValidatorEndpoint
})
export type ValidatorRegisterPayload = typeof ValidatorRegisterPayload.Type

/** Leave the registry at the next epoch end; the beacon balance then goes back to the sender's transfer shard. */
export const ValidatorUnbondPayload = Schema.Struct({
  kind: Schema.Literal("validator.unbond")
})
export type ValidatorUnbondPayload = typeof ValidatorUnbondPayload.Type

// ---------------------------------------------------------------- the AI shard's kinds (issue 12)

/** A rejection's reason in a `model.attest`, in characters. */
export const ATTEST_REASON_CHARS_MAX = 200
export const AttestReason = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(ATTEST_REASON_CHARS_MAX))

/** A committee member's verdict on a pending model: verified with its reference fingerprint, or rejected with a reason. */
export const ModelAttestVerifiedPayload = Schema.Struct({
  kind: Schema.Literal("model.attest"),
  model: Hash32,
  verdict: Schema.Literal("verified"),
  fingerprint: Hash32
})
export const ModelAttestRejectedPayload = Schema.Struct({
  kind: Schema.Literal("model.attest"),
  model: Hash32,
  verdict: Schema.Literal("rejected"),
  reason: AttestReason
})
export const ModelAttestPayload = Schema.Union(ModelAttestVerifiedPayload, ModelAttestRejectedPayload)
export type ModelAttestPayload = typeof ModelAttestPayload.Type

export const GPU_CLASS_CHARS_MAX = 32
export const WORKER_DEVICES_MAX = 1024
/** A worker joins the AI shard's registry (signed by the worker's own key: the sender is the worker). */
export const WorkerRegisterPayload = Schema.Struct({
  kind: Schema.Literal("worker.register"),
  gpuClass: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(GPU_CLASS_CHARS_MAX)),
  devices: Schema.Int.pipe(Schema.between(1, WORKER_DEVICES_MAX)),
  endpoint: ValidatorEndpoint
})
export type WorkerRegisterPayload = typeof WorkerRegisterPayload.Type

/** Take back `amount` of the sender's unspent escrow for `model` (it returns by receipt). */
export const EscrowWithdrawPayload = Schema.Struct({
  kind: Schema.Literal("escrow.withdraw"),
  model: Hash32,
  amount: PositiveAmount
})
export type EscrowWithdrawPayload = typeof EscrowWithdrawPayload.Type

/** ms timestamps and execution times fit a JS number exactly. */
export const MS_MAX = Number.MAX_SAFE_INTEGER
const Ms = Schema.Int.pipe(Schema.between(0, MS_MAX))
const Signature = fixedHex(SIGNATURE_BYTES)
const PublicKeyHex = fixedHex(PUBLIC_KEY_BYTES)
/** A session grant's nonce: 16 bytes (`NONCE_PATTERN` of signedMessages.ts). */
export const GRANT_NONCE_BYTES = 16

/**
 * The developer's signed session grant as a usage receipt carries it: the
 * `SessionGrant` fields (`domain/ai/signedMessages.ts`), its signature and
 * the developer's public key (the ledger recovers the developer from it).
 */
export const SignedGrant = Schema.Struct({
  chainId: Uint256,
  model: Hash32,
  issuedAt: Ms,
  expiresAt: Ms,
  spendMax: Uint256,
  nonce: fixedHex(GRANT_NONCE_BYTES),
  publicKey: PublicKeyHex,
  signature: Signature
})
export type SignedGrant = typeof SignedGrant.Type

/** One worker's signed result: its signature covers `resultDigest(taskId, fingerprint, execMs)`. */
export const UsageResult = Schema.Struct({
  worker: Address,
  fingerprint: Hash32,
  execMs: Ms,
  signature: Signature
})
export type UsageResult = typeof UsageResult.Type

export const USAGE_RESULTS_MAX = 16
export const USAGE_RECEIPTS_MAX = 256
/** A `usage.settle` may be this big (every other kind: MAX_TRANSACTION_BYTES). */
export const MAX_USAGE_SETTLE_BYTES = 512 * 1024

/**
 * The developer's signed request for the task (`TaskRequest` of
 * signedMessages.ts): with the grant's chain id and nonce and the receipt's
 * model, its digest is the task id, and the grant's key signed it.
 */
export const UsageRequest = Schema.Struct({
  inputHash: Hash32,
  nonce: fixedHex(GRANT_NONCE_BYTES),
  signature: Signature
})
export type UsageRequest = typeof UsageRequest.Type

/** A validated task as the parties signed it: what a gateway submits for settlement. */
export const UsageReceipt = Schema.Struct({
  grant: SignedGrant,
  taskId: Hash32,
  model: Hash32,
  price: Uint256,
  results: Schema.Array(UsageResult).pipe(Schema.minItems(1), Schema.maxItems(USAGE_RESULTS_MAX)),
  request: UsageRequest
})
export type UsageReceipt = typeof UsageReceipt.Type

/**
 * Signatures one `usage.settle` may make execution verify (a grant, the
 * request and each result per receipt): each costs ~1 ms of noble on every
 * member, so the budget bounds a block's work (256 receipts of up to 2
 * results fit).
 */
export const USAGE_SIGNATURES_MAX = 1024
/** The signatures one receipt makes execution verify: its grant, its request, each result. */
export const receiptSignatures = (r: { readonly results: ReadonlyArray<unknown> }): number => 2 + r.results.length
const signaturesOf = (receipts: ReadonlyArray<{ readonly results: ReadonlyArray<unknown> }>): number =>
  receipts.reduce((n, r) => n + receiptSignatures(r), 0)

/** Settle validated tasks (any sender; usually a gateway). Each receipt settles or is refused on its own. */
export const UsageSettlePayload = Schema.Struct({
  kind: Schema.Literal("usage.settle"),
  receipts: Schema.Array(UsageReceipt).pipe(Schema.minItems(1), Schema.maxItems(USAGE_RECEIPTS_MAX))
}).pipe(
  Schema.filter((p) => signaturesOf(p.receipts) <= USAGE_SIGNATURES_MAX || `usage.settle carries more than ${USAGE_SIGNATURES_MAX} signatures`)
)
export type UsageSettlePayload = typeof UsageSettlePayload.Type

/** A wrong result proven by two agreeing ones (payloads/resultChallenge.ts); only AI-shard members send it. */
export const ResultChallengePayload = resultChallengePayloadOf(SignedGrant, UsageResult)
export type ResultChallengePayload = typeof ResultChallengePayload.Type

/** Tasks that overran on two workers, charged (payloads/usageOverran.ts); only AI-shard members send it. */
const usageOverranSchemas = usageOverranSchemasOf({ grant: SignedGrant, request: UsageRequest, ms: Ms, signature: Signature, uint: Uint256 })
export const OverrunClaim = usageOverranSchemas.claim
export type OverrunClaim = typeof OverrunClaim.Type
export const OverranReceipt = usageOverranSchemas.receipt
export type OverranReceipt = typeof OverranReceipt.Type
export const UsageOverranPayload = usageOverranSchemas.payload
export type UsageOverranPayload = typeof UsageOverranPayload.Type

/** Grows with new kinds: add the struct here and its codec in `payloadCodecs`. */
export const TransactionPayload = Schema.Union(
  TransferPayload,
  EscrowDepositPayload,
  ModelRegisterPayload,
  ModelPricePayload,
  ModelDeprecatePayload,
  GovShardSharesPayload,
  WorkerStakePayload,
  WorkerUnbondPayload,
  ValidatorStakePayload,
  ValidatorRegisterPayload,
  ValidatorUnbondPayload,
  ModelAttestPayload,
  WorkerRegisterPayload,
  UsageSettlePayload,
  EscrowWithdrawPayload,
  ResultChallengePayload,
  WorkerLivenessPayload,
  WorkerMeasurePayload,
  UsageOverranPayload
)
export type TransactionPayload = typeof TransactionPayload.Type
export type TransactionKind = TransactionPayload["kind"]

export class TransactionBody extends Schema.Class<TransactionBody>("TransactionBody")({
  chainId: Uint256,
  nonce: Uint256,
  fee: Uint256,
  payload: TransactionPayload
}) {
  get kind(): TransactionKind {
    return this.payload.kind
  }
}

export interface PayloadCodec<P extends TransactionPayload> {
  readonly encode: (payload: P) => RlpInput
  readonly decode: (item: RlpItem) => Either.Either<P, string>
}

const transferCodec: PayloadCodec<TransferPayload> = {
  encode: (p) => [addressBytes(p.to), p.amount],
  decode: (item) => {
    if (item instanceof Uint8Array || item.length !== 2) return Either.left("transfer payload must be [to, amount]")
    const [toItem, amountItem] = item as readonly [RlpItem, RlpItem]
    if (!(toItem instanceof Uint8Array) || toItem.length !== ADDRESS_BYTES) {
      return Either.left(`transfer.to must be ${ADDRESS_BYTES} bytes`)
    }
    const amount = rlpToBigInt(amountItem, "transfer.amount", UINT_BYTES_MAX)
    if (Either.isLeft(amount)) return Either.left(amount.left.message)
    if (amount.right === 0n) return Either.left("transfer.amount must be positive")
    return Either.right({ kind: "transfer", to: bytesToHex(toItem) as Address, amount: amount.right })
  }
}

/** The largest manifest a model.register carries (the whole tx is capped at MAX_TRANSACTION_BYTES). */
export const MANIFEST_BYTES_MAX = 3072

export const list = (item: RlpItem, length: number, what: string): Either.Either<ReadonlyArray<RlpItem>, string> =>
  item instanceof Uint8Array || item.length !== length
    ? Either.left(`${what} payload must be a list of ${length}`)
    : Either.right(item)

export const hashField = (item: RlpItem, what: string): Either.Either<Hash32, string> =>
  item instanceof Uint8Array && item.length === HASH_BYTES
    ? Either.right(bytesToHex(item) as Hash32)
    : Either.left(`${what} must be ${HASH_BYTES} bytes`)

export const positive = (item: RlpItem, what: string): Either.Either<bigint, string> =>
  Either.flatMap(
    Either.mapLeft(rlpToBigInt(item, what, UINT_BYTES_MAX), (e) => e.message),
    (n) => (n === 0n ? Either.left(`${what} must be positive`) : Either.right(n))
  )

const escrowDepositCodec: PayloadCodec<EscrowDepositPayload> = {
  encode: (p) => [hashBytes(p.model), p.amount],
  decode: (item) =>
    Either.gen(function* () {
      const [model, amount] = yield* list(item, 2, "escrow.deposit")
      return {
        kind: "escrow.deposit" as const,
        model: yield* hashField(model!, "escrow.deposit.model"),
        amount: yield* positive(amount!, "escrow.deposit.amount")
      }
    })
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true })
const decodeManifest = Schema.decodeUnknownEither(Schema.parseJson(ModelManifest))

const modelRegisterCodec: PayloadCodec<ModelRegisterPayload> = {
  encode: (p) => [hashBytes(p.weightsHash), p.sizeBytes, utf8(p.manifest)],
  decode: (item) =>
    Either.gen(function* () {
      const [weights, size, manifest] = yield* list(item, 3, "model.register")
      if (!(manifest instanceof Uint8Array) || manifest.length > MANIFEST_BYTES_MAX) {
        return yield* Either.left(`model.register.manifest must be at most ${MANIFEST_BYTES_MAX} bytes of UTF-8`)
      }
      const text = yield* Either.try({ try: () => strictUtf8.decode(manifest), catch: () => "model.register.manifest is not UTF-8" })
      yield* Either.mapLeft(decodeManifest(text), (e) => `model.register.manifest: ${e.message}`)
      return {
        kind: "model.register" as const,
        weightsHash: yield* hashField(weights!, "model.register.weightsHash"),
        sizeBytes: yield* positive(size!, "model.register.sizeBytes"),
        manifest: text
      }
    })
}

const modelPriceCodec: PayloadCodec<ModelPricePayload> = {
  encode: (p) => [hashBytes(p.model), p.price],
  decode: (item) =>
    Either.gen(function* () {
      const [model, price] = yield* list(item, 2, "model.price")
      return {
        kind: "model.price" as const,
        model: yield* hashField(model!, "model.price.model"),
        price: yield* Either.mapLeft(rlpToBigInt(price!, "model.price.price", UINT_BYTES_MAX), (e) => e.message)
      }
    })
}

const modelDeprecateCodec: PayloadCodec<ModelDeprecatePayload> = {
  encode: (p) => [hashBytes(p.model)],
  decode: (item) =>
    Either.gen(function* () {
      const [model] = yield* list(item, 1, "model.deprecate")
      return { kind: "model.deprecate" as const, model: yield* hashField(model!, "model.deprecate.model") }
    })
}

const ppmField = (item: RlpItem, what: string): Either.Either<bigint, string> =>
  Either.flatMap(
    Either.mapLeft(rlpToBigInt(item, what, UINT_BYTES_MAX), (e) => e.message),
    (n) => (n > PPM ? Either.left(`${what} must be at most ${PPM} ppm`) : Either.right(n))
  )

const govShardSharesCodec: PayloadCodec<GovShardSharesPayload> = {
  encode: (p) => [p.ai, p.beacon, p.transfer],
  decode: (item) =>
    Either.gen(function* () {
      const [ai, beacon, transfer] = yield* list(item, 3, "gov.shard-shares")
      const shares = {
        kind: "gov.shard-shares" as const,
        ai: yield* ppmField(ai!, "gov.shard-shares.ai"),
        beacon: yield* ppmField(beacon!, "gov.shard-shares.beacon"),
        transfer: yield* ppmField(transfer!, "gov.shard-shares.transfer")
      }
      const sum = shares.ai + shares.beacon + shares.transfer
      if (sum !== PPM) return yield* Either.left(`gov.shard-shares must sum to ${PPM} ppm, got ${sum}`)
      return shares
    })
}

export const addressField = (item: RlpItem, what: string): Either.Either<Address, string> =>
  item instanceof Uint8Array && item.length === ADDRESS_BYTES
    ? Either.right(bytesToHex(item) as Address)
    : Either.left(`${what} must be ${ADDRESS_BYTES} bytes`)

/** worker.stake and worker.unbond: [worker, amount]. */
const decodeWorkerAmount = (
  item: RlpItem,
  kind: string
): Either.Either<{ readonly worker: Address; readonly amount: bigint }, string> =>
  Either.gen(function* () {
    const [worker, amount] = yield* list(item, 2, kind)
    return { worker: yield* addressField(worker!, `${kind}.worker`), amount: yield* positive(amount!, `${kind}.amount`) }
  })

const workerStakeCodec: PayloadCodec<WorkerStakePayload> = {
  encode: (p) => [addressBytes(p.worker), p.amount],
  decode: (item) => Either.map(decodeWorkerAmount(item, "worker.stake"), (f) => ({ kind: "worker.stake" as const, ...f }))
}

const workerUnbondCodec: PayloadCodec<WorkerUnbondPayload> = {
  encode: (p) => [addressBytes(p.worker), p.amount],
  decode: (item) => Either.map(decodeWorkerAmount(item, "worker.unbond"), (f) => ({ kind: "worker.unbond" as const, ...f }))
}

const validatorStakeCodec: PayloadCodec<ValidatorStakePayload> = {
  encode: (p) => [p.amount],
  decode: (item) =>
    Either.gen(function* () {
      const [amount] = yield* list(item, 1, "validator.stake")
      return { kind: "validator.stake" as const, amount: yield* positive(amount!, "validator.stake.amount") }
    })
}

export const fixedBytes = (item: RlpItem, length: number, what: string): Either.Either<string, string> =>
  item instanceof Uint8Array && item.length === length
    ? Either.right(bytesToHex(item))
    : Either.left(`${what} must be ${length} bytes${item instanceof Uint8Array ? `, got ${item.length}` : ", got a list"}`)

const validatorRegisterCodec: PayloadCodec<ValidatorRegisterPayload> = {
  encode: (p) => [
    Either.getOrThrow(hexToBytes(p.blsPublicKey)),
    Either.getOrThrow(hexToBytes(p.proofOfPossession)),
    utf8(p.endpoint)
  ],
  decode: (item) =>
    Either.gen(function* () {
      const [key, proof, endpoint] = yield* list(item, 3, "validator.register")
      const blsPublicKey = yield* fixedBytes(key!, BLS_PUBLIC_KEY_BYTES, "validator.register.blsPublicKey")
      const proofOfPossession = yield* fixedBytes(proof!, BLS_SIGNATURE_BYTES, "validator.register.proofOfPossession")
      if (!(endpoint instanceof Uint8Array)) return yield* Either.left("validator.register.endpoint must be a string")
      const text = yield* Either.try({ try: () => strictUtf8.decode(endpoint), catch: () => "validator.register.endpoint is not UTF-8" })
      const chars = [...text].length
      if (chars < ENDPOINT_CHARS_MIN || chars > ENDPOINT_CHARS_MAX) {
        return yield* Either.left(
          `validator.register.endpoint must be ${ENDPOINT_CHARS_MIN} to ${ENDPOINT_CHARS_MAX} characters, got ${chars}`
        )
      }
      return { kind: "validator.register" as const, blsPublicKey, proofOfPossession, endpoint: text }
    })
}

const validatorUnbondCodec: PayloadCodec<ValidatorUnbondPayload> = {
  encode: () => [],
  decode: (item) => Either.map(list(item, 0, "validator.unbond"), () => ({ kind: "validator.unbond" as const }))
}

const boundedText = (item: RlpItem, min: number, max: number, what: string): Either.Either<string, string> =>
  Either.gen(function* () {
    if (!(item instanceof Uint8Array)) return yield* Either.left(`${what} must be a string`)
    const text = yield* Either.try({ try: () => strictUtf8.decode(item), catch: () => `${what} is not UTF-8` })
    const chars = [...text].length
    if (chars < min || chars > max) return yield* Either.left(`${what} must be ${min} to ${max} characters, got ${chars}`)
    return text
  })

export const uintField = (item: RlpItem, what: string): Either.Either<bigint, string> =>
  Either.mapLeft(rlpToBigInt(item, what, UINT_BYTES_MAX), (e) => e.message)

/** A non-negative integer that fits a JS number exactly, at most `max`. */
export const smallInt = (item: RlpItem, max: number, what: string): Either.Either<number, string> =>
  Either.flatMap(Either.mapLeft(rlpToBigInt(item, what, 8), (e) => e.message), (n) =>
    n > BigInt(max) ? Either.left(`${what} must be at most ${max}`) : Either.right(Number(n))
  )

const hexBytes = (hex: string): Uint8Array => Either.getOrThrow(hexToBytes(hex))

const VERDICTS = ["verified", "rejected"] as const

const modelAttestCodec: PayloadCodec<ModelAttestPayload> = {
  encode: (p) => [hashBytes(p.model), utf8(p.verdict), p.verdict === "verified" ? hashBytes(p.fingerprint) : utf8(p.reason)],
  decode: (item) =>
    Either.gen(function* () {
      const [model, verdictI, detail] = yield* list(item, 3, "model.attest")
      const m = yield* hashField(model!, "model.attest.model")
      const verdict = verdictI instanceof Uint8Array ? utf8Decoder.decode(verdictI) : ""
      if (verdict === "verified") {
        return { kind: "model.attest" as const, model: m, verdict, fingerprint: yield* hashField(detail!, "model.attest.fingerprint") }
      }
      if (verdict === "rejected") {
        const reason = yield* boundedText(detail!, 1, ATTEST_REASON_CHARS_MAX, "model.attest.reason")
        return { kind: "model.attest" as const, model: m, verdict, reason }
      }
      return yield* Either.left(`model.attest.verdict must be one of ${VERDICTS.join(", ")}`)
    })
}

const workerRegisterCodec: PayloadCodec<WorkerRegisterPayload> = {
  encode: (p) => [utf8(p.gpuClass), BigInt(p.devices), utf8(p.endpoint)],
  decode: (item) =>
    Either.gen(function* () {
      const [gpuClass, devices, endpoint] = yield* list(item, 3, "worker.register")
      const n = yield* smallInt(devices!, WORKER_DEVICES_MAX, "worker.register.devices")
      if (n < 1) return yield* Either.left("worker.register.devices must be at least 1")
      return {
        kind: "worker.register" as const,
        gpuClass: yield* boundedText(gpuClass!, 1, GPU_CLASS_CHARS_MAX, "worker.register.gpuClass"),
        devices: n,
        endpoint: yield* boundedText(endpoint!, ENDPOINT_CHARS_MIN, ENDPOINT_CHARS_MAX, "worker.register.endpoint")
      }
    })
}

const escrowWithdrawCodec: PayloadCodec<EscrowWithdrawPayload> = {
  encode: (p) => [hashBytes(p.model), p.amount],
  decode: (item) =>
    Either.gen(function* () {
      const [model, amount] = yield* list(item, 2, "escrow.withdraw")
      return {
        kind: "escrow.withdraw" as const,
        model: yield* hashField(model!, "escrow.withdraw.model"),
        amount: yield* positive(amount!, "escrow.withdraw.amount")
      }
    })
}

export const encodeGrant = (g: SignedGrant): RlpInput => [
  g.chainId,
  hashBytes(g.model),
  BigInt(g.issuedAt),
  BigInt(g.expiresAt),
  g.spendMax,
  hexBytes(g.nonce),
  hexBytes(g.publicKey),
  hexBytes(g.signature)
]

export const decodeGrant = (item: RlpItem, what: string): Either.Either<SignedGrant, string> =>
  Either.gen(function* () {
    const [chainId, model, issuedAt, expiresAt, spendMax, nonce, publicKey, signature] = yield* list(item, 8, what)
    return {
      chainId: yield* uintField(chainId!, `${what}.chainId`),
      model: yield* hashField(model!, `${what}.model`),
      issuedAt: yield* smallInt(issuedAt!, MS_MAX, `${what}.issuedAt`),
      expiresAt: yield* smallInt(expiresAt!, MS_MAX, `${what}.expiresAt`),
      spendMax: yield* uintField(spendMax!, `${what}.spendMax`),
      nonce: yield* fixedBytes(nonce!, GRANT_NONCE_BYTES, `${what}.nonce`),
      publicKey: yield* fixedBytes(publicKey!, PUBLIC_KEY_BYTES, `${what}.publicKey`),
      signature: yield* fixedBytes(signature!, SIGNATURE_BYTES, `${what}.signature`)
    }
  })

export const decodeResult = (item: RlpItem, what: string): Either.Either<UsageResult, string> =>
  Either.gen(function* () {
    const [worker, fingerprint, execMs, signature] = yield* list(item, 4, what)
    return {
      worker: yield* addressField(worker!, `${what}.worker`),
      fingerprint: yield* hashField(fingerprint!, `${what}.fingerprint`),
      execMs: yield* smallInt(execMs!, MS_MAX, `${what}.execMs`),
      signature: yield* fixedBytes(signature!, SIGNATURE_BYTES, `${what}.signature`)
    }
  })

export const encodeResult = (x: UsageResult): RlpInput => [addressBytes(x.worker), hashBytes(x.fingerprint), BigInt(x.execMs), hexBytes(x.signature)]
export const encodeRequest = (q: UsageRequest): RlpInput => [hashBytes(q.inputHash), hexBytes(q.nonce), hexBytes(q.signature)]
export const decodeRequest = (item: RlpItem, what: string): Either.Either<UsageRequest, string> =>
  Either.gen(function* () {
    const [inputHash, nonce, signature] = yield* list(item, 3, what)
    return {
      inputHash: yield* hashField(inputHash!, `${what}.inputHash`),
      nonce: yield* fixedBytes(nonce!, GRANT_NONCE_BYTES, `${what}.nonce`),
      signature: yield* fixedBytes(signature!, SIGNATURE_BYTES, `${what}.signature`)
    }
  })

/** A list of 1..max items, each decoded by `decode`. */
export const boundedList = <A>(
  item: RlpItem,
  max: number,
  what: string,
  decode: (x: RlpItem, what: string) => Either.Either<A, string>
): Either.Either<Array<A>, string> =>
  Either.gen(function* () {
    if (item instanceof Uint8Array) return yield* Either.left(`${what} must be a list`)
    if (item.length < 1 || item.length > max) return yield* Either.left(`${what} must hold 1 to ${max} items, got ${item.length}`)
    const out: Array<A> = []
    for (const [i, x] of item.entries()) out.push(yield* decode(x, `${what}[${i}]`))
    return out
  })

const decodeUsageReceipt = (item: RlpItem, what: string): Either.Either<UsageReceipt, string> =>
  Either.gen(function* () {
    const [grant, taskId, model, price, results, request] = yield* list(item, 6, what)
    return {
      grant: yield* decodeGrant(grant!, `${what}.grant`),
      taskId: yield* hashField(taskId!, `${what}.taskId`),
      model: yield* hashField(model!, `${what}.model`),
      price: yield* uintField(price!, `${what}.price`),
      results: yield* boundedList(results!, USAGE_RESULTS_MAX, `${what}.results`, decodeResult),
      request: yield* decodeRequest(request!, `${what}.request`)
    }
  })

const usageSettleCodec: PayloadCodec<UsageSettlePayload> = {
  encode: (p) =>
    p.receipts.map((r) => [
      encodeGrant(r.grant),
      hashBytes(r.taskId),
      hashBytes(r.model),
      r.price,
      r.results.map((x) => [addressBytes(x.worker), hashBytes(x.fingerprint), BigInt(x.execMs), hexBytes(x.signature)]),
      [hashBytes(r.request.inputHash), hexBytes(r.request.nonce), hexBytes(r.request.signature)]
    ]),
  decode: (item) =>
    Either.flatMap(boundedList(item, USAGE_RECEIPTS_MAX, "usage.settle.receipts", decodeUsageReceipt), (receipts) => {
      const n = signaturesOf(receipts)
      return n > USAGE_SIGNATURES_MAX
        ? Either.left(`usage.settle carries ${n} signatures, at most ${USAGE_SIGNATURES_MAX}`)
        : Either.right({ kind: "usage.settle" as const, receipts })
    })
}

const payloadCodecs: { readonly [K in TransactionKind]: PayloadCodec<Extract<TransactionPayload, { kind: K }>> } = {
  transfer: transferCodec,
  "escrow.deposit": escrowDepositCodec,
  "model.register": modelRegisterCodec,
  "model.price": modelPriceCodec,
  "model.deprecate": modelDeprecateCodec,
  "gov.shard-shares": govShardSharesCodec,
  "worker.stake": workerStakeCodec,
  "worker.unbond": workerUnbondCodec,
  "validator.stake": validatorStakeCodec,
  "validator.register": validatorRegisterCodec,
  "validator.unbond": validatorUnbondCodec,
  "model.attest": modelAttestCodec,
  "worker.register": workerRegisterCodec,
  "usage.settle": usageSettleCodec,
  "escrow.withdraw": escrowWithdrawCodec,
  "result.challenge": { encode: encodeResultChallenge, decode: decodeResultChallenge },
  "worker.liveness": workerLivenessCodec,
  "worker.measure": workerMeasureCodec,
  "usage.overran": { encode: encodeUsageOverran, decode: decodeUsageOverran }
}

/** The codec of a kind; the table's type guarantees each kind's codec matches its payload. */
const codecOf = (kind: TransactionKind): PayloadCodec<TransactionPayload> =>
  payloadCodecs[kind] as unknown as PayloadCodec<TransactionPayload>

/** What a payload moves out of the sender's balance besides the fee. */
export const amountOf = (payload: TransactionPayload): bigint =>
  payload.kind === "transfer" || payload.kind === "escrow.deposit" || payload.kind === "worker.stake" || payload.kind === "validator.stake"
    ? payload.amount
    : 0n

/** Kinds the beacon executes (the sender's beacon account pays and counts the nonce); besides these and the AI shard's, every kind runs on the sender's transfer shard. */
export const BEACON_KINDS: ReadonlySet<TransactionKind> = new Set<TransactionKind>(["validator.register", "validator.unbond"])
export const isBeaconKind = (kind: TransactionKind): boolean => BEACON_KINDS.has(kind)

/**
 * Kinds the AI shard executes (the sender's AI-shard account counts the nonce
 * and pays the fee, which may be 0: a provider holds nothing there).
 */
export const AI_SHARD_KINDS: ReadonlySet<TransactionKind> = new Set<TransactionKind>([
  "model.register",
  "model.price",
  "model.deprecate",
  "model.attest",
  "worker.register",
  "worker.unbond",
  "usage.settle",
  "escrow.withdraw",
  "gov.shard-shares",
  "result.challenge",
  "worker.liveness",
  "worker.measure",
  "usage.overran"
])
export const isAiShardKind = (kind: TransactionKind): boolean => AI_SHARD_KINDS.has(kind)

const isKind = (s: string): s is TransactionKind => Object.hasOwn(payloadCodecs, s)

/**
 * The size limit of a kind's signed transaction. Only `usage.settle` and `usage.overran` (up to
 * 256 receipts, each with signatures) may pass MAX_TRANSACTION_BYTES;
 * `decodeTransaction` checks it once the kind is read, before the payload.
 */
export const maxBytesOf = (kind: TransactionKind): number =>
  kind === "usage.settle" || kind === "usage.overran" ? MAX_USAGE_SETTLE_BYTES : MAX_TRANSACTION_BYTES
/** No transaction of any kind is bigger: the check before any decoding work. */
export const MAX_ANY_TRANSACTION_BYTES = MAX_USAGE_SETTLE_BYTES

// ---------------------------------------------------------------- errors

export class MalformedTransaction extends Schema.TaggedError<MalformedTransaction>()("MalformedTransaction", {
  detail: Schema.String
}) {
  override get message(): string {
    return `malformed transaction: ${this.detail}`
  }
}

export class OversizedTransaction extends Schema.TaggedError<OversizedTransaction>()("OversizedTransaction", {
  size: Schema.Int,
  max: Schema.Int
}) {
  override get message(): string {
    return `transaction of ${this.size} bytes exceeds ${this.max}`
  }
}

// ---------------------------------------------------------------- the signed transaction

const unsignedFields = (body: TransactionBody, publicKey: PublicKey): Array<RlpInput> => [
  body.chainId,
  body.nonce,
  body.fee,
  utf8(body.payload.kind),
  codecOf(body.payload.kind).encode(body.payload),
  publicKey.bytes
]

export const signingDigest = (body: TransactionBody, publicKey: PublicKey): Uint8Array =>
  keccak256(encodeRlp(unsignedFields(body, publicKey)))

export class Transaction {
  /** keccak256 of `encoded`. */
  readonly hash: Hash32
  #digest: Uint8Array | undefined
  private constructor(
    readonly body: TransactionBody,
    readonly publicKey: PublicKey,
    readonly signature: Uint8Array,
    /** The canonical signed RLP: what goes on the wire and into blocks. */
    readonly encoded: Uint8Array
  ) {
    this.hash = keccakHex(encoded)
  }
  /** Assemble from parts (signature unchecked: see `verifyTransactionSignature`). */
  static make(body: TransactionBody, publicKey: PublicKey, signature: Uint8Array): Transaction {
    if (signature.length !== SIGNATURE_BYTES) throw new RangeError(`signature must be ${SIGNATURE_BYTES} bytes`)
    return new Transaction(body, publicKey, signature, encodeRlp([...unsignedFields(body, publicKey), signature]))
  }
  /** The 32-byte digest the signature covers; computed on first use (replays never need it). */
  get digest(): Uint8Array {
    this.#digest ??= signingDigest(this.body, this.publicKey)
    return this.#digest
  }
  get sender(): Address {
    return this.publicKey.address
  }
  get size(): number {
    return this.encoded.length
  }
  /** Amount plus fee: what the sender must hold. */
  get spend(): bigint {
    return this.body.fee + amountOf(this.body.payload)
  }
}

export const signTransaction = (body: TransactionBody, key: PrivateKey): Transaction => {
  const publicKey = key.publicKey
  return Transaction.make(body, publicKey, key.signDigest(signingDigest(body, publicKey)))
}

/** noble, pure. The node verifies through the `SignatureVerifier` service instead. */
export const verifyTransactionSignature = (tx: Transaction): boolean =>
  verifyDigest(tx.signature, tx.digest, tx.publicKey)

export const encodeTransaction = (tx: Transaction): Uint8Array => tx.encoded

const utf8Decoder = new TextDecoder("utf-8", { fatal: false }) // invalid UTF-8 becomes U+FFFD: no kind matches

const malformed = (detail: string) => Either.left(new MalformedTransaction({ detail }))

const decodeFields = (fields: ReadonlyArray<RlpItem>): Either.Either<Transaction, MalformedTransaction> => {
  const [chainIdI, nonceI, feeI, kindI, payloadI, publicKeyI, signatureI] = fields as readonly RlpItem[] as [
    RlpItem, RlpItem, RlpItem, RlpItem, RlpItem, RlpItem, RlpItem
  ]
  const chainId = rlpToBigInt(chainIdI, "chainId", UINT_BYTES_MAX)
  if (Either.isLeft(chainId)) return malformed(chainId.left.message)
  const nonce = rlpToBigInt(nonceI, "nonce", UINT_BYTES_MAX)
  if (Either.isLeft(nonce)) return malformed(nonce.left.message)
  const fee = rlpToBigInt(feeI, "fee", UINT_BYTES_MAX)
  if (Either.isLeft(fee)) return malformed(fee.left.message)
  const kindBytes = rlpBytes(kindI, "kind")
  if (Either.isLeft(kindBytes)) return malformed(kindBytes.left.message)
  const kind = utf8Decoder.decode(kindBytes.right)
  if (!isKind(kind)) return malformed(`unknown kind ${JSON.stringify(kind.slice(0, 32))}`)
  const payload = codecOf(kind).decode(payloadI)
  if (Either.isLeft(payload)) return malformed(payload.left)
  const publicKeyBytes = rlpBytes(publicKeyI, "publicKey")
  if (Either.isLeft(publicKeyBytes)) return malformed(publicKeyBytes.left.message)
  const publicKey = PublicKey.fromBytes(publicKeyBytes.right)
  if (Either.isLeft(publicKey)) return malformed(publicKey.left.message)
  const signature = rlpBytes(signatureI, "signature")
  if (Either.isLeft(signature)) return malformed(signature.left.message)
  if (signature.right.length !== SIGNATURE_BYTES) {
    return malformed(`signature must be ${SIGNATURE_BYTES} bytes, got ${signature.right.length}`)
  }
  const fieldsChecked = true // each field was range-checked above; skip the constructor's second pass
  const body = new TransactionBody(
    { chainId: chainId.right, nonce: nonce.right, fee: fee.right, payload: payload.right },
    fieldsChecked
  )
  return Either.right(Transaction.make(body, publicKey.right, Uint8Array.from(signature.right)))
}

/** Strict: canonical RLP, exactly the seven fields, known kind, valid public key, within its kind's size (`maxBytesOf`). */
export const decodeTransaction = (
  bytes: Uint8Array
): Either.Either<Transaction, MalformedTransaction | OversizedTransaction> => {
  const oversized = (max: number) => Either.left(new OversizedTransaction({ size: bytes.length, max }))
  if (bytes.length > MAX_ANY_TRANSACTION_BYTES) return oversized(MAX_ANY_TRANSACTION_BYTES)
  // Past the default limit only a well-formed transaction of a larger kind (usage.settle) goes on.
  const large = bytes.length > MAX_TRANSACTION_BYTES
  const item = decodeRlp(bytes)
  if (Either.isLeft(item)) return large ? oversized(MAX_TRANSACTION_BYTES) : malformed(item.left.message)
  const fields = rlpList(item.right, "transaction")
  if (Either.isLeft(fields)) return large ? oversized(MAX_TRANSACTION_BYTES) : malformed(fields.left.message)
  if (fields.right.length !== SIGNED_FIELDS) {
    return large ? oversized(MAX_TRANSACTION_BYTES) : malformed(`expected ${SIGNED_FIELDS} fields, got ${fields.right.length}`)
  }
  if (large) {
    const kindItem = fields.right[3]!
    const kind = kindItem instanceof Uint8Array ? utf8Decoder.decode(kindItem) : ""
    if (!isKind(kind) || bytes.length > maxBytesOf(kind)) return oversized(isKind(kind) ? maxBytesOf(kind) : MAX_TRANSACTION_BYTES)
  }
  const tx = decodeFields(fields.right)
  // Canonical decoding means re-encoding gives back the input exactly.
  if (Either.isRight(tx) && !equalBytes(tx.right.encoded, bytes)) throw new Error("transaction codec is not canonical")
  return tx
}

/** The JSON wire form: the signed RLP as 0x-hex. */
export const TransactionFromHex = Schema.transformOrFail(
  HexString,
  Schema.declare((u): u is Transaction => u instanceof Transaction, { identifier: "Transaction" }),
  {
    strict: true,
    decode: (hex, _, ast) => {
      const bytes = hexToBytes(hex)
      if (Either.isLeft(bytes)) return ParseResult.fail(new ParseResult.Type(ast, hex, bytes.left.message))
      return Either.mapLeft(decodeTransaction(bytes.right), (e) => new ParseResult.Type(ast, hex, e.message))
    },
    encode: (tx) => ParseResult.succeed(bytesToHex(tx.encoded))
  }
)

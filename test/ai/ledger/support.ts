/**
 * A small AI shard for the ledger's tests: keys from seeds, a committee of
 * three with unequal stakes, a one-class GPU table and the economics of
 * test/economics/support.ts (protocol fee 10 %, compute fee 100 a
 * GPU-unit-second), so fees can be followed by hand.
 */
import { Either } from "effect"
import { sha256, type Hash32 } from "../../../domain/chain/hash.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { devKeyFromSeed, type PrivateKey } from "../../../domain/chain/keys.js"
import type { ShardId } from "../../../domain/chain/sharding.js"
import {
  signTransaction,
  TransactionBody,
  type TransactionPayload,
  type Transaction,
  type UsageReceipt
} from "../../../domain/chain/transaction.js"
import { SYSTEM_ESCROW, SYSTEM_STAKE_POOL } from "../../../domain/economics/accounts.js"
import type { EconomicsConfig } from "../../../domain/economics/config.js"
import { resultDigest, sessionGrantDigest, signMessage, taskIdOf, taskRequestDigest } from "../../../domain/ai/signedMessages.js"
import type { AiContext, AiInput } from "../../../domain/ai/ledger/context.js"
import { decideAi } from "../../../domain/ai/ledger/decide.js"
import type { AiEvent, AiRejection } from "../../../domain/ai/ledger/events.js"
import { evolveAi } from "../../../domain/ai/ledger/evolve.js"
import type { AiReceipt } from "../../../domain/ai/ledger/receiptPurpose.js"
import { initialAiLedgerState, type AiLedgerState } from "../../../domain/ai/ledger/state.js"
import { testConfig } from "../../economics/support.js"

export const CHAIN = 4242n
export const T0 = 1_800_000_000_000
export const economics: EconomicsConfig = testConfig()

export const key = (label: string): PrivateKey => devKeyFromSeed(`ai-ledger-test/${label}`)
export const provider = key("provider")
export const developer = key("developer")
/** A gateway is one of the AI shard's members (validator-a below): only members settle usage. */
export const gateway = key("validator-a")
export const worker1 = key("worker-1")
export const worker2 = key("worker-2")
export const owner = key("owner")
/** Stakes 50, 30, 20 of 100: 2/3 is 66.67, 1/3 is 33.33. */
export const validators = [key("validator-a"), key("validator-b"), key("validator-c")] as const
export const committee = [
  { address: validators[0].publicKey.address, stake: 50n },
  { address: validators[1].publicKey.address, stake: 30n },
  { address: validators[2].publicKey.address, stake: 20n }
]

export const hashOf = (label: string): Hash32 => bytesToHex(sha256(label)) as Hash32

export const ctxAt = (height: number, over: Partial<AiContext> = {}): AiContext => ({
  chainId: CHAIN,
  shard: 3 as ShardId,
  transferShards: 2,
  height,
  timestamp: T0 + height * 1_000,
  committee,
  economics,
  totalSupply: 0n,
  gpuClasses: { GPU: 1_000n },
  ...over
})

export const initial = (): AiLedgerState => initialAiLedgerState(economics)

let nonce = 0n
export const signed = (k: PrivateKey, payload: TransactionPayload): Transaction =>
  signTransaction(new TransactionBody({ chainId: CHAIN, nonce: nonce++, fee: 0n, payload }), k)

export const txIn = (tx: Transaction): AiInput => ({ _tag: "Tx", tx })

/** One input decided and folded. */
export const step = (
  s: AiLedgerState,
  ctx: AiContext,
  input: AiInput
): { readonly state: AiLedgerState; readonly events: ReadonlyArray<AiEvent>; readonly rejection: AiRejection | null } => {
  const d = decideAi(s, ctx, input)
  if (Either.isLeft(d)) return { state: s, events: [], rejection: d.left }
  return { state: d.right.reduce(evolveAi, s), events: d.right, rejection: null }
}

/** Steps that must all be accepted. */
export const accept = (s: AiLedgerState, ctx: AiContext, ...inputs: ReadonlyArray<AiInput>): AiLedgerState =>
  inputs.reduce((state, input) => {
    const r = step(state, ctx, input)
    if (r.rejection !== null) throw new Error(`refused: ${r.rejection.reason}: ${r.rejection.detail}`)
    return r.state
  }, s)

let receipts = 0
export const escrowReceipt = (from: PrivateKey, model: Hash32, amount: bigint, receiptId = hashOf(`receipt-${receipts++}`)): AiInput => ({
  _tag: "Receipt",
  receipt: {
    receiptId,
    sourceShard: 1,
    from: from.publicKey.address,
    to: SYSTEM_ESCROW,
    amount,
    txHash: hashOf(`tx-of-${receiptId}`),
    purpose: { kind: "escrow", model }
  } satisfies AiReceipt
})

export const bondReceipt = (from: PrivateKey, worker: PrivateKey, amount: bigint, receiptId = hashOf(`receipt-${receipts++}`)): AiInput => ({
  _tag: "Receipt",
  receipt: {
    receiptId,
    sourceShard: 1,
    from: from.publicKey.address,
    to: SYSTEM_STAKE_POOL,
    amount,
    txHash: hashOf(`tx-of-${receiptId}`),
    purpose: { kind: "bond", worker: worker.publicKey.address }
  } satisfies AiReceipt
})

export const epochReceipt = (epoch: number, startAt: number, endAt: number): AiInput => ({
  _tag: "Receipt",
  receipt: {
    receiptId: hashOf(`epoch-${epoch}`),
    sourceShard: 0,
    from: key("beacon").publicKey.address,
    to: key("ai-system").publicKey.address,
    amount: 0n,
    txHash: hashOf(`epoch-tx-${epoch}`),
    purpose: { kind: "epoch", epoch, startAt, endAt }
  } satisfies AiReceipt
})

export const MANIFEST = (price: bigint): string =>
  JSON.stringify({ name: "m", version: "1", pricePerCall: price.toString(), minGpuClass: "GPU", license: "MIT", description: "test" })

/** A registered model (registered at height 1 with price 1_000) made Verified by validators a and b (80 of 100). */
export const FINGERPRINT = hashOf("fingerprint")
export const withVerifiedModel = (price = 1_000n): { readonly state: AiLedgerState; readonly model: Hash32 } => {
  const reg = signed(provider, { kind: "model.register", weightsHash: hashOf("weights"), sizeBytes: 10n, manifest: MANIFEST(price) })
  const attest = (v: PrivateKey) => txIn(signed(v, { kind: "model.attest", model: reg.hash, verdict: "verified", fingerprint: FINGERPRINT }))
  return { state: accept(initial(), ctxAt(1), txIn(reg), attest(validators[0]), attest(validators[1])), model: reg.hash }
}

/** Workers 1 and 2 registered (2 GPUs each: 2_000 milli-units). */
export const withWorkers = (s: AiLedgerState): AiLedgerState =>
  accept(
    s,
    ctxAt(2),
    txIn(signed(worker1, { kind: "worker.register", gpuClass: "GPU", devices: 2, endpoint: "ws://w1" })),
    txIn(signed(worker2, { kind: "worker.register", gpuClass: "GPU", devices: 2, endpoint: "ws://w2" }))
  )

export interface GrantParams {
  readonly chainId?: bigint
  readonly model: Hash32
  readonly issuedAt?: number
  readonly expiresAt?: number
  readonly spendMax?: bigint
  readonly nonce?: string
}

export const GRANT_NONCE = "0x" + "ab".repeat(16)
/** Every test request's nonce: tasks differ by their inputs' hash (the label given to `usageReceipt`). */
export const REQUEST_NONCE = "0x" + "cd".repeat(16)

/** The task id the developer's request for inputs `inputs` on `model` under a grant with `grantParams` names. */
export const taskOf = (inputs: Hash32, model: Hash32, grantParams: Partial<GrantParams> = {}): Hash32 =>
  taskIdOf({ chainId: grantParams.chainId ?? CHAIN, model, grantNonce: grantParams.nonce ?? GRANT_NONCE, inputHash: inputs, nonce: REQUEST_NONCE })

/** The developer's signed request as a receipt carries it, for `grant` and `model` (signed by `signer`, the developer unless told). */
export const requestOf = (grant: UsageReceipt["grant"], model: Hash32, inputs: Hash32, signer: PrivateKey = developer, nonce = REQUEST_NONCE) => {
  const r = { chainId: grant.chainId, model, grantNonce: grant.nonce, inputHash: inputs, nonce }
  return { taskId: taskIdOf(r), request: { inputHash: inputs, nonce, signature: signMessage(taskRequestDigest(r), signer) } }
}

export const grantOf = (dev: PrivateKey, p: GrantParams, signer: PrivateKey = dev): UsageReceipt["grant"] => {
  const g = {
    chainId: p.chainId ?? CHAIN,
    model: p.model,
    issuedAt: p.issuedAt ?? T0,
    expiresAt: p.expiresAt ?? T0 + 3_600_000,
    spendMax: p.spendMax ?? 1_000_000n,
    nonce: p.nonce ?? GRANT_NONCE
  }
  return { ...g, publicKey: dev.publicKey.hex, signature: signMessage(sessionGrantDigest(g), signer) }
}

export const resultOf = (w: PrivateKey, taskId: Hash32, execMs = 500, fingerprint = FINGERPRINT, signer: PrivateKey = w) => ({
  worker: w.publicKey.address,
  fingerprint,
  execMs,
  signature: signMessage(resultDigest(taskId, fingerprint, execMs), signer)
})

/**
 * A receipt of the developer's task on `inputs` (its inputs' hash: a label
 * per task), requested and signed as a gateway would get it: the task id is
 * the request's digest (`taskOf`), worker 1's result signed over it.
 */
export const usageReceipt = (
  inputs: Hash32,
  model: Hash32,
  over: Partial<UsageReceipt> & { readonly grantParams?: Partial<GrantParams> } = {}
): UsageReceipt => {
  const { grantParams, ...rest } = over
  const grant = rest.grant ?? grantOf(developer, { model, ...grantParams })
  const { taskId, request } = requestOf(grant, model, inputs)
  return {
    grant,
    taskId,
    model,
    price: 1_000n,
    results: [resultOf(worker1, taskId)],
    request,
    ...rest
  }
}

export const settleTx = (...rs: ReadonlyArray<UsageReceipt>): Transaction => signed(gateway, { kind: "usage.settle", receipts: rs })

export const tagsOf = (events: ReadonlyArray<{ readonly _tag: string }>): ReadonlyArray<string> => events.map((e) => e._tag)

/**
 * `usage.settle`: validated tasks as their parties signed them. Each receipt
 * is checked on its own, against the state the tx's earlier receipts left:
 *
 *   not settled before (the task id, in any tx, by any gateway)
 *   grant: this chain, this receipt's model, issuedAt ≤ block time and
 *          ≤ expiresAt (a grant used before its expiry settles later too),
 *          signed by the developer it names (public key → address)
 *   model: Verified (or Deprecated after being Verified), price = its price
 *   request: taskId = taskRequestDigest(grant's chainId, model, grant's
 *          nonce, request.inputHash, request.nonce) (`TaskNotRequested`),
 *          signed by the grant's key (`BadRequestSignature`): the developer
 *          asked for this very task, so a grant binds its tasks
 *   results: distinct registered workers with the stake floor, one
 *          fingerprint, each signed by its worker over
 *          resultDigest(taskId, fingerprint, execMs) (so its paid units are the worker's word)
 *   cap:   the grant's spent + price ≤ spendMax (across receipts and txs)
 *   escrow of (developer, model) ≥ price
 *
 * A bad receipt is `UsageRefused` with its reason; the good ones settle
 * (`UsageSettled`) and pay out of escrow by `taskFees`: provider net, each
 * worker's compute fee, the protocol fee to BURN or the treasury.
 *
 * `usage.overran` (a task stopped at the compute node's limits on two
 * workers, task/overrun.ts) is charged by the same checks with the two
 * workers' signed overrun claims in place of results (`BadClaimSignature`,
 * each claim's `millis` paid as its execMs), and shares `settled`: a task
 * is charged once, whichever kind carries it.
 */
import { Either, HashSet } from "effect"
import { keccakHex, type Hash32 } from "../../chain/hash.js"
import type { Address } from "../../chain/keys.js"
import type { OverranReceipt, Transaction, UsageOverranPayload, UsageReceipt, UsageSettlePayload } from "../../chain/transaction.js"
import { BURN_ADDRESS, SYSTEM_TREASURY } from "../../economics/accounts.js"
import { bondedOf } from "../../economics/state.js"
import { taskFees } from "../../economics/fees.js"
import { checkTaskRequest, overrunDigest, resultDigest, sessionGrantDigest, verifyMessage } from "../signedMessages.js"
import type { AiContext } from "./context.js"
import { UsageRefused, UsageSettled, type AiEvent, type AiRejection, type UsageRefusal } from "./events.js"
import { evolveAi } from "./evolve.js"
import { numberedPayouts, type PayoutLine } from "./payouts.js"
import { escrowOf, modelOf, spentOf, workerOf, type AiLedgerState, type AiModel, type AiWorker } from "./state.js"

export interface Refusal {
  readonly reason: UsageRefusal
  readonly detail: string
}
const refuse = (reason: UsageRefusal, detail: string): Either.Either<never, Refusal> => Either.left({ reason, detail })

interface Checked {
  readonly developer: Address
  readonly grant: Hash32
  readonly model: AiModel
  readonly workers: ReadonlyArray<{ readonly worker: Address; readonly execMs: number; readonly record: AiWorker }>
}

/** What both kinds of receipt carry besides their workers' word. */
type ChargedTask = Pick<UsageReceipt, "grant" | "taskId" | "model" | "price" | "request">

/** One worker's signed word on the task (a result, or an overrun claim): what it is paid for and what its key signed. */
interface Party {
  readonly worker: string
  readonly execMs: number
  /** The digest its signature covers (computed only once the cheap checks passed). */
  readonly digest: () => Uint8Array
  readonly signature: string
  /** Its result disagrees with the first one (`ResultsDisagree`); a claim never does. */
  readonly disagrees: boolean
}

/** How a receipt's parties are checked and named. */
interface PartyKind {
  readonly badSignature: UsageRefusal
  readonly what: string
}

const RESULTS: PartyKind = { badSignature: "BadResultSignature", what: "result" }
const CLAIMS: PartyKind = { badSignature: "BadClaimSignature", what: "overrun claim" }

const resultParties = (r: UsageReceipt): ReadonlyArray<Party> =>
  r.results.map((x) => ({
    worker: x.worker,
    execMs: x.execMs,
    digest: () => resultDigest(r.taskId, x.fingerprint, x.execMs),
    signature: x.signature,
    disagrees: x.fingerprint !== r.results[0]!.fingerprint
  }))

const claimParties = (r: OverranReceipt): ReadonlyArray<Party> =>
  r.claims.map((c) => ({
    worker: c.worker,
    execMs: c.millis,
    digest: () => overrunDigest(r.taskId, c.kind, c.millis, c.limit),
    signature: c.signature,
    disagrees: false
  }))

/** The grant's id: keccak of the digest its signature covers. */
export const grantIdOf = (r: Pick<UsageReceipt, "grant">): Hash32 => keccakHex(grantDigestOf(r))

const grantDigestOf = (r: Pick<UsageReceipt, "grant">): Uint8Array => {
  const g = r.grant
  return sessionGrantDigest({ chainId: g.chainId, model: g.model, issuedAt: g.issuedAt, expiresAt: g.expiresAt, spendMax: g.spendMax, nonce: g.nonce })
}

const checkReceipt = (
  s: AiLedgerState,
  ctx: AiContext,
  r: ChargedTask,
  parties: ReadonlyArray<Party>,
  kind: PartyKind
): Either.Either<Checked, Refusal> =>
  Either.gen(function* () {
    const g = r.grant
    if (HashSet.has(s.settled, r.taskId)) return yield* refuse("AlreadySettled", `task ${r.taskId} is settled`)
    if (g.chainId !== ctx.chainId) return yield* refuse("WrongChain", `grant for chain ${g.chainId}, this is chain ${ctx.chainId}`)
    if (g.model !== r.model) return yield* refuse("WrongModel", `grant for model ${g.model}, receipt for ${r.model}`)
    if (g.issuedAt > ctx.timestamp) return yield* refuse("GrantFromFuture", `grant issued at ${g.issuedAt}, after the block's ${ctx.timestamp}`)
    if (g.expiresAt < g.issuedAt) return yield* refuse("GrantExpired", `grant expires at ${g.expiresAt}, before it was issued (${g.issuedAt})`)
    const model = modelOf(s, r.model)
    if (model === undefined) return yield* refuse("UnknownModel", `no model ${r.model}`)
    if (!(model.status === "Verified" || (model.status === "Deprecated" && model.verified))) {
      return yield* refuse("ModelNotServable", `model ${r.model} is ${model.status}`)
    }
    if (r.price !== model.price) return yield* refuse("WrongPrice", `receipt price ${r.price}, model ${r.model} costs ${model.price}`)
    const seen = new Set<string>()
    const workers: Array<Checked["workers"][number]> = []
    for (const x of parties) {
      if (seen.has(x.worker)) return yield* refuse("DuplicateWorker", `worker ${x.worker} listed twice`)
      seen.add(x.worker)
      if (x.disagrees) return yield* refuse("ResultsDisagree", `results of task ${r.taskId} differ`)
      const record = workerOf(s, x.worker as Address)
      if (record === undefined) return yield* refuse("UnregisteredWorker", `worker ${x.worker} is not registered`)
      const stake = bondedOf(s.economy, x.worker as Address)
      if (stake < ctx.economics.minWorkerStake) {
        return yield* refuse("WorkerUnderStaked", `worker ${x.worker} has ${stake} bonded, the floor is ${ctx.economics.minWorkerStake}`)
      }
      workers.push({ worker: x.worker as Address, execMs: x.execMs, record })
    }
    const developer = verifyMessage(grantDigestOf(r), g.publicKey, g.signature)
    if (Either.isLeft(developer)) return yield* refuse("BadGrantSignature", `session grant: ${developer.left}`)
    const request = { chainId: g.chainId, model: r.model, grantNonce: g.nonce, inputHash: r.request.inputHash, nonce: r.request.nonce }
    const requested = checkTaskRequest(request, r.taskId, g.publicKey, r.request.signature)
    if (Either.isLeft(requested)) {
      return yield* refuse(requested.left.reason === "TaskIdMismatch" ? "TaskNotRequested" : "BadRequestSignature", requested.left.detail)
    }
    const grant = grantIdOf(r)
    const spent = spentOf(s, grant)
    if (spent + r.price > g.spendMax) return yield* refuse("OverCap", `grant spent ${spent}; ${r.price} more passes its cap ${g.spendMax}`)
    for (const [i, x] of parties.entries()) {
      const ok = verifyMessage(x.digest(), workers[i]!.record.publicKey, x.signature)
      if (Either.isLeft(ok)) return yield* refuse(kind.badSignature, `${kind.what} of worker ${x.worker}: ${ok.left}`)
    }
    const address = developer.right.address
    const escrow = escrowOf(s, address, r.model)
    if (escrow < r.price) return yield* refuse("InsufficientEscrow", `${address} has ${escrow} in escrow for model ${r.model}, the task costs ${r.price}`)
    return { developer: address, grant, model, workers }
  })

/**
 * The ledger's checks of one receipt against a state, settling nothing: what
 * an AI committee member runs on a receipt another gateway shares with it
 * before holding it (the same rules the settle will apply, so what it holds
 * is what the ledger would settle, or has already).
 */
export const checkUsageReceipt = (s: AiLedgerState, ctx: AiContext, r: UsageReceipt): Either.Either<void, Refusal> =>
  Either.map(checkReceipt(s, ctx, r, resultParties(r), RESULTS), () => undefined)

/** Each receipt checked against the state the earlier ones left; the good ones charged out of escrow, the bad ones refused. */
const decideCharges = <R extends ChargedTask>(
  s: AiLedgerState,
  ctx: AiContext,
  tx: Transaction,
  receipts: ReadonlyArray<R>,
  partiesOf: (r: R) => ReadonlyArray<Party>,
  kind: PartyKind
): Either.Either<ReadonlyArray<AiEvent>, AiRejection> => {
  const events: Array<AiEvent> = []
  const sink = ctx.economics.protocolFeeSink === "burn" ? BURN_ADDRESS : SYSTEM_TREASURY
  let state = s
  let index = 0
  for (const r of receipts) {
    const checked = checkReceipt(state, ctx, r, partiesOf(r), kind)
    if (Either.isLeft(checked)) {
      events.push(new UsageRefused({ txHash: tx.hash, taskId: r.taskId, ...checked.left }))
      continue
    }
    const c = checked.right
    const fees = taskFees(
      ctx.economics,
      r.price,
      c.workers.map((w) => ({ worker: w.worker, execMs: w.execMs, gpuUnitsMilli: w.record.gpuUnitsMilli }))
    )
    const settled = new UsageSettled({
      taskId: r.taskId,
      model: r.model,
      provider: c.model.provider,
      developer: c.developer,
      grant: c.grant,
      spendMax: r.grant.spendMax,
      price: r.price,
      workers: c.workers.map((w) => ({ worker: w.worker, execMs: w.execMs })),
      at: ctx.timestamp
    })
    const lines: ReadonlyArray<PayoutLine> = [
      { source: "escrow", to: c.model.provider, amount: fees.providerNet },
      ...fees.computeFees.map((f) => ({ source: "escrow" as const, to: f.worker, amount: f.amount })),
      { source: "escrow", to: sink, amount: fees.protocolFee }
    ]
    const payouts = numberedPayouts(tx.hash, index, lines)
    index += payouts.length
    events.push(settled, ...payouts)
    state = evolveAi(state, settled)
  }
  return Either.right(events)
}

export const decideSettle = (
  s: AiLedgerState,
  ctx: AiContext,
  tx: Transaction,
  p: UsageSettlePayload
): Either.Either<ReadonlyArray<AiEvent>, AiRejection> => decideCharges(s, ctx, tx, p.receipts, resultParties, RESULTS)

/** `usage.overran`: confirmed overruns charged like validated tasks, each claim's `millis` paid as its execMs. */
export const decideOverran = (
  s: AiLedgerState,
  ctx: AiContext,
  tx: Transaction,
  p: UsageOverranPayload
): Either.Either<ReadonlyArray<AiEvent>, AiRejection> => decideCharges(s, ctx, tx, p.receipts, claimParties, CLAIMS)

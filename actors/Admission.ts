/**
 * Admission to one shard's pool: the rules a transaction must pass before a
 * block may hold it, shared by the single producer (`ConsensusActor.ts`) and
 * the BFT seat (`BftSeat.ts`).
 *
 * Admission and block making share one atomic view — the ledger state and
 * the mempool in one Ref — so a transaction is always judged against a
 * state and a pool that belong together: a block that lands between the two
 * reads could otherwise let a used nonce in or turn a good one away.
 *
 * The cheap rules run first, so a bad nonce never costs a signature
 * verification, and signatures are verified in parallel. A sender's
 * transactions that are still being verified count as pending for the cheap
 * checks, and enter the pool in the order they arrived: a client may send
 * nonces n, n+1, n+2 without waiting for each reply.
 */
import { Deferred, Effect, Either, HashMap, HashSet, Option, Ref } from "effect"
import { admitTransaction, precheckTransaction } from "../domain/chain/admission.js"
import type { AdmissionRejected } from "../domain/chain/admission.js"
import type { Address } from "../domain/chain/keys.js"
import { accountOf } from "../domain/chain/ledger.js"
import type { LedgerState } from "../domain/chain/ledger.js"
import { addTransaction, emptyMempool, hasTransaction, isFull, pendingOf } from "../domain/chain/mempool.js"
import type { Mempool } from "../domain/chain/mempool.js"
import type { CrossShardReceipt } from "../domain/chain/receipt.js"
import type { Hash32 } from "../domain/chain/hash.js"
import type { Transaction } from "../domain/chain/transaction.js"
import { SignatureVerifier } from "../infra/crypto/SignatureVerifier.js"

/** A transaction past the cheap checks whose signature is being verified. */
interface Verifying {
  readonly tx: Transaction
  /** Done once this transaction is in the pool or refused: the sender's next one may then enter. */
  readonly settled: Deferred.Deferred<void>
}

export interface AdmissionView {
  readonly ledger: LedgerState
  readonly pool: Mempool
  readonly receipts: HashMap.HashMap<Hash32, CrossShardReceipt>
  /** Per sender, in arrival (so nonce) order. */
  readonly verifying: HashMap.HashMap<Address, ReadonlyArray<Verifying>>
}

const verifyingOf = (v: AdmissionView, sender: Address): ReadonlyArray<Verifying> =>
  Option.getOrElse(HashMap.get(v.verifying, sender), () => [])

const withoutVerifying = (v: AdmissionView, entry: Verifying): HashMap.HashMap<Address, ReadonlyArray<Verifying>> => {
  const rest = verifyingOf(v, entry.tx.sender).filter((e) => e !== entry)
  return rest.length === 0 ? HashMap.remove(v.verifying, entry.tx.sender) : HashMap.set(v.verifying, entry.tx.sender, rest)
}

/**
 * The pool as it will be once the sender's transactions under verification
 * enter it (as many as would enter in order): what a new one is checked against.
 */
const poolAhead = (v: AdmissionView, sender: Address): Mempool => {
  let pool = v.pool
  const nonce = accountOf(v.ledger, sender).nonce
  for (const { tx } of verifyingOf(v, sender)) {
    if (isFull(pool) || hasTransaction(pool, tx.hash) || tx.body.nonce !== nonce + BigInt(pendingOf(pool, sender).count)) break
    pool = addTransaction(pool, tx)
  }
  return pool
}

export interface Admission {
  readonly view: Ref.Ref<AdmissionView>
  /** Check a signed transaction and add it to the pool (the signature is verified once, here). */
  readonly submit: (tx: Transaction) => Effect.Effect<void, AdmissionRejected>
  /** Hold a receipt from another shard for a coming block; one already credited is dropped. */
  readonly deliverReceipt: (receipt: CrossShardReceipt) => Effect.Effect<void>
}

export interface AdmissionOptions {
  readonly ledger: LedgerState
  readonly mempoolCapacity?: number | undefined
  /** Run after a transaction enters the pool or a receipt arrives: there is work for a block. */
  readonly onWork: Effect.Effect<void>
}

export const makeAdmission = (options: AdmissionOptions): Effect.Effect<Admission, never, SignatureVerifier> =>
  Effect.gen(function* () {
    const { onWork } = options
    const verifier = yield* SignatureVerifier
    const view = yield* Ref.make<AdmissionView>({
      ledger: options.ledger,
      pool: emptyMempool(options.mempoolCapacity),
      receipts: HashMap.empty(),
      verifying: HashMap.empty()
    })
  const submit = (tx: Transaction): Effect.Effect<void, AdmissionRejected> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const entry: Verifying = { tx, settled: yield* Deferred.make<void>() }
        // Cheap checks first, against the pool plus this sender's transactions still in verification.
        const joined = yield* Ref.modify(
          view,
          (v): readonly [Either.Either<Option.Option<Verifying>, AdmissionRejected>, AdmissionView] => {
            const pre = precheckTransaction(v.ledger, poolAhead(v, tx.sender), tx)
            if (Either.isLeft(pre)) return [Either.left(pre.left), v]
            const ahead = verifyingOf(v, tx.sender)
            return [
              Either.right(Option.fromNullable(ahead[ahead.length - 1])),
              { ...v, verifying: HashMap.set(v.verifying, tx.sender, [...ahead, entry]) }
            ]
          }
        )
        if (Either.isLeft(joined)) return yield* joined.left
        // Whatever happens from here (refusal, interruption), the entry leaves and its successor may go.
        const leave = Ref.update(view, (v) => ({ ...v, verifying: withoutVerifying(v, entry) })).pipe(
          Effect.zipRight(Deferred.succeed(entry.settled, undefined))
        )
        const admit = Effect.gen(function* () {
          const signatureValid = yield* verifier.verify(tx)
          // The sender's earlier transaction goes first (in or refused): nonces enter in order.
          if (Option.isSome(joined.right)) yield* Deferred.await(joined.right.value.settled)
          const admitted = yield* Ref.modify(view, (v): readonly [Either.Either<Transaction, AdmissionRejected>, AdmissionView] => {
            const result = admitTransaction(v.ledger, v.pool, tx, signatureValid)
            const verifying = withoutVerifying(v, entry)
            return Either.isLeft(result)
              ? [result, { ...v, verifying }]
              : [result, { ...v, pool: addTransaction(v.pool, tx), verifying }]
          })
          if (Either.isLeft(admitted)) return yield* admitted.left
          yield* onWork
        })
        yield* restore(admit).pipe(Effect.ensuring(leave))
      })
    )

  const deliverReceipt = (receipt: CrossShardReceipt) =>
    Ref.update(view, (v) =>
      HashSet.has(v.ledger.receivedReceipts, receipt.receiptId)
        ? v
        : { ...v, receipts: HashMap.set(v.receipts, receipt.receiptId, receipt) }
    ).pipe(Effect.zipRight(onWork))
    return { view, submit, deliverReceipt }
  })

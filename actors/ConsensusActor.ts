/**
 * ConsensusActor: one node's seat in one shard. For now a single block
 * producer per shard, behind the `ShardConsensus` interface that the BFT
 * (chained HotStuff) seat will implement.
 *
 * Admission and block production share one atomic view — the ledger state
 * and the mempool in one Ref — so a transaction is always judged against a
 * state and a pool that belong together: a block that lands between the two
 * reads could otherwise let a used nonce in or turn a good one away.
 *
 * Admission checks the cheap rules first, so a bad nonce never costs a
 * signature verification, and verifies signatures in parallel. A sender's
 * transactions that are still being verified count as pending for the cheap
 * checks, and enter the pool in the order they arrived: a client may send
 * nonces n, n+1, n+2 without waiting for each reply (over one connection the
 * RPC server runs them concurrently; n+1 used to be refused as a NonceGap
 * while n was being verified).
 *
 * The producer cuts a block as soon as anything waits (batching whatever
 * queued meanwhile: one append per block) and otherwise idles — except with
 * a heartbeat (the beacon), when it also cuts an empty block once the last
 * one is a heartbeat old. Under load it starts blocks at most every
 * `blockIntervalMin`: a block costs a signature and a verification on this
 * thread whatever it holds, so a block per arriving transaction would spend
 * the node's time on block overhead.
 */
import { Clock, Deferred, Duration, Effect, Either, HashMap, HashSet, Option, Ref } from "effect"
import type { Scope } from "effect"
import { buildBlock } from "../domain/chain/block.js"
import { admitTransaction, precheckTransaction } from "../domain/chain/admission.js"
import type { AdmissionRejected } from "../domain/chain/admission.js"
import type { Address, PrivateKey } from "../domain/chain/keys.js"
import { ApplyBlock } from "../domain/chain/ledger.js"
import { accountOf } from "../domain/chain/ledger.js"
import type { LedgerState } from "../domain/chain/ledger.js"
import {
  addTransaction,
  emptyMempool,
  hasTransaction,
  isFull,
  pendingOf,
  reconcile,
  takeBatch,
  BATCH_LIMITS_DEFAULT
} from "../domain/chain/mempool.js"
import type { BatchLimits, Mempool } from "../domain/chain/mempool.js"
import type { CrossShardReceipt } from "../domain/chain/receipt.js"
import type { ShardId } from "../domain/chain/sharding.js"
import type { Hash32 } from "../domain/chain/hash.js"
import type { Transaction } from "../domain/chain/transaction.js"
import { SignatureVerifier } from "../infra/crypto/SignatureVerifier.js"
import type { ShardActor } from "./ShardActor.js"

/** What the rest of the node needs from a shard's consensus seat. */
export interface ShardConsensus {
  readonly shard: ShardId
  /** Check and queue a signed transaction for a coming block. */
  readonly submit: (tx: Transaction) => Effect.Effect<void, AdmissionRejected>
  /** Queue a receipt from another shard; one already credited is dropped. */
  readonly deliverReceipt: (receipt: CrossShardReceipt) => Effect.Effect<void>
  /** The committed ledger state. */
  readonly ledger: Effect.Effect<LedgerState>
  /** Transactions admitted and not yet in a block. */
  readonly pending: Effect.Effect<Mempool>
}

export interface ProducerOptions {
  readonly shard: ShardId
  readonly shardActor: ShardActor
  readonly proposerKey: PrivateKey
  readonly mempoolCapacity?: number | undefined
  readonly batchLimits?: BatchLimits | undefined
  /** The shortest time from one block's start to the next one's, under load. */
  readonly blockIntervalMin?: Duration.DurationInput | undefined
  /**
   * Make a block this long after the last one's timestamp even when nothing
   * waits (the beacon: its blocks are the epoch clock). Without it the
   * producer idles until there is work.
   */
  readonly heartbeat?: Duration.DurationInput | undefined
}

export const BLOCK_INTERVAL_MIN_DEFAULT: Duration.DurationInput = "10 millis"

/** A transaction past the cheap checks whose signature is being verified. */
interface Verifying {
  readonly tx: Transaction
  /** Done once this transaction is in the pool or refused: the sender's next one may then enter. */
  readonly settled: Deferred.Deferred<void>
}

interface View {
  readonly ledger: LedgerState
  readonly pool: Mempool
  readonly receipts: HashMap.HashMap<Hash32, CrossShardReceipt>
  /** Per sender, in arrival (so nonce) order. */
  readonly verifying: HashMap.HashMap<Address, ReadonlyArray<Verifying>>
}

const verifyingOf = (v: View, sender: Address): ReadonlyArray<Verifying> =>
  Option.getOrElse(HashMap.get(v.verifying, sender), () => [])

const withoutVerifying = (v: View, entry: Verifying): HashMap.HashMap<Address, ReadonlyArray<Verifying>> => {
  const rest = verifyingOf(v, entry.tx.sender).filter((e) => e !== entry)
  return rest.length === 0 ? HashMap.remove(v.verifying, entry.tx.sender) : HashMap.set(v.verifying, entry.tx.sender, rest)
}

/**
 * The pool as it will be once the sender's transactions under verification
 * enter it (as many as would enter in order): what a new one is checked against.
 */
const poolAhead = (v: View, sender: Address): Mempool => {
  let pool = v.pool
  const nonce = accountOf(v.ledger, sender).nonce
  for (const { tx } of verifyingOf(v, sender)) {
    if (isFull(pool) || hasTransaction(pool, tx.hash) || tx.body.nonce !== nonce + BigInt(pendingOf(pool, sender).count)) break
    pool = addTransaction(pool, tx)
  }
  return pool
}

const hasWork = (v: View) => v.pool.count > 0 || HashMap.size(v.receipts) > 0

export const makeSingleProducer = (
  options: ProducerOptions
): Effect.Effect<ShardConsensus, never, SignatureVerifier | Scope.Scope> =>
  Effect.gen(function* () {
    const { shard, shardActor, proposerKey } = options
    const verifier = yield* SignatureVerifier
    const view = yield* Ref.make<View>({
      ledger: yield* shardActor.state,
      pool: emptyMempool(options.mempoolCapacity),
      receipts: HashMap.empty(),
      verifying: HashMap.empty()
    })
    const work = yield* Effect.makeLatch(false)
    const limits = options.batchLimits ?? BATCH_LIMITS_DEFAULT

    const submit = (tx: Transaction): Effect.Effect<void, AdmissionRejected> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const entry: Verifying = { tx, settled: yield* Deferred.make<void>() }
          // Cheap checks first, against the pool plus this sender's transactions still in verification.
          const joined = yield* Ref.modify(
            view,
            (v): readonly [Either.Either<Option.Option<Verifying>, AdmissionRejected>, View] => {
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
            const admitted = yield* Ref.modify(view, (v): readonly [Either.Either<Transaction, AdmissionRejected>, View] => {
              const result = admitTransaction(v.ledger, v.pool, tx, signatureValid)
              const verifying = withoutVerifying(v, entry)
              return Either.isLeft(result)
                ? [result, { ...v, verifying }]
                : [result, { ...v, pool: addTransaction(v.pool, tx), verifying }]
            })
            if (Either.isLeft(admitted)) return yield* admitted.left
            yield* work.open
          })
          yield* restore(admit).pipe(Effect.ensuring(leave))
        })
      )

    const deliverReceipt = (receipt: CrossShardReceipt) =>
      Ref.update(view, (v) =>
        HashSet.has(v.ledger.receivedReceipts, receipt.receiptId)
          ? v
          : { ...v, receipts: HashMap.set(v.receipts, receipt.receiptId, receipt) }
      ).pipe(Effect.zipRight(work.open))

    const heartbeatMillis = options.heartbeat === undefined ? undefined : Duration.toMillis(options.heartbeat)

    const produceOne = Effect.gen(function* () {
      const v = yield* Ref.get(view)
      if (!hasWork(v) && heartbeatMillis === undefined) return
      const transactions = takeBatch(v.pool, limits)
      const receipts = Array.from(HashMap.values(v.receipts))
      const now = yield* Clock.currentTimeMillis
      const block = buildBlock({
        chainId: v.ledger.chain!.chainId,
        shard,
        height: v.ledger.height + 1,
        parentHash: v.ledger.lastBlockHash,
        eventsRoot: v.ledger.lastEventsRoot,
        // Never before the parent, even if the wall clock stepped back.
        timestamp: Math.max(now, v.ledger.lastTimestamp),
        transactions,
        receipts,
        proposerKey
      })
      const reply = yield* shardActor.ask(new ApplyBlock({ block }))
      yield* Ref.update(view, (current) => ({
        ...current,
        ledger: reply.state,
        pool: reconcile(current.pool, reply.state, transactions),
        receipts: HashMap.filter(current.receipts, (_, id) => !HashSet.has(reply.state.receivedReceipts, id))
      }))
      yield* Effect.logDebug(
        `shard ${shard} block ${block.header.height}: ${transactions.length} transactions, ${receipts.length} receipts`
      )
    })

    const intervalMinMillis = Duration.toMillis(options.blockIntervalMin ?? BLOCK_INTERVAL_MIN_DEFAULT)

    /** Until there is work, or (with a heartbeat) the next block is due. */
    const awaitWork =
      heartbeatMillis === undefined
        ? work.await
        : Effect.gen(function* () {
            const due = (yield* Ref.get(view)).ledger.lastTimestamp + heartbeatMillis
            const now = yield* Clock.currentTimeMillis
            if (now < due) yield* Effect.raceFirst(work.await, Effect.sleep(Duration.millis(due - now)))
          })

    // Idle until there is work (or a heartbeat is due), then cut blocks until there is none.
    const loop = Effect.gen(function* () {
      yield* awaitWork
      const started = yield* Clock.currentTimeMillis
      yield* work.close
      yield* produceOne.pipe(
        Effect.catchAll((error) =>
          // A block our own ledger refuses is a bug: say so loudly, keep the node up, retry on new work.
          Effect.logError(`shard ${shard}: block production failed: ${error.message}`).pipe(
            Effect.zipRight(Effect.sleep("100 millis"))
          )
        )
      )
      if (hasWork(yield* Ref.get(view))) yield* work.open
      const elapsed = (yield* Clock.currentTimeMillis) - started
      if (elapsed < intervalMinMillis) yield* Effect.sleep(Duration.millis(intervalMinMillis - elapsed))
    }).pipe(Effect.forever)
    yield* Effect.forkScoped(loop)

    return {
      shard,
      submit,
      deliverReceipt,
      ledger: Ref.get(view).pipe(Effect.map((v) => v.ledger)),
      pending: Ref.get(view).pipe(Effect.map((v) => v.pool))
    }
  })

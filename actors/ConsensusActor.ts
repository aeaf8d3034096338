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
 * The producer cuts a block as soon as anything waits (batching whatever
 * queued meanwhile: one append per block) and otherwise idles. Under load it
 * starts blocks at most every `blockIntervalMin`: a block costs a signature
 * and a verification on this thread whatever it holds, so a block per
 * arriving transaction would spend the node's time on block overhead.
 */
import { Clock, Duration, Effect, Either, HashMap, HashSet, Ref } from "effect"
import type { Scope } from "effect"
import { buildBlock } from "../domain/chain/block.js"
import { admitTransaction, precheckTransaction } from "../domain/chain/admission.js"
import type { AdmissionRejected } from "../domain/chain/admission.js"
import type { PrivateKey } from "../domain/chain/keys.js"
import { ApplyBlock } from "../domain/chain/ledger.js"
import type { LedgerState } from "../domain/chain/ledger.js"
import { addTransaction, emptyMempool, reconcile, takeBatch, BATCH_LIMITS_DEFAULT } from "../domain/chain/mempool.js"
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
}

export const BLOCK_INTERVAL_MIN_DEFAULT: Duration.DurationInput = "10 millis"

interface View {
  readonly ledger: LedgerState
  readonly pool: Mempool
  readonly receipts: HashMap.HashMap<Hash32, CrossShardReceipt>
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
      receipts: HashMap.empty()
    })
    const work = yield* Effect.makeLatch(false)
    const limits = options.batchLimits ?? BATCH_LIMITS_DEFAULT

    const submit = (tx: Transaction): Effect.Effect<void, AdmissionRejected> =>
      Effect.gen(function* () {
        // Cheap checks first, so a bad nonce never costs a signature verification.
        const before = yield* Ref.get(view)
        const pre = precheckTransaction(before.ledger, before.pool, tx)
        if (Either.isLeft(pre)) return yield* pre.left
        const signatureValid = yield* verifier.verify(tx)
        const admitted = yield* Ref.modify(view, (v): readonly [Either.Either<Transaction, AdmissionRejected>, View] => {
          const result = admitTransaction(v.ledger, v.pool, tx, signatureValid)
          return Either.isLeft(result) ? [result, v] : [result, { ...v, pool: addTransaction(v.pool, tx) }]
        })
        if (Either.isLeft(admitted)) return yield* admitted.left
        yield* work.open
      })

    const deliverReceipt = (receipt: CrossShardReceipt) =>
      Ref.update(view, (v) =>
        HashSet.has(v.ledger.receivedReceipts, receipt.receiptId)
          ? v
          : { ...v, receipts: HashMap.set(v.receipts, receipt.receiptId, receipt) }
      ).pipe(Effect.zipRight(work.open))

    const produceOne = Effect.gen(function* () {
      const v = yield* Ref.get(view)
      if (!hasWork(v)) return
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
        ledger: reply.state,
        pool: reconcile(current.pool, reply.state, transactions),
        receipts: HashMap.filter(current.receipts, (_, id) => !HashSet.has(reply.state.receivedReceipts, id))
      }))
      yield* Effect.logDebug(
        `shard ${shard} block ${block.header.height}: ${transactions.length} transactions, ${receipts.length} receipts`
      )
    })

    const intervalMinMillis = Duration.toMillis(options.blockIntervalMin ?? BLOCK_INTERVAL_MIN_DEFAULT)

    // Idle until there is work, then cut blocks until there is none.
    const loop = Effect.gen(function* () {
      yield* work.await
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

/**
 * ConsensusActor: one node's seat in one shard. For now a single block
 * producer per shard, behind the `ShardConsensus` interface that the BFT
 * (chained HotStuff) seat will implement.
 *
 * Admission (`Admission.ts`) and block production share one atomic view —
 * the ledger state and the mempool in one Ref.
 *
 * The producer cuts a block as soon as anything waits (batching whatever
 * queued meanwhile: one append per block) and otherwise idles — except with
 * a heartbeat (the beacon), when it also cuts an empty block once the last
 * one is a heartbeat old. Under load it starts blocks at most every
 * `blockIntervalMin`: a block costs a signature and a verification on this
 * thread whatever it holds, so a block per arriving transaction would spend
 * the node's time on block overhead.
 */
import { Clock, Duration, Effect, HashMap, HashSet, Ref } from "effect"
import type { Scope } from "effect"
import { receiptsToPropose } from "../domain/chain/receiptsToPropose.js"
import { buildBlock } from "../domain/chain/block.js"
import type { AdmissionRejected } from "../domain/chain/admission.js"
import type { PrivateKey } from "../domain/chain/keys.js"
import { ApplyBlock } from "../domain/chain/ledger.js"
import type { LedgerState } from "../domain/chain/ledger.js"
import { reconcile, takeBatch, BATCH_LIMITS_DEFAULT } from "../domain/chain/mempool.js"
import type { BatchLimits, Mempool } from "../domain/chain/mempool.js"
import type { CrossShardReceipt } from "../domain/chain/receipt.js"
import type { ShardId } from "../domain/chain/sharding.js"
import type { Transaction } from "../domain/chain/transaction.js"
import type { SignatureVerifier } from "../infra/crypto/SignatureVerifier.js"
import type { ShardActor } from "./ShardActor.js"
import { makeAdmission } from "./Admission.js"
import type { AdmissionView } from "./Admission.js"

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

/** Transactions, or receipts the next block would credit (an epoch receipt waiting for its predecessor is not work). */
const hasWork = (v: AdmissionView) => v.pool.count > 0 || receiptsToPropose(v.ledger, v.receipts).length > 0

export const makeSingleProducer = (
  options: ProducerOptions
): Effect.Effect<ShardConsensus, never, SignatureVerifier | Scope.Scope> =>
  Effect.gen(function* () {
    const { shard, shardActor, proposerKey } = options
    const work = yield* Effect.makeLatch(false)
    const { view, submit, deliverReceipt } = yield* makeAdmission({
      ledger: yield* shardActor.state,
      mempoolCapacity: options.mempoolCapacity,
      onWork: work.open
    })
    const limits = options.batchLimits ?? BATCH_LIMITS_DEFAULT

    const heartbeatMillis = options.heartbeat === undefined ? undefined : Duration.toMillis(options.heartbeat)

    const produceOne = Effect.gen(function* () {
      const v = yield* Ref.get(view)
      if (!hasWork(v) && heartbeatMillis === undefined) return
      const transactions = takeBatch(v.pool, limits)
      const receipts = receiptsToPropose(v.ledger, v.receipts)
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

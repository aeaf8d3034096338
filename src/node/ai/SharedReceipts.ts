/**
 * Usage receipts shared between the AI committee's gateways, so a gateway
 * that dies never to return loses no paid work: the receipts are signed by
 * their parties, so any member can submit them.
 *
 *   push     every round, this gateway's own receipts not yet shared go to
 *            each peer (`AiConfig.peers`) in `usage.receipts` batches of at
 *            most SHARE_BATCH_MAX; a peer that cannot be reached is skipped
 *            (each receipt needs one live honest member beside its gateway)
 *   accept   a batch is checked whole before anything is held: its size
 *            first, then each receipt decoded and checked by the AI
 *            ledger's own rules (`checkUsageReceipt`: chain, grant, request
 *            and results' signatures, model, price, workers, cap, escrow)
 *            against this node's view of the ledger; one bad receipt
 *            refuses the batch (`ReceiptsRefused`), none past
 *            FOREIGN_HELD_MAX is held. Settled or already pending ones are
 *            `known`. Accepted ones are appended to the `shared-receipts`
 *            stream, then pending in the Settler as foreign: submitted only
 *            if the ledger has not settled or refused them after the grace.
 *
 * The AI projection replays `shared-receipts` on start, so a crash of this
 * member loses none it accepted.
 */
import { Clock, Duration, Effect, Either, Schema } from "effect"
import { checkUsageReceipt } from "../../../domain/ai/ledger/settle.js"
import { ReceiptShared, SHARED_RECEIPTS_STREAM } from "../../../domain/ai/shared/events.js"
import { aiContextOf } from "../../../domain/chain/aiContext.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { UsageReceipt } from "../../../domain/chain/transaction.js"
import { EventStore } from "../../../infra/eventstore/EventStore.js"
import { ReceiptsRefused } from "../../api/AiRpcs.js"
import { makeClient, type NodeClient } from "../../client/index.js"
import type { ChainNodeShape } from "../ChainNode.js"
import type { Settler } from "./Settler.js"
import type { Scope } from "effect"

/** Receipts in one `usage.receipts`: each costs the receiver 2 + results signature checks. */
export const SHARE_BATCH_MAX = 64
/** A peer's `usage.receipts` answer is awaited this long. */
export const SHARE_CALL_TIMEOUT = Duration.seconds(10)

const decodeReceipt = Schema.decodeUnknownEither(UsageReceipt)
const encodeReceipt = Schema.encodeSync(UsageReceipt)
const encodeShared = Schema.encodeSync(ReceiptShared)

/** A `ReceiptShared` as the store takes it: its id is the task id (one per task in the stream). */
const newEvent = (e: ReceiptShared) => {
  const { _tag, ...data } = encodeShared(e)
  return { id: e.receipt.taskId, type: _tag, data }
}

export interface SharedReceiptsOptions {
  readonly peers: ReadonlyArray<string>
  /** How to reach a peer (default: an RPC client of its URL). */
  readonly connect?: ((peer: string) => Effect.Effect<Pick<NodeClient, "usage">, unknown, Scope.Scope>) | undefined
}

export const makeSharedReceipts = (settler: Settler, chain: ChainNodeShape, options: SharedReceiptsOptions) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const aiShard = (yield* chain.status).shards.find((s) => s.kind === "ai")?.shard
    const connect = options.connect ?? makeClient
    // One batch at a time: two batches with one receipt must not both find it new.
    const lock = yield* Effect.makeSemaphore(1)

    const refused = (reason: ReceiptsRefused["reason"], detail: string, extra: { index?: number; ledgerReason?: string } = {}) =>
      new ReceiptsRefused({ reason, detail, ...extra })

    /** `usage.receipts`: the whole batch checked, then held; or refused whole. */
    const accept = (batch: ReadonlyArray<unknown>) =>
      Effect.gen(function* () {
        if (batch.length > SHARE_BATCH_MAX) return yield* refused("TooMany", `${batch.length} receipts; a batch takes at most ${SHARE_BATCH_MAX}`)
        if (aiShard === undefined) return yield* refused("NoAiShard", "this chain has no AI shard")
        // Full: refused before any signature is checked.
        if (batch.length > 0 && (yield* settler.foreignRoom) === 0) {
          return yield* refused("Full", "this member holds as many receipts of other gateways as it takes: try later")
        }
        const state = yield* chain.ledger(aiShard).pipe(Effect.mapError((e) => refused("NoAiShard", e.message)))
        const now = yield* Clock.currentTimeMillis
        // A receipt's grant may be newer than the last AI block: checked as of now (the ledger checks again at settle).
        const ctx = aiContextOf(state, state.height + 1, Math.max(state.lastTimestamp, now))
        if (ctx === null || state.ai === null) return yield* refused("NoAiShard", "this node holds no AI ledger")
        const fresh: Array<UsageReceipt> = []
        const seen = new Set<Hash32>()
        let known = 0
        for (const [index, raw] of batch.entries()) {
          const decoded = decodeReceipt(raw)
          if (Either.isLeft(decoded)) return yield* refused("NotAReceipt", `receipt ${index}: ${decoded.left.message.slice(0, 400)}`, { index })
          const r = decoded.right
          if (seen.has(r.taskId) || (yield* settler.knows(r.taskId))) {
            known += 1
            continue
          }
          const checked = checkUsageReceipt(state.ai, ctx, r)
          if (Either.isLeft(checked)) {
            if (checked.left.reason === "AlreadySettled") {
              known += 1
              continue
            }
            return yield* refused("BadReceipt", `receipt ${index} (task ${r.taskId}): ${checked.left.detail}`, { index, ledgerReason: checked.left.reason })
          }
          seen.add(r.taskId)
          fresh.push(r)
        }
        const room = yield* settler.foreignRoom
        if (fresh.length > room) {
          return yield* refused("Full", `this member has room for ${room} more receipts of other gateways, the batch brings ${fresh.length}: try later`)
        }
        if (fresh.length === 0) return { held: 0, known }
        // Recorded before it is pending: what was answered `held` survives a crash.
        yield* store
          .append(SHARED_RECEIPTS_STREAM, fresh.map((receipt) => newEvent(new ReceiptShared({ receipt, at: now }))), "any")
          .pipe(Effect.orDie)
        // (the projection, reading the stream live, may make it pending first: adding is idempotent)
        for (const r of fresh) yield* settler.addForeign(r)
        return { held: fresh.length, known }
      }).pipe(lock.withPermits(1))

    /** A replayed `ReceiptShared` (checked when it was accepted). */
    const replayed = (event: ReceiptShared) => Effect.asVoid(settler.addForeign(event.receipt))

    /** One peer gets the batch; why not, in words. */
    const pushTo = (peer: string, receipts: ReadonlyArray<UsageReceipt>) =>
      Effect.scoped(
        Effect.gen(function* () {
          const client = yield* connect(peer)
          return yield* client.usage.receipts({ receipts: receipts.map((r) => encodeReceipt(r)) })
        })
      ).pipe(
        Effect.timeoutFail({ duration: SHARE_CALL_TIMEOUT, onTimeout: () => new Error(`no answer within ${Duration.toMillis(SHARE_CALL_TIMEOUT)} ms`) }),
        Effect.tapError((e) => Effect.logWarning(`usage receipts not shared with ${peer}: ${e instanceof Error ? e.message : String(e)}`)),
        Effect.either
      )

    /** One round: this gateway's unshared receipts to every peer, batch by batch. */
    const round = Effect.gen(function* () {
      if (options.peers.length === 0) return
      for (;;) {
        const batch = yield* settler.unshared(SHARE_BATCH_MAX)
        if (batch.length === 0) return
        yield* Effect.forEach(options.peers, (peer) => pushTo(peer, batch), { concurrency: "unbounded", discard: true })
        // Shared with the peers that answered; a dead peer does not hold up the others (a restart shares everything again).
        yield* settler.markShared(batch.map((r) => r.taskId))
      }
    }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("receipt sharing round failed (the next round tries again)", cause)))

    return { accept, replayed, round }
  })

export type SharedReceipts = Effect.Effect.Success<ReturnType<typeof makeSharedReceipts>>

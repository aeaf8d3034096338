/**
 * The node's read model of its shards: where each transaction and block is,
 * built by following the event store (catch-up, then live). It is a
 * projection, so a restart rebuilds it from the same events.
 *
 * It also relays: every `CrossShardSent` it sees is handed to the
 * destination shard, whose ledger credits a receipt id once however often
 * it arrives — which is what makes cross-shard transfers exactly-once across
 * crashes of either side.
 */
import { Deferred, Effect, Either, Option } from "effect"
import type { Scope } from "effect"
import type { ShardEvent } from "../../domain/chain/events.js"
import { decodeEventOf } from "../../domain/streamEvents.js"
import type { CrossShardReceipt } from "../../domain/chain/receipt.js"
import { followLog } from "./followLog.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import type { RecordedEvent } from "../../infra/eventstore/EventStore.js"

export interface TxLocation {
  readonly shard: number
  readonly height: number
  /** Revision of the block's `BlockApplied` event in `shard-{shard}`. */
  readonly blockRevision: number
  readonly status: "included" | "rejected"
  readonly reason?: string | undefined
  readonly receiptId?: string | undefined
  readonly receiptDelivered?: boolean | undefined
}

export interface ChainIndex {
  readonly transaction: (hash: string) => Effect.Effect<Option.Option<TxLocation>>
  /** Revision of the block's `BlockApplied` event, if the block exists. */
  readonly block: (shard: number, height: number) => Effect.Effect<Option.Option<number>>
  /** Waits until the transaction is in an applied block. */
  readonly awaitTransaction: (hash: string) => Effect.Effect<TxLocation>
  /** Global position of the last event indexed. */
  readonly position: Effect.Effect<number>
}

const SHARD_STREAM = /^shard-(\d+)$/

/** A transaction of the block being read, before the block's height is known. */
type PendingTx = Omit<TxLocation, "shard" | "height" | "blockRevision">

export const makeChainIndex = (
  relay: (receipt: CrossShardReceipt) => Effect.Effect<void>
): Effect.Effect<ChainIndex, never, EventStore | Scope.Scope> =>
  Effect.gen(function* () {
    const txs = new Map<string, TxLocation>()
    const blocks = new Map<string, number>()
    const receiptTx = new Map<string, string>()
    const waiters = new Map<string, Array<Deferred.Deferred<TxLocation>>>()
    let position = 0

    const settle = (hash: string, location: TxLocation) =>
      Effect.suspend(() => {
        txs.set(hash, location)
        const waiting = waiters.get(hash)
        if (waiting === undefined) return Effect.void
        waiters.delete(hash)
        return Effect.forEach(waiting, (d) => Deferred.succeed(d, location), { discard: true })
      })

    /**
     * The block being read, from its `BlockApplied` to its `BlockExecuted` (one append): its
     * transactions are settled with the height `BlockExecuted` names, so the block itself (every
     * transaction in it) is never decoded here.
     */
    let open: { readonly shard: number; readonly revision: number; readonly txs: Map<string, PendingTx> } | undefined

    /** The shard's events this index reads; every other type is skipped undecoded. */
    const READ: ReadonlySet<string> = new Set<ShardEvent["_tag"]>(["BlockApplied", "FeeCharged", "TransactionRejected", "CrossShardSent", "CrossShardReceived", "BlockExecuted"])

    const onShardEvent = (shard: number, revision: number, event: ShardEvent): Effect.Effect<void> => {
      switch (event._tag) {
        case "BlockApplied":
          open = { shard, revision, txs: new Map() }
          return Effect.void
        case "FeeCharged":
          // Every transaction a block holds ends in exactly one of these two.
          if (open?.shard === shard) open.txs.set(event.txHash, { status: "included" })
          return Effect.void
        case "TransactionRejected":
          if (open?.shard === shard) open.txs.set(event.txHash, { status: "rejected", reason: `${event.reason}: ${event.detail}` })
          return Effect.void
        case "CrossShardSent": {
          const pending = open?.shard === shard ? open.txs.get(event.txHash) : undefined
          if (pending !== undefined) open!.txs.set(event.txHash, { ...pending, receiptId: event.receiptId, receiptDelivered: false })
          const location = txs.get(event.txHash)
          if (location !== undefined) txs.set(event.txHash, { ...location, receiptId: event.receiptId, receiptDelivered: false })
          receiptTx.set(event.receiptId, event.txHash)
          return relay(event.receipt)
        }
        case "CrossShardReceived": {
          const txHash = receiptTx.get(event.receiptId)
          const location = txHash === undefined ? undefined : txs.get(txHash)
          if (txHash !== undefined && location !== undefined) txs.set(txHash, { ...location, receiptDelivered: true })
          return Effect.void
        }
        case "BlockExecuted": {
          const block = open?.shard === shard ? open : undefined
          open = undefined
          if (block === undefined) return Effect.void // a genesis: no BlockApplied, no transactions
          blocks.set(`${shard}:${event.height}`, block.revision)
          return Effect.forEach(block.txs, ([hash, p]) => settle(hash, { shard, height: event.height, blockRevision: block.revision, ...p }), {
            discard: true
          })
        }
        default:
          return Effect.void
      }
    }

    const apply = (event: RecordedEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        position = event.position
        const match = SHARD_STREAM.exec(event.stream)
        if (match === null || !READ.has(event.type)) return Effect.void
        const decoded = decodeEventOf("shard", event.type, event.data)
        if (Either.isLeft(decoded)) return Effect.logError(`chain index: ${event.stream}@${event.revision} does not decode: ${decoded.left}`)
        return onShardEvent(Number(match[1]), event.revision, decoded.right)
      })

    yield* followLog("chain index", apply)

    return {
      transaction: (hash) => Effect.sync(() => Option.fromNullable(txs.get(hash))),
      block: (shard, height) => Effect.sync(() => Option.fromNullable(blocks.get(`${shard}:${height}`))),
      awaitTransaction: (hash) =>
        // Check and register in one step: the index fiber must not settle the hash in between.
        Effect.flatMap(Deferred.make<TxLocation>(), (d) =>
          Effect.suspend(() => {
            const known = txs.get(hash)
            if (known !== undefined) return Effect.succeed(known)
            const list = waiters.get(hash) ?? []
            list.push(d)
            waiters.set(hash, list)
            return Deferred.await(d).pipe(
              Effect.onInterrupt(() =>
                Effect.sync(() => {
                  // A caller that stopped waiting (timeout) leaves no waiter behind.
                  const rest = (waiters.get(hash) ?? []).filter((w) => w !== d)
                  if (rest.length === 0) waiters.delete(hash)
                  else waiters.set(hash, rest)
                })
              )
            )
          })
        ),
      position: Effect.sync(() => position)
    }
  })

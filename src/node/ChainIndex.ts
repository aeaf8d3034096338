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
import { Deferred, Effect, Option, Schema } from "effect"
import type { Scope } from "effect"
import { CrossShardSent } from "../../domain/chain/events.js"
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

const decodeSent = Schema.decodeUnknownSync(CrossShardSent)

interface Data {
  readonly [key: string]: unknown
}

export const makeChainIndex = (
  relay: (receipt: CrossShardReceipt) => Effect.Effect<void>
): Effect.Effect<ChainIndex, never, EventStore | Scope.Scope> =>
  Effect.gen(function* () {
    const txs = new Map<string, TxLocation>()
    const blocks = new Map<string, number>()
    const receiptTx = new Map<string, string>()
    const current = new Map<number, { readonly height: number; readonly revision: number }>()
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

    const apply = (event: RecordedEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        position = event.position
        const match = SHARD_STREAM.exec(event.stream)
        if (match === null) return Effect.void
        const shard = Number(match[1])
        const data = event.data as Data
        const block = current.get(shard)
        switch (event.type) {
          case "BlockApplied": {
            const height = ((data["block"] as Data)["header"] as Data)["height"] as number
            current.set(shard, { height, revision: event.revision })
            blocks.set(`${shard}:${height}`, event.revision)
            return Effect.void
          }
          case "FeeCharged":
          case "TransactionRejected":
            // Every transaction a block holds ends in exactly one of these two.
            return block === undefined
              ? Effect.void
              : settle(data["txHash"] as string, {
                  shard,
                  height: block.height,
                  blockRevision: block.revision,
                  ...(event.type === "FeeCharged"
                    ? { status: "included" as const }
                    : { status: "rejected" as const, reason: `${data["reason"]}: ${data["detail"]}` })
                })
          case "CrossShardSent": {
            const sent = decodeSent({ ...data, _tag: "CrossShardSent" })
            const location = txs.get(sent.txHash)
            if (location !== undefined) txs.set(sent.txHash, { ...location, receiptId: sent.receiptId, receiptDelivered: false })
            receiptTx.set(sent.receiptId, sent.txHash)
            return relay(sent.receipt)
          }
          case "CrossShardReceived": {
            const txHash = receiptTx.get(data["receiptId"] as string)
            const location = txHash === undefined ? undefined : txs.get(txHash)
            if (txHash !== undefined && location !== undefined) txs.set(txHash, { ...location, receiptDelivered: true })
            return Effect.void
          }
          default:
            return Effect.void
        }
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

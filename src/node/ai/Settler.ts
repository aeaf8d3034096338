/**
 * Settles validated tasks on chain: the usage receipts this gateway's tasks
 * produced (each kept in its task's `TaskSettled`) are batched into
 * `usage.settle` transactions on the AI shard, signed with the node's key,
 * fee 0, every `settleEvery`.
 *
 * The pending list is a function of the log and the AI ledger: a receipt is
 * pending from its `TaskSettled` until the ledger has its task id in
 * `settled`, or refused it (`UsageRefused`; the projection then returns its
 * capture to the local escrow book, gap 5). The projection replays the log
 * on every start, so a crash loses no signed receipt; and a receipt the
 * ledger settled is dropped before each round, so nothing is submitted
 * again once settled (the ledger would refuse a second settle, but this
 * bookkeeping does not count on it). A batch in flight is not sent again
 * until its transaction had time to be included.
 *
 * A confirmed overrun's receipt (two workers' signed claims, `TaskSettled`'s
 * `overran`) goes the same way in its own kind, `usage.overran`: one
 * pending list keyed by task id (the ledger charges a task once, by either
 * kind), batched per kind.
 */
import { Clock, Effect, HashSet } from "effect"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import type { Address } from "../../../domain/chain/keys.js"
import {
  signTransaction,
  receiptSignatures,
  TransactionBody,
  USAGE_RECEIPTS_MAX,
  USAGE_SIGNATURES_MAX,
  type OverranReceipt,
  type UsageReceipt
} from "../../../domain/chain/transaction.js"
import { overranReceiptSignatures } from "../../../domain/chain/payloads/usageOverran.js"
import type { ChainNodeShape } from "../ChainNode.js"
import type { AiConfig } from "./AiConfig.js"

/** A receipt sent in a batch is not sent again before this (its block comes well within it). */
export const RESUBMIT_AFTER_MS = 30_000

/** A validated task's receipt (`usage.settle`) or a confirmed overrun's (`usage.overran`). */
export type ChargeReceipt = UsageReceipt | OverranReceipt
const isOverran = (r: ChargeReceipt): r is OverranReceipt => "claims" in r

interface Pending {
  readonly receipt: ChargeReceipt
  readonly developer: Address
  /** When it was last sent in a batch (0: never). */
  sentAt: number
}

export const makeSettler = (config: Pick<AiConfig, "settlerKey">, chainId: bigint, chain: ChainNodeShape) =>
  Effect.gen(function* () {
    const aiShard = (yield* chain.status).shards.find((s) => s.kind === "ai")?.shard
    const pending = new Map<Hash32, Pending>()
    /** Task ids the ledger refused: their receipts are not pending any more (kept so a replay does not revive them). */
    const refused = new Set<Hash32>()
    const key = config.settlerKey

    /** The AI ledger's settled task ids (empty while the chain has no AI ledger). */
    const settledOnChain = Effect.gen(function* () {
      if (aiShard === undefined) return HashSet.empty<Hash32>()
      const ledger = yield* chain.ledger(aiShard).pipe(Effect.orElseSucceed(() => null))
      return ledger?.ai?.settled ?? HashSet.empty<Hash32>()
    })

    /** A task's receipt, from its `TaskSettled` (live or replayed). */
    const add = (receipt: ChargeReceipt, developer: Address) =>
      Effect.gen(function* () {
        if (refused.has(receipt.taskId) || pending.has(receipt.taskId)) return
        if (HashSet.has(yield* settledOnChain, receipt.taskId)) return
        pending.set(receipt.taskId, { receipt, developer, sentAt: 0 })
      })

    /** The ledger's word on a task id (`UsageSettled` or `UsageRefused` in the AI shard's stream). */
    const settled = (taskId: Hash32) => Effect.sync(() => void pending.delete(taskId))
    /** The ledger refused the task's receipt: it leaves the pending list; the receipt and its developer, if it was pending here. */
    const refuse = (taskId: Hash32, reason: string) =>
      Effect.gen(function* () {
        refused.add(taskId)
        const dropped = pending.get(taskId)
        if (dropped === undefined) return undefined
        pending.delete(taskId)
        yield* Effect.logWarning(`usage receipt of task ${taskId} refused by the AI ledger: ${reason}`)
        return { receipt: dropped.receipt, developer: dropped.developer }
      })

    /** What this node captured for (developer, model) and the ledger has not settled yet. */
    const unsettled = (developer: string, model: string) => {
      let sum = 0n
      for (const p of pending.values()) if (p.developer === developer && p.receipt.model === model) sum += p.receipt.price
      return sum
    }

    /** The receipts of one batch of one kind: as many as one `usage.settle` (or `usage.overran`) takes (receipts and signatures). */
    const nextBatch = (now: number, overran: boolean) => {
      const out: Array<Pending> = []
      let signatures = 0
      for (const p of pending.values()) {
        if (isOverran(p.receipt) !== overran) continue
        if (p.sentAt !== 0 && now - p.sentAt < RESUBMIT_AFTER_MS) continue
        const n = isOverran(p.receipt) ? overranReceiptSignatures() : receiptSignatures(p.receipt)
        if (out.length >= USAGE_RECEIPTS_MAX || signatures + n > USAGE_SIGNATURES_MAX) break
        out.push(p)
        signatures += n
      }
      return out
    }

    /** One round: drop what the ledger settled, then send the rest in batches. */
    const round = Effect.gen(function* () {
      if (aiShard === undefined || pending.size === 0) return
      const done = yield* settledOnChain
      for (const id of pending.keys()) if (HashSet.has(done, id)) pending.delete(id)
      for (const overran of [false, true]) {
        for (;;) {
          const now = yield* Clock.currentTimeMillis
          const batch = nextBatch(now, overran)
          if (batch.length === 0) break
          const account = yield* chain.account(key.publicKey.address, aiShard)
          const payload = overran
            ? { kind: "usage.overran" as const, receipts: batch.map((p) => p.receipt as OverranReceipt) }
            : { kind: "usage.settle" as const, receipts: batch.map((p) => p.receipt as UsageReceipt) }
          const tx = signTransaction(new TransactionBody({ chainId, nonce: account.pendingNonce, fee: 0n, payload }), key)
          const sent = yield* chain.submit(bytesToHex(tx.encoded), false).pipe(Effect.either)
          if (sent._tag === "Left") {
            yield* Effect.logWarning(`${payload.kind} of ${batch.length} receipts not admitted (next round retries): ${sent.left.message}`)
            return
          }
          for (const p of batch) p.sentAt = now
          yield* Effect.logDebug(`${payload.kind} ${tx.hash}: ${batch.length} receipts`)
        }
      }
    }).pipe(Effect.catchAll((e) => Effect.logWarning(`settlement round deferred: ${e.message}`)))

    return {
      add,
      settled,
      refuse,
      unsettled,
      round,
      /** The receipts not yet settled on chain (task ids). */
      pending: Effect.sync(() => [...pending.keys()]),
      /** Whether the AI ledger settled this task id (through any gateway): its price is paid already. */
      settledOnLedger: (taskId: Hash32) => Effect.map(settledOnChain, (done) => HashSet.has(done, taskId))
    }
  })

export type Settler = Effect.Effect.Success<ReturnType<typeof makeSettler>>

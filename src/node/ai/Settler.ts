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
 * kind), batched per kind. Only validated tasks' receipts are shared with
 * the other members (a shared overran receipt is not built yet).
 *
 * Receipts other gateways shared with this member (`SharedReceipts.ts`) are
 * pending here too, as foreign: each is sent only after a grace period
 * (`shareGraceMs`, then half a grace per turn of `takeoverRank`: members
 * take turns instead of all submitting at once) in which its own gateway normally settles it, so a
 * gateway that died never to return still gets its paid work settled, and
 * in the common case each task id is submitted once, by its own gateway.
 * Foreign receipts count against `FOREIGN_HELD_MAX` and never touch the
 * local escrow book (this gateway captured nothing for them).
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
import { takeoverRank } from "../../../domain/ai/shared/takeoverRank.js"
import type { ChainNodeShape } from "../ChainNode.js"
import type { AiConfig } from "./AiConfig.js"

/** A receipt sent in a batch is not sent again before this (its block comes well within it). */
export const RESUBMIT_AFTER_MS = 30_000

/** How long a shared receipt waits for its own gateway to settle it before this member submits it (default). */
export const SHARE_GRACE_MS = 20_000
/** Foreign receipts held at once: what a hostile peer can make this member hold is bounded. */
export const FOREIGN_HELD_MAX = 4_096

/** A validated task's receipt (`usage.settle`) or a confirmed overrun's (`usage.overran`). */
export type ChargeReceipt = UsageReceipt | OverranReceipt
const isOverran = (r: ChargeReceipt): r is OverranReceipt => "claims" in r

interface Pending {
  readonly receipt: ChargeReceipt
  /** Undefined for a foreign receipt (another gateway's). */
  readonly developer: Address | undefined
  /** Not sent before this (0: this gateway's own receipt). */
  readonly notBefore: number
  /** When it was last sent in a batch (0: never). */
  sentAt: number
  /** Own receipts: shared with the other members (`SharedReceipts.ts`). */
  shared: boolean
}

/** What `addForeign` did with a shared receipt. */
export type ForeignOutcome = "held" | "known" | "full"

export const makeSettler = (
  config: Pick<AiConfig, "settlerKey" | "shareGraceMs"> & { readonly foreignHeldMax?: number | undefined },
  chainId: bigint,
  chain: ChainNodeShape
) =>
  Effect.gen(function* () {
    const aiShard = (yield* chain.status).shards.find((s) => s.kind === "ai")?.shard
    const pending = new Map<Hash32, Pending>()
    /** Task ids the ledger refused: their receipts are not pending any more (kept so a replay does not revive them). */
    const refused = new Set<Hash32>()
    const key = config.settlerKey
    const graceMs = config.shareGraceMs ?? SHARE_GRACE_MS
    const foreignMax = config.foreignHeldMax ?? FOREIGN_HELD_MAX
    let foreign = 0
    const drop = (taskId: Hash32) => {
      const p = pending.get(taskId)
      if (p === undefined) return undefined
      pending.delete(taskId)
      if (p.developer === undefined) foreign -= 1
      return p
    }

    /** The AI ledger's settled task ids (empty while the chain has no AI ledger). */
    const settledOnChain = Effect.gen(function* () {
      if (aiShard === undefined) return HashSet.empty<Hash32>()
      const ledger = yield* chain.ledger(aiShard).pipe(Effect.orElseSucceed(() => null))
      return ledger?.ai?.settled ?? HashSet.empty<Hash32>()
    })

    /** The AI committee's members (none on a single-producer chain: its one attestor has no one to take turns with). */
    const committee = Effect.gen(function* () {
      if (aiShard === undefined) return []
      const ledger = yield* chain.ledger(aiShard).pipe(Effect.orElseSucceed(() => null))
      return ledger?.committee?.members.map((m) => m.address) ?? []
    })

    /** A task's receipt, from its `TaskSettled` (live or replayed). */
    const add = (receipt: ChargeReceipt, developer: Address) =>
      Effect.gen(function* () {
        if (refused.has(receipt.taskId) || pending.has(receipt.taskId)) return
        if (HashSet.has(yield* settledOnChain, receipt.taskId)) return
        pending.set(receipt.taskId, { receipt, developer, notBefore: 0, sentAt: 0, shared: false })
      })

    /**
     * A receipt another gateway shared (already checked by the ledger's rules):
     * pending as foreign, sent after the grace period. Known ones (pending,
     * refused, settled) are not held twice; past `FOREIGN_HELD_MAX` none is held.
     */
    const addForeign = (receipt: UsageReceipt) =>
      Effect.gen(function* () {
        if (refused.has(receipt.taskId) || pending.has(receipt.taskId)) return "known" as ForeignOutcome
        if (HashSet.has(yield* settledOnChain, receipt.taskId)) return "known" as ForeignOutcome
        if (foreign >= foreignMax) return "full" as ForeignOutcome
        const now = yield* Clock.currentTimeMillis
        // After the grace, the members take turns half a grace apart (takeoverRank): one submits, the rest see it settled.
        const rank = takeoverRank(yield* committee, key.publicKey.address, receipt.taskId)
        const notBefore = now + graceMs + Math.floor((rank * graceMs) / 2)
        pending.set(receipt.taskId, { receipt, developer: undefined, notBefore, sentAt: 0, shared: true })
        foreign += 1
        return "held" as ForeignOutcome
      })

    /** Whether the task id is pending here or was refused by the ledger. */
    const knows = (taskId: Hash32) => Effect.sync(() => pending.has(taskId) || refused.has(taskId))

    /** The ledger's word on a task id (`UsageSettled` or `UsageRefused` in the AI shard's stream). */
    const settled = (taskId: Hash32) => Effect.sync(() => void drop(taskId))
    /** The ledger refused the task's receipt: it leaves the pending list; the receipt and its developer, if it was pending here. */
    const refuse = (taskId: Hash32, reason: string) =>
      Effect.gen(function* () {
        refused.add(taskId)
        const dropped = drop(taskId)
        if (dropped === undefined) return undefined
        yield* Effect.logWarning(`usage receipt of task ${taskId} refused by the AI ledger: ${reason}`)
        // A foreign receipt captured nothing in this gateway's escrow book.
        return dropped.developer === undefined ? undefined : { receipt: dropped.receipt, developer: dropped.developer }
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
        if (now < p.notBefore) continue
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
      for (const id of [...pending.keys()]) if (HashSet.has(done, id)) drop(id)
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

    /** This gateway's own receipts not yet shared with the other members, at most `max`. */
    const unshared = (max: number) => {
      const out: Array<UsageReceipt> = []
      for (const p of pending.values()) {
        if (out.length >= max) break
        if (!p.shared && !isOverran(p.receipt)) out.push(p.receipt)
      }
      return out
    }
    /** Shared with every peer (or given up on): not offered again. */
    const markShared = (ids: ReadonlyArray<Hash32>) =>
      Effect.sync(() => {
        for (const id of ids) {
          const p = pending.get(id)
          if (p !== undefined) p.shared = true
        }
      })

    return {
      add,
      addForeign,
      knows,
      unshared: (max: number) => Effect.sync(() => unshared(max)),
      markShared,
      /** Foreign receipts held now. */
      foreignHeld: Effect.sync(() => foreign),
      /** How many more foreign receipts may be held. */
      foreignRoom: Effect.sync(() => foreignMax - foreign),
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

/**
 * Proves wrong results on chain: when this gateway's task shows a worker's
 * signed result wrong (a referee's re-execution or the agreeing results of a
 * quorum), the three signed results and the developer's grant go to the AI
 * shard as a `result.challenge`, signed with the node's key (an AI committee
 * member's: only members may send one), fee 0. The ledger slashes the loser
 * at the epoch close, part to the developer and to this node as reporter.
 *
 * A proof is pending until the ledger lists (task, loser) as challenged —
 * whoever sent it — or refuses it for a reason of its own (the AI ledger's
 * reasons are final, but for this node not being a committee member now;
 * the chain's, such as a nonce race or a full mempool, are retried next round). A proof sent is not sent again before its block had
 * time to come. The proofs of validated tasks are kept in their `TaskSettled`
 * and re-derived from the log on every start (AiProjection), like receipts.
 */
import { Clock, Effect, HashSet } from "effect"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { AiRejectionReason } from "../../../domain/ai/ledger/events.js"
import { challengeKey } from "../../../domain/ai/ledger/state.js"
import { signTransaction, TransactionBody, type ResultChallengePayload } from "../../../domain/chain/transaction.js"
import type { ChainNodeShape } from "../ChainNode.js"
import type { AiConfig } from "./AiConfig.js"

/** A proof sent is not sent again before this (its block comes well within it). */
export const RECHALLENGE_AFTER_MS = 30_000

/** The AI ledger's refusals are final for a proof, but for `NotCommitteeMember`: AI committees change each epoch, and this node may sit on the next. */
const finalReasons: ReadonlySet<string> = new Set(AiRejectionReason.literals.filter((r) => r !== "NotCommitteeMember"))

interface Pending {
  readonly proof: ResultChallengePayload
  /** When it was last sent (0: never). */
  sentAt: number
}

export const makeChallenger = (config: Pick<AiConfig, "settlerKey">, chainId: bigint, chain: ChainNodeShape) =>
  Effect.gen(function* () {
    const aiShard = (yield* chain.status).shards.find((s) => s.kind === "ai")?.shard
    const pending = new Map<string, Pending>()
    /** Proofs the ledger refused: not revived by a replay. */
    const refused = new Set<string>()
    const key = config.settlerKey

    /** The AI ledger's (task, loser) keys proven wrong (empty while the chain has no AI ledger). */
    const provenOnChain = Effect.gen(function* () {
      if (aiShard === undefined) return HashSet.empty<string>()
      const ledger = yield* chain.ledger(aiShard).pipe(Effect.orElseSucceed(() => null))
      return ledger?.ai?.challenged ?? HashSet.empty<string>()
    })

    /** A proof of a wrong result (live, or replayed from its task's `TaskSettled`). */
    const add = (proof: ResultChallengePayload) =>
      Effect.gen(function* () {
        const id = challengeKey(proof.taskId, proof.loser.worker)
        if (refused.has(id) || pending.has(id)) return
        if (HashSet.has(yield* provenOnChain, id)) return
        pending.set(id, { proof, sentAt: 0 })
      })

    /** One round: drop what the ledger proved, send the rest, one transaction each. */
    const round = Effect.gen(function* () {
      if (aiShard === undefined || pending.size === 0) return
      const proven = yield* provenOnChain
      for (const id of pending.keys()) if (HashSet.has(proven, id)) pending.delete(id)
      for (const [id, p] of pending) {
        const now = yield* Clock.currentTimeMillis
        if (p.sentAt !== 0 && now - p.sentAt < RECHALLENGE_AFTER_MS) continue
        const account = yield* chain.account(key.publicKey.address, aiShard)
        const tx = signTransaction(new TransactionBody({ chainId, nonce: account.pendingNonce, fee: 0n, payload: p.proof }), key)
        const sent = yield* chain.submit(bytesToHex(tx.encoded), false).pipe(Effect.either)
        if (sent._tag === "Left") {
          if (finalReasons.has(sent.left.reason)) {
            pending.delete(id)
            refused.add(id)
            yield* Effect.logWarning(`result.challenge of ${p.proof.loser.worker} on task ${p.proof.taskId} refused by the AI ledger: ${sent.left.message}`)
            continue
          }
          yield* Effect.logWarning(`result.challenge not admitted (next round retries): ${sent.left.message}`)
          return
        }
        p.sentAt = now
        yield* Effect.logInfo(`result.challenge ${tx.hash}: ${p.proof.loser.worker} proven wrong on task ${p.proof.taskId}`)
      }
    }).pipe(Effect.catchAll((e) => Effect.logWarning(`challenge round deferred: ${e.message}`)))

    return {
      add,
      round,
      /** Proofs not yet taken by the ledger, as `challengeKey(task, loser)`. */
      pending: Effect.sync(() => [...pending.keys()])
    }
  })

export type Challenger = Effect.Effect.Success<ReturnType<typeof makeChallenger>>

/**
 * This node's seat in the AI ledger's model verdicts: it reads the ledger's
 * models as its chain node applied them, and submits `model.attest`
 * transactions signed with the attestor key (a BFT validator's account key;
 * the AI shard's proposer key on a single-producer chain).
 *
 * A `model.attest` runs on the AI shard with fee 0 and the attestor's
 * AI-shard nonce. Submissions go one at a time (one nonce sequence), and a
 * nonce another submission took meanwhile (NonceReused, NonceGap) is read
 * again and the transaction signed anew.
 */
import { Effect, Schedule } from "effect"
import type { ModelAttestPayload, TransactionPayload } from "../../../domain/chain/transaction.js"
import { signTransaction, TransactionBody } from "../../../domain/chain/transaction.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import type { Address, PrivateKey } from "../../../domain/chain/keys.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { aiContextOf } from "../../../domain/chain/aiContext.js"
import { aiShardOf } from "../../../domain/chain/sharding.js"
import { modelOf, type AiLedgerState, type AiModel } from "../../../domain/ai/ledger/state.js"
import type { TransactionRejected } from "../../api/NodeRpcs.js"
import type { ChainNodeShape } from "../ChainNode.js"

/** Submissions of one attestation that lose their nonce to another before one is admitted. */
const NONCE_RETRIES = 5

export interface ModelAttestor {
  /** The attestor's address: the key its attestations are recorded under. */
  readonly address: Address
  /** The AI ledger after the last applied AI block (null before the AI shard's genesis). */
  readonly ledger: Effect.Effect<AiLedgerState | null>
  /** The AI ledger when this node is a member of the committee deciding the next AI block; null otherwise. */
  readonly ledgerAsMember: Effect.Effect<AiLedgerState | null>
  readonly model: (id: string) => Effect.Effect<AiModel | undefined>
  /** Submits `payload` signed by the attestor and waits for its block; its hash. */
  readonly attest: (payload: ModelAttestPayload) => Effect.Effect<Hash32, TransactionRejected>
  /** Any AI-shard payload this member signs (worker.liveness, worker.measure), on the same nonce sequence. */
  readonly submit: (payload: TransactionPayload) => Effect.Effect<Hash32, TransactionRejected>
}

const isNonceRace = (e: TransactionRejected) => e.reason === "NonceReused" || e.reason === "NonceGap"

export const makeModelAttestor = (chain: ChainNodeShape, key: PrivateKey) =>
  Effect.gen(function* () {
    const status = yield* chain.status
    const aiShard = status.shards.find((s) => s.kind === "ai")?.shard ?? aiShardOf(status.shards.filter((s) => s.kind === "transfer").length)
    const address = key.publicKey.address
    const submitting = yield* Effect.makeSemaphore(1)

    const ledger: Effect.Effect<AiLedgerState | null> = chain.ledger(aiShard).pipe(
      Effect.map((l) => l.ai),
      Effect.orElseSucceed(() => null)
    )

    const ledgerAsMember: Effect.Effect<AiLedgerState | null> = chain.ledger(aiShard).pipe(
      Effect.map((state) => {
        const committee = aiContextOf(state, state.height + 1, state.lastTimestamp)?.committee ?? []
        return state.ai !== null && committee.some((m) => m.address === address) ? state.ai : null
      }),
      Effect.orElseSucceed(() => null)
    )

    const submitOnce = (payload: TransactionPayload) =>
      Effect.gen(function* () {
        const account = yield* chain.account(address, aiShard).pipe(Effect.orDie)
        const tx = signTransaction(new TransactionBody({ chainId: status.chainId, nonce: account.pendingNonce, fee: 0n, payload }), key)
        yield* chain.submit(bytesToHex(tx.encoded), true)
        return tx.hash
      })

    const submit = (payload: TransactionPayload) =>
      submitting.withPermits(1)(
        submitOnce(payload).pipe(
          Effect.retry({ while: isNonceRace, times: NONCE_RETRIES, schedule: Schedule.spaced("50 millis") })
        )
      )

    return {
      address,
      ledger,
      ledgerAsMember,
      model: (id: string) => Effect.map(ledger, (s) => (s === null ? undefined : modelOf(s, id as Hash32))),
      attest: submit,
      submit
    } satisfies ModelAttestor
  })

/**
 * Pays providers on chain: every `settleEvery`, what the escrow account owes
 * each provider (usage settled in receipt batches minus what it already
 * paid, as the chain's own transfers show) goes out as one transfer per
 * provider, signed with the escrow key. Owed is derived from events, so a
 * crash never pays twice: a payout either is on chain or is owed again.
 */
import { Duration, Effect, Schedule } from "effect"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { signTransaction, TransactionBody } from "../../../domain/chain/transaction.js"
import type { Address } from "../../../domain/chain/keys.js"
import type { ChainNodeShape } from "../ChainNode.js"
import type { AiConfig } from "./AiConfig.js"
import type { AiProjection } from "./AiProjection.js"
import type { TaskRunner } from "./TaskRunner.js"

/** How long a payout may take to show up in the projection before the next round. */
const PAYOUT_VISIBLE_WITHIN = Duration.seconds(10)

export const runSettlement = (config: AiConfig, chainId: bigint, chain: ChainNodeShape, projection: AiProjection, runner: TaskRunner) => {
  const escrow = config.escrowKey
  const payOne = (provider: string, amount: bigint) =>
    Effect.gen(function* () {
      const before = yield* projection.paidTo(provider)
      const account = yield* chain.account(escrow.publicKey.address)
      const tx = signTransaction(
        new TransactionBody({
          chainId,
          nonce: account.pendingNonce,
          fee: 0n, // the payout costs the provider nothing
          payload: { kind: "transfer", to: provider as Address, amount }
        }),
        escrow
      )
      const r = yield* chain.submit(bytesToHex(tx.encoded), true)
      yield* Effect.logInfo(`paid ${amount} to provider ${provider} (${r.status}, ${tx.hash})`)
      // Wait until the projection counts it, so the next round does not pay it again.
      yield* projection.paidTo(provider).pipe(
        Effect.repeat({ until: (paid) => paid >= before + amount, schedule: Schedule.spaced("20 millis") }),
        Effect.timeout(PAYOUT_VISIBLE_WITHIN),
        Effect.ignore
      )
    }).pipe(Effect.catchAll((e) => Effect.logWarning(`payout to ${provider} deferred: ${e.message}`)))

  const round = Effect.gen(function* () {
    yield* runner.rotateBatch
    const owed = yield* projection.owed
    for (const [provider, amount] of owed) yield* payOne(provider, amount)
  })
  return round.pipe(Effect.zipRight(Effect.sleep(config.settleEvery)), Effect.forever)
}

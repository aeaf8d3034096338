/**
 * Moves the money the economy says is owed, on chain. Four system accounts
 * pay out: the escrow (settled usage: providers' service fees, workers'
 * computing fees, the protocol's share), the mining reserve and the
 * foundation (epoch rewards and the subsidy), and the stake pool (slash
 * shares, released unbonds).
 *
 * What is owed and what was paid are both derived from events — the owed
 * from the economy's fold, the paid from the chain's own transfers out of
 * each account — so a crash never pays twice: a payout either is on chain
 * or is owed again. Each round pays every difference, one transfer per
 * (account, recipient), and waits until the chain shows it before the next.
 */
import { Duration, Effect, Schedule } from "effect"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { signTransaction, TransactionBody } from "../../../domain/chain/transaction.js"
import type { Address, PrivateKey } from "../../../domain/chain/keys.js"
import type { PayoutSource } from "../../../domain/economics/accounts.js"
import type { ChainNodeShape } from "../ChainNode.js"

/** How long a payout may take to show up in the paid ledger before the next round. */
const PAYOUT_VISIBLE_WITHIN = Duration.seconds(10)

export interface PayoutBook {
  /** Recipient → what `source` still owes it (owed − sent, only positive entries). */
  readonly due: (source: PayoutSource) => Effect.Effect<ReadonlyMap<string, bigint>>
  /** What left `source` for `to` on chain so far: arrived, or in flight to another shard. */
  readonly sent: (source: PayoutSource, to: string) => Effect.Effect<bigint>
}

export const runPayoutRound = (
  chainId: bigint,
  chain: ChainNodeShape,
  keys: ReadonlyMap<PayoutSource, PrivateKey>,
  book: PayoutBook
) => {
  const payOne = (source: PayoutSource, key: PrivateKey, to: string, amount: bigint) =>
    Effect.gen(function* () {
      const before = yield* book.sent(source, to)
      const account = yield* chain.account(key.publicKey.address)
      const tx = signTransaction(
        new TransactionBody({
          chainId,
          nonce: account.pendingNonce,
          fee: 0n, // a payout costs its recipient nothing
          payload: { kind: "transfer", to: to as Address, amount }
        }),
        key
      )
      const r = yield* chain.submit(bytesToHex(tx.encoded), true)
      yield* Effect.logDebug(`${source} paid ${amount} to ${to} (${r.status}, ${tx.hash})`)
      yield* book.sent(source, to).pipe(
        Effect.repeat({ until: (sent) => sent >= before + amount, schedule: Schedule.spaced("20 millis") }),
        Effect.timeout(PAYOUT_VISIBLE_WITHIN),
        Effect.ignore
      )
    }).pipe(Effect.catchAll((e) => Effect.logWarning(`payout of ${amount} from ${source} to ${to} deferred: ${e.message}`)))

  return Effect.forEach(
    [...keys],
    ([source, key]) =>
      Effect.gen(function* () {
        const due = yield* book.due(source)
        for (const [to, amount] of due) yield* payOne(source, key, to, amount)
      }),
    { discard: true }
  )
}

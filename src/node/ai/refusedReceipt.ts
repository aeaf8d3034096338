/**
 * The AI ledger refused one of this gateway's usage receipts (`UsageRefused`
 * in the AI shard's stream): the receipt leaves the Settler's pending list,
 * and — since the ledger took nothing for it — what the gateway's escrow book
 * captured for the task is available again (`ReturnCapture`), or the
 * developer's next calls here would be refused early for money the ledger
 * still holds. `AlreadySettled` is the exception: the ledger took the price
 * once, through another submission. Replaying the event (every start) returns
 * nothing twice: the escrow remembers the tasks it returned.
 */
import { Effect } from "effect"
import { ReturnCapture } from "../../../domain/ai/escrow/commands.js"
import type { UsageRefused } from "../../../domain/ai/ledger/events.js"
import { escrowStream, type EscrowActors } from "../../../actors/EscrowActor.js"
import type { Settler } from "./Settler.js"

export const onUsageRefused = (settler: Settler, escrows: EscrowActors) => (r: UsageRefused) =>
  Effect.gen(function* () {
    const dropped = yield* settler.refuse(r.taskId, `${r.reason}: ${r.detail}`)
    if (dropped === undefined || r.reason === "AlreadySettled" || dropped.receipt.price === 0n) return
    const escrow = yield* escrows.get(escrowStream(dropped.developer, dropped.receipt.model))
    yield* escrow.ask(new ReturnCapture({ taskId: r.taskId, amount: dropped.receipt.price })).pipe(
      Effect.tap((reply) => (reply.events.length > 0 ? Effect.logInfo(`task ${r.taskId}: its receipt refused on chain, ${dropped.receipt.price} back in the escrow book`) : Effect.void)),
      Effect.catchAll((err) => Effect.logWarning(`the capture of task ${r.taskId} not returned: ${err.message}`))
    )
  })

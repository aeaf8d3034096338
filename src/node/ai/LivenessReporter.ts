/**
 * This node's word on the workers, as an AI committee member: every round it
 * compares the workers its hub sees (connected, streaming, heartbeating)
 * with the views the AI ledger holds from it, and submits `worker.liveness`
 * for each difference, and again for the workers it sees at each new epoch
 * (`livenessReports`, the rule). A node outside the committee reports
 * nothing (the ledger would refuse it). The ledger decides by stake.
 */
import { Effect } from "effect"
import type { Address } from "../../../domain/chain/keys.js"
import { livenessReports } from "../../../domain/ai/worker/livenessReports.js"
import type { ModelAttestor } from "./ModelAttestor.js"

/** How often the hub's view is compared with the ledger's (a report waits for its block). */
export const LIVENESS_ROUND_MS = 1_000

export const runLivenessReporter = (
  member: ModelAttestor,
  seen: Effect.Effect<ReadonlySet<Address>>
) =>
  Effect.gen(function* () {
    let reportedEpoch = -1
    const round = Effect.gen(function* () {
      const ledger = yield* member.ledgerAsMember
      if (ledger === null) return
      const epoch = ledger.economy.epoch
      const reports = livenessReports(ledger, member.address, yield* seen, epoch !== reportedEpoch)
      for (const r of reports) {
        yield* member.submit({ kind: "worker.liveness", worker: r.worker, online: r.online })
        yield* Effect.logInfo(`reported worker ${r.worker} ${r.online ? "online" : "offline"} to the AI ledger`)
      }
      reportedEpoch = epoch
    })
    yield* round.pipe(
      Effect.catchAll((e) => Effect.logWarning(`worker liveness report: ${e.message}`)),
      Effect.zipRight(Effect.sleep(LIVENESS_ROUND_MS)),
      Effect.forever
    )
  })

/**
 * What an AI committee member's gateway reports of the workers (the ledger's
 * rule is `domain/ai/ledger/workerLiveness.ts`): its view of each registered
 * worker, compared with the view the ledger holds from it.
 *
 *   a worker it sees (connected, heartbeating) and the ledger does not hold
 *   as seen by it                               → worker.liveness online
 *   a worker the ledger holds as seen by it and it no longer sees
 *                                               → worker.liveness offline
 *   at each new epoch, every worker it sees again (the committee may have
 *   changed; a new member's view counts only once sent)
 * Workers not registered on chain are never reported (the ledger refuses them).
 */
import { HashMap } from "effect"
import type { Address } from "../../chain/keys.js"
import { livenessViewOf, workerOf, type AiLedgerState } from "../ledger/state.js"

export interface LivenessReport {
  readonly worker: Address
  readonly online: boolean
}

/** Reports to send now, in worker order; `reassert`: a new epoch began since the member last reported. */
export const livenessReports = (
  ledger: AiLedgerState,
  member: Address,
  sees: ReadonlySet<Address>,
  reassert: boolean
): ReadonlyArray<LivenessReport> => {
  const candidates = new Set<Address>([...sees])
  for (const [worker, views] of ledger.liveness) if (HashMap.has(views, member)) candidates.add(worker)
  return [...candidates]
    .sort()
    .filter((worker) => workerOf(ledger, worker) !== undefined)
    .flatMap((worker) => {
      const online = sees.has(worker)
      const held = livenessViewOf(ledger, worker, member)
      if (held === online && !(reassert && online)) return []
      if (held === undefined && !online) return []
      return [{ worker, online }]
    })
}

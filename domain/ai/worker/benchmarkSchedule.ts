/**
 * When an AI committee member's gateway benchmarks a worker (`benchmark.ts`,
 * `worker.measure`): at registration — a worker it sees that the ledger
 * holds no measurement of from it — and at a random time in each epoch (the
 * gateway draws the times from the Random service when an epoch begins). A
 * failed run waits for its retry time before the next.
 */
import type { Address } from "../../chain/keys.js"
import { measureOf, workerOf, type AiLedgerState } from "../ledger/state.js"

/**
 * The workers to benchmark now, in address order: seen, registered, and
 * either never measured by `member` (unless `scheduled` puts it later: a
 * retry) or scheduled at or before `now`.
 */
export const benchmarksDue = (
  ledger: AiLedgerState,
  member: Address,
  sees: ReadonlySet<Address>,
  scheduled: ReadonlyMap<Address, number>,
  now: number
): ReadonlyArray<Address> =>
  [...sees].sort().filter((worker) => {
    if (workerOf(ledger, worker) === undefined) return false
    const at = scheduled.get(worker)
    if (measureOf(ledger, worker, member) === undefined) return at === undefined || at <= now
    return at !== undefined && at <= now
  })

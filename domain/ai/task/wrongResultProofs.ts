/**
 * The `result.challenge` proofs a validated task gives: for each worker whose
 * signed result is not the validated fingerprint, its result beside two
 * other workers' signed results that are (the referee's after a dispute, or
 * a quorum's agreeing ones), with the developer's grant. A task with fewer
 * than two agreeing signed results besides the loser proves nothing on chain
 * (the ledger needs three distinct workers), so it gives no proof.
 */
import type { Address } from "../../chain/keys.js"
import type { Hash32 } from "../../chain/hash.js"
import type { ResultChallengePayload, SignedGrant, UsageResult } from "../../chain/transaction.js"

/** A worker's result as it signed it: `signature` covers resultDigest(taskId, fingerprint, execMs). */
export interface SignedResult {
  readonly fingerprint: string
  readonly signature: string
  readonly execMs: number
}

const usageResult = (worker: string, r: SignedResult): UsageResult => ({
  worker: worker as Address,
  fingerprint: r.fingerprint as Hash32,
  execMs: r.execMs,
  signature: r.signature.toLowerCase()
})

export const wrongResultProofs = (task: {
  readonly grant: SignedGrant
  readonly taskId: Hash32
  readonly model: Hash32
  /** The validated fingerprint. */
  readonly fingerprint: string
  /** Every signed result the task received, in order of arrival (referee included). */
  readonly results: ReadonlyMap<string, SignedResult>
  /** The workers to prove wrong. */
  readonly wrong: ReadonlyArray<string>
}): ReadonlyArray<ResultChallengePayload> =>
  task.wrong.flatMap((loser) => {
    const lost = task.results.get(loser)
    if (lost === undefined || lost.fingerprint === task.fingerprint) return []
    const [winner, referee] = [...task.results].filter(([w, r]) => w !== loser && r.fingerprint === task.fingerprint)
    if (winner === undefined || referee === undefined) return []
    return [
      {
        kind: "result.challenge" as const,
        grant: task.grant,
        taskId: task.taskId,
        model: task.model,
        loser: usageResult(loser, lost),
        winner: usageResult(...winner),
        referee: usageResult(...referee)
      }
    ]
  })

/**
 * `result.challenge`: a worker's signed result proven wrong by two others.
 * Checked, cheap checks first and signatures last:
 *
 *   sender   a member of the AI shard's committee (every member verifies
 *            four signatures for it; the sender is the reporter paid a share)
 *   once     per (task, loser): a result is slashed at most once
 *   grant    this chain, this challenge's model (a known one), signed by the
 *            developer it names: the developer served the wrong result
 *   results  three distinct registered workers; the loser's fingerprint
 *            differs from the winner's, the referee's equals the winner's;
 *            each signed by its worker over resultDigest(taskId, fingerprint, execMs)
 *
 * Accepted, it is `AiResultProvenWrong`: the economy fixes the slash on the
 * loser's free bond now (`ResultProvenWrong`) and the epoch close pays it
 * out — the developer's and reporter's shares, the rest burned.
 */
import { Either, HashSet } from "effect"
import type { Address } from "../../chain/keys.js"
import type { ResultChallengePayload, Transaction, UsageResult } from "../../chain/transaction.js"
import { resultDigest, sessionGrantDigest, verifyMessage } from "../signedMessages.js"
import type { AiContext } from "./context.js"
import { AiResultProvenWrong, reject, type AiEvent, type AiRejection } from "./events.js"
import { challengeKey, modelOf, workerOf, type AiLedgerState } from "./state.js"

type Decision = Either.Either<ReadonlyArray<AiEvent>, AiRejection>

const roles = ["loser", "winner", "referee"] as const

export const decideChallenge = (s: AiLedgerState, ctx: AiContext, tx: Transaction, p: ResultChallengePayload): Decision =>
  Either.gen(function* () {
    if (!ctx.committee.some((m) => m.address === tx.sender)) {
      return yield* Either.left(reject("NotCommitteeMember", `result.challenge from ${tx.sender}, not a member of the AI shard's committee`))
    }
    if (HashSet.has(s.challenged, challengeKey(p.taskId, p.loser.worker))) {
      return yield* Either.left(reject("AlreadyChallenged", `the result of ${p.loser.worker} for task ${p.taskId} was already proven wrong`))
    }
    const g = p.grant
    if (g.chainId !== ctx.chainId) return yield* Either.left(reject("WrongChain", `grant for chain ${g.chainId}, this is chain ${ctx.chainId}`))
    if (g.model !== p.model) return yield* Either.left(reject("WrongModel", `grant for model ${g.model}, challenge for ${p.model}`))
    if (modelOf(s, p.model) === undefined) return yield* Either.left(reject("UnknownModel", `no model ${p.model}`))
    const workers = roles.map((r) => p[r].worker)
    if (new Set(workers).size !== workers.length) {
      return yield* Either.left(reject("DuplicateWorker", `loser, winner and referee must be three workers, got ${workers.join(", ")}`))
    }
    if (p.loser.fingerprint === p.winner.fingerprint) {
      return yield* Either.left(reject("ResultsAgree", `the loser's fingerprint ${p.loser.fingerprint} is the winner's: nothing is proven wrong`))
    }
    if (p.referee.fingerprint !== p.winner.fingerprint) {
      return yield* Either.left(reject("WitnessesDisagree", `the referee's fingerprint ${p.referee.fingerprint} is not the winner's ${p.winner.fingerprint}`))
    }
    const keys: Array<string> = []
    for (const r of roles) {
      const record = workerOf(s, p[r].worker)
      if (record === undefined) return yield* Either.left(reject("UnregisteredWorker", `the ${r}, ${p[r].worker}, is not a registered worker`))
      keys.push(record.publicKey)
    }
    const grantDigest = sessionGrantDigest({ chainId: g.chainId, model: g.model, issuedAt: g.issuedAt, expiresAt: g.expiresAt, spendMax: g.spendMax, nonce: g.nonce })
    const developer = verifyMessage(grantDigest, g.publicKey, g.signature)
    if (Either.isLeft(developer)) return yield* Either.left(reject("BadGrantSignature", `session grant: ${developer.left}`))
    for (const [i, r] of roles.entries()) {
      const x: UsageResult = p[r]
      const ok = verifyMessage(resultDigest(p.taskId, x.fingerprint, x.execMs), keys[i]!, x.signature)
      if (Either.isLeft(ok)) return yield* Either.left(reject("BadResultSignature", `the ${r}'s result (${x.worker}): ${ok.left}`))
    }
    const proven: AiEvent = new AiResultProvenWrong({
      taskId: p.taskId,
      worker: p.loser.worker as Address,
      developer: developer.right.address,
      reporter: tx.sender,
      at: ctx.timestamp
    })
    return [proven]
  })

/**
 * `result.challenge`: the proof that a worker's signed result was wrong.
 * Three distinct workers' signed results for one task — the loser's, and
 * the winner's and the referee's, which agree with each other and not with
 * the loser's — plus the developer's session grant (it names who was served
 * the wrong result). The AI ledger checks every signature and slashes the
 * loser at the epoch close (`domain/ai/ledger/challenge.ts`).
 *
 *   payload = [grant, taskId, model, loser, winner, referee]
 *   result  = [worker, fingerprint, execMs, signature]   (as in usage.settle)
 *
 * transaction.ts imports this file and this file imports transaction.ts's
 * grant and result parts: everything here is a function declaration (hoisted)
 * and nothing reads transaction.ts at load, so the cycle is safe whichever
 * module loads first.
 */
import { Either, Schema } from "effect"
import { Hash32, hashBytes } from "../hash.js"
import type { RlpInput, RlpItem } from "../rlp.js"
import {
  decodeGrant,
  decodeResult,
  encodeGrant,
  encodeResult,
  hashField,
  list,
  type ResultChallengePayload
} from "../transaction.js"

/** The payload's schema over transaction.ts's `SignedGrant` and `UsageResult` (it builds it: see above). */
export function resultChallengePayloadOf<G extends Schema.Schema.Any, R extends Schema.Schema.Any>(grant: G, result: R) {
  return Schema.Struct({
    kind: Schema.Literal("result.challenge"),
    grant,
    taskId: Hash32,
    model: Hash32,
    /** The result proven wrong: its worker is slashed. */
    loser: result,
    /** Two results that agree with each other, from two other workers. */
    winner: result,
    referee: result
  })
}

export function encodeResultChallenge(p: ResultChallengePayload): RlpInput {
  return [encodeGrant(p.grant), hashBytes(p.taskId), hashBytes(p.model), encodeResult(p.loser), encodeResult(p.winner), encodeResult(p.referee)]
}

export function decodeResultChallenge(item: RlpItem): Either.Either<ResultChallengePayload, string> {
  return Either.gen(function* () {
    const [grant, taskId, model, loser, winner, referee] = yield* list(item, 6, "result.challenge")
    return {
      kind: "result.challenge" as const,
      grant: yield* decodeGrant(grant!, "result.challenge.grant"),
      taskId: yield* hashField(taskId!, "result.challenge.taskId"),
      model: yield* hashField(model!, "result.challenge.model"),
      loser: yield* decodeResult(loser!, "result.challenge.loser"),
      winner: yield* decodeResult(winner!, "result.challenge.winner"),
      referee: yield* decodeResult(referee!, "result.challenge.referee")
    }
  })
}

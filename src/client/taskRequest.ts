/**
 * The developer's side of one paid call: the request for this task, signed
 * with the session grant's key. The node derives the task id from it (the
 * digest of chain, model, the grant's nonce, the inputs' hash and a fresh
 * nonce), checks the signature, and refuses the same request twice; the
 * compute node and the ledger check it again, so nobody holding the grant
 * can make a task the developer did not ask for.
 *
 *   const signed = yield* signInferRequest(key, grant, inputs)
 *   const result = yield* client.infer({ session, inputs, ...signed })
 */
import { randomBytes } from "node:crypto"
import { Either } from "effect"
import { inputHash } from "../../domain/ai/inputHash.js"
import { signTaskRequest } from "../../domain/ai/signedMessages.js"
import { decodeTensorMapJson, type TensorJsonError } from "../../domain/ai/tensor.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import type { PrivateKey } from "../../domain/chain/keys.js"

/** What a request names of the session's grant: its chain, model and nonce (as signed in `session.open`). */
export interface GrantOfSession {
  readonly chainId: bigint
  readonly model: string
  readonly nonce: string
}

/** A fresh request nonce: 0x + 32 lowercase hex. */
export const freshRequestNonce = (): string => `0x${randomBytes(16).toString("hex")}`

/**
 * `{task, nonce, signature}` for `infer` / `infer.stream` with these inputs
 * (the tensor JSON form); inputs that are not tensors cannot be hashed.
 */
export const signInferRequest = (
  key: PrivateKey,
  grant: GrantOfSession,
  inputs: unknown,
  nonce: string = freshRequestNonce()
): Either.Either<{ readonly task: Hash32; readonly nonce: string; readonly signature: string }, TensorJsonError> =>
  Either.map(decodeTensorMapJson(inputs), (tensors) =>
    signTaskRequest(key, {
      chainId: grant.chainId,
      model: grant.model.toLowerCase() as Hash32,
      grantNonce: grant.nonce,
      inputHash: inputHash(tensors),
      nonce
    })
  )

/**
 * Assignments as a node hands them over: each task the developer's request,
 * signed with the grant's key (`signTaskRequest`) on the stand-in node's
 * chain, its id the request's digest — what the compute node checks before
 * it runs anything.
 */
import { randomBytes } from "node:crypto"
import { Either } from "effect"
import { inputHash } from "../../../domain/ai/inputHash.js"
import { signTaskRequest } from "../../../domain/ai/signedMessages.js"
import { decodeTensorMapJson } from "../../../domain/ai/tensor.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { devKeyFromSeed, type PrivateKey } from "../../../domain/chain/keys.js"
import { TaskAssignment } from "../../../src/api/AiRpcs.js"
import { FAKE_CHAIN_ID } from "./fakeNode.js"

/** The developer whose grant the test tasks run under. */
export const TEST_DEVELOPER = devKeyFromSeed("worker-test/developer")
export const TEST_GRANT_NONCE = `0x${"5a".repeat(16)}`

type AssignmentFields = Omit<ConstructorParameters<typeof TaskAssignment>[0], "task" | "request">

/**
 * An assignment of `fields` whose task is the developer's signed request for
 * its inputs (inputs that are not tensors: a request over no inputs, so the
 * compute node refuses the inputs themselves).
 */
export const requestedAssignment = (fields: AssignmentFields, developer: PrivateKey = TEST_DEVELOPER): TaskAssignment => {
  const tensors = decodeTensorMapJson(fields.inputs)
  const nonce = `0x${randomBytes(16).toString("hex")}`
  const signed = signTaskRequest(developer, {
    chainId: FAKE_CHAIN_ID,
    model: fields.model as Hash32,
    grantNonce: TEST_GRANT_NONCE,
    inputHash: Either.isRight(tensors) ? inputHash(tensors.right) : (`0x${"00".repeat(32)}` as Hash32),
    nonce
  })
  return new TaskAssignment({
    ...fields,
    task: signed.task,
    request: { publicKey: developer.publicKey.hex, grantNonce: TEST_GRANT_NONCE, nonce, signature: signed.signature }
  })
}

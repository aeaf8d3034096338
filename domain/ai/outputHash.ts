/**
 * The hash of a validated result's outputs (`TaskResultSubmitted.outputHash`,
 * `TaskValidated.outputHash`): sha256 over the decoded tensors' canonical
 * bytes, the same encoding as the input hash (inputHash.ts) under its own
 * tag. Computed once where the outputs are decoded and checked against their
 * fingerprint; megabytes of outputs are never turned into JSON text to be hashed.
 */
import type { Hash32 } from "../chain/hash.js"
import { tensorMapHash } from "./inputHash.js"
import type { TensorMap } from "./tensor.js"

const DOMAIN_TAG = new TextEncoder().encode("topai/output-hash/v1")

export const outputHash = (outputs: TensorMap): Hash32 => tensorMapHash(DOMAIN_TAG, outputs)

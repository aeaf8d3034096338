/**
 * Silero as the compute-node tests feed it: its bytes and sha256 (the blob
 * a worker fetches), and seeded inputs of its verified shapes.
 */
import { createHash } from "node:crypto"
import { Either, Schema } from "effect"
import { checkModelStatic, referenceInputs } from "../../../domain/ai/legitimacy.js"
import { ModelManifest } from "../../../domain/ai/manifest.js"
import type { TensorMap } from "../../../domain/ai/tensor.js"
import { SILERO_MANIFEST, sileroBytes } from "../../ai/support/models.js"

export const sha256 = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`

export const SILERO = sileroBytes()
export const SILERO_HASH = sha256(SILERO)
const sileroPassed = Either.getOrThrow(checkModelStatic(SILERO, Schema.decodeUnknownSync(ModelManifest)(SILERO_MANIFEST)))
export const sileroInputs = (seed: string): TensorMap =>
  referenceInputs(sileroPassed, { shapes: SILERO_MANIFEST.shapes ?? {}, fixedInputs: SILERO_MANIFEST.fixedInputs ?? {} }, seed)

/**
 * One validator's verification of an uploaded model (DESIGN.md, "AI shard",
 * stage 2), in order, stopping at the first failure:
 *
 *   1. the declared hash is sha256 of the bytes (node:crypto);
 *   2. the file is within `modelBytesMax` (TooLarge);
 *   3. the hash is not on the denylist;
 *   4. in the sandbox child (SandboxedSmokeRun, smokeCheck.ts): the static
 *      checks (`checkModelStatic`: ONNX, versions, domains, operators,
 *      external data, tensor sizes, shapes, types), then the smoke run on
 *      the seeded inputs (seed: the model hash), twice, within the time and
 *      memory bounds, with finite, bounded outputs identical on both runs,
 *      whose fingerprint becomes the reference fingerprint.
 *
 * The node itself does only 1–3 and reads the child's verdict: its memory
 * per verification is the file's bytes (which the caller holds anyway, at
 * most `modelBytesMax`) plus `REPLY_BYTES_MAX` of replies and
 * `STDERR_TAIL_CHARS` of stderr — nothing that grows with the model's
 * nodes, declared shapes or outputs.
 *
 * The result is always a `ModelVerdict`, never an error: every bad file ends
 * as `ModelRejected` with a reason a provider can act on. A failure of the
 * verifier itself (the temp file cannot be written) is `VerifierFailed`, so
 * that operators can tell it from a bad model.
 */
import { createHash } from "node:crypto"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cause, Effect, Either } from "effect"
import { checkFileSize, DEFAULT_STATIC_LIMITS, type StaticLimits } from "../../domain/ai/legitimacy.js"
import type { ModelManifest } from "../../domain/ai/manifest.js"
import { ModelAccepted, ModelRejected, type ModelVerdict, type RejectionCheck } from "../../domain/ai/verdict.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { SandboxedSmokeRun, type SmokeLimits } from "./SandboxedSmokeRun.js"

export interface VerifyConfig {
  readonly limits: StaticLimits
  /** Model hashes (0x + 64 lowercase hex) that are refused whatever they contain. */
  readonly denylist: ReadonlySet<string>
  readonly smoke: Partial<SmokeLimits>
  /** Where the model is written for the child to load (default: the OS temp dir). */
  readonly tmpDir?: string
}

export const DEFAULT_VERIFY_CONFIG: VerifyConfig = {
  limits: DEFAULT_STATIC_LIMITS,
  denylist: new Set(),
  smoke: {}
}

/** sha256 of the bytes as a `Hash32` (0x + 64 lowercase hex). */
export const modelHashOf = (bytes: Uint8Array): Hash32 => `0x${createHash("sha256").update(bytes).digest("hex")}` as Hash32

/** "0xABC…" and "abc…" name the same hash. */
const normalizeHash = (h: string): string => (h.startsWith("0x") || h.startsWith("0X") ? h.slice(2) : h).toLowerCase()

const reject = (declaredHash: string, check: RejectionCheck, reason: string): ModelVerdict =>
  new ModelRejected({ modelHash: declaredHash, check, reason })

/** Writes the model where the child can read it, for the duration of `use`. */
const withModelFile = <A, R>(bytes: Uint8Array, dir: string, use: (path: string) => Effect.Effect<A, never, R>) =>
  Effect.acquireUseRelease(
    Effect.tryPromise(async () => {
      const d = await mkdtemp(join(dir, "topai-verify-"))
      await writeFile(join(d, "model.onnx"), bytes)
      return d
    }),
    (d) => use(join(d, "model.onnx")),
    (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
  )

export const verifyModel = (
  bytes: Uint8Array,
  manifest: ModelManifest,
  declaredHash: string,
  config: VerifyConfig = DEFAULT_VERIFY_CONFIG
): Effect.Effect<ModelVerdict, never, SandboxedSmokeRun> =>
  Effect.gen(function* () {
    const actual = modelHashOf(bytes)
    if (normalizeHash(declaredHash) !== actual.slice(2)) {
      return reject(declaredHash, "HashMismatch", `the file's sha256 is ${actual}, not the declared ${declaredHash}`)
    }
    const sized = checkFileSize(bytes.length, config.limits)
    if (Either.isLeft(sized)) return reject(declaredHash, sized.left.reason, sized.left.message)
    if (config.denylist.has(actual) || config.denylist.has(actual.slice(2))) {
      return reject(declaredHash, "Denylisted", `model ${actual} is on the denylist`)
    }
    const sandbox = yield* SandboxedSmokeRun
    const verdict = yield* withModelFile(bytes, config.tmpDir ?? tmpdir(), (modelPath) =>
      sandbox.run({ modelPath, modelHash: actual, manifest, staticLimits: config.limits }, config.smoke)
    )
    switch (verdict._tag) {
      case "StaticRefused":
        return reject(declaredHash, verdict.check, verdict.detail)
      case "SmokeFailed":
        return reject(declaredHash, verdict.reason, `smoke run: ${verdict.detail}`)
      case "SandboxPassed":
        return new ModelAccepted({
          modelHash: actual,
          sizeBytes: bytes.length,
          signature: verdict.signature,
          referenceFingerprint: verdict.smoke.fingerprint,
          smoke: verdict.smoke
        })
    }
  }).pipe(
    Effect.catchAllCause((cause) =>
      Effect.succeed(reject(declaredHash, "VerifierFailed", `the verifier failed, not the model: ${Cause.pretty(cause).slice(0, 500)}`))
    )
  )

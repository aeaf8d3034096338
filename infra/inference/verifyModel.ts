/**
 * One validator's verification of an uploaded model (DESIGN.md, "AI shard",
 * stage 2), in order, stopping at the first failure:
 *
 *   1. the declared hash is sha256 of the bytes (node:crypto);
 *   2. the static checks (`checkModelStatic`: size, ONNX, versions, domains,
 *      operators, external data, tensor sizes, shapes, types);
 *   3. the hash is not on the denylist;
 *   4. the sandboxed smoke run on the seeded inputs (seed: the model hash)
 *      loads the model, runs within the time and memory bounds and gives
 *      finite outputs, whose fingerprint becomes the reference fingerprint.
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
import { checkModelStatic, DEFAULT_STATIC_LIMITS, referenceInputs, type StaticLimits } from "../../domain/ai/legitimacy.js"
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
    const passed = checkModelStatic(bytes, manifest, config.limits)
    if (Either.isLeft(passed)) return reject(declaredHash, passed.left.reason, passed.left.message)
    if (config.denylist.has(actual) || config.denylist.has(actual.slice(2))) {
      return reject(declaredHash, "Denylisted", `model ${actual} is on the denylist`)
    }
    const inputs = referenceInputs(passed.right, manifest, actual)
    const sandbox = yield* SandboxedSmokeRun
    const smoke = yield* withModelFile(bytes, config.tmpDir ?? tmpdir(), (modelPath) =>
      sandbox.run({ modelPath, inputs, tolerance: manifest.outputTolerance }, config.smoke)
    )
    if (smoke._tag === "SmokeFailed") return reject(declaredHash, smoke.reason, `smoke run: ${smoke.detail}`)
    return new ModelAccepted({
      modelHash: actual,
      sizeBytes: bytes.length,
      signature: passed.right.signature,
      referenceFingerprint: smoke.fingerprint,
      smoke
    })
  }).pipe(
    Effect.catchAllCause((cause) =>
      Effect.succeed(reject(declaredHash, "VerifierFailed", `the verifier failed, not the model: ${Cause.pretty(cause).slice(0, 500)}`))
    )
  )

/**
 * What a provider declares with an uploaded model, and the shapes the
 * smoke run (and any seeded re-execution) feeds it.
 *
 * Many real models declare symbolic input dims (silero: `input` is
 * `[batch, sequence]`) and cannot run on guessed sizes, so the manifest gives
 * the whole shape of every input that has one (`--shape input=1,576` on the
 * CLI). `fixedInputs` pins the values of inputs that are settings rather than
 * data (silero's `sr`, the sample rate: 16000), which a random input would
 * make the model reject.
 *
 * At serving time a request may not feed more than what the provider
 * declared: `maxShapes` bounds each symbolic dim (an input without an entry
 * must come at its smoke shape, which keeps manifests written before the
 * field meaning what they were verified with), fixed inputs keep their
 * values, and `inputBytesMax` (default: the bytes at the max shapes) bounds
 * all inputs together (see `servingBounds.ts`).
 */
import { Either, Schema } from "effect"
import type { ElemType } from "./tensor.js"
import { elementCount } from "./tensor.js"
import type { TensorSpec } from "./signature.js"

/** Under the single-worker policy, this share of tasks (per million) is re-executed by a second worker. */
export const DEFAULT_SAMPLE_RATE_PER_MILLION = 50_000

/** round(x / tolerance) is what a fingerprint keeps of a float output. */
export const DEFAULT_OUTPUT_TOLERANCE = 1e-4

const PositiveDim = Schema.Int.pipe(Schema.greaterThanOrEqualTo(1))

export const ModelManifest = Schema.Struct({
  name: Schema.NonEmptyTrimmedString,
  version: Schema.NonEmptyTrimmedString,
  /** In TOP base units. */
  pricePerCall: Schema.BigInt.pipe(Schema.nonNegativeBigInt()),
  /** A GPU class of the genesis table (H100, A100, RTX4090, CPU, ...). */
  minGpuClass: Schema.NonEmptyTrimmedString,
  license: Schema.String,
  description: Schema.String,
  /** The whole shape of each input with a symbolic dim (or of unknown rank). */
  shapes: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Array(PositiveDim) }), {
    default: () => ({})
  }),
  /**
   * The largest shape each input with a symbolic dim may have at serving time
   * (same rank as `shapes`, each dim ≥ the smoke shape's). Absent: the smoke shape.
   */
  maxShapes: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Array(PositiveDim) }), {
    default: () => ({})
  }),
  /** All inputs of one request together, in bytes; absent: the bytes at `maxShapes`. */
  inputBytesMax: Schema.optional(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1))),
  /** Fixed values for inputs that are settings: one value (repeated) or one per element. */
  fixedInputs: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Array(Schema.Number) }), {
    default: () => ({})
  }),
  /**
   * How results are validated: one worker plus re-execution on a second one
   * for a sampled share of tasks (per million), or k of n workers agreeing.
   */
  validation: Schema.optionalWith(
    Schema.Union(
      Schema.Struct({ kind: Schema.Literal("single"), sampleRatePerMillion: Schema.Int.pipe(Schema.between(0, 1_000_000)) }),
      Schema.Struct({ kind: Schema.Literal("quorum"), k: Schema.Int.pipe(Schema.positive()), n: Schema.Int.pipe(Schema.positive()) })
    ),
    { default: () => ({ kind: "single" as const, sampleRatePerMillion: DEFAULT_SAMPLE_RATE_PER_MILLION }) }
  ),
  /** Float outputs are compared to this absolute tolerance (see `outputFingerprint`). */
  outputTolerance: Schema.optionalWith(Schema.Number.pipe(Schema.positive(), Schema.finite()), {
    default: () => DEFAULT_OUTPUT_TOLERANCE
  })
})
export type ModelManifest = typeof ModelManifest.Type
export type ModelManifestEncoded = typeof ModelManifest.Encoded

/** The part of a manifest that decides how a model is fed. */
export type ManifestShapes = Pick<ModelManifest, "shapes" | "fixedInputs"> & Partial<Pick<ModelManifest, "maxShapes">>

/** Parses the CLI form `NAME=1,512` of `--shape` into an entry of `shapes`. */
export const parseShapeFlag = (flag: string): Either.Either<readonly [string, ReadonlyArray<number>], string> => {
  const eq = flag.lastIndexOf("=")
  const name = flag.slice(0, eq)
  const dims = flag.slice(eq + 1).split(",")
  if (eq <= 0 || dims.some((d) => !/^[1-9]\d{0,9}$/.test(d.trim()))) {
    return Either.left(`--shape takes NAME=D1,D2,... with dims ≥ 1 (for example --shape input=1,512), got "${flag}"`)
  }
  return Either.right([name, dims.map((d) => Number(d.trim()))] as const)
}

/** The CLI form of a shape, for messages. */
export const shapeFlag = (name: string, dims: ReadonlyArray<number>): string => `--shape ${name}=${dims.join(",")}`

export class ShapeProblem extends Schema.TaggedError<ShapeProblem>()("ShapeProblem", {
  reason: Schema.Literal("MissingShape", "BadManifest"),
  input: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

const isInteger: Readonly<Record<ElemType, (x: number) => boolean>> = {
  float32: () => true,
  float64: () => true,
  int32: (x) => Number.isInteger(x) && Math.abs(x) <= 2 ** 31,
  int64: (x) => Number.isSafeInteger(x),
  uint8: (x) => Number.isInteger(x) && x >= 0 && x <= 255,
  bool: (x) => x === 0 || x === 1
}

/**
 * The concrete shape of every input: its declared dims where they are all
 * concrete, else the manifest's (which must keep the declared rank and
 * concrete dims). Checks `fixedInputs` against those shapes and types too.
 */
export const resolveInputShapes = (
  inputs: ReadonlyArray<TensorSpec>,
  manifest: ManifestShapes
): Either.Either<ReadonlyMap<string, ReadonlyArray<number>>, ShapeProblem> => {
  const fail = (reason: ShapeProblem["reason"], input: string, detail: string) =>
    Either.left(new ShapeProblem({ reason, input, detail }))
  const shapes = new Map<string, ReadonlyArray<number>>()
  for (const spec of inputs) {
    const given = Object.hasOwn(manifest.shapes, spec.name) ? manifest.shapes[spec.name] : undefined
    const dims = spec.dims
    if (given === undefined) {
      if (dims === null) {
        return fail(
          "MissingShape",
          spec.name,
          `input "${spec.name}" has no declared shape (unknown rank): give its shape, e.g. ${shapeFlag(spec.name, [1, 512])}`
        )
      }
      const free = dims.findIndex((d) => typeof d === "string")
      if (free >= 0) {
        const param = dims[free] === "" ? "unnamed" : `"${dims[free]}"`
        const example = dims.map((d) => (typeof d === "number" ? d : 1))
        return fail(
          "MissingShape",
          spec.name,
          `input "${spec.name}" has a symbolic dim ${free} (${param}) in [${dims.map((d) => (typeof d === "number" ? d : d === "" ? "?" : d)).join(", ")}]: ` +
            `give its whole shape, e.g. ${shapeFlag(spec.name, example)}`
        )
      }
      shapes.set(spec.name, dims as ReadonlyArray<number>)
      continue
    }
    if (dims !== null) {
      if (given.length !== dims.length) {
        return fail("BadManifest", spec.name, `the manifest gives input "${spec.name}" rank ${given.length}, the model declares rank ${dims.length}`)
      }
      for (let i = 0; i < dims.length; i++) {
        const d = dims[i]!
        if (typeof d === "number" && d !== given[i]) {
          return fail("BadManifest", spec.name, `the manifest gives input "${spec.name}" dim ${i} = ${given[i]}, the model fixes it at ${d}`)
        }
      }
    }
    shapes.set(spec.name, given)
  }
  for (const name of Object.keys(manifest.shapes)) {
    if (!shapes.has(name) || !inputs.some((s) => s.name === name)) {
      return fail("BadManifest", name, `the manifest gives a shape for "${name}", which is not an input of the model`)
    }
  }
  for (const name of Object.keys(manifest.fixedInputs)) {
    const spec = inputs.find((s) => s.name === name)
    const shape = shapes.get(name)
    const values = manifest.fixedInputs[name]!
    if (spec === undefined || shape === undefined) {
      return fail("BadManifest", name, `the manifest fixes "${name}", which is not an input of the model`)
    }
    const count = elementCount(shape)
    if (values.length !== 1 && values.length !== count) {
      return fail("BadManifest", name, `the manifest fixes ${values.length} values for "${name}", whose shape [${shape.join(", ")}] has ${count}`)
    }
    const bad = values.findIndex((x) => !isInteger[spec.type](x))
    if (bad >= 0) return fail("BadManifest", name, `the manifest fixes "${name}" to ${values[bad]}, which is not a valid ${spec.type} value`)
  }
  const maxShapes = manifest.maxShapes ?? {}
  for (const name of Object.keys(maxShapes)) {
    const smoke = shapes.get(name)
    const spec = inputs.find((s) => s.name === name)
    const max = maxShapes[name]!
    if (smoke === undefined || spec === undefined) {
      return fail("BadManifest", name, `the manifest gives a max shape for "${name}", which is not an input of the model`)
    }
    if (max.length !== smoke.length) {
      return fail("BadManifest", name, `the manifest's max shape of "${name}" has rank ${max.length}, its shape [${smoke.join(", ")}] rank ${smoke.length}`)
    }
    for (let i = 0; i < max.length; i++) {
      const declared = spec.dims === null ? undefined : spec.dims[i]
      if (typeof declared === "number" && max[i] !== declared) {
        return fail("BadManifest", name, `the manifest's max shape of "${name}" gives dim ${i} = ${max[i]}, the model fixes it at ${declared}`)
      }
      if (max[i]! < smoke[i]!) {
        return fail("BadManifest", name, `the manifest's max shape of "${name}" gives dim ${i} = ${max[i]}, below its smoke shape's ${smoke[i]}`)
      }
    }
  }
  return Either.right(shapes)
}

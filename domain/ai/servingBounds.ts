/**
 * What a request may feed a verified model at serving time, from its
 * manifest: each input's largest shape (`maxShapes`, else the smoke shape),
 * the values of fixed inputs, and the bytes of all inputs together. A model
 * was verified on its smoke shapes only; letting a caller pick any length for
 * a symbolic dim would let them make it allocate or run without bound.
 *
 * `servingBounds` turns the manifest and the model's signature into bounds
 * once; `checkServingInputs` checks decoded inputs against them;
 * `elementsMax` is the per-tensor cap to decode with, so a request over the
 * bounds is refused before its tensors are allocated.
 */
import { Either, Schema } from "effect"
import { resolveInputShapes, type ManifestShapes, type ShapeProblem } from "./manifest.js"
import type { ModelSignature } from "./signature.js"
import { ELEM_BYTES, elementCount, type ElemType, type Tensor, type TensorMap } from "./tensor.js"

export interface InputBound {
  readonly type: ElemType
  /** The shape the model was smoke-run on. */
  readonly smoke: ReadonlyArray<number>
  /** The largest shape a request may give (dim by dim). */
  readonly max: ReadonlyArray<number>
  /** The manifest's fixed values (one, repeated, or one per element), if any. */
  readonly fixed: ReadonlyArray<number> | undefined
}

export interface ServingBounds {
  readonly inputs: ReadonlyMap<string, InputBound>
  /** All inputs of one request together. */
  readonly bytesMax: number
  /** The inputs' bytes at their smoke shapes (the verified cost's reference). */
  readonly smokeBytes: number
  /** The most elements any one input may have: the decode limit. */
  readonly elementsMax: number
}

export class InputOutOfBounds extends Schema.TaggedError<InputOutOfBounds>()("InputOutOfBounds", {
  reason: Schema.Literal("DimOverBound", "FixedInputChanged", "TooManyBytes"),
  input: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return this.input === "" ? this.detail : `input "${this.input}": ${this.detail}`
  }
}

const bytesOf = (type: ElemType, dims: ReadonlyArray<number>): number => elementCount(dims) * ELEM_BYTES[type]

export const servingBounds = (
  signature: ModelSignature,
  manifest: ManifestShapes & { readonly inputBytesMax?: number | undefined }
): Either.Either<ServingBounds, ShapeProblem> =>
  Either.map(resolveInputShapes(signature.inputs, manifest), (shapes) => {
    const inputs = new Map<string, InputBound>()
    let bytesAtMax = 0
    let smokeBytes = 0
    let elementsMax = 0
    for (const spec of signature.inputs) {
      const smoke = shapes.get(spec.name)!
      const max = manifest.maxShapes !== undefined && Object.hasOwn(manifest.maxShapes, spec.name) ? manifest.maxShapes[spec.name]! : smoke
      const fixed = Object.hasOwn(manifest.fixedInputs, spec.name) ? manifest.fixedInputs[spec.name] : undefined
      inputs.set(spec.name, { type: spec.type, smoke, max, fixed })
      bytesAtMax += bytesOf(spec.type, max)
      smokeBytes += bytesOf(spec.type, smoke)
      elementsMax = Math.max(elementsMax, elementCount(max))
    }
    const bytesMax = manifest.inputBytesMax === undefined ? bytesAtMax : Math.min(bytesAtMax, manifest.inputBytesMax)
    return { inputs, bytesMax, smokeBytes, elementsMax }
  })

/** Whether element `i` of `t` is the manifest's fixed value `v` (as stored in the tensor's type). */
const holds = (t: Tensor, i: number, v: number): boolean => {
  switch (t.type) {
    case "float32":
      return t.data[i] === Math.fround(v)
    case "int64":
      return Number.isSafeInteger(v) && t.data[i] === BigInt(v)
    default:
      return t.data[i] === v
  }
}

/**
 * Checks inputs that already fit the signature (`checkInputs`) against the
 * bounds: each dim within its max, fixed inputs at their values, the bytes
 * of all inputs within `bytesMax`. The first problem is the answer.
 */
export const checkServingInputs = (inputs: TensorMap, bounds: ServingBounds): Either.Either<void, InputOutOfBounds> => {
  const fail = (reason: InputOutOfBounds["reason"], input: string, detail: string) =>
    Either.left(new InputOutOfBounds({ reason, input, detail }))
  let bytes = 0
  for (const [name, bound] of bounds.inputs) {
    const t = inputs[name]
    if (t === undefined || !Object.hasOwn(inputs, name)) continue // checkInputs says what is missing
    if (t.dims.length !== bound.max.length) {
      return fail("DimOverBound", name, `has rank ${t.dims.length}, the manifest bounds it at [${bound.max.join(", ")}]`)
    }
    for (let i = 0; i < bound.max.length; i++) {
      if (t.dims[i]! > bound.max[i]!) {
        return fail(
          "DimOverBound",
          name,
          `dim ${i} is ${t.dims[i]}, over the manifest's max ${bound.max[i]} (max shape [${bound.max.join(", ")}]${bound.max === bound.smoke ? ": the smoke shape, as the manifest gives no maxShapes entry" : ""})`
        )
      }
    }
    if (bound.fixed !== undefined) {
      const fixed = bound.fixed
      for (let i = 0; i < t.data.length; i++) {
        const v = fixed.length === 1 ? fixed[0]! : fixed[i]
        if (v === undefined || !holds(t, i, v)) {
          return fail("FixedInputChanged", name, `element ${i} is ${String(t.data[i])}, the manifest fixes it to ${v ?? "nothing (more elements than fixed values)"}`)
        }
      }
    }
    bytes += t.data.byteLength
  }
  if (bytes > bounds.bytesMax) {
    return fail("TooManyBytes", "", `the inputs hold ${bytes} bytes, over the model's bound of ${bounds.bytesMax}`)
  }
  return Either.right(undefined)
}

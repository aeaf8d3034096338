/**
 * A model's input/output signature — names, element types and dims, with
 * symbolic dims kept as their names ("" when unnamed) and `null` dims for a
 * tensor of unknown rank — and the check of request inputs against it.
 *
 * The inputs are the graph's inputs that no initializer feeds (onnxruntime's
 * session inputs): an input with an initializer is an overridable constant,
 * not something a caller must send.
 */
import { Either, Schema } from "effect"
import { OnnxDataType, onnxDataTypeName } from "./onnx/dataType.js"
import type { OnnxDim, OnnxModel, OnnxValueInfo } from "./onnx/model.js"
import { decodeTensorMapJson, DEFAULT_TENSOR_JSON_LIMITS, ElemType, type TensorJsonError, type TensorJsonLimits, type TensorMap } from "./tensor.js"

export const Dim = Schema.Union(Schema.Int, Schema.String)

export const TensorSpec = Schema.Struct({
  name: Schema.String,
  type: ElemType,
  /** Concrete dims are numbers, symbolic ones their names ("" when unnamed); null when the rank is unknown. */
  dims: Schema.NullOr(Schema.Array(Dim))
})
export type TensorSpec = typeof TensorSpec.Type

export const ModelSignature = Schema.Struct({
  inputs: Schema.Array(TensorSpec),
  outputs: Schema.Array(TensorSpec)
})
export type ModelSignature = typeof ModelSignature.Type

/** ONNX element types the JSON door carries. */
export const ELEM_TYPE_OF_ONNX: ReadonlyMap<number, ElemType> = new Map<number, ElemType>([
  [OnnxDataType.FLOAT, "float32"],
  [OnnxDataType.DOUBLE, "float64"],
  [OnnxDataType.INT32, "int32"],
  [OnnxDataType.INT64, "int64"],
  [OnnxDataType.UINT8, "uint8"],
  [OnnxDataType.BOOL, "bool"]
])

/** A dim a caller may choose: symbolic, or a negative `dim_value` (which some exporters write for "unknown"). */
export const isFreeDim = (d: OnnxDim): boolean => typeof d === "string" || d < 0

/** The graph inputs a caller must feed (those without an initializer). */
export const requiredInputs = (model: OnnxModel): ReadonlyArray<OnnxValueInfo> => {
  const initialized = new Set(model.graph.initializers.map((t) => t.name))
  return model.graph.inputs.filter((i) => !initialized.has(i.name))
}

export interface SignatureProblem {
  readonly side: "input" | "output"
  readonly name: string
  readonly detail: string
}

const specOf = (side: "input" | "output", v: OnnxValueInfo): Either.Either<TensorSpec, SignatureProblem> => {
  if (v.type.kind !== "tensor") {
    return Either.left({ side, name: v.name, detail: `is a ${v.type.kind === "missing" ? "value without a type" : v.type.kind}, not a tensor` })
  }
  const type = ELEM_TYPE_OF_ONNX.get(v.type.elemType)
  if (type === undefined) {
    return Either.left({
      side,
      name: v.name,
      detail: `has element type ${onnxDataTypeName(v.type.elemType)}; supported: ${[...ELEM_TYPE_OF_ONNX.values()].join(", ")}`
    })
  }
  const dims = v.type.shape === undefined ? null : v.type.shape.map((d) => (isFreeDim(d) ? (typeof d === "string" ? d : "") : d))
  return Either.right({ name: v.name, type, dims })
}

/** The signature of a parsed model; fails on an input or output the JSON door cannot carry. */
export const signatureOf = (model: OnnxModel): Either.Either<ModelSignature, SignatureProblem> => {
  const inputs: Array<TensorSpec> = []
  for (const v of requiredInputs(model)) {
    const s = specOf("input", v)
    if (Either.isLeft(s)) return Either.left(s.left)
    inputs.push(s.right)
  }
  const outputs: Array<TensorSpec> = []
  for (const v of model.graph.outputs) {
    const s = specOf("output", v)
    if (Either.isLeft(s)) return Either.left(s.left)
    outputs.push(s.right)
  }
  return Either.right({ inputs, outputs })
}

export class InputMismatch extends Schema.TaggedError<InputMismatch>()("InputMismatch", {
  reason: Schema.Literal("MissingInput", "UnknownInput", "TypeMismatch", "RankMismatch", "DimMismatch"),
  input: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `input "${this.input}": ${this.detail}`
  }
}

const showDims = (dims: ReadonlyArray<number | string>): string =>
  `[${dims.map((d) => (typeof d === "number" ? String(d) : d === "" ? "?" : d)).join(", ")}]`

/**
 * Whether `inputs` fit the signature: exactly its input names, each with its
 * element type and rank; concrete dims equal, symbolic dims any length ≥ 1,
 * and a named symbolic dim (say "batch") the same length everywhere it appears.
 */
export const checkInputs = (inputs: TensorMap, signature: ModelSignature): Either.Either<void, InputMismatch> => {
  const fail = (reason: InputMismatch["reason"], input: string, detail: string) =>
    Either.left(new InputMismatch({ reason, input, detail }))
  const bound = new Map<string, { readonly length: number; readonly input: string }>()
  for (const spec of signature.inputs) {
    const t = inputs[spec.name]
    if (t === undefined || !Object.hasOwn(inputs, spec.name)) return fail("MissingInput", spec.name, `missing; the model takes ${signature.inputs.map((s) => `"${s.name}"`).join(", ")}`)
    if (t.type !== spec.type) return fail("TypeMismatch", spec.name, `is ${t.type}, the model takes ${spec.type}`)
    if (spec.dims === null) continue
    if (t.dims.length !== spec.dims.length) {
      return fail("RankMismatch", spec.name, `has dims ${showDims(t.dims)}, the model takes rank ${spec.dims.length} ${showDims(spec.dims)}`)
    }
    for (let i = 0; i < spec.dims.length; i++) {
      const want = spec.dims[i]!
      const got = t.dims[i]!
      if (typeof want === "number") {
        if (got !== want) return fail("DimMismatch", spec.name, `dim ${i} is ${got}, the model takes ${showDims(spec.dims)}`)
        continue
      }
      if (got < 1) return fail("DimMismatch", spec.name, `dim ${i} is ${got}; symbolic dims take a length ≥ 1`)
      if (want === "") continue
      const prior = bound.get(want)
      if (prior === undefined) bound.set(want, { length: got, input: spec.name })
      else if (prior.length !== got) {
        return fail("DimMismatch", spec.name, `dim ${i} ("${want}") is ${got}, but "${want}" is ${prior.length} in input "${prior.input}"`)
      }
    }
  }
  const known = new Set(signature.inputs.map((s) => s.name))
  for (const name of Object.keys(inputs)) {
    if (!known.has(name)) return fail("UnknownInput", name, `the model has no such input; it takes ${[...known].map((n) => `"${n}"`).join(", ")}`)
  }
  return Either.right(undefined)
}

/**
 * A request's inputs, from parsed JSON to tensors that fit the model: what a
 * serving node admits before it schedules anything.
 */
export const decodeRequestInputs = (
  json: unknown,
  signature: ModelSignature,
  limits: TensorJsonLimits = DEFAULT_TENSOR_JSON_LIMITS
): Either.Either<TensorMap, TensorJsonError | InputMismatch> =>
  Either.flatMap(decodeTensorMapJson(json, limits), (inputs) => Either.map(checkInputs(inputs, signature), () => inputs))

/**
 * Between the domain's tensors and onnxruntime's: both are a typed array
 * with a type name and dims, and the type names are the same strings, so
 * neither direction copies data.
 */
import { Either } from "effect"
import ort from "onnxruntime-node"
import { ELEM_TYPES, type ElemType, type Tensor, type TensorMap } from "../../domain/ai/tensor.js"

export const toOrtTensor = (t: Tensor): ort.Tensor => new ort.Tensor(t.type, t.data, t.dims)

export const toOrtFeeds = (inputs: TensorMap): Record<string, ort.Tensor> => {
  const feeds: Record<string, ort.Tensor> = {}
  for (const name in inputs) feeds[name] = toOrtTensor(inputs[name]!)
  return feeds
}

const SUPPORTED: ReadonlySet<string> = new Set(ELEM_TYPES)

/** A run's outputs as domain tensors; fails naming an output of a type the JSON door cannot carry. */
export const fromOrtOutputs = (outputs: ort.InferenceSession.ReturnType): Either.Either<TensorMap, string> => {
  const out: Record<string, Tensor> = {}
  for (const name in outputs) {
    const value = outputs[name]!
    if (!(value instanceof ort.Tensor) || !SUPPORTED.has(value.type)) {
      return Either.left(`output "${name}" is ${value instanceof ort.Tensor ? `a ${value.type} tensor` : "not a tensor"}`)
    }
    out[name] = { type: value.type as ElemType, dims: value.dims, data: value.data } as Tensor
  }
  return Either.right(out)
}

/** A bare onnxruntime run to compare a compute node's outputs with, and tensors as comparable values. */
import ort from "onnxruntime-node"
import type { TensorMap } from "../../../domain/ai/tensor.js"
import { toOrtFeeds } from "../../../infra/inference/ortTensor.js"

export const bareRun = async (bytes: Uint8Array, inputs: TensorMap) => {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: "all" })
  try {
    const out = await session.run(toOrtFeeds(inputs))
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { type: t.type, dims: [...t.dims], data: t.data }]))
  } finally {
    await session.release()
  }
}

/**
 * Tensors as comparable values. Floats with -0 read as 0: the JSON form (`data`
 * arrays) carries -0 as 0, as JSON does, and the fingerprint encodes both as 0.
 */
export const plain = (outputs: TensorMap | Awaited<ReturnType<typeof bareRun>>) =>
  Object.fromEntries(
    Object.entries(outputs).map(([k, t]) => [
      k,
      { type: t.type, dims: [...t.dims], data: t.data instanceof Float32Array || t.data instanceof Float64Array ? (t.data as Float64Array).map((x: number) => x + 0) : t.data }
    ])
  )

/**
 * Models that pass verification on small smoke inputs and misbehave at
 * serving time on inputs the manifest allows: their work depends on an
 * input's value, which no shape bound can cap.
 */
import { DT, graph as graphBytes, model, valueInfo } from "./onnxBuilder.js"

/** y = ReduceSum(ConstantOfShape(n) of 1.0): allocates 4·n[0] bytes, n an int64[1] input. */
export const valueBombModel = (): Uint8Array =>
  model({
    graph: {
      nodes: [
        { opType: "ConstantOfShape", inputs: ["n"], outputs: ["big"], attributes: [{ name: "value", t: { dataType: DT.FLOAT, dims: [1], floats: [1] } }] },
        { opType: "ReduceSum", inputs: ["big"], outputs: ["y"], attributes: [{ name: "keepdims", i: 1 }] }
      ],
      inputs: [valueInfo("n", DT.INT64, [1])],
      outputs: [valueInfo("y", DT.FLOAT, [1])]
    }
  })

/**
 * A Loop with a constant trip count (2^62, so the static check passes) that
 * goes on while i + 1 < m, adding 1 to x each turn: runs min(m[], 2^62)
 * iterations, m an int64 scalar input (the body reads it from the outer
 * scope). The seeded m is small; a request's m is not.
 */
export const valueLoopModel = (): Uint8Array =>
  model({
    graph: {
      nodes: [
        {
          opType: "Loop",
          inputs: ["trips", "cond", "x"],
          outputs: ["y"],
          name: "loop",
          attributes: [
            {
              name: "body",
              g: graphBytes({
                nodes: [
                  { opType: "Constant", inputs: [], outputs: ["step"], attributes: [{ name: "value", t: { dataType: DT.INT64, dims: [], int64s: [1] } }] },
                  { opType: "Add", inputs: ["i", "step"], outputs: ["next"] },
                  { opType: "Less", inputs: ["next", "m"], outputs: ["c_out"] },
                  { opType: "Constant", inputs: [], outputs: ["one"], attributes: [{ name: "value", t: { dataType: DT.FLOAT, dims: [1], floats: [1] } }] },
                  { opType: "Add", inputs: ["v", "one"], outputs: ["v_out"] }
                ],
                inputs: [valueInfo("i", DT.INT64, []), valueInfo("c", DT.BOOL, []), valueInfo("v", DT.FLOAT, [1])],
                outputs: [valueInfo("c_out", DT.BOOL, []), valueInfo("v_out", DT.FLOAT, [1])]
              })
            }
          ]
        }
      ],
      initializers: [
        { name: "trips", dataType: DT.INT64, dims: [], int64s: [2n ** 62n] },
        { name: "cond", dataType: DT.BOOL, dims: [], raw: Uint8Array.of(1) }
      ],
      inputs: [valueInfo("m", DT.INT64, []), valueInfo("x", DT.FLOAT, [1])],
      outputs: [valueInfo("y", DT.FLOAT, [1])]
    }
  })

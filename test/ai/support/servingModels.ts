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

/** Loop(M = m, cond = true) adding 1 to x each turn: runs m[] iterations, m an int64 scalar input. */
export const valueLoopModel = (): Uint8Array =>
  model({
    graph: {
      nodes: [
        {
          opType: "Loop",
          inputs: ["m", "cond", "x"],
          outputs: ["y"],
          name: "loop",
          attributes: [
            {
              name: "body",
              g: graphBytes({
                nodes: [
                  { opType: "Identity", inputs: ["c"], outputs: ["c_out"] },
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
      initializers: [{ name: "cond", dataType: DT.BOOL, dims: [], raw: Uint8Array.of(1) }],
      inputs: [valueInfo("m", DT.INT64, []), valueInfo("x", DT.FLOAT, [1])],
      outputs: [valueInfo("y", DT.FLOAT, [1])]
    }
  })

/**
 * Loop(M = 2^62, a constant, so it passes the UnboundedLoop check) counting v
 * up from 0 while v < n, n a float scalar input: the trip count is in the
 * condition, chosen by the caller. The smoke inputs (in [−1, 1)) stop it
 * after one turn; n = 1e15 runs until the deadline (float32 stops counting
 * at 2^24, so it never reaches n).
 */
export const conditionLoopModel = (): Uint8Array =>
  model({
    graph: {
      nodes: [
        {
          opType: "Loop",
          inputs: ["trips", "go", "zero"],
          outputs: ["y"],
          name: "count-to-n",
          attributes: [
            {
              name: "body",
              g: graphBytes({
                nodes: [
                  { opType: "Constant", inputs: [], outputs: ["one"], attributes: [{ name: "value", t: { dataType: DT.FLOAT, dims: [], floats: [1] } }] },
                  { opType: "Add", inputs: ["v", "one"], outputs: ["v_out"] },
                  { opType: "Less", inputs: ["v_out", "n"], outputs: ["c_out"] }
                ],
                inputs: [valueInfo("i", DT.INT64, []), valueInfo("c", DT.BOOL, []), valueInfo("v", DT.FLOAT, [])],
                outputs: [valueInfo("c_out", DT.BOOL, []), valueInfo("v_out", DT.FLOAT, [])]
              })
            }
          ]
        }
      ],
      initializers: [
        { name: "trips", dataType: DT.INT64, dims: [], int64s: [2n ** 62n] },
        { name: "go", dataType: DT.BOOL, dims: [], raw: Uint8Array.of(1) },
        { name: "zero", dataType: DT.FLOAT, dims: [], floats: [0] }
      ],
      inputs: [valueInfo("n", DT.FLOAT, [])],
      outputs: [valueInfo("y", DT.FLOAT, [])]
    }
  })

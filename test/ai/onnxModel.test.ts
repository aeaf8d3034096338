import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { allNodes, allStoredTensors, GRAPH_DEPTH_MAX, parseOnnxModel, type OnnxModel } from "../../domain/ai/onnx/model.js"
import { DT, graph, model, ProtoWriter, tensor, valueInfo, type GraphDef } from "./support/onnxBuilder.js"
import { customOpInSubgraphModel, externalDataModel, hugeTensorModel, loopForeverModel, repeatedGraphModel, sileroBytes, symbolicModel, TEXT_FILE } from "./support/models.js"

const parsed = (bytes: Uint8Array): OnnxModel => Either.getOrThrow(parseOnnxModel(bytes))
const SILERO = sileroBytes()

describe("ONNX ModelProto reader", () => {
  it("reads silero VAD v5: versions, signature, operators", () => {
    const m = parsed(SILERO)
    expect(m.irVersion).toBe(8)
    expect(m.opsetImports).toEqual([{ domain: "", version: 16 }])
    expect(m.sizeBytes).toBe(SILERO.length)
    expect(m.graph.inputs.map((i) => [i.name, i.type])).toEqual([
      ["input", { kind: "tensor", elemType: DT.FLOAT, shape: ["", ""] }],
      ["state", { kind: "tensor", elemType: DT.FLOAT, shape: [2, "", 128] }],
      ["sr", { kind: "tensor", elemType: DT.INT64, shape: [] }]
    ])
    expect(m.graph.outputs.map((o) => o.name)).toEqual(["output", "stateN"])
    const ops = new Set(allNodes(m.graph).map((n) => n.opType))
    // the 16k/8k branches live in If subgraphs: LSTM and Conv are only found by walking them
    expect(m.graph.nodes.some((n) => n.opType === "LSTM")).toBe(false)
    expect(ops.has("LSTM")).toBe(true)
    expect(ops.has("Conv")).toBe(true)
    expect(allNodes(m.graph).every((n) => n.domain === "")).toBe(true)
    expect(allStoredTensors(m).every((t) => t.dataLocation === 0 && t.externalData.length === 0)).toBe(true)
  })

  it("reads symbolic dims by name and concrete dims by value", () => {
    const m = parsed(symbolicModel())
    expect(m.graph.inputs[0]!.type).toEqual({ kind: "tensor", elemType: DT.FLOAT, shape: ["batch", 4] })
    expect(m.graph.inputs[1]!.type).toEqual({ kind: "tensor", elemType: DT.INT64, shape: [1] })
  })

  it("reads a shape-less input as unknown rank", () => {
    const m = parsed(model({ graph: { nodes: [], inputs: [valueInfo("x", DT.FLOAT)], outputs: [valueInfo("x", DT.FLOAT)] } }))
    expect(m.graph.inputs[0]!.type).toEqual({ kind: "tensor", elemType: DT.FLOAT, shape: undefined })
  })

  it("finds nodes inside Loop bodies", () => {
    const m = parsed(customOpInSubgraphModel())
    expect(m.graph.nodes.map((n) => n.opType)).toEqual(["Loop"])
    expect(allNodes(m.graph).map((n) => `${n.domain}:${n.opType}`)).toEqual([":Loop", ":Identity", "com.evil:Steal"])
  })

  it("finds tensors in node attributes (a Constant in a Loop body)", () => {
    const m = parsed(loopForeverModel())
    const names = allStoredTensors(m).map((t) => [t.name, t.dims])
    expect(names).toEqual([["M", []], ["cond", []], ["", [1]]])
  })

  it("reads external data references", () => {
    const [w] = allStoredTensors(parsed(externalDataModel()))
    expect(w!.dataLocation).toBe(1)
    expect(w!.externalData).toEqual([{ key: "location", value: "weights.bin" }, { key: "offset", value: "0" }, { key: "length", value: "12" }])
  })

  it("reads declared dims without data", () => {
    const [w] = allStoredTensors(parsed(hugeTensorModel()))
    expect(w!.dims).toEqual([100_000, 100_000])
    expect(w!.dataBytes).toBe(0)
  })

  it("rejects an empty file, a text file, and protobuf that is not a model", () => {
    const empty = parseOnnxModel(new Uint8Array(0))
    expect(Either.isLeft(empty) && empty.left.reason).toBe("Empty")
    const text = parseOnnxModel(TEXT_FILE)
    expect(Either.isLeft(text) && text.left.message).toMatch(/not (a valid protobuf message|an ONNX model)/)
    const noGraph = parseOnnxModel(Uint8Array.of(0x08, 0x08))
    expect(Either.isLeft(noGraph) && noGraph.left.reason).toBe("NoGraph")
  })

  describe("refuses a singular field that appears twice (protobuf would merge or keep the last)", () => {
    const refusal = (bytes: Uint8Array): string => {
      const r = parseOnnxModel(bytes)
      if (Either.isRight(r)) throw new Error("expected a refusal, the model parsed")
      expect(r.left.reason).toBe("RepeatedField")
      return r.left.message
    }
    const opset = new ProtoWriter().string(1, "").int(2, 17).finish()
    /** A model around `graphBytes`, written by hand. */
    const withGraph = (graphBytes: Uint8Array) => new ProtoWriter().int(1, 8).bytes(7, graphBytes).bytes(8, opset).finish()
    const x = valueInfo("x", DT.FLOAT, [1])

    it("ModelProto.graph: a random op in the first, an Add in the second", () => {
      expect(refusal(repeatedGraphModel())).toMatch(/^a field that holds one value holds several: RepeatedField at byte \d+: singular field 7 of ModelProto appears more than once$/)
    })

    it("ModelProto.ir_version, GraphProto.name, NodeProto.op_type and domain", () => {
      expect(refusal(new ProtoWriter().int(1, 8).int(1, 9).bytes(7, graph({ nodes: [], inputs: [], outputs: [] })).bytes(8, opset).finish())).toMatch(/field 1 of ModelProto/)
      expect(refusal(withGraph(new ProtoWriter().string(2, "a").string(2, "b").finish()))).toMatch(/field 2 of GraphProto/)
      const twoOps = new ProtoWriter().string(1, "x").string(2, "y").string(4, "RandomNormal").string(4, "Identity").finish()
      expect(refusal(withGraph(new ProtoWriter().bytes(1, twoOps).finish()))).toMatch(/field 4 of NodeProto/)
      const twoDomains = new ProtoWriter().string(4, "Identity").string(7, "com.evil").string(7, "").finish()
      expect(refusal(withGraph(new ProtoWriter().bytes(1, twoDomains).finish()))).toMatch(/field 7 of NodeProto/)
    })

    it("ValueInfoProto.type, TypeProto's oneof, TypeProto.Tensor.shape, a Dimension's oneof", () => {
      const type = new ProtoWriter().bytes(1, new ProtoWriter().int(1, DT.FLOAT).finish()).finish()
      const twoTypes = new ProtoWriter().string(1, "x").bytes(2, type).bytes(2, type).finish()
      expect(refusal(withGraph(new ProtoWriter().bytes(11, twoTypes).finish()))).toMatch(/field 2 of ValueInfoProto/)
      const tensorAndSeq = new ProtoWriter().bytes(1, new ProtoWriter().int(1, DT.FLOAT).finish()).bytes(4, new Uint8Array(0)).finish()
      expect(refusal(withGraph(new ProtoWriter().bytes(11, new ProtoWriter().string(1, "x").bytes(2, tensorAndSeq).finish()).finish()))).toMatch(/of TypeProto \(its oneof, field 4\)/)
      const shape = new ProtoWriter().bytes(1, new ProtoWriter().int(1, 3).finish()).finish()
      const twoShapes = new ProtoWriter().bytes(1, new ProtoWriter().int(1, DT.FLOAT).bytes(2, shape).bytes(2, shape).finish()).finish()
      expect(refusal(withGraph(new ProtoWriter().bytes(11, new ProtoWriter().string(1, "x").bytes(2, twoShapes).finish()).finish()))).toMatch(/field 2 of TypeProto.Tensor/)
      const valueAndParam = new ProtoWriter().bytes(1, new ProtoWriter().int(1, 3).string(2, "n").finish()).finish()
      const dimType = new ProtoWriter().bytes(1, new ProtoWriter().int(1, DT.FLOAT).bytes(2, valueAndParam).finish()).finish()
      expect(refusal(withGraph(new ProtoWriter().bytes(11, new ProtoWriter().string(1, "x").bytes(2, dimType).finish()).finish()))).toMatch(/TensorShapeProto.Dimension \(its oneof, field 2\)/)
    })

    it("TensorProto.data_type and raw_data, AttributeProto.t and g, OperatorSetIdProto.version", () => {
      const twoTypes = new ProtoWriter().raw(tensor({ name: "w", dataType: DT.FLOAT, dims: [1] })).int(2, DT.INT64).finish()
      expect(refusal(withGraph(new ProtoWriter().bytes(5, twoTypes).finish()))).toMatch(/field 2 of TensorProto/)
      const twoRaw = new ProtoWriter().raw(tensor({ name: "w", dataType: DT.FLOAT, dims: [1], raw: new Uint8Array(4) })).bytes(9, new Uint8Array(4)).finish()
      expect(refusal(withGraph(new ProtoWriter().bytes(5, twoRaw).finish()))).toMatch(/field 9 of TensorProto/)
      const t = tensor({ dataType: DT.FLOAT, dims: [1], floats: [1] })
      const twoT = new ProtoWriter().string(1, "value").bytes(5, t).bytes(5, t).finish()
      const constant = new ProtoWriter().string(2, "c").string(4, "Constant").bytes(5, twoT).finish()
      expect(refusal(withGraph(new ProtoWriter().bytes(1, constant).finish()))).toMatch(/field 5 of AttributeProto/)
      const g = graph({ nodes: [], inputs: [], outputs: [] })
      const twoG = new ProtoWriter().string(1, "then_branch").bytes(6, g).bytes(6, g).finish()
      const ifNode = new ProtoWriter().string(1, "c").string(4, "If").bytes(5, twoG).finish()
      expect(refusal(withGraph(new ProtoWriter().bytes(1, ifNode).finish()))).toMatch(/field 6 of AttributeProto/)
      const twoVersions = new ProtoWriter().string(1, "").int(2, 17).int(2, 1).finish()
      const m = new ProtoWriter().int(1, 8).bytes(7, graph({ nodes: [], inputs: [x], outputs: [x] })).bytes(8, twoVersions).finish()
      expect(refusal(m)).toMatch(/field 2 of OperatorSetIdProto/)
    })

    it("still reads repeated fields (nodes, inputs, graphs of an attribute) as many", () => {
      const m = parsed(model({ graph: { nodes: [{ opType: "Relu", inputs: ["x"], outputs: ["r"] }, { opType: "Relu", inputs: ["r"], outputs: ["y"] }], inputs: [x, valueInfo("z", DT.FLOAT, [1])], outputs: [x] } }))
      expect(m.graph.nodes.length).toBe(2)
      expect(m.graph.inputs.length).toBe(2)
    })
  })

  it("rejects subgraphs nested past the depth limit", () => {
    let body: GraphDef = { nodes: [], inputs: [], outputs: [] }
    for (let i = 0; i < GRAPH_DEPTH_MAX + 2; i++) {
      body = { nodes: [{ opType: "If", inputs: ["c"], outputs: ["y"], attributes: [{ name: "then_branch", g: graph(body) }] }], inputs: [], outputs: [] }
    }
    const r = parseOnnxModel(model({ graph: body }))
    expect(Either.isLeft(r) && r.left.message).toMatch(/TooDeep/)
  })

  it("property: truncating silero anywhere inside its graph fails with a typed error, never a throw", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: SILERO.length - 200 }), (cut) => {
        const r = parseOnnxModel(SILERO.subarray(0, cut))
        expect(Either.isLeft(r)).toBe(true)
      }),
      { seed: 4, numRuns: 60 }
    )
  })

  it("property: silero with random bytes overwritten parses or fails typed, never throws", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: SILERO.length - 1 }), fc.nat({ max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const bytes = SILERO.slice()
        for (const [at, value] of edits) bytes[at] = value
        const r = parseOnnxModel(bytes)
        if (Either.isLeft(r)) expect(r.left._tag).toBe("OnnxParseError")
      }),
      { seed: 5, numRuns: 40 }
    )
  })

  it("property: random bytes parse or fail typed, never throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const r = parseOnnxModel(bytes)
        if (Either.isLeft(r)) expect(r.left._tag).toBe("OnnxParseError")
      }),
      { seed: 6, numRuns: 2000 }
    )
  })
})

import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { allNodes, allStoredTensors, GRAPH_DEPTH_MAX, parseOnnxModel, type OnnxModel } from "../../domain/ai/onnx/model.js"
import { DT, graph, model, valueInfo, type GraphDef } from "./support/onnxBuilder.js"
import { customOpInSubgraphModel, externalDataModel, hugeTensorModel, loopForeverModel, sileroBytes, symbolicModel, TEXT_FILE } from "./support/models.js"

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

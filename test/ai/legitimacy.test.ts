import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import fc from "fast-check"
import { checkModelStatic, DEFAULT_STATIC_LIMITS, type StaticCheck, type StaticLimits } from "../../domain/ai/legitimacy.js"
import { ModelManifest, parseShapeFlag, type ModelManifestEncoded } from "../../domain/ai/manifest.js"
import { parseOnnxModel } from "../../domain/ai/onnx/model.js"
import { DT, model, valueInfo } from "./support/onnxBuilder.js"
import {
  addModel,
  customDomainModel,
  customOpInSubgraphModel,
  externalDataModel,
  hugeInputModel,
  hugeTensorModel,
  inputTripCountLoopModel,
  loopForeverModel,
  manifest,
  randomModel,
  repeatedGraphModel,
  SILERO_MANIFEST,
  sileroBytes,
  symbolicModel,
  TEXT_FILE,
  trainingDropoutModel
} from "./support/models.js"

const SILERO = sileroBytes()
const decodeManifest = (m: ModelManifestEncoded) => Schema.decodeUnknownSync(ModelManifest)(m)

const check = (bytes: Uint8Array, m: ModelManifestEncoded = manifest(), limits: StaticLimits = DEFAULT_STATIC_LIMITS) =>
  checkModelStatic(bytes, decodeManifest(m), limits)

/** The failed check's reason and message. */
const failure = (bytes: Uint8Array, m?: ModelManifestEncoded, limits?: StaticLimits): { reason: StaticCheck; message: string } => {
  const r = check(bytes, m, limits)
  if (Either.isRight(r)) throw new Error("expected a failed check, the model passed")
  return { reason: r.left.reason, message: r.left.message }
}

const oneNode = (opType: string, over: Partial<Parameters<typeof model>[0]> = {}) =>
  model({
    graph: {
      nodes: [{ opType, inputs: ["x"], outputs: ["y"], name: "n1" }],
      inputs: [valueInfo("x", DT.FLOAT, [3])],
      outputs: [valueInfo("y", DT.FLOAT, [3])]
    },
    ...over
  })

describe("checkModelStatic", () => {
  it("passes silero with its manifest shapes, giving the signature and concrete input shapes", () => {
    const r = Either.getOrThrow(check(SILERO, SILERO_MANIFEST))
    expect(r.signature.inputs).toEqual([
      { name: "input", type: "float32", dims: ["", ""] },
      { name: "state", type: "float32", dims: [2, "", 128] },
      { name: "sr", type: "int64", dims: [] }
    ])
    expect(r.signature.outputs.map((o) => o.name)).toEqual(["output", "stateN"])
    expect([...r.inputShapes]).toEqual([["input", [1, 576]], ["state", [2, 1, 128]], ["sr", []]])
  })

  it("accepts an already parsed model", () => {
    const parsed = Either.getOrThrow(parseOnnxModel(SILERO))
    expect(Either.isRight(checkModelStatic(parsed, decodeManifest(SILERO_MANIFEST)))).toBe(true)
  })

  it("passes the small generated models", () => {
    expect(Either.isRight(check(addModel()))).toBe(true)
    expect(Either.isRight(check(symbolicModel(), manifest({ shapes: { x: [2, 4] } })))).toBe(true)
  })

  it("TooLarge: a file over the size limit", () => {
    const f = failure(SILERO, SILERO_MANIFEST, { ...DEFAULT_STATIC_LIMITS, modelBytesMax: 1024 * 1024 })
    expect(f.reason).toBe("TooLarge")
    expect(f.message).toBe("the file is 2.2 MiB, over the 1.0 MiB limit")
  })

  it("NotOnnx: a text file, random bytes, a truncated model", () => {
    expect(failure(TEXT_FILE).reason).toBe("NotOnnx")
    expect(failure(SILERO.subarray(0, 100_000), SILERO_MANIFEST).message).toMatch(/^the file is not an ONNX model \(not a valid protobuf message: Truncated at byte \d+/)
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 500 }), (bytes) => {
        expect(failure(bytes).reason).toBe("NotOnnx")
      }),
      { seed: 7, numRuns: 300 }
    )
  })

  it("NotOnnx: a second graph field (a RandomNormal, then an Add) is refused, not read as the Add alone", () => {
    expect(failure(repeatedGraphModel())).toEqual({
      reason: "NotOnnx",
      message: expect.stringMatching(
        /^the file is not an ONNX model \(a field that holds one value holds several: RepeatedField at byte \d+: singular field 7 of ModelProto appears more than once\)$/
      )
    })
  })

  it("UnsupportedVersion: silero with its ir_version byte changed from 8 to 2", () => {
    expect([...SILERO.subarray(0, 2)]).toEqual([0x08, 0x08]) // field 1 (ir_version), varint 8
    const bytes = SILERO.slice()
    bytes[1] = 2
    expect(failure(bytes, SILERO_MANIFEST)).toEqual({ reason: "UnsupportedVersion", message: "ir_version 2 is outside the supported 3..12" })
  })

  it("UnsupportedVersion: opsets out of range, or no default-domain opset", () => {
    expect(failure(addModel({ opsets: [["", 5]] })).message).toBe("opset 5 is outside the supported 7..24")
    expect(failure(addModel({ opsets: [["", 99]] })).message).toBe("opset 99 is outside the supported 7..24")
    expect(failure(addModel({ opsets: [["ai.onnx.ml", 3]] })).message).toBe(`the model imports no default-domain ("ai.onnx") opset`)
    expect(Either.isRight(check(addModel({ opsets: [["ai.onnx", 17]] })))).toBe(true)
    expect(failure(addModel({ opsets: [["", 17], ["ai.onnx", 11]] }))).toEqual({
      reason: "UnsupportedVersion",
      message: `the model imports the default-domain opset 2 times ("" 17, "ai.onnx" 11); import it once`
    })
  })

  it("CustomDomain: an opset import of another domain, even when every node is standard", () => {
    expect(failure(addModel({ opsets: [["", 17], ["ai.onnx.ml", 3]] }))).toEqual({
      reason: "CustomDomain",
      message: `the model imports the opset of domain "ai.onnx.ml"; only the standard ONNX domain ("" or "ai.onnx") is allowed`
    })
  })

  it("CustomDomain: a custom-op node, at top level or in a Loop body, and model-local functions", () => {
    expect(failure(customDomainModel())).toEqual({
      reason: "CustomDomain",
      message: `node "steal" (Steal) is in the custom domain "com.evil"; only standard ONNX operators are allowed`
    })
    expect(failure(customOpInSubgraphModel()).message).toBe(`a Steal node is in the custom domain "com.evil"; only standard ONNX operators are allowed`)
    expect(failure(addModel({ functions: [["com.mine", "Fused"]] })).message).toBe(
      `the model defines its own function "Fused" in domain "com.mine"; only standard ONNX operators are allowed`
    )
  })

  it("OperatorNotAllowed: an unknown op in the default domain, and an excluded random op", () => {
    expect(failure(oneNode("Exfiltrate"))).toEqual({
      reason: "OperatorNotAllowed",
      message: `node "n1" (Exfiltrate) uses operator "Exfiltrate", which is not allowed: it is not a standard ONNX operator`
    })
    expect(failure(randomModel()).message).toMatch(/operator "RandomNormal", which is not allowed: random outputs cannot be cross-checked/)
    expect(failure(trainingDropoutModel())).toEqual({
      reason: "OperatorNotAllowed",
      message: `a Dropout node has a training_mode input ("training"); Dropout in training mode drops values at random, so its outputs cannot be cross-checked`
    })
    const inference = model({ graph: { nodes: [{ opType: "Dropout", inputs: ["x"], outputs: ["y"] }], inputs: [valueInfo("x", DT.FLOAT, [3])], outputs: [valueInfo("y", DT.FLOAT, [3])] } })
    expect(Either.isRight(check(inference))).toBe(true)
  })

  it("ExternalData: an initializer stored in another file", () => {
    expect(failure(externalDataModel())).toEqual({
      reason: "ExternalData",
      message: `tensor "w" keeps its data in an external file ("weights.bin"); embed all weights in the .onnx file`
    })
  })

  it("TensorTooLarge: a huge declared initializer, and an input made huge by the manifest", () => {
    expect(failure(hugeTensorModel())).toEqual({
      reason: "TensorTooLarge",
      message: `tensor "w" has shape [100000, 100000], more than ${2 ** 28} elements`
    })
    expect(failure(symbolicModel(), manifest({ shapes: { x: [100_000_000, 4] } })).message).toBe(
      `input "x" at its manifest shape has shape [100000000, 4], more than ${2 ** 28} elements`
    )
  })

  it("UnboundedLoop: a Loop whose trip count is an input; a constant trip count, or a fixed input, passes", () => {
    expect(failure(inputTripCountLoopModel())).toEqual({
      reason: "UnboundedLoop",
      message: `node "loop" (Loop) takes its trip count from "M", which is not a constant; make it an initializer or a Constant, or fix the input in the manifest (--fixed M=N)`
    })
    expect(Either.isRight(check(inputTripCountLoopModel(), manifest({ fixedInputs: { M: [3] } })))).toBe(true)
    expect(Either.isRight(check(loopForeverModel()))).toBe(true) // 10^15, but a constant: the smoke run times it out
    const whileLoop = model({
      graph: {
        nodes: [{ opType: "Loop", name: "w", inputs: ["", "c", "x"], outputs: ["y"], attributes: [{ name: "body", g: new Uint8Array(0) }] }],
        inputs: [valueInfo("c", DT.BOOL, []), valueInfo("x", DT.FLOAT, [1])],
        outputs: [valueInfo("y", DT.FLOAT, [1])]
      }
    })
    expect(failure(whileLoop).message).toBe(`node "w" (Loop) has no trip count (it loops while a condition holds); give it a constant trip count`)
  })

  it("TensorTooLarge: inputs whose seeded values would take more than inputBytesMax (an int64[16384, 16384] in a tiny file)", () => {
    expect(failure(hugeInputModel())).toEqual({ reason: "TensorTooLarge", message: "the inputs at their shapes take 2048.0 MiB, over the 256.0 MiB limit" })
  })

  it("MissingShape: silero without shapes names the input, the dim and the CLI form", () => {
    expect(failure(SILERO, { ...SILERO_MANIFEST, shapes: {} })).toEqual({
      reason: "MissingShape",
      message: `input "input" has a symbolic dim 0 (unnamed) in [?, ?]: give its whole shape, e.g. --shape input=1,1`
    })
    expect(failure(SILERO, { ...SILERO_MANIFEST, shapes: { input: [1, 576] } }).message).toBe(
      `input "state" has a symbolic dim 1 (unnamed) in [2, ?, 128]: give its whole shape, e.g. --shape state=2,1,128`
    )
    expect(failure(symbolicModel()).message).toBe(`input "x" has a symbolic dim 0 ("batch") in [batch, 4]: give its whole shape, e.g. --shape x=1,4`)
  })

  it("MissingShape: an input of unknown rank", () => {
    const m = model({ graph: { nodes: [{ opType: "Relu", inputs: ["x"], outputs: ["y"] }], inputs: [valueInfo("x", DT.FLOAT)], outputs: [valueInfo("y", DT.FLOAT)] } })
    expect(failure(m).message).toBe(`input "x" has no declared shape (unknown rank): give its shape, e.g. --shape x=1,512`)
    expect(Either.isRight(check(m, manifest({ shapes: { x: [3, 2, 1] } })))).toBe(true)
  })

  it("BadManifest: wrong rank, a fixed dim changed, a shape or fixed value for no input, wrong counts and types", () => {
    const sym = symbolicModel()
    expect(failure(sym, manifest({ shapes: { x: [2, 4, 1] } })).message).toBe(`the manifest gives input "x" rank 3, the model declares rank 2`)
    expect(failure(sym, manifest({ shapes: { x: [2, 5] } })).message).toBe(`the manifest gives input "x" dim 1 = 5, the model fixes it at 4`)
    expect(failure(sym, manifest({ shapes: { x: [2, 4], z: [1] } })).message).toBe(`the manifest gives a shape for "z", which is not an input of the model`)
    expect(failure(sym, manifest({ shapes: { x: [2, 4] }, fixedInputs: { z: [1] } })).message).toBe(`the manifest fixes "z", which is not an input of the model`)
    expect(failure(sym, manifest({ shapes: { x: [2, 4] }, fixedInputs: { x: [1, 2, 3] } })).message).toBe(`the manifest fixes 3 values for "x", whose shape [2, 4] has 8`)
    expect(failure(sym, manifest({ shapes: { x: [2, 4] }, fixedInputs: { k: [0.5] } }))).toEqual({
      reason: "BadManifest",
      message: `the manifest fixes "k" to 0.5, which is not a valid int64 value`
    })
  })

  it("UnsupportedType: a string input, a float16 output", () => {
    const str = model({ graph: { nodes: [{ opType: "Identity", inputs: ["s"], outputs: ["y"] }], inputs: [valueInfo("s", DT.STRING, [1])], outputs: [valueInfo("y", DT.STRING, [1])] } })
    expect(failure(str)).toEqual({ reason: "UnsupportedType", message: `input "s" has element type STRING; supported: float32, float64, int32, int64, uint8, bool` })
    const half = model({ graph: { nodes: [{ opType: "Cast", inputs: ["x"], outputs: ["y"], attributes: [{ name: "to", i: DT.FLOAT16 }] }], inputs: [valueInfo("x", DT.FLOAT, [1])], outputs: [valueInfo("y", DT.FLOAT16, [1])] } })
    expect(failure(half).message).toBe(`output "y" has element type FLOAT16; supported: float32, float64, int32, int64, uint8, bool`)
  })

  it("reports the first failed check: custom domain before external data, versions before both", () => {
    const both = model({
      graph: {
        nodes: [{ opType: "Steal", domain: "x.y", inputs: ["x", "w"], outputs: ["y"] }],
        initializers: [{ name: "w", dataType: DT.FLOAT, dims: [1], dataLocation: 1, externalData: [["location", "w.bin"]] }],
        inputs: [valueInfo("x", DT.FLOAT, ["n"])],
        outputs: [valueInfo("y", DT.FLOAT, [1])]
      }
    })
    expect(failure(both).reason).toBe("CustomDomain")
    expect(failure(model({ irVersion: 99, graph: { nodes: [{ opType: "Steal", domain: "x.y", inputs: [], outputs: [] }], inputs: [], outputs: [] } })).reason).toBe("UnsupportedVersion")
  })
})

describe("manifest", () => {
  it("decodes with defaults: no shapes, no fixed inputs, tolerance 1e-4; the price is a bigint", () => {
    const m = decodeManifest(manifest({ pricePerCall: "12345678901234567890" }))
    expect(m.pricePerCall).toBe(12345678901234567890n)
    expect(m.shapes).toEqual({})
    expect(m.fixedInputs).toEqual({})
    expect(m.outputTolerance).toBe(1e-4)
  })

  it("refuses a negative price, a zero dim and a non-positive tolerance", () => {
    const bad = [manifest({ pricePerCall: "-1" }), manifest({ shapes: { x: [0, 4] } }), manifest({ outputTolerance: 0 })]
    for (const m of bad) expect(Either.isLeft(Schema.decodeUnknownEither(ModelManifest)(m))).toBe(true)
  })

  it("parses --shape NAME=1,512", () => {
    expect(parseShapeFlag("input=1,576")).toEqual(Either.right(["input", [1, 576]]))
    expect(parseShapeFlag("a=b=2")).toEqual(Either.right(["a=b", [2]]))
    for (const bad of ["input", "=1", "x=", "x=0", "x=1,,2", "x=-1", "x=1.5"]) expect(Either.isLeft(parseShapeFlag(bad))).toBe(true)
  })
})

/**
 * The static half of model legitimacy (DESIGN.md, "AI shard", stage 2):
 * what a validator can decide from the file and the manifest alone, before
 * anything runs. `checkModelStatic` runs the checks in this order and stops
 * at the first failure, whose `reason` names the check and whose message
 * tells the provider what to change:
 *
 *   TooLarge            the file is within `modelBytesMax`
 *   NotOnnx             it parses as an ONNX ModelProto (no singular field twice)
 *   UnsupportedVersion  ir_version and the default-domain opset are in range, imported once
 *   CustomDomain        every node is in the default domain ("" or "ai.onnx"); no
 *                       model-local functions; no opset imported from another domain
 *   OperatorNotAllowed  every op is on ALLOWED_OPERATORS; no Dropout in training mode
 *   ExternalData        no tensor keeps its data outside the file
 *   TensorTooLarge      no stored or declared tensor exceeds `tensorElementsMax`
 *   UnboundedLoop       every Loop's trip count is a constant (an initializer, a
 *                       Constant's output, or an input the manifest fixes)
 *   MissingShape        every input with a symbolic dim has a shape in the manifest
 *   BadManifest         the manifest's shapes and fixed inputs fit the model
 *   UnsupportedType     every input and output is a tensor the JSON door carries
 *   BadManifest         (again) the fixed input values suit their inputs' types
 *   TensorTooLarge      (again) the inputs at their shapes total at most `inputBytesMax`
 *
 * Hash, denylist and the sandboxed smoke run are the other checks
 * (infra/inference/verifyModel.ts). A validator runs these in the sandbox
 * child (infra/inference/smokeCheck.ts), never in the node: parsing makes
 * an object per node, ~20 times the file's size in heap.
 */
import { Either, Schema } from "effect"
import type { ManifestShapes } from "./manifest.js"
import { resolveInputShapes } from "./manifest.js"
import { allGraphs, allNodes, allStoredTensors, parseOnnxModel, type OnnxDim, type OnnxModel } from "./onnx/model.js"
import { ALLOWED_OPERATORS, EXCLUDED_OPERATORS, isDefaultDomain } from "./onnx/operators.js"
import { isFreeDim, requiredInputs, signatureOf, type ModelSignature, type TensorSpec } from "./signature.js"
import { seededInputs } from "./seededInputs.js"
import { ELEM_BYTES, elementCount, type TensorMap } from "./tensor.js"

export interface StaticLimits {
  readonly modelBytesMax: number
  readonly irVersionMin: number
  readonly irVersionMax: number
  /** Range of the default-domain ("ai.onnx") opset version. */
  readonly opsetMin: number
  readonly opsetMax: number
  /** Elements of any one tensor: stored, declared, or an input at its manifest shape. */
  readonly tensorElementsMax: number
  /** Bytes of all inputs together at their shapes (the seeded inputs the smoke run builds). */
  readonly inputBytesMax: number
}

export const DEFAULT_STATIC_LIMITS: StaticLimits = {
  modelBytesMax: 512 * 1024 * 1024,
  // IR 3 brought opset_import. onnxruntime 1.30 loads IR 12 / opset 24 models (checked in
  // test/ai); newer ones may load too, but nothing here has run them. Opset 7 is the oldest
  // onnxruntime still implements in full.
  irVersionMin: 3,
  irVersionMax: 12,
  opsetMin: 7,
  opsetMax: 24,
  tensorElementsMax: 2 ** 28,
  inputBytesMax: 256 * 1024 * 1024
}

export const StaticCheck = Schema.Literal(
  "TooLarge",
  "NotOnnx",
  "UnsupportedVersion",
  "CustomDomain",
  "OperatorNotAllowed",
  "ExternalData",
  "TensorTooLarge",
  "UnboundedLoop",
  "MissingShape",
  "BadManifest",
  "UnsupportedType"
)
export type StaticCheck = typeof StaticCheck.Type

export class StaticCheckFailure extends Schema.TaggedError<StaticCheckFailure>()("StaticCheckFailure", {
  reason: StaticCheck,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

export interface StaticCheckPassed {
  readonly model: OnnxModel
  readonly signature: ModelSignature
  /** The concrete shape of every input (declared, or the manifest's). */
  readonly inputShapes: ReadonlyMap<string, ReadonlyArray<number>>
}

const fail = (reason: StaticCheck, detail: string) => Either.left(new StaticCheckFailure({ reason, detail }))

const mib = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`

const nodeLabel = (n: { readonly name: string; readonly opType: string }): string =>
  n.name === "" ? `a ${n.opType} node` : `node "${n.name}" (${n.opType})`

const checkVersions = (model: OnnxModel, limits: StaticLimits): Either.Either<void, StaticCheckFailure> => {
  if (model.irVersion < limits.irVersionMin || model.irVersion > limits.irVersionMax) {
    return fail("UnsupportedVersion", `ir_version ${model.irVersion} is outside the supported ${limits.irVersionMin}..${limits.irVersionMax}`)
  }
  const defaults = model.opsetImports.filter((o) => isDefaultDomain(o.domain))
  const opset = defaults[0]
  if (opset === undefined) return fail("UnsupportedVersion", `the model imports no default-domain ("ai.onnx") opset`)
  if (defaults.length > 1) {
    return fail("UnsupportedVersion", `the model imports the default-domain opset ${defaults.length} times (${defaults.map((o) => `"${o.domain}" ${o.version}`).join(", ")}); import it once`)
  }
  if (opset.version < limits.opsetMin || opset.version > limits.opsetMax) {
    return fail("UnsupportedVersion", `opset ${opset.version} is outside the supported ${limits.opsetMin}..${limits.opsetMax}`)
  }
  return Either.right(undefined)
}

const checkDomainsAndOps = (model: OnnxModel): Either.Either<void, StaticCheckFailure> => {
  const nodes = allNodes(model.graph)
  const custom = nodes.find((n) => !isDefaultDomain(n.domain))
  if (custom !== undefined) {
    return fail("CustomDomain", `${nodeLabel(custom)} is in the custom domain "${custom.domain}"; only standard ONNX operators are allowed`)
  }
  const fn = model.functions[0]
  if (fn !== undefined) {
    return fail("CustomDomain", `the model defines its own function "${fn.name}" in domain "${fn.domain}"; only standard ONNX operators are allowed`)
  }
  // An imported domain is an operator set onnxruntime may resolve ops from; only the standard one is allowed.
  const imported = model.opsetImports.find((o) => !isDefaultDomain(o.domain))
  if (imported !== undefined) {
    return fail("CustomDomain", `the model imports the opset of domain "${imported.domain}"; only the standard ONNX domain ("" or "ai.onnx") is allowed`)
  }
  const banned = nodes.find((n) => !ALLOWED_OPERATORS.has(n.opType))
  if (banned !== undefined) {
    const why = EXCLUDED_OPERATORS.get(banned.opType) ?? "it is not a standard ONNX operator"
    return fail("OperatorNotAllowed", `${nodeLabel(banned)} uses operator "${banned.opType}", which is not allowed: ${why}`)
  }
  // Dropout is the identity at inference, unless its training_mode input (opset 12+) is given: then it drops at random.
  const training = nodes.find((n) => n.opType === "Dropout" && (n.inputs[2] ?? "") !== "")
  if (training !== undefined) {
    return fail(
      "OperatorNotAllowed",
      `${nodeLabel(training)} has a training_mode input ("${training.inputs[2]}"); Dropout in training mode drops values at random, so its outputs cannot be cross-checked`
    )
  }
  return Either.right(undefined)
}

/** data_location EXTERNAL: "data stored in an external location as described by external_data field". */
const DATA_LOCATION_EXTERNAL = 1

const checkExternalData = (model: OnnxModel): Either.Either<void, StaticCheckFailure> => {
  const ext = allStoredTensors(model).find((t) => t.dataLocation === DATA_LOCATION_EXTERNAL || t.externalData.length > 0)
  if (ext === undefined) return Either.right(undefined)
  const location = ext.externalData.find((e) => e.key === "location")?.value
  return fail(
    "ExternalData",
    `tensor "${ext.name}" keeps its data in an external file${location === undefined ? "" : ` ("${location}")`}; ` +
      `embed all weights in the .onnx file`
  )
}

/** Elements of a declared shape, symbolic dims counted as 1 (their lower bound). */
const declaredElements = (dims: ReadonlyArray<OnnxDim>, max: number): number =>
  elementCount(dims.map((d) => (isFreeDim(d) ? 1 : (d as number))), max)

const checkTensorSizes = (
  model: OnnxModel,
  manifest: ManifestShapes,
  limits: StaticLimits
): Either.Either<void, StaticCheckFailure> => {
  const max = limits.tensorElementsMax
  const tooLarge = (what: string, dims: ReadonlyArray<number | string>) =>
    fail("TensorTooLarge", `${what} has shape [${dims.join(", ")}], more than ${max} elements`)
  for (const t of allStoredTensors(model)) {
    if (t.dims.some((d) => d < 0)) return fail("TensorTooLarge", `tensor "${t.name}" has a negative dim in [${t.dims.join(", ")}]`)
    if (elementCount(t.dims, max) > max) return tooLarge(`tensor "${t.name}"`, t.dims)
  }
  for (const g of allGraphs(model.graph)) {
    for (const s of g.sparseInitializers) {
      if (s.dims.some((d) => d < 0) || elementCount(s.dims, max) > max) return tooLarge("a sparse initializer", s.dims)
    }
    for (const v of [...g.inputs, ...g.outputs, ...g.valueInfo]) {
      if (v.type.kind !== "tensor" || v.type.shape === undefined) continue
      if (declaredElements(v.type.shape, max) > max) return tooLarge(`value "${v.name}"`, v.type.shape)
    }
  }
  for (const name of Object.keys(manifest.shapes)) {
    const dims = manifest.shapes[name]!
    if (elementCount(dims, max) > max) return tooLarge(`input "${name}" at its manifest shape`, dims)
  }
  return Either.right(undefined)
}

/**
 * A Loop runs its trip count M times (or while its condition holds, when M
 * is left out). A caller who chooses M chooses how long a task runs, at a
 * fixed price; so M must be fixed when the model is verified: an
 * initializer, a Constant node's output, or an input the manifest fixes.
 */
const checkLoops = (model: OnnxModel, manifest: ManifestShapes): Either.Either<void, StaticCheckFailure> => {
  const constants = new Set<string>(Object.keys(manifest.fixedInputs))
  for (const g of allGraphs(model.graph)) {
    for (const t of g.initializers) constants.add(t.name)
    for (const n of g.nodes) if (n.opType === "Constant") for (const o of n.outputs) constants.add(o)
  }
  const loop = allNodes(model.graph).find((n) => n.opType === "Loop" && !constants.has(n.inputs[0] ?? ""))
  if (loop === undefined) return Either.right(undefined)
  const m = loop.inputs[0] ?? ""
  return fail(
    "UnboundedLoop",
    m === ""
      ? `${nodeLabel(loop)} has no trip count (it loops while a condition holds); give it a constant trip count`
      : `${nodeLabel(loop)} takes its trip count from "${m}", which is not a constant; ` +
          `make it an initializer or a Constant, or fix the input in the manifest (--fixed ${m}=N)`
  )
}

/** The inputs at their shapes, in bytes, against `inputBytesMax`. */
const checkInputBytes = (signature: ModelSignature, shapes: ReadonlyMap<string, ReadonlyArray<number>>, limits: StaticLimits): Either.Either<void, StaticCheckFailure> => {
  let total = 0
  for (const spec of signature.inputs) {
    const dims = shapes.get(spec.name)
    if (dims !== undefined) total += elementCount(dims) * ELEM_BYTES[spec.type]
  }
  return total > limits.inputBytesMax
    ? fail("TensorTooLarge", `the inputs at their shapes take ${mib(total)}, over the ${mib(limits.inputBytesMax)} limit`)
    : Either.right(undefined)
}

/** The declared inputs as specs, whatever their element type (types are checked last). */
const declaredInputSpecs = (model: OnnxModel): ReadonlyArray<TensorSpec> =>
  requiredInputs(model).map((v) => ({
    name: v.name,
    type: "float32",
    dims:
      v.type.kind === "tensor" && v.type.shape !== undefined
        ? v.type.shape.map((d) => (isFreeDim(d) ? (typeof d === "string" ? d : "") : d))
        : null
  }))

/** The first check, on the size alone (the node runs it before it hands the file to the sandbox). */
export const checkFileSize = (sizeBytes: number, limits: StaticLimits): Either.Either<void, StaticCheckFailure> =>
  sizeBytes > limits.modelBytesMax
    ? fail("TooLarge", `the file is ${mib(sizeBytes)}, over the ${mib(limits.modelBytesMax)} limit`)
    : Either.right(undefined)

/**
 * The static checks, in the order of the module doc, on the file's bytes
 * or on a model already parsed from them.
 */
export const checkModelStatic = (
  input: Uint8Array | OnnxModel,
  manifest: ManifestShapes,
  limits: StaticLimits = DEFAULT_STATIC_LIMITS
): Either.Either<StaticCheckPassed, StaticCheckFailure> => {
  const size = input instanceof Uint8Array ? input.length : input.sizeBytes
  const sized = checkFileSize(size, limits)
  if (Either.isLeft(sized)) return Either.left(sized.left)
  let model: OnnxModel
  if (input instanceof Uint8Array) {
    const parsed = parseOnnxModel(input)
    if (Either.isLeft(parsed)) return fail("NotOnnx", `the file is not an ONNX model (${parsed.left.message})`)
    model = parsed.right
  } else model = input
  const steps = [
    () => checkVersions(model, limits),
    () => checkDomainsAndOps(model),
    () => checkExternalData(model),
    () => checkTensorSizes(model, manifest, limits),
    () => checkLoops(model, manifest)
  ]
  for (const step of steps) {
    const r = step()
    if (Either.isLeft(r)) return Either.left(r.left)
  }
  // Shapes first on the declared dims (whatever the types), so a missing shape is reported before a type.
  const shapesOnly = resolveInputShapes(declaredInputSpecs(model), { shapes: manifest.shapes, fixedInputs: {} })
  if (Either.isLeft(shapesOnly)) return fail(shapesOnly.left.reason, shapesOnly.left.message)
  const signature = signatureOf(model)
  if (Either.isLeft(signature)) {
    const p = signature.left
    return fail("UnsupportedType", `${p.side} "${p.name}" ${p.detail}`)
  }
  const inputShapes = resolveInputShapes(signature.right.inputs, manifest)
  if (Either.isLeft(inputShapes)) return fail(inputShapes.left.reason, inputShapes.left.message)
  const inputBytes = checkInputBytes(signature.right, inputShapes.right, limits)
  if (Either.isLeft(inputBytes)) return Either.left(inputBytes.left)
  return Either.right({ model, signature: signature.right, inputShapes: inputShapes.right })
}

/** The inputs of the smoke run and of any re-execution against the reference fingerprint: seeded by the model hash. */
export const referenceInputs = (
  passed: StaticCheckPassed,
  manifest: ManifestShapes,
  modelHash: string
): TensorMap => seededInputs(passed.signature.inputs, passed.inputShapes, manifest.fixedInputs, modelHash)

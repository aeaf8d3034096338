/**
 * An ONNX `ModelProto` reader (onnx/onnx.proto) of what model verification
 * needs, and nothing else: versions, opset imports, every node (with the
 * subgraphs of If/Loop/Scan), every tensor stored in the file (initializers,
 * sparse initializers, tensors in node attributes) as its name, dims, type
 * and data location — never its data —, and the graph's declared inputs,
 * outputs and value infos.
 *
 * Field numbers are onnx.proto's, named beside each reader. Unknown fields
 * are skipped, as protobuf requires; a known field with the wrong wire type
 * is an error, and so is a singular field (or a second member of a oneof)
 * that appears twice: protobuf would keep the last scalar and merge the
 * messages, so this reader refuses rather than check another model than the
 * one onnxruntime runs. Subgraphs nest at most `GRAPH_DEPTH_MAX` deep, so a hostile
 * file cannot exhaust the stack.
 */
import { Either, Schema } from "effect"
import { SingularFields, WireReader, WireType } from "./wire.js"

/** A shape dimension: a number (`dim_value`), or a name (`dim_param`, "" when the dim has neither). */
export type OnnxDim = number | string

export interface OnnxOpsetImport {
  readonly domain: string
  readonly version: number
}

export interface OnnxTensorInfo {
  readonly name: string
  readonly dims: ReadonlyArray<number>
  readonly dataType: number
  /** `data_location`: 0 DEFAULT, 1 EXTERNAL. */
  readonly dataLocation: number
  readonly externalData: ReadonlyArray<{ readonly key: string; readonly value: string }>
  /** Bytes of data carried in the file (raw_data or the typed repeated fields). */
  readonly dataBytes: number
}

export type OnnxType =
  | { readonly kind: "tensor"; readonly elemType: number; readonly shape: ReadonlyArray<OnnxDim> | undefined }
  | { readonly kind: "sequence" | "map" | "optional" | "sparseTensor" | "missing" }

export interface OnnxValueInfo {
  readonly name: string
  readonly type: OnnxType
}

export interface OnnxNode {
  readonly name: string
  readonly opType: string
  readonly domain: string
  /** Names of its inputs ("" for an optional input left out) and outputs. */
  readonly inputs: ReadonlyArray<string>
  readonly outputs: ReadonlyArray<string>
  /** Graphs held by attributes (If's branches, Loop's and Scan's bodies). */
  readonly subgraphs: ReadonlyArray<OnnxGraph>
  /** Tensors held by attributes (Constant's value, ...), sparse ones as their values and indices. */
  readonly tensors: ReadonlyArray<OnnxTensorInfo>
}

export interface OnnxGraph {
  readonly name: string
  readonly nodes: ReadonlyArray<OnnxNode>
  readonly initializers: ReadonlyArray<OnnxTensorInfo>
  /** Sparse initializers: `dims` is the dense shape; `tensors` their values and indices. */
  readonly sparseInitializers: ReadonlyArray<{ readonly dims: ReadonlyArray<number>; readonly tensors: ReadonlyArray<OnnxTensorInfo> }>
  readonly inputs: ReadonlyArray<OnnxValueInfo>
  readonly outputs: ReadonlyArray<OnnxValueInfo>
  readonly valueInfo: ReadonlyArray<OnnxValueInfo>
}

export interface OnnxModel {
  readonly irVersion: number
  readonly opsetImports: ReadonlyArray<OnnxOpsetImport>
  readonly producerName: string
  readonly producerVersion: string
  readonly graph: OnnxGraph
  /** Model-local functions (`functions`, IR ≥ 8): their domains and op types. */
  readonly functions: ReadonlyArray<{ readonly domain: string; readonly name: string; readonly nodes: ReadonlyArray<OnnxNode> }>
  readonly sizeBytes: number
}

export class OnnxParseError extends Schema.TaggedError<OnnxParseError>()("OnnxParseError", {
  reason: Schema.Literal("Protobuf", "RepeatedField", "Empty", "NoIrVersion", "NoGraph", "NoOpsetImport"),
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** How deep subgraphs (If/Loop/Scan bodies) may nest; real models use a handful. */
export const GRAPH_DEPTH_MAX = 32

// ------------------------------------------------------------ field numbers

/** message ModelProto */
const MODEL = { irVersion: 1, producerName: 2, producerVersion: 3, graph: 7, opsetImport: 8, functions: 25 } as const
/** message OperatorSetIdProto */
const OPSET = { domain: 1, version: 2 } as const
/** message GraphProto */
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12, valueInfo: 13, sparseInitializer: 15 } as const
/** message NodeProto */
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const
/** message AttributeProto */
const ATTRIBUTE = { t: 5, g: 6, tensors: 10, graphs: 11, sparseTensor: 22, sparseTensors: 23 } as const
/** message TensorProto */
const TENSOR = {
  dims: 1,
  dataType: 2,
  floatData: 4,
  int32Data: 5,
  stringData: 6,
  int64Data: 7,
  name: 8,
  rawData: 9,
  doubleData: 10,
  uint64Data: 11,
  externalData: 13,
  dataLocation: 14
} as const
/** message SparseTensorProto */
const SPARSE_TENSOR = { values: 1, indices: 2, dims: 3 } as const
/** message StringStringEntryProto */
const ENTRY = { key: 1, value: 2 } as const
/** message ValueInfoProto */
const VALUE_INFO = { name: 1, type: 2 } as const
/** message TypeProto (a oneof) */
const TYPE = { tensorType: 1, sequenceType: 4, mapType: 5, sparseTensorType: 8, optionalType: 9 } as const
/** message TypeProto.Tensor */
const TYPE_TENSOR = { elemType: 1, shape: 2 } as const
/** message TensorShapeProto */
const SHAPE = { dim: 1 } as const
/** message TensorShapeProto.Dimension */
const DIM = { dimValue: 1, dimParam: 2 } as const
/** message FunctionProto */
const FUNCTION = { name: 1, node: 7, domain: 10 } as const

// ------------------------------------------------------------ readers

/** A singular field of `message`: the expected wire type, and not seen before in this message. */
const single = (r: WireReader, seen: SingularFields, message: string, wire: WireType): boolean =>
  r.expect(wire) && r.once(seen, message)

/** Reads a repeated int64 field, packed (wire type 2) or not (wire type 0), into `out`. */
const readRepeatedInt64 = (r: WireReader, out: Array<number>): void => {
  if (r.wire === WireType.LengthDelimited) {
    const outer = r.enter()
    while (r.more()) out.push(r.int64Number())
    r.leave(outer)
  } else if (r.expect(WireType.Varint)) out.push(r.int64Number())
}

/** Counts the elements of a repeated scalar field (packed or not) and returns their bytes in the file. */
const skipRepeatedScalar = (r: WireReader): number => {
  const start = r.pos
  r.skip()
  return r.pos - start
}

const readEntry = (r: WireReader): { key: string; value: string } => {
  let key = ""
  let value = ""
  const seen = new SingularFields()
  const outer = r.enter()
  while (r.more() && r.tag()) {
    if (r.field === ENTRY.key && single(r, seen, "StringStringEntryProto", WireType.LengthDelimited)) key = r.string()
    else if (r.field === ENTRY.value && single(r, seen, "StringStringEntryProto", WireType.LengthDelimited)) value = r.string()
    else r.skip()
  }
  r.leave(outer)
  return { key, value }
}

const readTensor = (r: WireReader): OnnxTensorInfo => {
  let name = ""
  const dims: Array<number> = []
  let dataType = 0
  let dataLocation = 0
  const externalData: Array<{ key: string; value: string }> = []
  let dataBytes = 0
  const seen = new SingularFields()
  const outer = r.enter()
  while (r.more() && r.tag()) {
    switch (r.field) {
      case TENSOR.dims:
        readRepeatedInt64(r, dims)
        break
      case TENSOR.dataType:
        if (single(r, seen, "TensorProto", WireType.Varint)) dataType = r.int32()
        break
      case TENSOR.name:
        if (single(r, seen, "TensorProto", WireType.LengthDelimited)) name = r.string()
        break
      case TENSOR.externalData:
        if (r.expect(WireType.LengthDelimited)) externalData.push(readEntry(r))
        break
      case TENSOR.dataLocation:
        if (single(r, seen, "TensorProto", WireType.Varint)) dataLocation = r.int32()
        break
      case TENSOR.rawData:
        if (r.once(seen, "TensorProto")) dataBytes += skipRepeatedScalar(r)
        break
      case TENSOR.floatData:
      case TENSOR.int32Data:
      case TENSOR.stringData:
      case TENSOR.int64Data:
      case TENSOR.doubleData:
      case TENSOR.uint64Data:
        dataBytes += skipRepeatedScalar(r)
        break
      default:
        r.skip()
    }
  }
  r.leave(outer)
  return { name, dims, dataType, dataLocation, externalData, dataBytes }
}

const readSparseTensor = (r: WireReader): { dims: Array<number>; tensors: Array<OnnxTensorInfo> } => {
  const dims: Array<number> = []
  const tensors: Array<OnnxTensorInfo> = []
  const seen = new SingularFields()
  const outer = r.enter()
  while (r.more() && r.tag()) {
    if ((r.field === SPARSE_TENSOR.values || r.field === SPARSE_TENSOR.indices) && single(r, seen, "SparseTensorProto", WireType.LengthDelimited)) {
      tensors.push(readTensor(r))
    } else if (r.field === SPARSE_TENSOR.dims) readRepeatedInt64(r, dims)
    else r.skip()
  }
  r.leave(outer)
  return { dims, tensors }
}

/** A member of a oneof whose members are counted under `slot`: the first member seen, once. */
const oneof = (r: WireReader, seen: SingularFields, message: string, slot: number): boolean => {
  const field = r.field
  r.field = slot
  const first = r.once(seen, `${message} (its oneof, field ${field})`)
  r.field = field
  return first
}

const readDim = (r: WireReader): OnnxDim => {
  let dim: OnnxDim = ""
  // dim_value and dim_param are a oneof: one of them, once.
  const seen = new SingularFields()
  const outer = r.enter()
  while (r.more() && r.tag()) {
    if (r.field === DIM.dimValue && r.expect(WireType.Varint) && oneof(r, seen, "TensorShapeProto.Dimension", DIM.dimValue)) dim = r.int64Number()
    else if (r.field === DIM.dimParam && r.expect(WireType.LengthDelimited) && oneof(r, seen, "TensorShapeProto.Dimension", DIM.dimValue)) dim = r.string()
    else r.skip()
  }
  r.leave(outer)
  return dim
}

const readShape = (r: WireReader): Array<OnnxDim> => {
  const dims: Array<OnnxDim> = []
  const outer = r.enter()
  while (r.more() && r.tag()) {
    if (r.field === SHAPE.dim && r.expect(WireType.LengthDelimited)) dims.push(readDim(r))
    else r.skip()
  }
  r.leave(outer)
  return dims
}

const readTensorType = (r: WireReader): OnnxType => {
  let elemType = 0
  let shape: Array<OnnxDim> | undefined = undefined
  const seen = new SingularFields()
  const outer = r.enter()
  while (r.more() && r.tag()) {
    if (r.field === TYPE_TENSOR.elemType && single(r, seen, "TypeProto.Tensor", WireType.Varint)) elemType = r.int32()
    else if (r.field === TYPE_TENSOR.shape && single(r, seen, "TypeProto.Tensor", WireType.LengthDelimited)) shape = readShape(r)
    else r.skip()
  }
  r.leave(outer)
  return { kind: "tensor", elemType, shape }
}

const readType = (r: WireReader): OnnxType => {
  let type: OnnxType = { kind: "missing" }
  // The value kinds are a oneof: one of them, once.
  const seen = new SingularFields()
  const member = () => r.expect(WireType.LengthDelimited) && oneof(r, seen, "TypeProto", TYPE.tensorType)
  const outer = r.enter()
  while (r.more() && r.tag()) {
    switch (r.field) {
      case TYPE.tensorType:
        if (member()) type = readTensorType(r)
        break
      case TYPE.sequenceType:
        if (member()) type = { kind: "sequence" }
        r.skip()
        break
      case TYPE.mapType:
        if (member()) type = { kind: "map" }
        r.skip()
        break
      case TYPE.sparseTensorType:
        if (member()) type = { kind: "sparseTensor" }
        r.skip()
        break
      case TYPE.optionalType:
        if (member()) type = { kind: "optional" }
        r.skip()
        break
      default:
        r.skip()
    }
  }
  r.leave(outer)
  return type
}

const readValueInfo = (r: WireReader): OnnxValueInfo => {
  let name = ""
  let type: OnnxType = { kind: "missing" }
  const seen = new SingularFields()
  const outer = r.enter()
  while (r.more() && r.tag()) {
    if (r.field === VALUE_INFO.name && single(r, seen, "ValueInfoProto", WireType.LengthDelimited)) name = r.string()
    else if (r.field === VALUE_INFO.type && single(r, seen, "ValueInfoProto", WireType.LengthDelimited)) type = readType(r)
    else r.skip()
  }
  r.leave(outer)
  return { name, type }
}

const readAttribute = (r: WireReader, depth: number, subgraphs: Array<OnnxGraph>, tensors: Array<OnnxTensorInfo>): void => {
  const seen = new SingularFields()
  const outer = r.enter()
  while (r.more() && r.tag()) {
    switch (r.field) {
      case ATTRIBUTE.g:
        if (single(r, seen, "AttributeProto", WireType.LengthDelimited)) subgraphs.push(readGraph(r, depth + 1))
        break
      case ATTRIBUTE.graphs:
        if (r.expect(WireType.LengthDelimited)) subgraphs.push(readGraph(r, depth + 1))
        break
      case ATTRIBUTE.t:
        if (single(r, seen, "AttributeProto", WireType.LengthDelimited)) tensors.push(readTensor(r))
        break
      case ATTRIBUTE.tensors:
        if (r.expect(WireType.LengthDelimited)) tensors.push(readTensor(r))
        break
      case ATTRIBUTE.sparseTensor:
        if (single(r, seen, "AttributeProto", WireType.LengthDelimited)) tensors.push(...readSparseTensor(r).tensors)
        break
      case ATTRIBUTE.sparseTensors:
        if (r.expect(WireType.LengthDelimited)) tensors.push(...readSparseTensor(r).tensors)
        break
      default:
        r.skip()
    }
  }
  r.leave(outer)
}

const readNode = (r: WireReader, depth: number): OnnxNode => {
  let name = ""
  let opType = ""
  let domain = ""
  const subgraphs: Array<OnnxGraph> = []
  const tensors: Array<OnnxTensorInfo> = []
  const inputs: Array<string> = []
  const outputs: Array<string> = []
  const seen = new SingularFields()
  const outer = r.enter()
  while (r.more() && r.tag()) {
    switch (r.field) {
      case NODE.input:
        if (r.expect(WireType.LengthDelimited)) inputs.push(r.string())
        break
      case NODE.output:
        if (r.expect(WireType.LengthDelimited)) outputs.push(r.string())
        break
      case NODE.name:
        if (single(r, seen, "NodeProto", WireType.LengthDelimited)) name = r.string()
        break
      case NODE.opType:
        if (single(r, seen, "NodeProto", WireType.LengthDelimited)) opType = r.string()
        break
      case NODE.domain:
        if (single(r, seen, "NodeProto", WireType.LengthDelimited)) domain = r.string()
        break
      case NODE.attribute:
        if (r.expect(WireType.LengthDelimited)) readAttribute(r, depth, subgraphs, tensors)
        break
      default:
        r.skip()
    }
  }
  r.leave(outer)
  return { name, opType, domain, inputs, outputs, subgraphs, tensors }
}

const EMPTY_GRAPH: OnnxGraph = {
  name: "",
  nodes: [],
  initializers: [],
  sparseInitializers: [],
  inputs: [],
  outputs: [],
  valueInfo: []
}

function readGraph(r: WireReader, depth: number): OnnxGraph {
  if (depth > GRAPH_DEPTH_MAX) {
    r.fail("TooDeep", `subgraphs nest deeper than ${GRAPH_DEPTH_MAX}`)
    return EMPTY_GRAPH
  }
  let name = ""
  const nodes: Array<OnnxNode> = []
  const initializers: Array<OnnxTensorInfo> = []
  const sparseInitializers: Array<{ dims: ReadonlyArray<number>; tensors: ReadonlyArray<OnnxTensorInfo> }> = []
  const inputs: Array<OnnxValueInfo> = []
  const outputs: Array<OnnxValueInfo> = []
  const valueInfo: Array<OnnxValueInfo> = []
  const seen = new SingularFields()
  const outer = r.enter()
  while (r.more() && r.tag()) {
    switch (r.field) {
      case GRAPH.node:
        if (r.expect(WireType.LengthDelimited)) nodes.push(readNode(r, depth))
        break
      case GRAPH.name:
        if (single(r, seen, "GraphProto", WireType.LengthDelimited)) name = r.string()
        break
      case GRAPH.initializer:
        if (r.expect(WireType.LengthDelimited)) initializers.push(readTensor(r))
        break
      case GRAPH.sparseInitializer:
        if (r.expect(WireType.LengthDelimited)) sparseInitializers.push(readSparseTensor(r))
        break
      case GRAPH.input:
        if (r.expect(WireType.LengthDelimited)) inputs.push(readValueInfo(r))
        break
      case GRAPH.output:
        if (r.expect(WireType.LengthDelimited)) outputs.push(readValueInfo(r))
        break
      case GRAPH.valueInfo:
        if (r.expect(WireType.LengthDelimited)) valueInfo.push(readValueInfo(r))
        break
      default:
        r.skip()
    }
  }
  r.leave(outer)
  return { name, nodes, initializers, sparseInitializers, inputs, outputs, valueInfo }
}

const readOpset = (r: WireReader): OnnxOpsetImport => {
  let domain = ""
  let version = 0
  const seen = new SingularFields()
  const outer = r.enter()
  while (r.more() && r.tag()) {
    if (r.field === OPSET.domain && single(r, seen, "OperatorSetIdProto", WireType.LengthDelimited)) domain = r.string()
    else if (r.field === OPSET.version && single(r, seen, "OperatorSetIdProto", WireType.Varint)) version = r.int64Number()
    else r.skip()
  }
  r.leave(outer)
  return { domain, version }
}

const readFunction = (r: WireReader): { domain: string; name: string; nodes: Array<OnnxNode> } => {
  let domain = ""
  let name = ""
  const nodes: Array<OnnxNode> = []
  const seen = new SingularFields()
  const outer = r.enter()
  while (r.more() && r.tag()) {
    if (r.field === FUNCTION.name && single(r, seen, "FunctionProto", WireType.LengthDelimited)) name = r.string()
    else if (r.field === FUNCTION.domain && single(r, seen, "FunctionProto", WireType.LengthDelimited)) domain = r.string()
    else if (r.field === FUNCTION.node && r.expect(WireType.LengthDelimited)) nodes.push(readNode(r, 1))
    else r.skip()
  }
  r.leave(outer)
  return { domain, name, nodes }
}

const parseError = (reason: OnnxParseError["reason"], detail: string) => Either.left(new OnnxParseError({ reason, detail }))

/**
 * Parses the parts of an ONNX model that verification looks at. Fails on
 * malformed protobuf, and on a message that is protobuf but not a model
 * (no `ir_version`, no graph, no opset import), as any text file may be.
 */
export const parseOnnxModel = (bytes: Uint8Array): Either.Either<OnnxModel, OnnxParseError> => {
  if (bytes.length === 0) return parseError("Empty", "the file is empty")
  const r = new WireReader(bytes)
  let irVersion = 0
  let producerName = ""
  let producerVersion = ""
  let graph: OnnxGraph | undefined = undefined
  const opsetImports: Array<OnnxOpsetImport> = []
  const functions: Array<{ domain: string; name: string; nodes: Array<OnnxNode> }> = []
  const seen = new SingularFields()
  while (r.more() && r.tag()) {
    switch (r.field) {
      case MODEL.irVersion:
        if (single(r, seen, "ModelProto", WireType.Varint)) irVersion = r.int64Number()
        break
      case MODEL.producerName:
        if (single(r, seen, "ModelProto", WireType.LengthDelimited)) producerName = r.string()
        break
      case MODEL.producerVersion:
        if (single(r, seen, "ModelProto", WireType.LengthDelimited)) producerVersion = r.string()
        break
      case MODEL.graph:
        if (single(r, seen, "ModelProto", WireType.LengthDelimited)) graph = readGraph(r, 0)
        break
      case MODEL.opsetImport:
        if (r.expect(WireType.LengthDelimited)) opsetImports.push(readOpset(r))
        break
      case MODEL.functions:
        if (r.expect(WireType.LengthDelimited)) functions.push(readFunction(r))
        break
      default:
        r.skip()
    }
  }
  if (r.error?.reason === "RepeatedField") return parseError("RepeatedField", `a field that holds one value holds several: ${r.error.message}`)
  if (r.error !== undefined) return parseError("Protobuf", `not a valid protobuf message: ${r.error.message}`)
  if (irVersion <= 0) return parseError("NoIrVersion", "not an ONNX model: no ir_version")
  if (graph === undefined) return parseError("NoGraph", "not an ONNX model: no graph")
  if (opsetImports.length === 0) return parseError("NoOpsetImport", "not an ONNX model: no opset_import")
  return Either.right({ irVersion, opsetImports, producerName, producerVersion, graph, functions, sizeBytes: bytes.length })
}

/** Every node of the graph and of its subgraphs, depth first. */
export const allNodes = (graph: OnnxGraph): ReadonlyArray<OnnxNode> => {
  const out: Array<OnnxNode> = []
  const visit = (g: OnnxGraph): void => {
    for (const node of g.nodes) {
      out.push(node)
      for (const sub of node.subgraphs) visit(sub)
    }
  }
  visit(graph)
  return out
}

/** Every graph: the main one and every subgraph, depth first. */
export const allGraphs = (graph: OnnxGraph): ReadonlyArray<OnnxGraph> => {
  const out: Array<OnnxGraph> = []
  const visit = (g: OnnxGraph): void => {
    out.push(g)
    for (const node of g.nodes) for (const sub of node.subgraphs) visit(sub)
  }
  visit(graph)
  return out
}

/** Every tensor stored in the file: initializers, sparse initializers and attribute tensors, in every graph. */
export const allStoredTensors = (model: OnnxModel): ReadonlyArray<OnnxTensorInfo> => {
  const out: Array<OnnxTensorInfo> = []
  const fromNodes = (nodes: ReadonlyArray<OnnxNode>) => {
    for (const node of nodes) out.push(...node.tensors)
  }
  for (const g of allGraphs(model.graph)) {
    out.push(...g.initializers)
    for (const s of g.sparseInitializers) out.push(...s.tensors)
    fromNodes(g.nodes)
  }
  for (const f of model.functions) fromNodes(f.nodes)
  return out
}

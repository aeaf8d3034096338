/**
 * `TensorProto.DataType` (onnx/onnx.proto): the element types of ONNX
 * tensors, by their enum value, with the byte width where it is fixed.
 */

/** "enum DataType { UNDEFINED = 0; FLOAT = 1; UINT8 = 2; ... }" */
export const OnnxDataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23
} as const

const NAMES: ReadonlyArray<string> = Object.keys(OnnxDataType)

/** The enum's name for a value ("FLOAT"), or `dataType(n)` for one we do not know. */
export const onnxDataTypeName = (value: number): string => NAMES[value] ?? `dataType(${value})`

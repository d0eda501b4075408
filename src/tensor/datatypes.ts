// The one datatype table. Every wire form (JSON, raw bytes, OIP contents, TF TensorProto,
// specserve.v1.Tensor, ONNX Runtime tensors) reads its per-datatype facts from the row of
// that datatype here; adding a datatype is adding a row.

/** Tensor element types, named as the Open Inference Protocol V2 names them. */
export const DataType = {
  BOOL: 'BOOL',
  UINT8: 'UINT8',
  UINT16: 'UINT16',
  UINT32: 'UINT32',
  UINT64: 'UINT64',
  INT8: 'INT8',
  INT16: 'INT16',
  INT32: 'INT32',
  INT64: 'INT64',
  FP16: 'FP16',
  FP32: 'FP32',
  FP64: 'FP64',
  BYTES: 'BYTES',
} as const
export type DataType = (typeof DataType)[keyof typeof DataType]

export type NumericData =
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Float16Array
  | Float32Array
  | Float64Array

/** A tensor's elements, row-major: a typed array, or UTF-8 strings for BYTES. */
export type TensorData = NumericData | string[]

export type NumericArrayConstructor = {
  new (length: number): NumericData
  new (buffer: ArrayBuffer, byteOffset?: number, length?: number): NumericData
  readonly BYTES_PER_ELEMENT: number
}

/**
 * How elements are held and checked: `bool` (0/1), `int` (a JS number in [min, max]),
 * `bigint` (64-bit, a BigInt in [min, max]), `float` (any number, NaN and infinities
 * included), `bytes` (strings).
 */
export type ElementKind = 'bool' | 'int' | 'bigint' | 'float' | 'bytes'

/** The field of OIP's InferTensorContents that carries a datatype (FP16 has none: raw only). */
export type OipContentsField =
  | 'bool_contents'
  | 'int_contents'
  | 'int64_contents'
  | 'uint_contents'
  | 'uint64_contents'
  | 'fp32_contents'
  | 'fp64_contents'
  | 'bytes_contents'

/** The typed field of TF's TensorProto for a datatype (when tensor_content is not used). */
export type TfField = 'bool_val' | 'int_val' | 'int64_val' | 'uint32_val' | 'uint64_val' | 'half_val' | 'float_val' | 'double_val' | 'string_val'

/** The repeated field of specserve.v1.Tensor that carries a datatype. */
export type NativeField = 'bool_data' | 'int_data' | 'int64_data' | 'uint_data' | 'uint64_data' | 'fp32_data' | 'fp64_data' | 'string_data'

/** onnxruntime's element type names (onnxruntime-common's Tensor.Type). */
export type OrtType = 'bool' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int8' | 'int16' | 'int32' | 'int64' | 'float16' | 'float32' | 'float64' | 'string'

export interface DatatypeRow {
  readonly kind: ElementKind
  /** Typed array holding the elements; null for BYTES. */
  readonly array: NumericArrayConstructor | null
  /** Bytes per element on the wire (little-endian); 0 for BYTES (length-prefixed). */
  readonly width: number
  /** Inclusive value range of integer kinds (bigint for 64-bit); null for floats and BYTES. */
  readonly range: readonly [number, number] | readonly [bigint, bigint] | null
  readonly oip: OipContentsField | null
  readonly tf: string
  readonly tfField: TfField
  readonly native: NativeField
  readonly ort: OrtType
}

const row = (r: DatatypeRow): DatatypeRow => Object.freeze(r)

export const DATATYPES: Readonly<Record<DataType, DatatypeRow>> = Object.freeze({
  BOOL: row({ kind: 'bool', array: Uint8Array, width: 1, range: [0, 1], oip: 'bool_contents', tf: 'DT_BOOL', tfField: 'bool_val', native: 'bool_data', ort: 'bool' }),
  UINT8: row({ kind: 'int', array: Uint8Array, width: 1, range: [0, 255], oip: 'uint_contents', tf: 'DT_UINT8', tfField: 'int_val', native: 'int_data', ort: 'uint8' }),
  UINT16: row({ kind: 'int', array: Uint16Array, width: 2, range: [0, 65_535], oip: 'uint_contents', tf: 'DT_UINT16', tfField: 'int_val', native: 'uint_data', ort: 'uint16' }),
  UINT32: row({ kind: 'int', array: Uint32Array, width: 4, range: [0, 4_294_967_295], oip: 'uint_contents', tf: 'DT_UINT32', tfField: 'uint32_val', native: 'uint_data', ort: 'uint32' }),
  UINT64: row({ kind: 'bigint', array: BigUint64Array, width: 8, range: [0n, 2n ** 64n - 1n], oip: 'uint64_contents', tf: 'DT_UINT64', tfField: 'uint64_val', native: 'uint64_data', ort: 'uint64' }),
  INT8: row({ kind: 'int', array: Int8Array, width: 1, range: [-128, 127], oip: 'int_contents', tf: 'DT_INT8', tfField: 'int_val', native: 'int_data', ort: 'int8' }),
  INT16: row({ kind: 'int', array: Int16Array, width: 2, range: [-32_768, 32_767], oip: 'int_contents', tf: 'DT_INT16', tfField: 'int_val', native: 'int_data', ort: 'int16' }),
  INT32: row({ kind: 'int', array: Int32Array, width: 4, range: [-2_147_483_648, 2_147_483_647], oip: 'int_contents', tf: 'DT_INT32', tfField: 'int_val', native: 'int_data', ort: 'int32' }),
  INT64: row({ kind: 'bigint', array: BigInt64Array, width: 8, range: [-(2n ** 63n), 2n ** 63n - 1n], oip: 'int64_contents', tf: 'DT_INT64', tfField: 'int64_val', native: 'int64_data', ort: 'int64' }),
  FP16: row({ kind: 'float', array: Float16Array, width: 2, range: null, oip: null, tf: 'DT_HALF', tfField: 'half_val', native: 'fp32_data', ort: 'float16' }),
  FP32: row({ kind: 'float', array: Float32Array, width: 4, range: null, oip: 'fp32_contents', tf: 'DT_FLOAT', tfField: 'float_val', native: 'fp32_data', ort: 'float32' }),
  FP64: row({ kind: 'float', array: Float64Array, width: 8, range: null, oip: 'fp64_contents', tf: 'DT_DOUBLE', tfField: 'double_val', native: 'fp64_data', ort: 'float64' }),
  BYTES: row({ kind: 'bytes', array: null, width: 0, range: null, oip: 'bytes_contents', tf: 'DT_STRING', tfField: 'string_val', native: 'string_data', ort: 'string' }),
})

export const DATATYPE_NAMES: readonly DataType[] = Object.freeze(Object.keys(DATATYPES) as DataType[])

export const isDataType = (value: unknown): value is DataType => typeof value === 'string' && Object.hasOwn(DATATYPES, value)

export const isFloat = (datatype: DataType): boolean => DATATYPES[datatype].kind === 'float'
/** A float datatype as it is; FP32 for any other (what an aggregate of numbers is answered in). */
export const floatOrFP32 = (datatype: DataType): DataType => (isFloat(datatype) ? datatype : 'FP32')

/** Reverse lookups, built once from the table. */
const byTf = new Map<string, DataType>(DATATYPE_NAMES.map((d) => [DATATYPES[d].tf, d]))
const byOrt = new Map<string, DataType>(DATATYPE_NAMES.map((d) => [DATATYPES[d].ort, d]))

/** `DT_FLOAT` → `FP32`; undefined for a TF dtype specserve does not handle. */
export const fromTfDtype = (dtype: string): DataType | undefined => byTf.get(dtype)

/** `float32` → `FP32`; undefined for an onnxruntime type specserve does not handle. */
export const fromOrtType = (type: string): DataType | undefined => byOrt.get(type)

// Open Inference Protocol V2 tensors: the JSON form (`{name, shape, datatype, data}`, data
// flat or nested) and gRPC's typed InferTensorContents. Raw contents and the binary
// extension are ./raw.ts. Used by the V2 frontends (requests in, answers out) and the `oip`
// executor (requests out, answers in); the Failure says whose fault a bad tensor is.
import { DATATYPES, isDataType, type DataType, type OipContentsField } from './datatypes.ts'
import { decodeElements, jsonElements, protoElements, type JsonElement } from './elements.ts'
import { tensorFromShapeAndData } from './json.ts'
import { datatypeName, elementCount, fail, formatShape, onlyField, readShape, type Failure, type Tensor, type TensorSpec, type WireTensor } from './tensor.ts'

export interface OipJsonTensor {
  readonly name: string
  readonly datatype: DataType
  readonly shape: readonly number[]
  readonly data: JsonElement[] | boolean[]
}

/** gRPC InferTensorContents as proto-loader hands it over (64-bit integers as decimal strings). */
export type OipContents = Partial<Record<OipContentsField, readonly unknown[]>>

/** The spec's JSON tensor (flat data, row-major; BOOL as JSON booleans, as the spec has them). */
export function toOipJson(name: string, tensor: Tensor): OipJsonTensor {
  const data = tensor.datatype === 'BOOL' ? Array.from(tensor.data as Uint8Array, Boolean) : jsonElements(tensor)
  return { name, datatype: tensor.datatype, shape: tensor.shape, data }
}

/** Checks a request tensor's datatype and shape header against the declaration; returns the dimensions. */
export function readOipHeader(spec: TensorSpec, datatype: unknown, shape: unknown, failure: Failure): number[] {
  if (datatype !== spec.datatype) fail(failure, spec.name, `datatype ${datatypeName(datatype)} given, model declares ${spec.datatype}`)
  if (!Array.isArray(shape)) fail(failure, spec.name, 'shape must be an array')
  return readShape(shape, failure, spec.name)
}

/** A declared tensor from a request's JSON tensor. */
export function fromOipJson(item: { datatype?: unknown; shape?: unknown; data?: unknown }, spec: TensorSpec, failure: Failure): Tensor {
  return tensorFromShapeAndData(spec, readOipHeader(spec, item.datatype, item.shape, failure), item.data, failure)
}

/** The contents field that carries `datatype`; FP16 has none (it travels raw). */
export function contentsField(datatype: DataType): OipContentsField | null {
  return DATATYPES[datatype].oip
}

/** Typed contents for a tensor, as proto-loader encodes them (INT64 as decimal strings: exact). */
export function toContents(tensor: Tensor): OipContents {
  const field = DATATYPES[tensor.datatype].oip
  if (field === null) throw new Error(`${tensor.datatype} has no typed contents field: send it as raw contents`)
  const { data } = tensor
  return { [field]: Array.isArray(data) ? data.map((s) => Buffer.from(s, 'utf8')) : protoElements(tensor) }
}

const CONTENTS_FIELDS: readonly OipContentsField[] = ['bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents']

/** The elements of `datatype` in typed contents filling `shape` (a declared or a wire datatype). */
export function fromContents(contents: OipContents | null | undefined, datatype: DataType, shape: readonly number[], failure: Failure, name: string): Tensor['data'] {
  const field = DATATYPES[datatype].oip
  if (field === null) fail(failure, name, `${datatype} has no typed contents field: send it as raw contents`)
  const values = contents?.[field] ?? []
  onlyField(contents, field, CONTENTS_FIELDS, datatype, failure, name)
  const count = elementCount(shape)
  if (values.length !== count) fail(failure, name, `${values.length} elements do not fill shape ${formatShape(shape)} (${field})`)
  return decodeElements(values, datatype, failure, name)
}

/** An upstream's typed-contents tensor, unchecked against the declaration (see executors/remote). */
export function wireFromContents(datatype: string, shape: readonly number[], contents: OipContents | null | undefined, failure: Failure, name: string): WireTensor {
  if (!isDataType(datatype)) fail(failure, name, `datatype ${datatypeName(datatype)} is not supported`)
  return { datatype, shape, data: fromContents(contents, datatype, shape, failure, name) }
}

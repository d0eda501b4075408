// specserve.v1.Tensor (proto/specserve/v1/gateway.proto): one typed repeated field per
// element kind, the field for each datatype named by the table. On requests the datatype
// defaults to the declared one, and a shape with one dynamic dimension may be left out
// (it is inferred from the element count).
import { DATATYPES, type NativeField } from './datatypes.ts'
import { decodeElements, protoElements } from './elements.ts'
import { checkTensor, datatypeName, fail, fillDynamic, formatShape, onlyField, readShape, type Failure, type Tensor, type TensorSpec } from './tensor.ts'

/**
 * specserve.v1.Tensor as a decoder hands it over: proto-loader's objects (defaults filled,
 * 64-bit integers as decimal strings), or ./specserve-wire.ts's (typed arrays, bigints).
 */
export type NativeTensorMsg = { datatype: string; shape: readonly (string | number)[] } & Partial<Record<NativeField, ArrayLike<unknown>>>

const FIELDS: readonly NativeField[] = ['fp32_data', 'fp64_data', 'int_data', 'int64_data', 'uint_data', 'uint64_data', 'bool_data', 'string_data']

export function fromNativeTensor(wire: NativeTensorMsg, spec: TensorSpec, failure: Failure): Tensor {
  const datatype = wire.datatype || spec.datatype
  if (datatype !== spec.datatype) fail(failure, spec.name, `datatype ${datatypeName(datatype)} given, model declares ${spec.datatype}`)
  const field = DATATYPES[spec.datatype].native
  const values = wire[field] ?? []
  onlyField(wire, field, FIELDS, spec.datatype, failure, spec.name)
  // A declared scalar (shape []) is given without a shape, like any shape fillDynamic can infer;
  // without one, a tensor of any rank is a vector of its elements (its metadata show [-1]).
  const shape = wire.shape.length ? readShape(wire.shape, failure, spec.name) : spec.anyRank ? [values.length] : spec.shape.length === 0 ? [] : fillDynamic(spec.shape, values.length)
  if (!shape) return fail(failure, spec.name, `give a shape (declared ${formatShape(spec.shape)}, ${values.length} elements given)`)
  // checkTensor: the shape against the declaration, then the element count against the shape.
  return checkTensor({ datatype: spec.datatype, shape, data: decodeElements(values, spec.datatype, failure, spec.name) }, spec, failure)
}

/** A tensor as specserve.v1.Tensor (64-bit integers as decimal strings: exact). */
export function toNativeTensor(tensor: Tensor): NativeTensorMsg {
  return { datatype: tensor.datatype, shape: tensor.shape, [DATATYPES[tensor.datatype].native]: protoElements(tensor) }
}

// Reading tensor declarations out of upstream metadata answers (V2 JSON and gRPC, TF
// signatures). Anything unusable makes load() fail with a message naming the tensor.
import { isDataType } from '../../tensor.ts'
import type { TensorSpec } from '../../types.ts'

/** TF DataType names → V2 names (those specserve handles). */
export const TF_TO_V2: Readonly<Record<string, string>> = {
  DT_FLOAT: 'FP32', DT_DOUBLE: 'FP64', DT_INT32: 'INT32', DT_UINT8: 'UINT8', DT_INT16: 'INT16', DT_INT8: 'INT8',
  DT_STRING: 'BYTES', DT_INT64: 'INT64', DT_BOOL: 'BOOL', DT_HALF: 'FP16', DT_UINT16: 'UINT16', DT_UINT32: 'UINT32', DT_UINT64: 'UINT64',
}

export const V2_TO_TF: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(TF_TO_V2).map(([tf, v2]) => [v2, tf]))

/** One declared tensor from `{name, datatype, shape}`-like fields; throws a readable Error. */
export function specFrom(name: unknown, datatype: unknown, shape: unknown, where: string): TensorSpec {
  if (typeof name !== 'string' || !name) throw new Error(`${where}: a tensor has no name`)
  if (!isDataType(datatype)) throw new Error(`${where}: tensor "${name}" has datatype ${String(datatype)}, which specserve does not handle`)
  if (!Array.isArray(shape)) throw new Error(`${where}: tensor "${name}" has no shape`)
  const dims = shape.map(Number)
  if (!dims.every((d) => Number.isInteger(d) && d >= -1)) throw new Error(`${where}: tensor "${name}" has an invalid shape`)
  return { name, datatype, shape: dims }
}

/** V2 metadata (REST JSON or gRPC ModelMetadataResponse, same field names). */
export function v2Specs(list: unknown, where: string): TensorSpec[] {
  if (list === undefined || list === null) return []
  if (!Array.isArray(list)) throw new Error(`${where}: not a list`)
  return list.map((t: { name?: unknown; datatype?: unknown; shape?: unknown }) => specFrom(t?.name, t?.datatype, t?.shape, where))
}

interface TfTensorInfo {
  dtype?: unknown
  tensor_shape?: { dim?: { size?: unknown }[]; unknown_rank?: unknown }
}

/** A TF SignatureDef's inputs or outputs (REST JSON or gRPC, same field names). */
export function tfSpecs(map: Record<string, TfTensorInfo> | undefined, where: string): TensorSpec[] {
  if (!map) return []
  return Object.entries(map).map(([name, info]) => {
    if (info.tensor_shape?.unknown_rank === true) throw new Error(`${where}: tensor "${name}" has unknown rank; declare it in YAML`)
    const dims = (info.tensor_shape?.dim ?? []).map((d) => Number(d.size ?? -1))
    return specFrom(name, TF_TO_V2[String(info.dtype)], dims, where)
  })
}

// Reading tensor declarations out of upstream metadata answers (V2 JSON and gRPC, TF
// signatures). Anything unusable makes load() fail with a message naming the tensor.
import { fromTfDtype, isDataType, MAX_RANK, type TensorSpec } from '../../tensor/index.ts'

/** One declared tensor from `{name, datatype, shape}`-like fields; throws a readable Error. */
export function specFrom(name: unknown, datatype: unknown, shape: unknown, where: string): TensorSpec {
  if (typeof name !== 'string' || !name) throw new Error(`${where}: a tensor has no name`)
  if (!isDataType(datatype)) throw new Error(`${where}: tensor "${name}" has datatype ${String(datatype)}, which specserve does not handle`)
  if (!Array.isArray(shape)) throw new Error(`${where}: tensor "${name}" has no shape`)
  const dims = shape.map(Number)
  if (dims.length > MAX_RANK || !dims.every((d) => Number.isInteger(d) && d >= -1)) throw new Error(`${where}: tensor "${name}" has an invalid shape`)
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
    return specFrom(name, fromTfDtype(String(info.dtype)) ?? info.dtype, dims, where)
  })
}

// Upstream answers → the model's declared outputs. Whatever the wire format, an adapter
// hands over wire tensors (src/tensor decodes them: elements, a shape, and a datatype
// when the protocol carries one); this module fits them to the declaration. Anything that
// does not fit (a missing tensor, a wrong shape or batch, non-numbers, fractions or
// out-of-range values for the declared type) is UPSTREAM_BAD_RESPONSE: never a crash, never
// a silently wrong answer.
import { decodeElements, describe, elementCount, fail, fillDynamic, fitsShape, flattenNested, formatShape, type Tensor, type TensorMap, type TensorSpec, type WireTensor } from '../../tensor/index.ts'
import { ANSWERED_VERSION } from '../types.ts'
import { upstreamFailure } from './errors.ts'

/** An answer's tensors by upstream name, and the version it names (ANSWERED_VERSION), if any. */
export type WireOutputs = ReadonlyMap<string, WireTensor> & { readonly [ANSWERED_VERSION]?: string }

/** `wire` with the version the answer names (a non-empty string or a number), if it names one. */
export function withAnsweredVersion(wire: WireOutputs, version: unknown): WireOutputs {
  if ((typeof version === 'string' && version !== '') || typeof version === 'number') (wire as { [ANSWERED_VERSION]?: string })[ANSWERED_VERSION] = String(version)
  return wire
}

/** A declared tensor and its name on the upstream. */
export interface Binding {
  readonly spec: TensorSpec
  readonly upstream: string
}

/** Maps every declared output; `batch` (when known) is the row count the answer must have. */
export function fitOutputs(wire: WireOutputs, outputs: readonly Binding[], batch: number | undefined): TensorMap {
  const out: Record<string, Tensor> = {}
  for (const { spec, upstream } of outputs) {
    const tensor = wire.get(upstream)
    if (!tensor) throw upstreamFailure.error(`no output "${upstream}" in the answer (got ${[...wire.keys()].join(', ') || 'none'})`)
    out[spec.name] = fitToSpec(tensor, spec, upstream, batch)
  }
  return out
}

function fitToSpec(wire: WireTensor, spec: TensorSpec, upstream: string, batch: number | undefined): Tensor {
  let shape: readonly number[]
  let flat: ArrayLike<unknown>
  if (wire.shape) {
    shape = wire.shape
    flat = Array.isArray(wire.data) && wire.data.some(Array.isArray) ? flattenNested(wire.data, upstreamFailure, upstream).flat : wire.data
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(upstreamFailure, upstream, `invalid shape ${formatShape(shape)}`)
    if (flat.length !== elementCount(shape)) fail(upstreamFailure, upstream, `${flat.length} elements do not fill shape ${formatShape(shape)}`)
  } else {
    ;({ shape, flat } = flattenNested(wire.data, upstreamFailure, upstream))
  }
  if (!fitsShape(shape, spec.shape)) {
    const reshaped = withoutUnitDims(shape, spec.shape, flat.length)
    if (!reshaped) fail(upstreamFailure, upstream, `shape ${formatShape(shape)} does not match declared ${formatShape(spec.shape)}`)
    shape = reshaped
  }
  if (batch !== undefined && spec.shape[0] === -1 && shape[0] !== batch) fail(upstreamFailure, upstream, `${shape[0]} rows for a batch of ${batch}`)
  // Numbers may change width (FP64 → FP32, INT32 → INT64); numbers and strings never mix.
  if (wire.datatype !== undefined && wire.datatype !== spec.datatype && (wire.datatype === 'BYTES') !== (spec.datatype === 'BYTES')) {
    fail(upstreamFailure, upstream, `datatype ${wire.datatype}, declared ${spec.datatype}`)
  }
  const data = decodeElements(flat, spec.datatype, upstreamFailure, upstream)
  if ((spec.datatype === 'FP32' || spec.datatype === 'FP16') && data !== flat) refuseOverflow(flat, data as Float32Array, spec.datatype, upstream)
  return { datatype: spec.datatype, shape: [...shape], data }
}

/**
 * A finite answer that became ±Infinity when narrowed to the declared width (FP64 1e300 in
 * an FP32) is out of the declared range, as an INT8 300 is: refused, not passed on as a
 * different number. NaN and the infinities the upstream sent itself pass as they are.
 */
function refuseOverflow(wire: ArrayLike<unknown>, narrowed: Float32Array, datatype: string, upstream: string): void {
  for (let i = 0; i < narrowed.length; i++) {
    const x = narrowed[i]!
    if (Number.isFinite(x)) continue
    const v = wire[i]
    if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'bigint') fail(upstreamFailure, upstream, `element ${i} is ${describe(v)}, outside ${datatype}'s range`)
  }
}

/**
 * Servers differ on size-1 dimensions (MLServer answers a label vector as [N, 1]); such an
 * answer fits a declaration that differs only by them. Returns the declared shape filled in,
 * or null when the dimensions really differ.
 */
function withoutUnitDims(shape: readonly number[], declared: readonly number[], count: number): number[] | null {
  const target = fillDynamic(declared, count)
  if (!target) return null
  const a = shape.filter((d) => d !== 1)
  const b = target.filter((d) => d !== 1)
  return a.length === b.length && a.every((d, i) => d === b[i]) ? target : null
}

/** Row count of the request (first input's first dimension) when the batch is dynamic. */
export function batchOf(inputs: TensorMap, declared: readonly TensorSpec[]): number | undefined {
  const first = declared[0]
  if (!first || first.shape[0] !== -1) return undefined
  return inputs[first.name]?.shape[0]
}

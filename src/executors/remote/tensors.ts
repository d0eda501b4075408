// Upstream answers → the model's declared outputs. Whatever the wire format, an adapter
// hands over raw tensors (a flat or nested element list, a shape and a datatype when the
// protocol carries them); this module checks and converts them. Anything that does not
// fit the declaration (missing tensor, wrong shape or batch, non-numbers, fractions for an
// integer type) is UPSTREAM_BAD_RESPONSE: never a crash, never a silently wrong answer.
import { elementCount } from '../../tensor.ts'
import type { DataType, Tensor, TensorData, TensorMap, TensorSpec } from '../../types.ts'
import { badResponse } from './errors.ts'

export interface RawTensor {
  /** V2 datatype name when the protocol says it (after translating e.g. DT_FLOAT → FP32). */
  readonly datatype?: string | undefined
  /** Absent: inferred from the nesting of `data`. */
  readonly shape?: readonly number[] | undefined
  /** Flat row-major elements, or a nested array when `shape` is absent. */
  readonly data: ArrayLike<unknown>
}

export type RawOutputs = ReadonlyMap<string, RawTensor>

/** A declared tensor and its name on the upstream. */
export interface Binding {
  readonly spec: TensorSpec
  readonly upstream: string
}

/** Flattens a nested JSON array; throws UPSTREAM_BAD_RESPONSE when it is ragged or not an array. */
export function flattenJson(value: unknown, what: string): { shape: number[]; flat: unknown[] } {
  const shape: number[] = []
  let probe = value
  while (Array.isArray(probe)) {
    shape.push(probe.length)
    probe = probe[0]
  }
  const flat: unknown[] = []
  const walk = (node: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(node)) throw badResponse(`${what}: ragged array`)
      flat.push(node)
      return
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) throw badResponse(`${what}: ragged array`)
    for (const child of node) walk(child, depth + 1)
  }
  walk(value, 0)
  return { shape, flat }
}

const FLOAT = new Set<string>(['FP16', 'FP32', 'FP64'])
const INTEGER_RANGE: Partial<Record<DataType, readonly [number, number]>> = {
  UINT8: [0, 255],
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  INT64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  BOOL: [0, 1],
}

/** Maps every declared output; `batch` (when known) is the row count the answer must have. */
export function toDeclared(raw: RawOutputs, outputs: readonly Binding[], batch: number | undefined): TensorMap {
  const out: Record<string, Tensor> = {}
  for (const { spec, upstream } of outputs) {
    const tensor = raw.get(upstream)
    if (!tensor) throw badResponse(`no output "${upstream}" in the answer (got ${[...raw.keys()].join(', ') || 'none'})`)
    out[spec.name] = convert(tensor, spec, upstream, batch)
  }
  return out
}

function convert(raw: RawTensor, spec: TensorSpec, upstream: string, batch: number | undefined): Tensor {
  const what = `output "${upstream}"`
  let shape: readonly number[]
  let flat: ArrayLike<unknown>
  if (raw.shape) {
    shape = raw.shape
    flat = Array.isArray(raw.data) && raw.data.some(Array.isArray) ? flattenJson(raw.data, what).flat : raw.data
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw badResponse(`${what}: invalid shape [${shape.join(', ')}]`)
    if (flat.length !== elementCount(shape)) throw badResponse(`${what}: ${flat.length} elements do not fill shape [${shape.join(', ')}]`)
  } else {
    ;({ shape, flat } = flattenJson(raw.data, what))
  }
  const fits = shape.length === spec.shape.length && spec.shape.every((d, i) => d < 0 || d === shape[i])
  if (!fits) {
    const reshaped = withoutUnitDims(shape, spec.shape, flat.length)
    if (!reshaped) throw badResponse(`${what}: shape [${shape.join(', ')}] does not match declared [${spec.shape.join(', ')}]`)
    shape = reshaped
  }
  if (batch !== undefined && spec.shape[0] === -1 && shape[0] !== batch) {
    throw badResponse(`${what}: ${shape[0]} rows for a batch of ${batch}`)
  }
  if (raw.datatype !== undefined && raw.datatype !== spec.datatype) {
    // Numbers may change width (FP64 → FP32, INT32 → INT64); numbers and strings never mix.
    if ((raw.datatype === 'BYTES') !== (spec.datatype === 'BYTES')) {
      throw badResponse(`${what}: datatype ${raw.datatype}, declared ${spec.datatype}`)
    }
  }
  return { datatype: spec.datatype, shape: [...shape], data: typed(flat, spec.datatype, what) }
}

/**
 * Servers differ on size-1 dimensions (MLServer answers a label vector as [N, 1]); such an
 * answer fits a declaration that differs only by them. Returns the declared shape filled in,
 * or null when the dimensions really differ.
 */
function withoutUnitDims(shape: readonly number[], declared: readonly number[], count: number): number[] | null {
  const dynamic = declared.filter((d) => d < 0).length
  const fixed = declared.reduce((n, d) => (d < 0 ? n : n * d), 1)
  if (dynamic > 1 || fixed === 0 || count % fixed !== 0 || (dynamic === 0 && count !== fixed)) return null
  const target = declared.map((d) => (d < 0 ? count / fixed : d))
  const a = shape.filter((d) => d !== 1)
  const b = target.filter((d) => d !== 1)
  return a.length === b.length && a.every((d, i) => d === b[i]) ? target : null
}

function typed(flat: ArrayLike<unknown>, datatype: DataType, what: string): TensorData {
  const n = flat.length
  if (datatype === 'BYTES') {
    const out = new Array<string>(n)
    for (let i = 0; i < n; i++) {
      const v = flat[i]
      if (typeof v === 'string') out[i] = v
      else if (v instanceof Uint8Array) out[i] = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8')
      else throw badResponse(`${what}: element ${i} is ${describe(v)}, not a string`)
    }
    return out
  }
  // A typed array of the right kind passes through as is (gRPC packed contents).
  if (flat instanceof Float32Array && datatype === 'FP32') return flat
  if (flat instanceof Float64Array && datatype === 'FP64') return flat
  const float = FLOAT.has(datatype)
  const range = INTEGER_RANGE[datatype]
  const out = datatypeArray(datatype, n)
  for (let i = 0; i < n; i++) {
    const raw = flat[i]
    const v = typeof raw === 'boolean' ? Number(raw) : typeof raw === 'bigint' ? Number(raw) : typeof raw === 'string' && float ? jsonSpecial(raw) : raw
    if (typeof v !== 'number') throw badResponse(`${what}: element ${i} is ${describe(raw)}, not a number`)
    if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) {
      throw badResponse(`${what}: element ${i} is ${v}, not a ${datatype}`)
    }
    if (out instanceof BigInt64Array) out[i] = BigInt(v)
    else out[i] = v
  }
  return out
}

function datatypeArray(datatype: DataType, n: number): Exclude<TensorData, string[]> {
  switch (datatype) {
    case 'FP32':
      return new Float32Array(n)
    case 'FP64':
      return new Float64Array(n)
    case 'INT64':
      return new BigInt64Array(n)
    case 'INT32':
      return new Int32Array(n)
    case 'INT16':
      return new Int16Array(n)
    case 'INT8':
      return new Int8Array(n)
    default:
      return new Uint8Array(n) // UINT8, BOOL
  }
}

/** JSON cannot carry NaN/Infinity; servers that send them as strings mean the float. */
function jsonSpecial(s: string): unknown {
  if (s === 'NaN') return NaN
  if (s === 'Infinity' || s === 'inf') return Infinity
  if (s === '-Infinity' || s === '-inf') return -Infinity
  return s
}

function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v)
  return s.length > 40 ? `${s.slice(0, 40)}…` : s
}

/** Row count of the request (first input's first dimension) when the batch is dynamic. */
export function batchOf(inputs: TensorMap, declared: readonly TensorSpec[]): number | undefined {
  const first = declared[0]
  if (!first || first.shape[0] !== -1) return undefined
  return inputs[first.name]?.shape[0]
}

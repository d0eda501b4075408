// JSON tensors: nested arrays (the native API's inputs and outputs, TF Serving's REST
// bodies, Seldon's ndarray) and the native `{shape, datatype, data}` form. Nesting is
// walked with an explicit stack, never recursion, and is refused past MAX_RANK, so no
// body can overflow the call stack.
import { DATATYPES, type TensorData } from './datatypes.ts'
import { decodeElements, jsonElement, jsonElements } from './elements.ts'
import { datatypeName, elementCount, fail, fitsShape, formatShape, MAX_RANK, readShape, type Failure, type Tensor, type TensorMap, type TensorSpec } from './tensor.ts'

/**
 * A nested JSON array's shape and its elements, row-major; throws when it is ragged or
 * deeper than MAX_RANK. A value that is not an array is a scalar: shape [] and itself.
 */
export function flattenNested(value: unknown, failure: Failure, name: string): { shape: number[]; flat: unknown[] } {
  const shape: number[] = []
  let probe = value
  while (Array.isArray(probe)) {
    if (shape.length === MAX_RANK) fail(failure, name, `arrays nested more than ${MAX_RANK} deep`)
    shape.push(probe.length)
    probe = probe[0]
  }
  const rank = shape.length
  if (rank === 0) return { shape, flat: [value] }
  const flat: unknown[] = []
  const nodes = new Array<unknown[]>(rank)
  const next = new Array<number>(rank).fill(0)
  nodes[0] = value as unknown[]
  const last = rank - 1
  for (let depth = 0; depth >= 0; ) {
    const node = nodes[depth] as unknown[]
    if (depth === last) {
      for (let i = 0; i < node.length; i++) {
        const v = node[i]
        if (Array.isArray(v)) fail(failure, name, `ragged array (an array at depth ${rank}, numbers expected)`)
        flat.push(v)
      }
      depth--
      continue
    }
    const i = next[depth] as number
    if (i === node.length) {
      depth--
      continue
    }
    next[depth] = i + 1
    const child = node[i]
    if (!Array.isArray(child) || child.length !== shape[depth + 1]) {
      fail(failure, name, `ragged array (expected ${shape[depth + 1]} elements at depth ${depth + 1})`)
    }
    nodes[++depth] = child
    next[depth] = 0
  }
  return { shape, flat }
}

/**
 * The tensor as JSON text: nested arrays in its shape (a scalar for shape []), elements
 * JSON-safe. Written straight to a string, for responses built without a generic serializer.
 * `tfLiterals`: the literals TensorFlow Serving's JSON reader takes, where the JSON-safe forms
 * would be refused: NaN and ±Infinity bare (it refuses the strings), 64-bit integers as bare
 * integers at any size (it refuses a string for DT_INT64/DT_UINT64, and reads integer literals
 * exactly), BOOL as true/false (DT_BOOL takes only JSON booleans, not 0/1).
 */
export function nestedJson(tensor: Tensor, tfLiterals = false): string {
  const { shape, data } = tensor
  const rank = shape.length
  const elementText = !tfLiterals ? jsonElementText : tensor.datatype === 'BOOL' ? boolText : bareElementText
  if (rank === 0) return elementText(data[0] as number | bigint | string)
  const n = data.length
  if (n === 0) return emptyJson(shape)
  let out = ''
  for (let i = 0; i < n; i++) {
    // A bracket opens for each dimension whose block starts at element i, and closes after the one it ends at.
    let block = 1
    for (let d = rank - 1; d >= 0; d--) {
      block *= shape[d] as number
      if (i % block !== 0) break
      out += '['
    }
    out += elementText(data[i] as number | bigint | string)
    block = 1
    for (let d = rank - 1; d >= 0; d--) {
      block *= shape[d] as number
      if ((i + 1) % block !== 0) break
      out += ']'
    }
    if (i + 1 < n) out += ','
  }
  return out
}

/** Named tensors as a JSON object of nested arrays, in their order: nestedJson of each. */
export function nestedMapJson(tensors: TensorMap): string {
  let out = ''
  for (const name in tensors) out += `${out ? ',' : ''}${JSON.stringify(name)}:${nestedJson(tensors[name] as Tensor)}`
  return `{${out}}`
}

/** The same as objects: toNested of each. */
export function nestedMap(tensors: TensorMap): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const name in tensors) out[name] = toNested(tensors[name] as Tensor)
  return out
}

/** JSON text of an empty tensor: nested empty arrays down to the first zero dimension. */
function emptyJson(shape: readonly number[]): string {
  const build = (d: number): string => (d === shape.length || shape[d] === 0 ? '[]' : `[${new Array<string>(shape[d] as number).fill(build(d + 1)).join(',')}]`)
  return shape[0] === 0 ? '[]' : build(0)
}

function jsonElementText(v: number | bigint | string): string {
  if (typeof v === 'string') return JSON.stringify(v)
  const e = jsonElement(v)
  return typeof e === 'number' ? `${e}` : `"${e}"`
}

/** A number or bigint as its bare literal (NaN, ±Infinity, a 64-bit integer in all its digits), a string as JSON. */
function bareElementText(v: number | bigint | string): string {
  return typeof v === 'string' ? JSON.stringify(v) : `${v}`
}

const boolText = (v: number | bigint | string): string => (v ? 'true' : 'false')

/** The tensor as a nested JSON array in its shape (a scalar for shape []), elements JSON-safe. */
export function toNested(tensor: Tensor): unknown {
  const flat: unknown[] = jsonElements(tensor)
  const { shape } = tensor
  if (shape.length === 0) return flat[0]
  let level = flat
  for (let d = shape.length - 1; d >= 1; d--) {
    const size = shape[d] as number
    const groups = elementCount(shape.slice(0, d))
    const up = new Array<unknown>(groups)
    for (let g = 0; g < groups; g++) up[g] = level.slice(g * size, (g + 1) * size)
    level = up
  }
  return level
}

/** A declared tensor from the native API's JSON: a nested array, or `{shape, datatype?, data}` (data flat or nested). */
export function tensorFromJson(value: unknown, spec: TensorSpec, failure: Failure): Tensor {
  if (Array.isArray(value)) {
    const fast = floatsFromNested(value, spec)
    if (fast) return fast
    const { shape, flat } = flattenNested(value, failure, spec.name)
    return declared(spec, shape, flat, failure)
  }
  if (value !== null && typeof value === 'object') {
    const { shape, datatype, data } = value as { shape?: unknown; datatype?: unknown; data?: unknown }
    if (!Array.isArray(shape)) fail(failure, spec.name, 'shape must be an array of non-negative integers')
    if (datatype !== undefined && datatype !== spec.datatype) fail(failure, spec.name, `datatype ${datatypeName(datatype)} given, model declares ${spec.datatype}`)
    return tensorFromShapeAndData(spec, readShape(shape, failure, spec.name), data, failure)
  }
  return fail(failure, spec.name, 'expected a nested array or {shape, datatype, data}')
}

/** `data` (flat or nested, as OIP JSON allows) filling `shape` of the spec's datatype. */
export function tensorFromShapeAndData(spec: TensorSpec, shape: number[], data: unknown, failure: Failure): Tensor {
  if (!Array.isArray(data)) fail(failure, spec.name, 'data must be an array')
  const flat = data.some(Array.isArray) ? flattenNested(data, failure, spec.name).flat : data
  if (flat.length !== elementCount(shape)) fail(failure, spec.name, `${flat.length} elements do not fill shape ${formatShape(shape)}`)
  return declared(spec, shape, flat, failure)
}

/** Most elements a fast decode preallocates for; more (or anything unusual) takes the general path. */
const FAST_MAX_ELEMENTS = 1 << 20

/**
 * The common case in one pass, no intermediate array: a float input as rows of plain
 * numbers, shaped as declared. Anything else (strings such as "NaN", a ragged or deeper
 * array, another shape) returns undefined, and the general path decides, with its messages.
 */
function floatsFromNested(value: unknown[], spec: TensorSpec): Tensor | undefined {
  const row = DATATYPES[spec.datatype]
  // Rank 1 and 2 only: a scalar spec (shape []) would otherwise take the rank-2 branch and
  // accept any rows, where the general path refuses a nested array for it (and takes any
  // nesting for a spec of any rank, whose shape is [] too).
  if (row.kind !== 'float' || spec.shape.length === 0 || spec.shape.length > 2) return undefined
  if (spec.shape.length === 1) {
    const n = value.length
    if (n > FAST_MAX_ELEMENTS || (spec.shape[0]! >= 0 && spec.shape[0] !== n)) return undefined
    const out = new row.array!(n) as Float32Array
    for (let i = 0; i < n; i++) {
      const v = value[i]
      if (typeof v !== 'number') return undefined
      out[i] = v
    }
    return { datatype: spec.datatype, shape: [n], data: out }
  }
  const rows = value.length
  const first = value[0]
  if (!Array.isArray(first)) return undefined
  const width = first.length
  const [r, w] = spec.shape as [number, number]
  if (rows * width > FAST_MAX_ELEMENTS || (r >= 0 && r !== rows) || (w >= 0 && w !== width)) return undefined
  const out = new row.array!(rows * width) as Float32Array
  for (let i = 0, k = 0; i < rows; i++) {
    const line = value[i]
    if (!Array.isArray(line) || line.length !== width) return undefined
    for (let j = 0; j < width; j++, k++) {
      const v = line[j]
      if (typeof v !== 'number') return undefined
      out[k] = v
    }
  }
  return { datatype: spec.datatype, shape: [rows, width], data: out }
}

/** `flat` fills `shape` already (the nesting, or the count check, made them agree). */
function declared(spec: TensorSpec, shape: number[], flat: ArrayLike<unknown>, failure: Failure): Tensor {
  if (!fitsShape(shape, spec.shape) && !spec.anyRank) fail(failure, spec.name, `shape ${formatShape(shape)} does not match declared ${formatShape(spec.shape)}`)
  const data: TensorData = decodeElements(flat, spec.datatype, failure, spec.name)
  return { datatype: spec.datatype, shape, data }
}

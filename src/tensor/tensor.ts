// The tensor every layer speaks, its declared form (a spec), and the checks and messages
// shared by every codec. A codec never decides which error it raises: it is handed a
// Failure, so the same code refuses a request (BAD_INPUT) and an upstream's answer
// (UPSTREAM_BAD_RESPONSE).
import type { DataType, TensorData } from './datatypes.ts'

export interface Tensor {
  readonly datatype: DataType
  readonly shape: readonly number[]
  readonly data: TensorData
}

export type TensorMap = Readonly<Record<string, Tensor>>

/** A declared input or output. `-1` in a shape is a dynamic dimension (e.g. the batch). */
export interface TensorSpec {
  readonly name: string
  readonly datatype: DataType
  readonly shape: readonly number[]
  /**
   * Set on a tensor its model declares without any shape (an ONNX graph's tensor of unknown
   * rank; `shape` is then []): a tensor of any shape fits it. Only such a spec has the field.
   */
  readonly anyRank?: true
}

/** A spec's declared shape in a message: `[-1, 30]`, or `any shape`. */
export const declaredShape = (spec: TensorSpec): string => (spec.anyRank ? 'any shape' : formatShape(spec.shape))

/** A spec in a one-line list of specs: `input:FP32[-1,30]`, or `x:FP32(any shape)`. */
export const specText = (spec: TensorSpec): string => `${spec.name}:${spec.datatype}${spec.anyRank ? '(any shape)' : `[${spec.shape.join(',')}]`}`

/** Specs as error messages list them: `name:DATATYPE[dims]` each, by spaces. */
export const specsText = (specs: readonly TensorSpec[]): string => specs.map(specText).join(' ')

/** Whether two specs declare the same rank (any rank is a rank of its own: it only matches itself). */
export const sameRank = (a: TensorSpec, b: TensorSpec): boolean => a.anyRank === b.anyRank && a.shape.length === b.shape.length

/**
 * A spec as the model metadata show it (the native API's and the Open Inference Protocol's):
 * any rank as [-1], the nearest an OIP shape (a list of sizes, -1 a dynamic one) comes to
 * saying it; a tensor of any shape is accepted for it.
 */
export const shownSpec = (spec: TensorSpec): TensorSpec => ({ name: spec.name, datatype: spec.datatype, shape: spec.anyRank ? [-1] : [...spec.shape] })

/** Who is at fault when a tensor does not decode, and what to throw. */
export interface Failure {
  /** How messages name the tensor: `input` (a request's) or `output` (an upstream's answer). */
  readonly role: string
  error(message: string): Error
  /** Reading an upstream's answer: float elements may also be the words other servers write for infinities (elements.ts). */
  readonly upstream?: boolean
}

/** Most dimensions a tensor may have (numpy's limit): deeper nesting is refused, not recursed into. */
export const MAX_RANK = 64

/**
 * Most cells an empty tensor may have before its first 0 dimension: [1, 1e9, 0] holds no
 * elements, so no element count bounds it, but its JSON form is a billion `[]`, built in
 * memory (a few bytes from an upstream would take the process down).
 */
export const MAX_EMPTY_CELLS = 1 << 20

/** Throws `failure`'s error as `<role> "<name>": <message>`. */
export function fail(failure: Failure, name: string, message: string): never {
  throw failure.error(`${failure.role} ${quote(name)}: ${message}`)
}

/** A client's string in a message: quoted, and cut short so no error echoes unbounded input. */
export function quote(text: string, max = 64): string {
  return escapeControls(JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text))
}

/** DEL and the C1 controls, which JSON.stringify leaves as they are (it escapes only U+0000–U+001F): escaped, so no message carries them raw into a log line or a terminal. */
const RAW_CONTROLS = /[\u007f-\u009f]/g
const escapeControl = (c: string): string => `\\u00${c.charCodeAt(0).toString(16)}`
const escapeControls = (json: string): string => json.replace(RAW_CONTROLS, escapeControl)

/**
 * Refuses elements in a field other than `field`, the one the wire message keeps for
 * `datatype` (specserve.v1.Tensor's `*_data`, V2's `*_contents`): they are refused, not ignored.
 */
export function onlyField<F extends string>(message: Partial<Record<F, ArrayLike<unknown> | null | undefined>> | null | undefined, field: F, fields: readonly F[], datatype: string, failure: Failure, name: string): void {
  for (const other of fields) {
    if (other !== field && (message?.[other]?.length ?? 0) > 0) fail(failure, name, `${other} given for a ${datatype} tensor (its elements go in ${field})`)
  }
}

/** A value in a message, at most `max` characters of its JSON. */
export function describe(value: unknown, max = 40): string {
  let s: string
  try {
    // Numbers as written (JSON.stringify would say null for NaN and ±Infinity).
    s = typeof value === 'bigint' || typeof value === 'number' ? `${value}` : (JSON.stringify(value) ?? String(value))
  } catch {
    // JSON.stringify overflowed the stack (an array nested 10,000 deep) or met a cycle:
    // String() would recurse the same way, so say only what kind of value it is.
    s = Array.isArray(value) ? '[…]' : value !== null && typeof value === 'object' ? '{…}' : String(value)
  }
  s = escapeControls(s)
  return s.length > max ? `${s.slice(0, max)}…` : s
}

/** A shape in a message: `[1, 30]`, or its first dimensions and its rank when it is long. */
export function formatShape(shape: readonly unknown[], max = 8): string {
  if (shape.length <= max) return `[${shape.map((d) => describe(d, 24)).join(', ')}]`
  return `[${shape.slice(0, max).map((d) => describe(d, 24)).join(', ')}, … ${shape.length} dimensions]`
}

export function elementCount(shape: readonly number[]): number {
  let n = 1
  for (let i = 0; i < shape.length; i++) n *= shape[i] as number
  return n
}

/** A dimension as a string (proto3 JSON writes int64 so): decimal digits only, not `0x1e`, `1e1`, ` 30 ` or ``. */
const DECIMAL_DIMENSION = /^\d{1,16}$/

/** A wire shape as dimensions: non-negative safe integers (numbers or decimal strings), at most MAX_RANK. */
export function readShape(shape: readonly unknown[], failure: Failure, name: string): number[] {
  if (shape.length > MAX_RANK) fail(failure, name, `shape has ${shape.length} dimensions, more than ${MAX_RANK}`)
  const dims = new Array<number>(shape.length)
  let empty = false
  for (let i = 0; i < shape.length; i++) {
    const v = shape[i]
    // The type first: Number() of an array is its String(), which recurses through any nesting.
    const d = typeof v === 'number' || typeof v === 'bigint' ? Number(v) : typeof v === 'string' && DECIMAL_DIMENSION.test(v) ? Number(v) : Number.NaN
    if (!Number.isSafeInteger(d) || d < 0) fail(failure, name, `shape must be non-negative integers, got ${formatShape(shape)}`)
    dims[i] = d
    if (d === 0) empty = true
  }
  if (empty && tooManyEmptyCells(dims)) fail(failure, name, `shape ${formatShape(shape)} holds no elements in more than ${MAX_EMPTY_CELLS} cells`)
  return dims
}

/** Whether a tensor with no elements has more than MAX_EMPTY_CELLS cells before its first 0: its nested JSON holds one `[]` per cell. */
export function tooManyEmptyCells(dims: readonly number[]): boolean {
  let cells = 1
  for (let i = 0; i < dims.length && dims[i] !== 0; i++) cells *= dims[i] as number
  return cells > MAX_EMPTY_CELLS
}

/** Does `shape` fit `declared` (same rank, equal where declared is not -1)? */
export function fitsShape(shape: readonly number[], declared: readonly number[]): boolean {
  if (shape.length !== declared.length) return false
  for (let i = 0; i < declared.length; i++) {
    const d = declared[i] as number
    if (d >= 0 && d !== shape[i]) return false
  }
  return true
}

/**
 * The declared shape with its dynamic dimension (at most one) sized so the shape holds
 * `count` elements; null when no such shape exists.
 */
export function fillDynamic(declared: readonly number[], count: number): number[] | null {
  let dynamic = 0
  let fixed = 1
  for (const d of declared) {
    if (d < 0) dynamic++
    else fixed *= d
  }
  if (dynamic > 1 || (dynamic === 1 && (fixed === 0 || count % fixed !== 0)) || (dynamic === 0 && count !== fixed)) return null
  return declared.map((d) => (d < 0 ? count / fixed : d))
}

/** Throws unless the tensor has the spec's datatype and a shape it fits, filled by its data. */
export function checkTensor(tensor: Tensor, spec: TensorSpec, failure: Failure): Tensor {
  if (tensor.datatype !== spec.datatype) fail(failure, spec.name, `datatype ${tensor.datatype} given, model declares ${spec.datatype}`)
  // Any rank is read only once the shape does not fit: the usual spec pays nothing for it.
  if (!fitsShape(tensor.shape, spec.shape) && !spec.anyRank) fail(failure, spec.name, `shape ${formatShape(tensor.shape)} does not match declared ${formatShape(spec.shape)}`)
  const count = elementCount(tensor.shape)
  if (tensor.data.length !== count) fail(failure, spec.name, `${tensor.data.length} elements do not fill shape ${formatShape(tensor.shape)}`)
  return tensor
}

/** Element `i` of a tensor as a number (64-bit integers beyond 2^53 lose precision). */
export function numberAt(tensor: Tensor, i: number): number {
  return Number(tensor.data[i])
}

/**
 * A tensor as a wire form carried it, before it is checked against a declaration: the
 * datatype when the wire names one, the shape when it has one (else `data` is nested).
 */
export interface WireTensor {
  readonly datatype?: string | undefined
  readonly shape?: readonly number[] | undefined
  readonly data: ArrayLike<unknown>
}

/** A datatype as a client or upstream gave it, for a message: as is when it looks like one, else quoted and short; `(none)` when absent. */
export function datatypeName(datatype: unknown): string {
  if (typeof datatype !== 'string' || datatype === '') return '(none)'
  return /^[A-Z0-9_]{1,16}$/.test(datatype) ? datatype : quote(datatype, 16)
}

/**
 * Throws for a tensor name no request or answer can carry: tensors are keyed by name in JSON
 * objects (and the maps built from them), where "__proto__" is refused (every JSON reader)
 * or sets the object's prototype instead of a key. A model of any kind that serves one is
 * refused at load, naming it (`role`: input or output).
 */
export function refuseUnservable(name: string, role: 'input' | 'output'): void {
  if (name === '__proto__') {
    throw new Error(`${role} "${name}": a tensor of that name cannot be served (tensors are keyed by name in JSON objects, where "__proto__" is refused or sets the object's prototype): rename it`)
  }
}

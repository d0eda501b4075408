// fast-check generators for tensors of every datatype in the table, the range edges and
// the special values (NaN, ±Infinity, -0, 64-bit integers beyond 2^53) always in play.
import fc from 'fast-check'
import { DATATYPES, DATATYPE_NAMES, type DataType, type Tensor, type TensorSpec } from '../../src/tensor/index.ts'

const float16 = fc.integer({ min: 0, max: 0xffff }).map((bits) => new Float16Array(Uint16Array.of(bits).buffer)[0]!)
const floats: Readonly<Record<string, fc.Arbitrary<number>>> = {
  FP16: fc.oneof(float16, fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 65504)),
  FP32: fc.oneof(fc.float(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 3.4028234663852886e38)),
  FP64: fc.oneof(fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, Number.MAX_VALUE, Number.MIN_VALUE)),
}

/** Values of one datatype; `safe` keeps 64-bit integers within ±(2^53 - 1) (for wire forms that carry doubles). */
export function element(datatype: DataType, safe = false): fc.Arbitrary<unknown> {
  const row = DATATYPES[datatype]
  switch (row.kind) {
    case 'bytes':
      return fc.string({ unit: 'binary', maxLength: 8 })
    case 'float':
      return floats[datatype]!
    case 'bigint': {
      let [min, max] = row.range as [bigint, bigint]
      if (safe) [min, max] = [min < -(2n ** 53n) + 1n ? -(2n ** 53n) + 1n : min, max > 2n ** 53n - 1n ? 2n ** 53n - 1n : max]
      const edges = [min, max, 0n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n].filter((v) => v >= min && v <= max)
      return fc.oneof(fc.bigInt({ min, max }), fc.constantFrom(...edges))
    }
    default: {
      const [min, max] = row.range as [number, number]
      return fc.oneof(fc.integer({ min, max }), fc.constantFrom(min, max, 0))
    }
  }
}

export interface Case {
  readonly tensor: Tensor
  /** A declaration it fits: its rank, every dimension dynamic. */
  readonly spec: TensorSpec
}

/** A tensor of `datatype`: rank 1-3, dimensions 1-4 (nested JSON cannot carry a 0 inside a shape). */
export function tensorOf(datatype: DataType, safe = false): fc.Arbitrary<Case> {
  return fc
    .array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 })
    .chain((shape) => fc.tuple(fc.constant(shape), fc.array(element(datatype, safe), { minLength: shape.reduce((a, b) => a * b, 1), maxLength: shape.reduce((a, b) => a * b, 1) })))
    .map(([shape, values]) => {
      const row = DATATYPES[datatype]
      const data = row.array === null ? (values as string[]) : (row.array as unknown as { from(v: unknown[]): Tensor['data'] }).from(values)
      return { tensor: { datatype, shape, data }, spec: { name: 't', datatype, shape: shape.map(() => -1) } }
    })
}

export const everyDatatype = DATATYPE_NAMES

/** Elements as comparable values: NaN stays NaN, and -0 becomes 0 when `signedZero` is off (JSON has no -0). */
export function comparable(tensor: Tensor, signedZero = true): unknown[] {
  return Array.from(tensor.data as ArrayLike<unknown>, (v) => (!signedZero && Object.is(v, -0) ? 0 : v))
}

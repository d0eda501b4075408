// Nested JSON arrays as a client can send them: walked without recursion, refused past
// MAX_RANK, and never echoed back in full.
import { describe, expect, it } from 'vitest'
import { inputFailure } from '../../src/errors.ts'
import { flattenNested, MAX_RANK, tensorFromJson, toNested, type Tensor, type TensorSpec } from '../../src/tensor/index.ts'

const spec: TensorSpec = { name: 'input', datatype: 'FP32', shape: [-1, 2] }
const thrown = (fn: () => unknown): Error & { code?: string } => {
  try {
    fn()
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('did not throw')
}

describe('nested JSON', () => {
  it('refuses an array nested a million deep with BAD_INPUT, not a stack overflow', () => {
    let deep: unknown = 1
    for (let i = 0; i < 1_000_000; i++) deep = [deep]
    const err = thrown(() => tensorFromJson(deep, spec, inputFailure))
    expect(err.code).toBe('BAD_INPUT')
    expect(err.message).toBe(`input "input": arrays nested more than ${MAX_RANK} deep`)
  })

  it('walks the deepest allowed nesting without recursion, and refuses ragged arrays at any depth', () => {
    let deep: unknown = [1, 2]
    for (let i = 1; i < MAX_RANK; i++) deep = [deep]
    expect(flattenNested(deep, inputFailure, 'x').shape).toHaveLength(MAX_RANK)
    expect(thrown(() => tensorFromJson([[1, 2], [3]], spec, inputFailure)).message).toBe('input "input": ragged array (expected 2 elements at depth 1)')
    expect(thrown(() => tensorFromJson([[1, 2], [3, [4]]], spec, inputFailure)).message).toBe('input "input": ragged array (an array at depth 2, numbers expected)')
  })

  it('refuses a nested array for a float spec of shape [], as for every other datatype (the fast path takes rank 1 and 2 only)', () => {
    for (const datatype of ['FP16', 'FP32', 'FP64', 'INT32'] as const) {
      const err = thrown(() => tensorFromJson([[1, 2], [3, 4]], { name: 'x', datatype, shape: [] }, inputFailure))
      expect(err.code, datatype).toBe('BAD_INPUT')
      expect(err.message, datatype).toBe('input "x": shape [2, 2] does not match declared []')
    }
  })

  it('describes a 5,000-dimension shape in a few words', () => {
    const err = thrown(() => tensorFromJson({ shape: new Array(5000).fill(1), data: [1] }, spec, inputFailure))
    expect(err.code).toBe('BAD_INPUT')
    expect(err.message.length).toBeLessThan(120)
    const other = thrown(() => tensorFromJson({ shape: new Array(60).fill(1), data: [1] }, spec, inputFailure))
    expect(other.message).toBe('input "input": shape [1, 1, 1, 1, 1, 1, 1, 1, … 60 dimensions] does not match declared [-1, 2]')
  })

  it('writes a tensor in its shape, a scalar as itself', () => {
    expect(toNested({ datatype: 'INT32', shape: [2, 3], data: Int32Array.of(1, 2, 3, 4, 5, 6) })).toEqual([[1, 2, 3], [4, 5, 6]])
    expect(toNested({ datatype: 'FP32', shape: [2, 0], data: new Float32Array(0) })).toEqual([[], []])
    expect(toNested({ datatype: 'FP32', shape: [], data: Float32Array.of(7) })).toBe(7)
  })
})

describe('nested JSON text', () => {
  it('is exactly JSON.stringify of the nested arrays, for every shape (empty ones included)', async () => {
    const { nestedJson } = await import('../../src/tensor/index.ts')
    const cases: Tensor[] = [
      { datatype: 'INT32', shape: [2, 3], data: Int32Array.of(1, 2, 3, 4, 5, 6) },
      { datatype: 'FP32', shape: [1, 2], data: Float32Array.of(0.1, -2.5) },
      { datatype: 'FP64', shape: [2, 1, 2], data: Float64Array.of(1e21, -0, Number.NaN, Infinity) },
      { datatype: 'INT64', shape: [3], data: BigInt64Array.of(1n, 9007199254740993n, -5n) },
      { datatype: 'BYTES', shape: [2], data: ['a"b', 'é'] },
      { datatype: 'FP32', shape: [2, 0], data: new Float32Array(0) },
      { datatype: 'FP32', shape: [0, 3], data: new Float32Array(0) },
      { datatype: 'FP32', shape: [], data: Float32Array.of(7) },
      { datatype: 'BOOL', shape: [2, 2, 1], data: Uint8Array.of(1, 0, 0, 1) },
    ]
    for (const t of cases) expect(nestedJson(t), JSON.stringify(t.shape)).toBe(JSON.stringify(toNested(t)))
  })
})

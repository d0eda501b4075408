// The inputs digest as docs/output.md defines it: sha256 over every input in name order,
// name NUL datatype NUL shape (comma-joined) NUL, then the raw little-endian element bytes
// (BYTES elements as UTF-8, each followed by a NUL). Computed here straight from that text.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { inputsDigest } from '../../src/output/record.ts'
import type { TensorMap } from '../../src/tensor/index.ts'

function documented(inputs: TensorMap): string {
  const h = createHash('sha256')
  for (const name of Object.keys(inputs).sort()) {
    const t = inputs[name]!
    h.update(Buffer.from(`${name}\0${t.datatype}\0${t.shape.join(',')}\0`, 'utf8'))
    if (Array.isArray(t.data)) for (const s of t.data as string[]) h.update(Buffer.from(`${s}\0`, 'utf8'))
    else {
      const d = t.data as Float32Array
      h.update(Buffer.from(d.buffer, d.byteOffset, d.byteLength))
    }
  }
  return `sha256:${h.digest('hex')}`
}

describe('inputs digest', () => {
  it('is the documented sha256 for numeric, BYTES and several inputs in name order', () => {
    const floats = new Float32Array([0.5, -1.25, 3e7, 1, 2, 3]).subarray(1, 4) // a view into a larger buffer
    const cases: TensorMap[] = [
      { input: { datatype: 'FP32', shape: [1, 3], data: floats } },
      { text: { datatype: 'BYTES', shape: [2], data: ['héllo', ''] } as never },
      { zeta: { datatype: 'INT64', shape: [2], data: new BigInt64Array([1n, -2n]) }, alpha: { datatype: 'FP32', shape: [], data: new Float32Array([7]) } },
    ]
    for (const inputs of cases) expect(inputsDigest(inputs)).toBe(documented(inputs))
    expect(inputsDigest(cases[0]!)).not.toBe(inputsDigest({ input: { datatype: 'FP32', shape: [3], data: floats } }))
  })
})

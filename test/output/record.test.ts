// The inputs digest as docs/output.md defines it: sha256 over every input in name order,
// name NUL datatype NUL shape (comma-joined) NUL, then the raw little-endian element bytes
// (BYTES elements as UTF-8, each followed by a NUL). Computed here straight from that text.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { failureBody, resultBody, resultJson } from '../../src/api/native/result.ts'
import { inputsDigest, PendingRecord } from '../../src/output/record.ts'
import type { Tensor, TensorMap } from '../../src/tensor/index.ts'
import type { PredictResult } from '../../src/types.ts'

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

describe('serving record text', () => {
  const floats = (...v: number[]): Tensor => ({ datatype: 'FP32', shape: [1, v.length], data: new Float32Array(v) })
  const base: PredictResult = {
    id: 'req-"1"',
    ensemble: 'cancer',
    strategy: 'majority-vote',
    outputs: { label: { datatype: 'INT64', shape: [1], data: new BigInt64Array([1n]) }, probabilities: floats(0.031017959117889404, 0.9689820408821106) },
    decision: { chosen: null, reason: 'majority', votes: { '1': 2, '0': 0.5 } },
    error: null,
    budget_ms: 50,
    elapsed_ms: 1.806,
    models: [
      { name: 'mlp', version: '3', status: 'ok', latency_ms: 0.41, used: true, batch: 4 },
      { name: 'rf', version: '1', status: 'error', latency_ms: 0, used: false, error: { code: 'MODEL_FAILED', message: 'bad "shape"\n' } },
      { name: 'slow', version: '1', status: 'timeout', latency_ms: Number.NaN, used: false },
    ],
  }
  const cases: [string, PendingRecord][] = [
    ['an answer with votes, a batch and a failed member', new PendingRecord('k', base, { input: floats(1, 2, 3) }, Date.UTC(2026, 11, 1), null, false, 'host-1')],
    ['a failure with its inputs', new PendingRecord(null, { ...base, outputs: null, decision: { chosen: null, reason: 'deadline', votes: null }, error: { code: 'DEADLINE_EXCEEDED', message: 'late' } }, { text: { datatype: 'BYTES', shape: [2], data: ['héllo', 'a\tb'] } as never }, 1, null, true, 'ñ')],
    ['a late answer', new PendingRecord('k', { ...base, decision: { chosen: 'mlp', reason: 'preferred-finished', votes: null } }, {}, 2, { model: 'slow', version: '1', latency_ms: 80.5, outputs: { y: floats(4) } }, false, 'i')],
    ['shadow answers', new PendingRecord('k', { ...base, shadows: [{ name: 'next', version: '2', status: 'ok', latency_ms: 1, agrees: true, outputs: { y: floats(0.5) } }, { name: 'bad', version: '1', status: 'error', latency_ms: 2, agrees: null, error: { code: 'MODEL_FAILED' } }] }, {}, 3, null, false, 'i')],
  ]
  it.each(cases)('is JSON.stringify of the record, character for character: %s', (_, pending) => {
    expect(pending.encode()).toBe(JSON.stringify(pending.toRecord()))
  })
  it('the REST body is JSON.stringify of resultBody / failureBody, character for character', () => {
    for (const [, pending] of cases) {
      const r = pending.result
      expect(resultJson(r)).toBe(JSON.stringify(r.error ? failureBody(r) : resultBody(r)))
    }
  })
})

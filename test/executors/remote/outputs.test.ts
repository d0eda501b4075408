// Fitting upstream answers to the declared outputs: renames, width changes, unit
// dimensions, and the verdict on every malformed answer (UPSTREAM_BAD_RESPONSE).
import { describe, expect, it } from 'vitest'
import { fitOutputs } from '../../../src/executors/remote/outputs.ts'
import type { WireTensor } from '../../../src/tensor/index.ts'

describe('answer mapping', () => {
  const outputs = [
    { spec: { name: 'label', datatype: 'INT64' as const, shape: [-1] }, upstream: 'predict' },
    { spec: { name: 'probabilities', datatype: 'FP32' as const, shape: [-1, 3] }, upstream: 'predict_proba' },
  ]
  const raw = (entries: Record<string, WireTensor>) => new Map(Object.entries(entries))
  const good = { predict: { datatype: 'INT64', shape: [2, 1], data: [1, 0] }, predict_proba: { datatype: 'FP64', shape: [2, 3], data: [0.1, 0.8, 0.1, 0.7, 0.2, 0.1] } }

  it('renames, converts FP64 to the declared FP32, and fits [N, 1] to a declared [-1]', () => {
    const out = fitOutputs(raw(good), outputs, 2)
    expect(out.label).toEqual({ datatype: 'INT64', shape: [2], data: new BigInt64Array([1n, 0n]) })
    expect(out.probabilities!.data).toBeInstanceOf(Float32Array)
    expect(out.probabilities!.shape).toEqual([2, 3])
  })

  it.each([
    ['a missing output', { predict: good.predict }, /no output "predict_proba"/],
    ['a wrong shape', { ...good, predict_proba: { shape: [2, 2], data: [1, 2, 3, 4] } }, /does not match declared/],
    ['too few elements for the shape', { ...good, predict_proba: { shape: [2, 3], data: [1, 2, 3] } }, /do not fill/],
    ['a wrong batch', { ...good, predict: { shape: [3], data: [1, 0, 1] } }, /3 rows for a batch of 2/],
    ['a fraction for an integer output', { ...good, predict: { shape: [2], data: [1.5, 0] } }, /not an integer \(INT64\)/],
    ['an integer outside its type', { ...good, predict: { datatype: 'INT64', shape: [2], data: ['9223372036854775808', 0] } }, /outside INT64/],
    ['strings for numbers', { ...good, predict_proba: { shape: [2, 3], data: ['a', 1, 1, 1, 1, 1] } }, /not a number/],
    ['a ragged nested answer', { ...good, predict_proba: { data: [[1, 2, 3], [1, 2]] } }, /ragged/],
    ['an FP64 answer beyond the range of the declared FP32', { ...good, predict_proba: { datatype: 'FP64', shape: [2, 3], data: Float64Array.of(0.1, 1e300, 0.1, 0.7, 0.2, 0.1) } }, /element 1 is 1e\+300, outside FP32's range/],
    ['a JSON number beyond FP32', { ...good, predict_proba: { shape: [2, 3], data: [0.1, 0.8, 0.1, 0.7, 0.2, -1e39] } }, /element 5 is -1e\+39, outside FP32's range/],
  ])('rejects %s as UPSTREAM_BAD_RESPONSE', (_what, answer, message) => {
    let error: unknown
    try {
      fitOutputs(raw(answer as Record<string, WireTensor>), outputs, 2)
    } catch (err) {
      error = err
    }
    expect(error).toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE', message: expect.stringMatching(message) as unknown })
  })

  it('passes NaN and the infinities an upstream sent itself, as they are', () => {
    const answer = { ...good, predict_proba: { datatype: 'FP64', shape: [2, 3], data: ['NaN', 'Infinity', '-Infinity', Number.NaN, Infinity, 0.5] } }
    expect(Array.from(fitOutputs(raw(answer), outputs, 2).probabilities!.data as Float32Array)).toEqual([NaN, Infinity, -Infinity, NaN, Infinity, 0.5])
  })
})

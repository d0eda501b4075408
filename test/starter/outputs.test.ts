// What an ensemble's answer carries when its members' outputs differ: exactly the outputs
// the ensemble declares (those every member produces), whichever member answered, and a
// declared shape that every answer keeps. Scripted members on a fake clock.
import { describe, expect, it, vi } from 'vitest'
import { onlyOutputs } from '../../src/starter/ensemble.ts'
import type { TensorMap } from '../../src/tensor/index.ts'
import type { PredictResult } from '../../src/types.ts'
import { predictAfter, serve, useFakeClock } from './fake-clock.ts'

useFakeClock()

const fallback = (models: string): string => `    strategy: deadline-fallback\n    models: [${models}]\n    budget_ms: { default: 100, max: 500 }`
const outputsOf = (r: PredictResult): Record<string, [string, readonly number[]]> =>
  Object.fromEntries(Object.entries(r.outputs ?? {}).map(([name, t]) => [name, [t.datatype, t.shape]]))

describe('starter: the outputs of an answer', () => {
  it('leaves out an output its members give in different datatypes, whichever member answers', async () => {
    const g = await serve('  f64: { kind: scripted, prob_dtype: FP64, delay_ms: 1 }\n  f32: { kind: scripted, delay_ms: 5 }', fallback('f64, f32'))
    expect(g.ensemble('e').outputs).toEqual([{ name: 'label', datatype: 'INT64', shape: [-1] }])
    const r = await predictAfter(g, 1)
    expect(r.decision.chosen).toBe('f64')
    expect(outputsOf(r)).toEqual({ label: ['INT64', [1]] })
  })

  it('leaves out an output only the answering member has', async () => {
    const g = await serve('  ext: { kind: scripted, extra_output: true, delay_ms: 1 }\n  plain: { kind: scripted, delay_ms: 5 }', fallback('ext, plain'))
    const r = await predictAfter(g, 1)
    expect(r.decision.chosen).toBe('ext')
    expect(outputsOf(r)).toEqual({ label: ['INT64', [1]], probabilities: ['FP32', [1, 2]] })
    expect(g.ensemble('e').answersAsDeclared).toEqual([false, true])
  })

  it('leaves out an output whose shapes differ between members (2 classes here, 3 there)', async () => {
    const g = await serve('  two: { kind: scripted, delay_ms: 1 }\n  three: { kind: scripted, classes: 3, delay_ms: 5 }', fallback('two, three'))
    expect(g.ensemble('e').outputs).toEqual([{ name: 'label', datatype: 'INT64', shape: [-1] }])
    expect(outputsOf(await predictAfter(g, 1))).toEqual({ label: ['INT64', [1]] })
  })

  it('refuses a soft vote on probabilities of different classes, rather than comparing them', async () => {
    const soft = '    strategy: { name: majority-vote, mode: soft }\n    models: [two, three]'
    await expect(serve('  two: { kind: scripted }\n  three: { kind: scripted, classes: 3 }', soft)).rejects.toThrow(/ensembles\.e\.strategy: .*probabilities/)
  })

  it('declares -1 in a dimension one member fixes and another leaves dynamic', async () => {
    const g = await serve('  fixed: { kind: scripted, delay_ms: 1 }\n  dynamic: { kind: scripted, classes: -1, delay_ms: 5 }', fallback('fixed, dynamic'))
    expect(g.ensemble('e').outputs).toEqual([
      { name: 'label', datatype: 'INT64', shape: [-1] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, -1] },
    ])
  })

  it('returns the answer of a member that produces just the declared outputs as it is', async () => {
    const g = await serve('  a: { kind: scripted, delay_ms: 1 }\n  b: { kind: scripted, delay_ms: 5 }', fallback('a, b'))
    expect(g.ensemble('e').answersAsDeclared).toEqual([true, true])
    expect(g.ensemble('e').outputs.map((o) => o.shape)).toEqual([[-1], [-1, 2]])
  })

  it('answers a vote with the declared outputs of the member it chose', async () => {
    const g = await serve(
      '  ext: { kind: scripted, extra_output: true, delay_ms: 1 }\n  b: { kind: scripted, delay_ms: 2 }\n  c: { kind: scripted, delay_ms: 3 }',
      '    strategy: majority-vote\n    models: [ext, b, c]\n    budget_ms: { default: 100, max: 500 }',
    )
    const r = await predictAfter(g, 2)
    expect(r.decision).toMatchObject({ chosen: 'ext', reason: 'majority' })
    expect(Object.keys(r.outputs ?? {})).toEqual(['label', 'probabilities'])
  })

  it('answers a batch spliced row by row from several members with the declared outputs only', async () => {
    // Row 0's winner (1) comes from a and c, row 1's (1) from b and d: no member gave [1, 1].
    const g = await serve(
      '  a: { kind: scripted, extra_output: true, classes: 4, labels: [1, 0] }\n  b: { kind: scripted, extra_output: true, classes: 4, labels: [0, 1] }\n' +
        '  c: { kind: scripted, classes: 4, labels: [1, 2] }\n  d: { kind: scripted, classes: 4, labels: [2, 1] }\n  e: { kind: scripted, classes: 4, labels: [3, 3] }',
      '    strategy: majority-vote\n    models: [a, b, c, d, e]\n    budget_ms: { default: 100, max: 500 }',
    )
    const rows = { x: { datatype: 'FP32', shape: [2, 2], data: Float32Array.of(0.5, 0.5, 0.5, 0.5) } } as const
    const pending = g.predict({ id: 'batch', ensemble: 'e', inputs: rows })
    await vi.advanceTimersByTimeAsync(1)
    const r = await pending
    expect(r.decision).toMatchObject({ chosen: null, reason: 'plurality' })
    expect(outputsOf(r)).toEqual({ label: ['INT64', [2]], probabilities: ['FP32', [2, 4]] })
    expect([...(r.outputs!.label!.data as BigInt64Array)]).toEqual([1n, 1n])
  })

})

describe('cutting an answer to the declared outputs', () => {
  it('keeps an output named __proto__ as an output (not the object\'s prototype)', () => {
    const tensor = { datatype: 'FP32', shape: [1], data: Float32Array.of(1) } as const
    const answer = JSON.parse('{"__proto__": 0, "extra": 0}') as Record<string, unknown>
    for (const name of Object.keys(answer)) Object.defineProperty(answer, name, { value: tensor, enumerable: true })
    const kept = onlyOutputs(answer as TensorMap, [{ name: '__proto__', datatype: 'FP32', shape: [-1] }])
    expect(Object.keys(kept)).toEqual(['__proto__'])
    expect(Object.getOwnPropertyDescriptor(kept, '__proto__')?.value).toBe(tensor)
  })
})


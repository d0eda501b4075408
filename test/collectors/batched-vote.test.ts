// Hard majority votes on a batch: a batch of rows is one request, but each row is its own
// vote, so a batch answers what its rows sent one by one would.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parsed, run, type Step } from './timeline.ts'
import type { Static } from 'typebox'
import { majorityVote, type MajorityVoteSchema } from '../../src/collectors/majority-vote.ts'
import type { Collector } from '../../src/collectors/types.ts'
import type { TensorMap, TensorSpec } from '../../src/tensor/index.ts'
import type { Decision, Outcome } from '../../src/types.ts'

type Options = Static<typeof MajorityVoteSchema>

const labelSpec: TensorSpec = { name: 'label', datatype: 'INT64', shape: [-1] }
const probSpec: TensorSpec = { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }

const labels = (...v: number[]): TensorMap => ({ label: { datatype: 'INT64', shape: [v.length], data: BigInt64Array.from(v, BigInt) } })
/** A classifier's answer on several rows: each row's label, and a probability row that puts 0.8 on it. */
const answer = (...v: number[]): TensorMap => ({
  ...labels(...v),
  probabilities: { datatype: 'FP32', shape: [v.length, 3], data: Float32Array.from(v.flatMap((l) => [0, 1, 2].map((c) => (c === l ? 0.8 : 0.1)))) },
})
const ok = (index: number, outputs: TensorMap): Outcome => ({ status: 'ok', index, outputs, latencyMs: 5 })

const collector = (n: number, options: Options = {}, outputs: TensorSpec[] = [labelSpec, probSpec]): Collector =>
  majorityVote.create(parsed(majorityVote, options), { name: 'e', models: Array.from({ length: n }, (_, i) => `m${i}`), outputs, staticQuality: [] }).collector()
const labelsOf = (d: Decision | undefined): number[] | undefined =>
  d?.kind === 'answer' && d.outputs !== null ? Array.from(d.outputs['label']!.data as BigInt64Array, Number) : undefined

describe('majority-vote: a batch votes row by row', () => {
  it('answers each row with its own majority, as the rows sent one by one (the demo wine rows 8 and 38)', () => {
    // [tree, knn, logreg]: row 8 is 1/2/1, row 38 is 1/2/2. As one key per member the three
    // vectors were all different and the tree's [1, 1] won by plurality.
    const steps = [ok(0, answer(1, 1)), ok(1, answer(2, 2)), ok(2, answer(1, 2))]
    const { decision, at } = run(collector(3), steps)
    expect(at).toBe(2)
    expect(decision).toMatchObject({ kind: 'answer', chosen: 2, reason: 'majority', outputs: answer(1, 2) })
    expect(decision?.votes).toEqual({ '0:1': 2, '0:2': 1, '1:1': 1, '1:2': 2 })
    const row8 = run(collector(3), [ok(0, answer(1)), ok(1, answer(2)), ok(2, answer(1))]).decision
    const row38 = run(collector(3), [ok(0, answer(1)), ok(1, answer(2)), ok(2, answer(2))]).decision
    expect([...labelsOf(row8)!, ...labelsOf(row38)!]).toEqual(labelsOf(decision))
  })

  it('a single row keeps its votes shape: label → weight', () => {
    expect(run(collector(3), [ok(0, answer(2)), ok(1, answer(2))]).decision).toMatchObject({ chosen: 0, reason: 'majority', votes: { 2: 2 } })
  })

  it('when no member gave every row\'s winner, builds the answer row by row from each row\'s first voter (chosen null)', () => {
    const { decision } = run(collector(3), [ok(0, answer(1, 1, 2)), ok(1, answer(1, 2, 1)), ok(2, answer(2, 1, 1))])
    expect(decision).toMatchObject({ kind: 'answer', chosen: null, reason: 'majority' })
    // Row 0 and 1 from m0, row 2 from m1: the probabilities agree with the labels.
    expect(decision).toHaveProperty('outputs', answer(1, 1, 1))
  })

  it('decides early only once every row is decided', () => {
    const open = run(collector(3), [ok(0, answer(1, 2)), ok(1, answer(1, 0)), ok(2, answer(1, 0))])
    expect(open.at).toBe(2) // row 1 is 1-1 after two votes: the third decides it
    expect(open.decision).toMatchObject({ chosen: 1, reason: 'majority' })
    const settled = run(collector(3), [ok(2, answer(1, 2)), ok(0, answer(1, 2)), ok(1, answer(0, 0))])
    expect(settled.at).toBe(1)
    expect(settled.decision).toMatchObject({ chosen: 0, reason: 'majority', votes: { '0:1': 2, '1:2': 2 } })
  })

  it('one row without a majority makes the whole answer a plurality', () => {
    const { decision } = run(collector(3), [ok(0, answer(1, 0)), ok(1, answer(1, 1)), ok(2, answer(1, 2))])
    expect(decision).toMatchObject({ chosen: 0, reason: 'plurality', outputs: answer(1, 0) })
  })

  it('abstain / error: any row without a majority abstains or fails the request, as soon as it is certain', () => {
    const steps = [ok(0, answer(1, 1)), ok(1, answer(1, 2)), ok(2, answer(1, 1))]
    const abstained = run(collector(3, { quorum: 'all', on_no_majority: 'abstain' }), steps)
    expect(abstained.at).toBe(1)
    expect(abstained.decision).toEqual({ kind: 'answer', chosen: null, reason: 'no-majority', outputs: null, votes: { '0:1': 2, '1:1': 1, '1:2': 1 } })
    const failed = run(collector(3, { quorum: 'all', on_no_majority: 'error' }), steps)
    expect(failed.decision).toEqual({ kind: 'fail', code: 'NO_CONSENSUS', reason: 'no-majority', votes: { '0:1': 2, '1:1': 1, '1:2': 1 } })
    // Every row unanimous: answered.
    expect(run(collector(2, { quorum: 'all', on_no_majority: 'error' }), [ok(0, answer(1, 2)), ok(1, answer(1, 2))]).decision).toMatchObject({ reason: 'unanimous' })
  })

  it('votes by argmax row by row too', () => {
    const { decision } = run(collector(3, {}, [probSpec]), [ok(0, answer(0, 2)), ok(1, answer(1, 1)), ok(2, answer(0, 1))])
    expect(decision).toMatchObject({ chosen: 2, reason: 'majority', votes: { '0:0': 2, '0:1': 1, '1:2': 1, '1:1': 2 } })
  })

  it('a member answering another number of rows than the first voter does not vote', () => {
    const { decision } = run(collector(3), [ok(0, answer(1, 2)), ok(1, answer(2)), ok(2, answer(1, 2))])
    expect(decision).toMatchObject({ chosen: 0, reason: 'majority', votes: { '0:1': 2, '1:2': 2 } })
  })

  it('weights count row by row', () => {
    const { decision, at } = run(collector(3, { weights: { m2: 3 } }), [ok(0, answer(1, 1)), ok(1, answer(1, 1)), ok(2, answer(1, 2))])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ chosen: 2, reason: 'majority', votes: { '0:1': 5, '1:1': 2, '1:2': 3 } })
  })
})

describe('majority-vote: a batch answers as its rows one by one (property)', () => {
  const scenario = fc.integer({ min: 1, max: 5 }).chain((n) =>
    fc.record({
      rows: fc.array(fc.array(fc.integer({ min: 0, max: 2 }), { minLength: n, maxLength: n }), { minLength: 2, maxLength: 4 }),
      weights: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: n, maxLength: n }),
      order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
      quorum: fc.constantFrom<Options['quorum']>('majority', 'all', 1, 2),
    }),
  )

  it('whatever the arrival order, weights and quorum, each row\'s label is that row\'s own vote', () => {
    fc.assert(
      fc.property(scenario, ({ rows, weights, order, quorum }) => {
        const options: Options = { quorum, weights: Object.fromEntries(weights.map((w, i) => [`m${i}`, w])) }
        const n = weights.length
        const play = (labelsOf: (i: number) => number[]): Decision | undefined =>
          run(collector(n, options), order.map((i): Step => ok(i, answer(...labelsOf(i))))).decision
        const batch = labelsOf(play((i) => rows.map((row) => row[i]!)))
        const single = rows.map((row) => labelsOf(play((i) => [row[i]!]))![0])
        expect(batch).toEqual(single)
      }),
      { numRuns: 500 },
    )
  })
})

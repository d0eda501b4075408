// A batched hard vote's `votes` stays small however many rows the batch has, and the
// request's own row count (not the first member to answer) says how many rows a vote needs.
import { describe, expect, it } from 'vitest'
import { parsed, run } from './timeline.ts'
import type { Static } from 'typebox'
import { majorityVote, type MajorityVoteSchema } from '../../src/collectors/majority-vote.ts'
import { requestRows } from '../../src/collectors/outputs.ts'
import type { Collector } from '../../src/collectors/types.ts'
import type { TensorMap, TensorSpec } from '../../src/tensor/index.ts'
import type { Outcome } from '../../src/types.ts'

type Options = Static<typeof MajorityVoteSchema>

const labelSpec: TensorSpec = { name: 'label', datatype: 'INT64', shape: [-1] }
const probSpec: TensorSpec = { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }

const labels = (v: readonly number[]): TensorMap => ({ label: { datatype: 'INT64', shape: [v.length], data: BigInt64Array.from(v, BigInt) } })
const probs = (v: readonly number[]): TensorMap => ({
  probabilities: { datatype: 'FP32', shape: [v.length, 3], data: Float32Array.from(v.flatMap((l) => [0, 1, 2].map((c) => (c === l ? 0.8 : 0.1)))) },
})
const ok = (index: number, outputs: TensorMap): Outcome => ({ status: 'ok', index, outputs, latencyMs: 5 })
/** `rows` labels, all `label` but those in `except` (row → label). */
const batch = (rows: number, label: number, except: Record<number, number> = {}): number[] =>
  Array.from({ length: rows }, (_, r) => except[r] ?? label)

const collector = (n: number, rows?: number, options: Options = {}, outputs: TensorSpec[] = [labelSpec]): Collector =>
  majorityVote.create(parsed(majorityVote, options), { name: 'e', models: Array.from({ length: n }, (_, i) => `m${i}`), outputs, staticQuality: [] }).collector(rows)

describe('majority-vote: a batch\'s votes stay bounded', () => {
  it('a batch of 100 rows lists every row', () => {
    const { decision } = run(collector(3), [ok(0, labels(batch(100, 1))), ok(1, labels(batch(100, 1, { 7: 2 }))), ok(2, labels(batch(100, 1)))])
    const votes = decision!.votes!
    expect(Object.keys(votes)).toHaveLength(101)
    expect(votes).toMatchObject({ '0:1': 3, '7:1': 2, '7:2': 1, '99:1': 3 })
    expect(votes).not.toHaveProperty('rows')
  })

  it('past 100 rows, a summary and only the rows the voters split on', () => {
    const steps = [ok(0, labels(batch(250, 1))), ok(1, labels(batch(250, 1, { 17: 2 }))), ok(2, labels(batch(250, 1, { 200: 0 })))]
    const { decision } = run(collector(3), steps)
    expect(decision).toMatchObject({ kind: 'answer', chosen: 0, reason: 'majority' })
    expect(decision!.votes).toEqual({ rows: 250, rows_split: 2, rows_omitted: 248, '17:1': 2, '17:2': 1, '200:1': 2, '200:0': 1 })
    // The summary comes first in the JSON a user reads.
    expect(Object.keys(decision!.votes!).slice(0, 3)).toEqual(['rows', 'rows_split', 'rows_omitted'])
  })

  it('a large batch split on every row lists the first 100 rows only', () => {
    const rows = 10_000
    const steps = [ok(0, labels(batch(rows, 0))), ok(1, labels(batch(rows, 1))), ok(2, labels(batch(rows, 0)))]
    const { decision } = run(collector(3), steps)
    expect(decision).toMatchObject({ kind: 'answer', chosen: 0, reason: 'majority' })
    const votes = decision!.votes!
    expect(Object.keys(votes)).toHaveLength(3 + 100 * 2)
    expect(votes).toMatchObject({ rows, rows_split: rows, rows_omitted: rows - 100, '0:0': 2, '0:1': 1, '99:0': 2, '99:1': 1 })
    expect(votes).not.toHaveProperty('100:0')
  })

  it('abstaining on a large batch still tells which rows had no majority', () => {
    const steps = [ok(0, labels(batch(500, 1, { 321: 0 }))), ok(1, labels(batch(500, 1, { 321: 2 }))), ok(2, labels(batch(500, 1)))]
    const { decision } = run(collector(3, undefined, { quorum: 'all', on_no_majority: 'abstain' }), steps)
    expect(decision).toEqual({ kind: 'answer', chosen: null, reason: 'no-majority', outputs: null, votes: { rows: 500, rows_split: 1, rows_omitted: 499, '321:0': 1, '321:2': 1 } })
  })
})

describe('majority-vote: the request says how many rows a vote has', () => {
  it('a member answering another row count first does not vote; the correct ones decide', () => {
    const { decision, at } = run(collector(3, 2), [ok(0, labels([7])), ok(1, labels([1, 2])), ok(2, labels([1, 2]))])
    expect(at).toBe(2)
    expect(decision).toEqual({ kind: 'answer', chosen: 1, reason: 'majority', outputs: labels([1, 2]), votes: { '0:1': 2, '1:2': 2 } })
  })

  it('a single-row request: a first answer with two rows does not vote', () => {
    const { decision } = run(collector(3, 1), [ok(0, labels([3, 3])), ok(1, labels([5])), ok(2, labels([5]))])
    expect(decision).toEqual({ kind: 'answer', chosen: 1, reason: 'majority', outputs: labels([5]), votes: { 5: 2 } })
  })

  it('by argmax, hard and soft alike', () => {
    const steps = [ok(0, probs([0, 0, 0])), ok(1, probs([2, 1])), ok(2, probs([2, 1]))]
    expect(run(collector(3, 2, {}, [probSpec]), steps).decision).toMatchObject({ chosen: 1, reason: 'majority', votes: { '0:2': 2, '1:1': 2 } })
    expect(run(collector(3, 2, { mode: 'soft' }, [probSpec]), steps).decision).toMatchObject({ chosen: 1, reason: 'soft' })
  })

  it('a voted output whose first dimension is fixed is not held to the request\'s rows', () => {
    const fixed: TensorSpec = { name: 'label', datatype: 'INT64', shape: [2] }
    const { decision } = run(collector(3, 5, {}, [fixed]), [ok(0, labels([1, 2])), ok(1, labels([1, 2]))])
    expect(decision).toMatchObject({ chosen: 0, reason: 'majority', votes: { '0:1': 2, '1:2': 2 } })
  })

  it('the request\'s rows: the first dimension its inputs share, when every input\'s is a batch', () => {
    const inputs: TensorMap = { x: { datatype: 'FP32', shape: [4, 2], data: new Float32Array(8) } }
    expect(requestRows(inputs, [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }])).toBe(4)
    expect(requestRows(inputs, [{ name: 'x', datatype: 'FP32', shape: [4, 2] }])).toBeUndefined()
    // Ragged inputs (7 tokens, 2 offsets): their first dimension is no batch, so no row count.
    const ragged: TensorMap = { tokens: { datatype: 'INT32', shape: [7], data: new Int32Array(7) }, offsets: { datatype: 'INT32', shape: [2], data: new Int32Array(2) } }
    const raggedSpecs: TensorSpec[] = [{ name: 'tokens', datatype: 'INT32', shape: [-1] }, { name: 'offsets', datatype: 'INT32', shape: [-1] }]
    expect(requestRows(ragged, raggedSpecs)).toBeUndefined()
    const mixed: TensorSpec[] = [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }, { name: 'y', datatype: 'FP32', shape: [1] }]
    expect(requestRows({ ...inputs, y: { datatype: 'FP32', shape: [1], data: new Float32Array(1) } }, mixed)).toBeUndefined()
  })
})

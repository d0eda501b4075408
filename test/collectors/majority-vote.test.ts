// Scripted timelines for majority-vote. `at` is the step (0-based, in arrival order) whose
// outcome produced the decision: an early exit shows as a step before the last model.
import { describe, expect, it } from 'vitest'
import { parsed, run } from './timeline.ts'
import type { Static } from 'typebox'
import { majorityVote, type MajorityVoteSchema } from '../../src/collectors/majority-vote.ts'
import type { Collector, EnsembleShape } from '../../src/collectors/types.ts'
import type { TensorMap, TensorSpec } from '../../src/tensor/index.ts'
import type { Outcome } from '../../src/types.ts'

type MajorityVoteOptions = Static<typeof MajorityVoteSchema>


const labelSpec: TensorSpec = { name: 'label', datatype: 'INT64', shape: [-1] }
const probSpec: TensorSpec = { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }
const valueSpec: TensorSpec = { name: 'value', datatype: 'FP32', shape: [-1, 1] }

const labels = (...v: number[]): TensorMap => ({ label: { datatype: 'INT64', shape: [v.length], data: BigInt64Array.from(v, BigInt) } })
const probs = (...row: number[]): TensorMap => ({ probabilities: { datatype: 'FP32', shape: [1, row.length], data: Float32Array.from(row) } })
const values = (...v: number[]): TensorMap => ({ value: { datatype: 'FP32', shape: [v.length, 1], data: Float32Array.from(v) } })

const ok = (index: number, outputs: TensorMap): Outcome => ({ status: 'ok', index, outputs, latencyMs: 5 })
const vote = (index: number, label: number): Outcome => ok(index, labels(label))
const err = (index: number): Outcome => ({ status: 'error', index, error: { code: 'MODEL_ERROR', message: 'boom' }, latencyMs: 5 })

const ensemble = (n: number, outputs: TensorSpec[] = [labelSpec]): EnsembleShape => ({
  name: 'e',
  models: Array.from({ length: n }, (_, i) => `m${i}`),
  outputs,
  staticQuality: [],
})
const collector = (n: number, options: MajorityVoteOptions = {}, outputs?: TensorSpec[]): Collector =>
  majorityVote.create(parsed(majorityVote, options), ensemble(n, outputs)).collector()

describe('majority-vote: classification', () => {
  it('decides on the 2nd outcome when 2 of 3 agree, before the 3rd arrives', () => {
    const { decision, at } = run(collector(3), [vote(2, 7), vote(1, 7), vote(0, 3)])
    expect(at).toBe(1)
    expect(decision).toEqual({ kind: 'answer', chosen: 1, reason: 'majority', outputs: labels(7), votes: { 7: 2 } })
  })

  it('votes by argmax of a probabilities output', () => {
    const { decision, at } = run(collector(3, {}, [probSpec]), [ok(0, probs(0.1, 0.7, 0.2)), ok(1, probs(0.2, 0.3, 0.5)), ok(2, probs(0.1, 0.6, 0.3))])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ chosen: 0, reason: 'majority', votes: { 1: 2, 2: 1 } })
  })

  it('a batch votes row by row (more in batched-vote.test.ts)', () => {
    const { decision, at } = run(collector(3), [ok(0, labels(1, 2)), ok(1, labels(1, 3)), ok(2, labels(1, 2))])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ chosen: 0, reason: 'majority', votes: { '0:1': 3, '1:2': 2, '1:3': 1 } })
  })

  it('1-1-1 split, plurality: the lowest-index model\'s label wins once all have voted', () => {
    const { decision, at } = run(collector(3), [vote(1, 5), vote(2, 6), vote(0, 4)])
    expect(at).toBe(2)
    expect(decision).toEqual({ kind: 'answer', chosen: 0, reason: 'plurality', outputs: labels(4), votes: { 4: 1, 5: 1, 6: 1 } })
  })

  it('1-1-1 split, abstain: an answer with no outputs', () => {
    const { decision, at } = run(collector(3, { on_no_majority: 'abstain' }), [vote(0, 4), vote(1, 5), vote(2, 6)])
    expect(at).toBe(2)
    expect(decision).toEqual({ kind: 'answer', chosen: null, reason: 'no-majority', outputs: null, votes: { 4: 1, 5: 1, 6: 1 } })
  })

  it('1-1-1 split, error: NO_CONSENSUS with the votes', () => {
    const { decision } = run(collector(3, { on_no_majority: 'error' }), [vote(0, 4), vote(1, 5), vote(2, 6)])
    expect(decision).toEqual({ kind: 'fail', code: 'NO_CONSENSUS', reason: 'no-majority', votes: { 4: 1, 5: 1, 6: 1 } })
  })

  it('a 2-2 tie is broken by model order', () => {
    const { decision, at } = run(collector(4), [vote(3, 1), vote(1, 1), vote(2, 0), vote(0, 0)])
    expect(at).toBe(3)
    expect(decision).toMatchObject({ chosen: 0, reason: 'plurality', votes: { 1: 2, 0: 2 } })
  })

  it('plurality waits while the quorum is reachable, and decides early once it is settled', () => {
    // 5 models need 3. After 4 votes (2-1-1) the last one could still make label 1 a
    // majority, so it waits; the 5th errors and label 1 wins the plurality.
    const { decision, at } = run(collector(5), [vote(4, 1), vote(3, 1), vote(2, 2), vote(1, 3), err(0)])
    expect(at).toBe(4)
    expect(decision).toMatchObject({ chosen: 3, reason: 'plurality', votes: { 1: 2, 2: 1, 3: 1 } })
    // quorum 'all': the dissent at step 3 makes 5 votes impossible, and label 1 (3 votes)
    // cannot be caught by label 2 (1 vote + 1 to come): plurality before the 5th arrives.
    const early = run(collector(5, { quorum: 'all' }), [vote(4, 1), vote(3, 1), vote(2, 1), vote(1, 2)])
    expect(early.at).toBe(3)
    expect(early.decision).toMatchObject({ chosen: 2, reason: 'plurality', votes: { 1: 3, 2: 1 } })
  })

  it('quorum all: unanimous on the last vote', () => {
    const { decision, at } = run(collector(3, { quorum: 'all' }), [vote(2, 9), vote(0, 9), vote(1, 9)])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ chosen: 0, reason: 'unanimous', votes: { 9: 3 } })
  })

  it('quorum all: the first dissent (or error) decides no-majority at once', () => {
    const dissent = run(collector(3, { quorum: 'all', on_no_majority: 'error' }), [vote(0, 9), vote(1, 8), vote(2, 9)])
    expect(dissent.at).toBe(1)
    expect(dissent.decision).toEqual({ kind: 'fail', code: 'NO_CONSENSUS', reason: 'no-majority', votes: { 9: 1, 8: 1 } })
    const failed = run(collector(3, { quorum: 'all', on_no_majority: 'abstain' }), [err(1)])
    expect(failed.at).toBe(0)
    expect(failed.decision).toMatchObject({ chosen: null, reason: 'no-majority', votes: {} })
  })

  it('quorum N: decides once N agree and nothing can overtake', () => {
    const { decision, at } = run(collector(5, { quorum: 3 }), [vote(4, 1), vote(0, 2), vote(3, 1), vote(2, 1), vote(1, 2)])
    expect(at).toBe(3)
    expect(decision).toMatchObject({ chosen: 2, reason: 'quorum', votes: { 1: 3, 2: 1 } })
  })

  it('quorum N: two labels both at N tie-break by model order', () => {
    const { decision, at } = run(collector(4, { quorum: 2 }), [vote(3, 1), vote(1, 1), vote(2, 0), vote(0, 0)])
    expect(at).toBe(3)
    expect(decision).toMatchObject({ chosen: 0, reason: 'quorum', votes: { 0: 2, 1: 2 } })
  })

  it('quorum N unreachable: abstains as soon as it is certain', () => {
    const { decision, at } = run(collector(5, { quorum: 3, on_no_majority: 'abstain' }), [vote(0, 1), vote(1, 2), vote(2, 3), vote(3, 4)])
    expect(at).toBe(3)
    expect(decision).toMatchObject({ chosen: null, reason: 'no-majority' })
  })

  it('at the deadline, a label with the quorum among arrived votes wins', () => {
    const { decision, at } = run(collector(5, { quorum: 2 }), [vote(3, 1), vote(4, 1), vote(0, 2), 'deadline'])
    expect(at).toBe(3)
    expect(decision).toMatchObject({ chosen: 3, reason: 'quorum', votes: { 1: 2, 2: 1 } })
  })

  it('at the deadline without a quorum, on_no_majority applies to the arrived votes', () => {
    expect(run(collector(5), [vote(3, 1), vote(4, 1), vote(0, 2), 'deadline']).decision).toMatchObject({ chosen: 3, reason: 'plurality' })
    expect(run(collector(5, { on_no_majority: 'error' }), [vote(3, 1), 'deadline']).decision).toMatchObject({ code: 'NO_CONSENSUS', votes: { 1: 1 } })
  })

  it('everything after the deadline: DEADLINE_EXCEEDED with empty votes', () => {
    expect(run(collector(3), ['deadline']).decision).toEqual({ kind: 'fail', code: 'DEADLINE_EXCEEDED', reason: 'deadline', votes: {} })
  })

  it('all models fail: ALL_MODELS_FAILED on the last failure', () => {
    const { decision, at } = run(collector(3), [err(0), err(2), err(1)])
    expect(at).toBe(2)
    expect(decision).toEqual({ kind: 'fail', code: 'ALL_MODELS_FAILED', reason: 'all-failed', votes: {} })
  })

  it('a model answering NaN probabilities does not vote (it read as class 0), nor decides with another', () => {
    const { decision, at } = run(collector(3, {}, [probSpec]), [ok(0, probs(NaN, NaN, NaN)), ok(1, probs(NaN, 0.1, 0.2)), ok(2, probs(0.1, 0.2, 0.7))])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ kind: 'answer', chosen: 2, votes: { 2: 1 } })
  })

  it('an ok model missing the voted output does not vote', () => {
    const { decision, at } = run(collector(3), [ok(0, values(1)), vote(1, 4), vote(2, 4)])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ chosen: 1, reason: 'majority', votes: { 4: 2 } })
  })
})

describe('majority-vote: regression', () => {
  const reg = (n: number, options: MajorityVoteOptions = {}): Collector => collector(n, options, [valueSpec])

  it('median of an odd count names the model that holds it, on the last arrival', () => {
    const { decision, at } = run(reg(3), [ok(2, values(5)), ok(0, values(1)), ok(1, values(2))])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ kind: 'answer', chosen: 1, reason: 'median', votes: null })
    expect(decision).toHaveProperty('outputs.value', { datatype: 'FP32', shape: [1, 1], data: Float32Array.of(2) })
  })

  it('median of an even count is the mean of the middle two, with no chosen model', () => {
    const { decision } = run(reg(4), [ok(0, values(1)), ok(1, values(2)), ok(2, values(3)), ok(3, values(10))])
    expect(decision).toMatchObject({ chosen: null, reason: 'median' })
    expect(decision).toHaveProperty('outputs.value.data', Float32Array.of(2.5))
  })

  it('mean, element-wise over a batch', () => {
    const { decision } = run(reg(3, { regression: 'mean' }), [ok(0, values(1, 10)), ok(1, values(2, 20)), err(2)])
    expect(decision).toMatchObject({ chosen: null, reason: 'mean', votes: null })
    expect(decision).toHaveProperty('outputs.value', { datatype: 'FP32', shape: [2, 1], data: Float32Array.of(1.5, 15) })
  })

  it('median over a batch is element-wise and names no model', () => {
    const { decision } = run(reg(3), [ok(0, values(1, 30)), ok(1, values(2, 10)), ok(2, values(3, 20))])
    expect(decision).toMatchObject({ chosen: null, reason: 'median' })
    expect(decision).toHaveProperty('outputs.value.data', Float32Array.of(2, 20))
  })

  it('at the deadline, aggregates the values that arrived', () => {
    const { decision, at } = run(reg(3), [ok(1, values(4)), err(0), 'deadline'])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ chosen: 1, reason: 'median' })
  })

  it('a value that is not finite does not count: the median or mean is over the others', () => {
    const median = run(reg(3), [ok(0, values(1)), ok(1, values(NaN)), ok(2, values(3))])
    expect(median.decision).toMatchObject({ chosen: null, reason: 'median' })
    expect(median.decision).toHaveProperty('outputs.value.data', Float32Array.of(2))
    const mean = run(reg(3, { regression: 'mean' }), [ok(0, values(1)), ok(1, values(Infinity)), ok(2, values(3))])
    expect(mean.decision).toHaveProperty('outputs.value.data', Float32Array.of(2))
    expect(run(reg(2), [ok(0, values(NaN)), ok(1, values(-Infinity))]).decision).toMatchObject({ code: 'ALL_MODELS_FAILED' })
  })

  it('answers in the models\' datatype, as the ensemble declares it: FP64 values are not rounded to FP32', () => {
    const fp64 = (v: number): TensorMap => ({ value: { datatype: 'FP64', shape: [1, 1], data: Float64Array.of(v) } })
    const reg64 = collector(3, {}, [{ ...valueSpec, datatype: 'FP64' }])
    const { decision } = run(reg64, [ok(0, fp64(151.35)), ok(1, fp64(0.1)), ok(2, fp64(200.25))])
    expect(decision).toMatchObject({ chosen: 0, reason: 'median' })
    expect(decision).toHaveProperty('outputs.value', { datatype: 'FP64', shape: [1, 1], data: Float64Array.of(151.35) })
  })

  it('all fail / nothing by the deadline', () => {
    expect(run(reg(2), [err(0), err(1)]).decision).toMatchObject({ code: 'ALL_MODELS_FAILED', votes: null })
    expect(run(reg(2), ['deadline']).decision).toMatchObject({ code: 'DEADLINE_EXCEEDED', votes: null })
  })
})

describe('majority-vote: options', () => {
  it('check() rejects a quorum above the model count and an unknown output', () => {
    expect(majorityVote.check!(parsed(majorityVote, { quorum: 3 }), ensemble(3))).toEqual([])
    expect(majorityVote.check!(parsed(majorityVote, { quorum: 4 }), ensemble(3))).toEqual(['quorum 4 is more than the 3 models of ensemble "e"'])
    expect(majorityVote.check!(parsed(majorityVote, { output: 'nope' }), ensemble(3))[0]).toMatch(/output "nope" is not an output/)
  })

  it('says it can fail NO_CONSENSUS only as a classification vote with on_no_majority: error, and which output it decides on', () => {
    const strategy = (options: MajorityVoteOptions, outputs: TensorSpec[]) => majorityVote.create(parsed(majorityVote, options), ensemble(2, outputs))
    expect(strategy({ on_no_majority: 'error' }, [labelSpec]).failCodes).toEqual(['NO_CONSENSUS'])
    expect(strategy({}, [labelSpec]).failCodes).toBeUndefined()
    // A regression aggregate always answers (on_no_majority is warned about there, not applied).
    expect(strategy({ on_no_majority: 'error' }, [valueSpec]).failCodes).toBeUndefined()
    expect(strategy({ output: 'probabilities' }, [labelSpec, probSpec]).decidesOn).toBe('probabilities')
    expect(strategy({}, [labelSpec, probSpec]).decidesOn).toBeUndefined()
  })

  it('check() refuses quorum and on_no_majority on a regression, and regression on a classifier', () => {
    const check = (options: MajorityVoteOptions, outputs: TensorSpec[]): string[] => majorityVote.check!(parsed(majorityVote, options), ensemble(2, outputs))
    expect(check({ quorum: 'all', on_no_majority: 'error' }, [valueSpec])).toEqual([
      'quorum applies to classification votes, but the models of ensemble "e" give a value (output "value"), aggregated by regression: median; remove quorum',
      'on_no_majority applies to classification votes, but the models of ensemble "e" give a value (output "value"), aggregated by regression: median; remove on_no_majority',
    ])
    expect(check({ regression: 'mean' }, [labelSpec])).toEqual([
      'regression applies when the models give a value to aggregate, but ensemble "e" votes on labels (output "label"); remove regression',
    ])
    expect(check({ regression: 'median' }, [probSpec])[0]).toMatch(/votes on the most probable class \(output "probabilities"\); remove regression/)
    // Each where it applies is fine (the demo's diabetes ensemble writes regression: median).
    expect(check({ regression: 'mean' }, [valueSpec])).toEqual([])
    expect(check({ quorum: 'all', on_no_majority: 'error' }, [labelSpec])).toEqual([])
  })

  it('weighs a model named like an Object method (toString) 1, not NaN', () => {
    const shape: EnsembleShape = { name: 'e', models: ['toString', 'constructor', 'm2'], outputs: [labelSpec], staticQuality: [] }
    expect(majorityVote.check!(parsed(majorityVote, { quorum: 3, weights: { m2: 1 } }), shape)).toEqual([])
    const { decision } = run(majorityVote.create(parsed(majorityVote, {}), shape).collector(), [vote(0, 1), vote(1, 1)])
    expect(decision).toMatchObject({ reason: 'majority', votes: { 1: 2 } })
  })

  it('picks label over probabilities, and `output` overrides', () => {
    const both = [probSpec, labelSpec]
    const byLabel = run(collector(2, {}, both), [ok(0, { ...labels(1), ...probs(0.9, 0.1, 0) }), ok(1, { ...labels(1), ...probs(0, 0.1, 0.9) })])
    expect(byLabel.decision).toMatchObject({ votes: { 1: 2 } })
    const byProbs = run(collector(2, { output: 'probabilities' }, both), [ok(0, { ...labels(1), ...probs(0.9, 0.1, 0) }), ok(1, { ...labels(1), ...probs(0, 0.1, 0.9) })])
    expect(byProbs.decision).toMatchObject({ reason: 'plurality', chosen: 0, votes: { 0: 1, 2: 1 } })
  })

  it('marks the votes past the quorum as spareable (a shared runtime holds them back), a regression none', () => {
    const spareable = (n: number, options: MajorityVoteOptions = {}, outputs?: TensorSpec[]): readonly boolean[] | undefined =>
      majorityVote.create(parsed(majorityVote, options), ensemble(n, outputs)).spareable
    expect(spareable(3)).toEqual([false, false, true])
    expect(spareable(5)).toEqual([false, false, false, true, true])
    expect(spareable(3, { quorum: 'all' })).toEqual([false, false, false])
    expect(spareable(3, { quorum: 1 })).toEqual([false, true, true])
    expect(spareable(3, { regression: 'median' }, [valueSpec])).toEqual([false, false, false])
  })
})

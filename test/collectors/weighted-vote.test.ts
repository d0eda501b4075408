// majority-vote with weights and `mode: soft`: scripted timelines, and a property test that
// the early exit is exact (whatever the arrival order, the answer is the one all members give).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parsed, run, type Step } from './timeline.ts'
import type { Static } from 'typebox'
import { majorityVote, type MajorityVoteSchema } from '../../src/collectors/majority-vote.ts'
import type { Collector, EnsembleShape } from '../../src/collectors/types.ts'
import type { TensorMap, TensorSpec } from '../../src/tensor/index.ts'
import type { Decision, Outcome } from '../../src/types.ts'

type Options = Static<typeof MajorityVoteSchema>

const labelSpec: TensorSpec = { name: 'label', datatype: 'INT64', shape: [-1] }
const probSpec = (classes: number): TensorSpec => ({ name: 'probabilities', datatype: 'FP32', shape: [-1, classes] })

const labels = (...v: number[]): TensorMap => ({ label: { datatype: 'INT64', shape: [v.length], data: BigInt64Array.from(v, BigInt) } })
/** One row of probabilities and the label a scikit-learn model would give with it (its argmax). */
const member = (...row: number[]): TensorMap => ({
  probabilities: { datatype: 'FP32', shape: [1, row.length], data: Float32Array.from(row) },
  ...labels(row.indexOf(Math.max(...row))),
})
const rows = (...r: number[][]): TensorMap => ({
  probabilities: { datatype: 'FP32', shape: [r.length, r[0]!.length], data: Float32Array.from(r.flat()) },
  ...labels(...r.map((row) => row.indexOf(Math.max(...row)))),
})

const ok = (index: number, outputs: TensorMap): Outcome => ({ status: 'ok', index, outputs, latencyMs: 5 })
const err = (index: number): Outcome => ({ status: 'error', index, error: { code: 'MODEL_ERROR', message: 'boom' }, latencyMs: 5 })

const ensemble = (n: number, outputs: TensorSpec[]): EnsembleShape => ({
  name: 'e',
  models: Array.from({ length: n }, (_, i) => `m${i}`),
  outputs,
  staticQuality: [],
})
const collector = (n: number, options: Options, outputs: TensorSpec[] = [probSpec(2), labelSpec]): Collector =>
  majorityVote.create(parsed(majorityVote, options), ensemble(n, outputs)).collector()
const soft = (n: number, options: Options = {}, classes = 2): Collector => collector(n, { mode: 'soft', ...options }, [probSpec(classes), labelSpec])
const labelOf = (d: Decision | undefined): number | undefined =>
  d?.kind === 'answer' && d.outputs !== null ? Number(d.outputs['label']!.data[0]) : undefined

describe('majority-vote: weights', () => {
  it('a member holding more than half the weight decides alone, at once', () => {
    const { decision, at } = run(collector(3, { weights: { m0: 3 } }, [labelSpec]), [ok(0, labels(4)), ok(1, labels(5))])
    expect(at).toBe(0)
    expect(decision).toMatchObject({ chosen: 0, reason: 'majority', votes: { 4: 3 } })
  })

  it('two light members that agree wait for the heavy one, which outvotes them', () => {
    const steps: Step[] = [ok(1, labels(1)), ok(2, labels(1)), ok(0, labels(2))]
    const { decision, at } = run(collector(3, { weights: { m0: 3 } }, [labelSpec]), steps)
    expect(at).toBe(2)
    expect(decision).toMatchObject({ chosen: 0, reason: 'majority', votes: { 1: 2, 2: 3 } })
    // Unweighted, the same timeline is decided by the two that agree, before the third.
    expect(run(collector(3, {}, [labelSpec]), steps)).toMatchObject({ at: 1, decision: { chosen: 1, votes: { 1: 2 } } })
  })

  it('quorum N counts weight', () => {
    const { decision, at } = run(collector(3, { quorum: 4, weights: { m2: 4 } }, [labelSpec]), [ok(0, labels(1)), ok(2, labels(1))])
    expect(at).toBe(1)
    expect(decision).toMatchObject({ chosen: 0, reason: 'quorum', votes: { 1: 5 } })
  })

  it('spareable members follow the weight: the heavy first member spares the others', () => {
    const spareable = (options: Options, outputs: TensorSpec[] = [probSpec(2), labelSpec]): readonly boolean[] | undefined =>
      majorityVote.create(parsed(majorityVote, options), ensemble(3, outputs)).spareable
    expect(spareable({ weights: { m0: 3 } })).toEqual([false, true, true])
    expect(spareable({ weights: { m2: 3 } })).toEqual([false, false, false])
    expect(spareable({ mode: 'soft' })).toEqual([false, false, true])
    expect(spareable({ mode: 'soft', weights: { m0: 2.5 } })).toEqual([false, true, true])
  })
})

describe('majority-vote: mode soft', () => {
  it('sums probabilities: one confident member outweighs two lukewarm ones that a hard vote would follow', () => {
    const steps: Step[] = [ok(0, member(0.9, 0.1)), ok(1, member(0.45, 0.55)), ok(2, member(0.45, 0.55))]
    const { decision, at } = run(soft(3), steps)
    expect(at).toBe(2)
    expect(decision).toMatchObject({ kind: 'answer', chosen: 0, reason: 'soft', votes: { 0: 1.8, 1: 1.2 } })
    const averaged = decision?.kind === 'answer' ? Array.from(decision.outputs!['probabilities']!.data as Float32Array) : []
    expect(averaged).toEqual([expect.closeTo(0.6, 6), expect.closeTo(0.4, 6)])
    expect(labelOf(decision)).toBe(0)
    expect(labelOf(run(collector(3, {}), steps).decision)).toBe(1)
  })

  it('answers the probabilities in the voters\' own datatype and shape (FP64 [rows, 1, classes]), as the ensemble declares them', () => {
    const fp64 = (...row: number[]): TensorMap => ({ probabilities: { datatype: 'FP64', shape: [1, 1, row.length], data: Float64Array.from(row) } })
    const spec: TensorSpec = { name: 'probabilities', datatype: 'FP64', shape: [-1, 1, 2] }
    const { decision } = run(collector(2, { mode: 'soft' }, [spec]), [ok(0, fp64(0.9, 0.1)), ok(1, fp64(0.3, 0.7))])
    expect(decision).toMatchObject({ kind: 'answer', reason: 'soft' })
    const answer = decision?.kind === 'answer' ? decision.outputs!['probabilities']! : undefined
    expect(answer).toMatchObject({ datatype: 'FP64', shape: [1, 1, 2] })
    expect(answer?.data).toBeInstanceOf(Float64Array)
    expect(Array.from(answer!.data as Float64Array)).toEqual([expect.closeTo(0.6, 12), expect.closeTo(0.4, 12)])
  })

  it('stops once the weight still to come cannot change the winner', () => {
    expect(run(soft(3), [ok(2, member(1, 0)), ok(0, member(0.9, 0.1)), ok(1, member(0, 1))]).at).toBe(1)
    // 1.2 against 0.8: one more member could still move 1.0 to class 1, so it waits.
    expect(run(soft(3), [ok(0, member(0.6, 0.4)), ok(1, member(0.6, 0.4)), ok(2, member(0, 1))])).toMatchObject({
      at: 2,
      decision: { chosen: 2, votes: { 0: 1.2, 1: 1.8 } },
    })
  })

  it('weights scale each member\'s probabilities', () => {
    const { decision } = run(soft(3, { weights: { m2: 4 } }), [ok(0, member(0.8, 0.2)), ok(1, member(0.8, 0.2)), ok(2, member(0.3, 0.7))])
    expect(decision).toMatchObject({ chosen: 2, votes: { 0: 2.8, 1: 3.2 } })
  })

  it('an exact tie goes to the class the lowest-index member rates higher', () => {
    const { decision } = run(soft(2), [ok(1, member(0.25, 0.75)), ok(0, member(0.75, 0.25))])
    expect(decision).toMatchObject({ chosen: 0, votes: { 0: 1, 1: 1 } })
    expect(labelOf(decision)).toBe(0)
  })

  it('a winner no single member chose: chosen null, the label built from the class index', () => {
    const { decision } = run(soft(2, {}, 3), [ok(0, member(0.5, 0.45, 0.05)), ok(1, member(0.05, 0.45, 0.5))])
    expect(decision).toMatchObject({ kind: 'answer', chosen: null, reason: 'soft' })
    expect(labelOf(decision)).toBe(1)
  })

  it('a batch decides each row; the label of a row comes from a member that chose its winner', () => {
    const a = rows([0.9, 0.1, 0], [0.2, 0.7, 0.1])
    const b = rows([0.1, 0.2, 0.7], [0.6, 0.3, 0.1])
    const c = rows([0.2, 0.1, 0.7], [0.5, 0.4, 0.1])
    const { decision } = run(soft(3, {}, 3), [ok(0, a), ok(1, b), ok(2, c)])
    expect(decision).toMatchObject({ chosen: null, reason: 'soft' })
    expect(decision).toHaveProperty('outputs.label.data', BigInt64Array.of(2n, 1n))
  })

  it('rows are normalized; a member without usable probabilities does not vote', () => {
    const { decision } = run(soft(3), [ok(0, member(4, 0)), ok(1, member(0, 0)), ok(2, member(1, 3))])
    expect(decision).toMatchObject({ chosen: 0, votes: { 0: 1.25, 1: 0.75 } })
    expect(run(soft(2), [err(0), ok(1, member(0, 0))]).decision).toMatchObject({ code: 'ALL_MODELS_FAILED' })
  })

  it('at the deadline, answers from the members that did', () => {
    const { decision, at } = run(soft(3), [ok(1, member(0.4, 0.6)), err(0), 'deadline'])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ chosen: 1, reason: 'soft' })
    expect(run(soft(3), ['deadline']).decision).toMatchObject({ code: 'DEADLINE_EXCEEDED' })
  })

  it('at the deadline, fails DEADLINE_EXCEEDED when the only member in was refused as a voter (never NaN probabilities)', () => {
    for (const unusable of [member(0, 0), member(Number.NaN, 1), member(Number.POSITIVE_INFINITY, 1)]) {
      const { decision } = run(soft(3), [ok(0, unusable), 'deadline'])
      expect(decision).toMatchObject({ kind: 'fail', code: 'DEADLINE_EXCEEDED' })
    }
    // A member with another number of rows votes once the refused first one is out of the way.
    const { decision } = run(soft(3), [ok(0, member(0, 0)), ok(1, rows([0.3, 0.7], [0.8, 0.2])), 'deadline'])
    expect(decision).toMatchObject({ kind: 'answer', chosen: 1, reason: 'soft' })
    expect(Array.from((decision as { outputs: TensorMap }).outputs['probabilities']!.data as Float32Array)).toEqual(Array.from(Float32Array.of(0.3, 0.7, 0.8, 0.2)))
  })
})

describe('majority-vote: soft and weight options', () => {
  const check = (options: Options, outputs: TensorSpec[] = [probSpec(2), labelSpec]): string[] =>
    majorityVote.check!(parsed(majorityVote, options), ensemble(3, outputs))

  it('rejects a weight for a model not in the ensemble, soft without probabilities, weights on a regression', () => {
    expect(check({ mode: 'soft', weights: { m1: 2 } })).toEqual([])
    expect(check({ weights: { nope: 2 } })).toEqual(['weights: "nope" is not a model of ensemble "e" (m0, m1, m2)'])
    expect(check({ mode: 'soft' }, [labelSpec])[0]).toMatch(/mode soft needs a probabilities output/)
    expect(check({ mode: 'soft', output: 'label' })[0]).toMatch(/output "label" is not a probabilities output/)
    expect(check({ weights: { m0: 2 } }, [{ name: 'value', datatype: 'FP32', shape: [-1, 1] }])[0]).toMatch(/weights apply to classification/)
    expect(check({ quorum: 5, weights: { m0: 3 } })).toEqual([])
  })

  it('refuses quorum and on_no_majority with mode soft at parse', () => {
    expect(() => parsed(majorityVote, { mode: 'soft', quorum: 2 })).toThrow(/quorum: quorum applies to hard votes/)
    expect(() => parsed(majorityVote, { mode: 'soft', on_no_majority: 'error' })).toThrow(/on_no_majority: /)
  })
})

// A member's answer in the property tests: a failure, or probabilities in quarters (exact
// in binary, so ties are real ties) with the label a model would give.
// Certain answers (one class at 1) come often: they are what makes a tally end in a tie.
const quarters = (classes: number): fc.Arbitrary<number[]> =>
  fc.oneof(fc.integer({ min: 0, max: classes - 1 }).map((c) => Array.from({ length: classes }, (_, k) => (k === c ? 1 : 0))), spread(classes))
const spread = (classes: number): fc.Arbitrary<number[]> =>
  fc.array(fc.integer({ min: 0, max: classes - 1 }), { minLength: 4, maxLength: 4 }).map((picks) => {
    const row = new Array<number>(classes).fill(0)
    for (const c of picks) row[c]! += 0.25
    return row
  })
const scenario = fc.integer({ min: 2, max: 4 }).chain((classes) =>
  fc.integer({ min: 1, max: 6 }).chain((n) =>
    fc.record({
      classes: fc.constant(classes),
      answers: fc.array(fc.option(quarters(classes), { freq: 5 }), { minLength: n, maxLength: n }),
      weights: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: n, maxLength: n }),
      order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
    }),
  ),
)

/** The winner over every member, computed directly: most (weighted) mass or votes, ties by model order. */
function expected(answers: (number[] | null)[], weights: number[], softMode: boolean): number | undefined {
  const classes = answers.find((a) => a !== null)?.length
  if (classes === undefined) return undefined
  const score = new Array<number>(classes).fill(0)
  answers.forEach((a, i) => {
    if (a === null) return
    if (softMode) a.forEach((p, c) => (score[c]! += weights[i]! * p))
    else score[a.indexOf(Math.max(...a))]! += weights[i]!
  })
  const rank = (c: number): number[] => answers.flatMap((a) => (a === null ? [] : [softMode ? a[c]! : a.indexOf(Math.max(...a)) === c ? 1 : 0]))
  let best = 0
  for (let c = 1; c < classes; c++) {
    if (score[c]! > score[best]!) best = c
    else if (score[c] === score[best]) {
      // Model order: the first member that tells them apart; for hard votes, the class whose first voter comes first.
      const a = rank(c)
      const b = rank(best)
      const k = a.findIndex((v, i) => v !== b[i])
      if (k >= 0 && a[k]! > b[k]!) best = c
    }
  }
  return best
}

describe('majority-vote: early exit is exact (property)', () => {
  for (const mode of ['hard', 'soft'] as const) {
    it(`${mode}: whatever the arrival order, the early decision is the decision with all members`, () => {
      fc.assert(
        fc.property(scenario, ({ classes, answers, weights, order }) => {
          const w = Object.fromEntries(weights.map((x, i) => [`m${i}`, x]))
          const c = collector(answers.length, { mode, weights: w }, [probSpec(classes), labelSpec])
          const steps: Step[] = order.map((i) => (answers[i] === null ? err(i) : ok(i, member(...answers[i]!))))
          const { decision } = run(c, steps)
          const want = expected(answers, weights, mode === 'soft')
          if (want === undefined) expect(decision).toMatchObject({ code: 'ALL_MODELS_FAILED' })
          else expect(labelOf(decision)).toBe(want)
        }),
        { numRuns: 500 },
      )
    })
  }
})

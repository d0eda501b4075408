// Scripted timelines for best-quality. `at` is the step (0-based, in arrival order) whose
// outcome produced the decision.
import { describe, expect, it } from 'vitest'
import { parsed, run } from './timeline.ts'
import type { Static } from 'typebox'
import { bestQuality, uncalibratedWarning, type BestQualitySchema } from '../../src/collectors/best-quality.ts'
import type { Calibration } from '../../src/config/calibration.ts'
import { meanCalibratedRowMax, meanRowMax } from '../../src/collectors/outputs.ts'
import type { Collector, EnsembleShape } from '../../src/collectors/types.ts'
import type { TensorMap, TensorSpec } from '../../src/tensor/index.ts'
import type { Outcome } from '../../src/types.ts'

type BestQualityOptions = Static<typeof BestQualitySchema>


const probSpec: TensorSpec = { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] }
const labelSpec: TensorSpec = { name: 'label', datatype: 'INT64', shape: [-1] }
const confSpec: TensorSpec = { name: 'confidence', datatype: 'FP64', shape: [-1] }

/** One row per argument: [p, 1 - p]. */
const probs = (...p: number[]): TensorMap => ({
  probabilities: { datatype: 'FP32', shape: [p.length, 2], data: Float32Array.from(p.flatMap((x) => [x, 1 - x])) },
})
const label = (v: number): TensorMap => ({ label: { datatype: 'INT64', shape: [1], data: BigInt64Array.of(BigInt(v)) } })
const confidence = (...c: number[]): TensorMap => ({ ...label(0), confidence: { datatype: 'FP64', shape: [c.length], data: Float64Array.from(c) } })

const ok = (index: number, outputs: TensorMap): Outcome => ({ status: 'ok', index, outputs, latencyMs: 5 })
const err = (index: number): Outcome => ({ status: 'error', index, error: { code: 'MODEL_ERROR', message: 'boom' }, latencyMs: 5 })

const ensemble = (n: number, outputs: TensorSpec[] = [probSpec], staticQuality: (number | undefined)[] = []): EnsembleShape => ({
  name: 'e',
  models: Array.from({ length: n }, (_, i) => `m${i}`),
  outputs,
  staticQuality,
})
const collector = (n: number, options: BestQualityOptions = {}, outputs?: TensorSpec[], staticQuality?: (number | undefined)[]): Collector =>
  bestQuality.create(parsed(bestQuality, options), ensemble(n, outputs, staticQuality)).collector()

describe('best-quality', () => {
  it('good_enough: the first answer over the bar returns at once', () => {
    const { decision, at } = run(collector(3, { good_enough: 0.9 }), [ok(1, probs(0.8)), ok(2, probs(0.05)), ok(0, probs(0.99))])
    // model 2's [0.05, 0.95] has max probability 0.95.
    expect(at).toBe(1)
    expect(decision).toEqual({ kind: 'answer', chosen: 2, reason: 'good-enough', outputs: probs(0.05), votes: null })
  })

  it('without good_enough, waits for all and takes the highest quality', () => {
    const { decision, at } = run(collector(3), [ok(0, probs(0.7)), ok(1, probs(0.8)), ok(2, probs(0.6))])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ chosen: 1, reason: 'best-quality', outputs: probs(0.8), votes: null })
  })

  it('none good enough: best quality once all have arrived', () => {
    const { decision, at } = run(collector(2, { good_enough: 0.95 }), [ok(1, probs(0.9)), ok(0, probs(0.6))])
    expect(at).toBe(1)
    expect(decision).toMatchObject({ chosen: 1, reason: 'best-quality' })
  })

  it('ties break by model order, whatever the arrival order', () => {
    const { decision } = run(collector(3), [ok(2, probs(0.75)), ok(1, probs(0.5)), ok(0, probs(0.25))])
    // 0.75 and 0.25 both have max probability 0.75.
    expect(decision).toMatchObject({ chosen: 0, reason: 'best-quality' })
  })

  it('quality of a batch is the mean of each row\'s max probability', () => {
    // m0: (0.9 + 0.5) / 2 = 0.7; m1: (0.6 + 0.85) / 2 = 0.725, though m0 has the best single row.
    const { decision } = run(collector(2), [ok(1, probs(0.6, 0.85)), ok(0, probs(0.9, 0.5))])
    expect(decision).toMatchObject({ chosen: 1 })
  })

  it('quality_output: the mean of that output', () => {
    const outputs = [labelSpec, confSpec]
    const { decision, at } = run(collector(3, { quality_output: 'confidence', good_enough: 0.8 }, outputs), [
      ok(0, confidence(0.9, 0.6)),
      ok(1, confidence(0.7)),
      ok(2, confidence(0.85, 0.8)),
    ])
    expect(at).toBe(2)
    expect(decision).toMatchObject({ chosen: 2, reason: 'good-enough' })
  })

  it('static quality from config when the outputs carry none; unset counts as 0', () => {
    const c = (options: BestQualityOptions = {}): Collector => collector(3, options, [labelSpec], [0.5, 0.9, undefined])
    expect(run(c(), [ok(2, label(1)), ok(0, label(2)), ok(1, label(3))]).decision).toMatchObject({ chosen: 1, reason: 'best-quality' })
    const early = run(c({ good_enough: 0.85 }), [ok(0, label(2)), ok(1, label(3)), ok(2, label(1))])
    expect(early.at).toBe(1)
    expect(early.decision).toMatchObject({ chosen: 1, reason: 'good-enough', outputs: label(3) })
  })

  it('a static quality from config stands in for the model\'s own maximum probability, and validate does not count it as compared', () => {
    // m1 (a forest, say) is sure of itself at 0.99, but the operator rates it 0.1: two networks at 0.6 beat it.
    const staticQuality = [undefined, 0.1, undefined]
    const steps = [ok(0, probs(0.6)), ok(2, probs(0.6)), ok(1, probs(0.99))]
    expect(run(collector(3, {}, [probSpec], staticQuality), steps).decision).toMatchObject({ chosen: 0, reason: 'best-quality' })
    expect(uncalibratedWarning(parsed(bestQuality, {}), ensemble(3, [probSpec], staticQuality), ['neural', 'trees', 'neural'])).toBeUndefined()
    // Over a calibration too, and it can clear good_enough.
    const rated = bestQuality.create(parsed(bestQuality, { good_enough: 0.9 }), { ...ensemble(2, [probSpec], [0.95]), calibrations: [3] }).collector()
    expect(run(rated, [ok(0, probs(0.6)), ok(1, probs(0.99))])).toMatchObject({ at: 0, decision: { chosen: 0, reason: 'good-enough' } })
    // A declared quality_output still comes first.
    const declared = collector(2, { quality_output: 'confidence' }, [labelSpec, confSpec], [0.99, undefined])
    expect(run(declared, [ok(0, confidence(0.2)), ok(1, confidence(0.5))]).decision).toMatchObject({ chosen: 1 })
  })

  it('at the deadline, the best of what arrived', () => {
    // m3 is late; m1's [0.2, 0.8] scores 0.8 against m2's 0.7.
    const { decision, at } = run(collector(4, { good_enough: 0.99 }), [ok(2, probs(0.7)), err(0), ok(1, probs(0.2)), 'deadline'])
    expect(at).toBe(3)
    expect(decision).toMatchObject({ chosen: 1, reason: 'best-quality' })
  })

  it('failures are skipped; all fail → ALL_MODELS_FAILED on the last one', () => {
    expect(run(collector(2), [err(0), ok(1, probs(0.5))]).decision).toMatchObject({ chosen: 1, reason: 'best-quality' })
    const { decision, at } = run(collector(2), [err(1), err(0)])
    expect(at).toBe(1)
    expect(decision).toEqual({ kind: 'fail', code: 'ALL_MODELS_FAILED', reason: 'all-failed', votes: null })
  })

  it('everything after the deadline: DEADLINE_EXCEEDED', () => {
    expect(run(collector(2), ['deadline']).decision).toEqual({ kind: 'fail', code: 'DEADLINE_EXCEEDED', reason: 'deadline', votes: null })
  })

  it('check() rejects an unknown quality_output', () => {
    expect(bestQuality.check!(parsed(bestQuality, { quality_output: 'confidence' }), ensemble(2, [labelSpec, confSpec]))).toEqual([])
    expect(bestQuality.check!(parsed(bestQuality, { quality_output: 'nope' }), ensemble(2))[0]).toMatch(/quality_output "nope"/)
  })

  it('needs every member unless good_enough lets an early answer spare the rest', () => {
    expect(bestQuality.create(parsed(bestQuality, {}), ensemble(3)).spareable).toEqual([false, false, false])
    expect(bestQuality.create(parsed(bestQuality, { good_enough: 0.9 }), ensemble(3)).spareable).toEqual([false, true, true])
  })
})

describe('best-quality: calibration', () => {
  const calibrated = (calibrations: (Calibration | undefined)[]): Collector =>
    bestQuality.create(parsed(bestQuality, {}), { ...ensemble(2), calibrations }).collector()

  it('compares temperature-scaled maxima: a tempered overconfident model loses to a calibrated one', () => {
    const steps = [ok(0, probs(0.9)), ok(1, probs(0.8))]
    expect(run(collector(2), steps).decision).toMatchObject({ chosen: 0, reason: 'best-quality' })
    // m0 at T = 3: 1 / (1 + (0.1 / 0.9)^(1/3)) = 0.675 < 0.8.
    expect(run(calibrated([3, undefined]), steps).decision).toMatchObject({ chosen: 1, reason: 'best-quality' })
    // T < 1 sharpens: m1 at T = 0.5 scores 1 / (1 + 0.25^2) = 0.941 > 0.9.
    expect(run(calibrated([undefined, 0.5]), steps).decision).toMatchObject({ chosen: 1 })
  })

  it('compares isotonically mapped maxima: an overconfident model worth 0.7 loses to a calibrated 0.8', () => {
    const steps = [ok(0, probs(0.99)), ok(1, probs(0.8))]
    const overconfident = { confidence: Float64Array.of(0.5, 0.99), accuracy: Float64Array.of(0.5, 0.7) }
    expect(run(calibrated([overconfident, undefined]), steps).decision).toMatchObject({ chosen: 1, reason: 'best-quality' })
    const honest = { confidence: Float64Array.of(0.5, 0.99), accuracy: Float64Array.of(0.5, 0.95) }
    expect(run(calibrated([honest, undefined]), steps).decision).toMatchObject({ chosen: 0, reason: 'best-quality' })
  })

  it('warns when uncalibrated models of several families (or of families not known) are compared by raw maximum probability', () => {
    const options = parsed(bestQuality, {})
    expect(uncalibratedWarning(options, ensemble(3), ['trees', 'neural', 'trees'])).toMatch(/across model families \(m0: trees, m1: neural, m2: trees\) and m0, m1, m2 are not calibrated/)
    expect(uncalibratedWarning(options, ensemble(3))).toMatch(/\(m0: unknown, m1: unknown, m2: unknown\) and m0, m1, m2 are not calibrated/)
    expect(uncalibratedWarning(options, ensemble(2), ['knn', 'unknown'])).toMatch(/m1: unknown/)
    expect(uncalibratedWarning(options, { ...ensemble(2), calibrations: [1.2, undefined] }, ['linear', 'knn'])).toMatch(/m1 is not calibrated/)
    expect(uncalibratedWarning(options, { ...ensemble(2), calibrations: [1.2, 0.8] }, ['linear', 'knn'])).toBeUndefined()
    expect(uncalibratedWarning(options, ensemble(1))).toBeUndefined()
    expect(uncalibratedWarning(parsed(bestQuality, { quality_output: 'confidence' }), ensemble(2, [confSpec]))).toBeUndefined()
  })

  it('does not warn for raw maxima of one family, but does when only some of them are tempered', () => {
    const options = parsed(bestQuality, {})
    expect(uncalibratedWarning(options, ensemble(3), ['trees', 'trees', 'trees'])).toBeUndefined()
    expect(uncalibratedWarning(options, { ...ensemble(2), calibrations: [1.5, undefined] }, ['trees', 'trees'])).toMatch(/compares calibrated maxima with raw ones: m1 is not calibrated/)
    // A model with a static quality is not compared by its maximum: the rest are one family.
    expect(uncalibratedWarning(options, { ...ensemble(3), staticQuality: [undefined, 0.9, undefined] }, ['neural', 'trees', 'neural'])).toBeUndefined()
  })
})

describe('meanCalibratedRowMax', () => {
  it('is the largest of softmax(log p / T), row by row', () => {
    const t = probs(0.7, 0.2).probabilities
    expect(meanCalibratedRowMax(t, 1)).toBeCloseTo(meanRowMax(t), 6)
    const softmaxMax = (p: number[], T: number): number => {
      const e = p.map((x) => Math.exp(Math.log(x) / T))
      return Math.max(...e) / e.reduce((a, b) => a + b, 0)
    }
    expect(meanCalibratedRowMax(t, 2.5)).toBeCloseTo((softmaxMax([0.7, 0.3], 2.5) + softmaxMax([0.2, 0.8], 2.5)) / 2, 6)
    // A zero probability stays zero at any temperature.
    expect(meanCalibratedRowMax(probs(1).probabilities, 4)).toBe(1)
  })
})

describe('best-quality: answers that are not probabilities', () => {
  const row = (...values: number[]): TensorMap => ({ probabilities: { datatype: 'FP32', shape: [1, values.length], data: Float32Array.from(values) } })
  const threeClasses: TensorSpec = { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }
  const isotonic = { confidence: Float64Array.of(0.5, 0.99), accuracy: Float64Array.of(0.5, 0.9) }
  const broken = [row(Infinity, 0, 0), row(1e30, 0, 0), row(NaN, 0, 0), row(2.5, -3, 0.1), row(0.9, -0.2, 0.3)]
  const good = row(0.97, 0.02, 0.01)

  it('a row with Infinity, a logit or NaN never beats a real answer, nor clears good_enough, on any scoring path', () => {
    for (const calibration of [undefined, 2, isotonic] as (Calibration | undefined)[]) {
      for (const options of [{}, { good_enough: 0.9 }] as BestQualityOptions[]) {
        for (const bad of broken) {
          const shape = { ...ensemble(2, [threeClasses]), calibrations: [calibration, calibration] }
          const c = bestQuality.create(parsed(bestQuality, options), shape).collector()
          const { decision } = run(c, [ok(0, bad), ok(1, good)])
          expect(decision, `${String(bad.probabilities!.data[0])} calibrated ${JSON.stringify(calibration)}`).toMatchObject({ chosen: 1 })
        }
      }
    }
  })

  it('a probability a hair over 1 (FP32 rounding in the model) is still a probability, and scores as 1', () => {
    expect(meanRowMax(row(1.0000001, 0, 0).probabilities)).toBe(1)
    // FP16 arithmetic in the model rounds to 2^-10: still probabilities there, not in FP32.
    expect(meanRowMax({ datatype: 'FP16', shape: [1, 3], data: Float16Array.of(1.0005, -0.0004, 0) })).toBe(1)
    expect(meanRowMax({ datatype: 'FP32', shape: [1, 3], data: Float32Array.of(1.0005, -0.0004, 0) })).toBeNaN()
    const { decision } = run(collector(2, {}, [threeClasses]), [ok(0, row(0.6, 0.3, 0.1)), ok(1, row(1.0000001, 0, 0))])
    expect(decision).toMatchObject({ chosen: 1 })
  })

  it('such an answer still wins when nothing else answered', () => {
    const { decision } = run(collector(2, {}, [threeClasses]), [ok(0, row(Infinity, 0, 0)), err(1)])
    expect(decision).toMatchObject({ chosen: 0, reason: 'best-quality' })
  })

  it('a quality_output of Infinity scores lowest', () => {
    const { decision } = run(collector(2, { quality_output: 'confidence', good_enough: 0.9 }, [labelSpec, confSpec]), [ok(0, confidence(Infinity)), ok(1, confidence(0.5))])
    expect(decision).toMatchObject({ chosen: 1, reason: 'best-quality' })
  })
})

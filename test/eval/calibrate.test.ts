// Temperature fitting: the temperature that makes the probabilities honest about how often
// the top class is right.
import { describe, expect, it } from 'vitest'
import { fitIsotonic, fitTemperature, nll, RowsOf, temperatureUnpinned } from '../../src/eval/calibrate.ts'
import { isotonicAt } from '../../src/collectors/outputs.ts'

/** n rows of 2 classes whose top class has probability `p`, right a share `hit` of the time: one flat array, 2 a row. */
function rows(n: number, p: number, hit: number): { probs: Float64Array; labels: number[] } {
  const probs = Float64Array.from({ length: 2 * n }, (_, k) => (k % 2 === 0 ? p : 1 - p))
  const labels = Array.from({ length: n }, (_, i) => (i < Math.round(n * hit) ? 0 : 1))
  return { probs, labels }
}

describe('temperatureUnpinned', () => {
  it('is false where the rows pin the temperature down (an overconfident model, wrong on some rows)', () => {
    const { probs, labels } = rows(100, 0.99, 0.8)
    expect(temperatureUnpinned(probs, 2, labels, fitTemperature(probs, 2, labels).temperature)).toBe(false)
  })

  it('is true where the range chose it: right on every row (a sharper map always fits better), or certain and right (every temperature fits)', () => {
    for (const p of [0.8, 1]) {
      const { probs, labels } = rows(20, p, 1)
      expect(temperatureUnpinned(probs, 2, labels, fitTemperature(probs, 2, labels).temperature), `p = ${p}`).toBe(true)
    }
  })
})

describe('fitTemperature', () => {
  it('tempers an overconfident model (says 0.99, right 80% of the time): T > 1, calibrated top probability near 0.8', () => {
    const { probs, labels } = rows(100, 0.99, 0.8)
    const fitted = fitTemperature(probs, 2, labels)
    expect(fitted.temperature).toBeGreaterThan(1)
    // softmax(log p / T) of the top class: 1 / (1 + (0.01 / 0.99)^(1/T)).
    expect(1 / (1 + (0.01 / 0.99) ** (1 / fitted.temperature))).toBeCloseTo(0.8, 2)
    expect(fitted.nll_after).toBeLessThan(fitted.nll_before)
    expect(fitted.rows).toBe(100)
  })

  it('sharpens an underconfident one (says 0.6, right 95% of the time): T < 1', () => {
    const { probs, labels } = rows(100, 0.6, 0.95)
    const fitted = fitTemperature(probs, 2, labels)
    expect(fitted.temperature).toBeLessThan(1)
    expect(1 / (1 + (0.4 / 0.6) ** (1 / fitted.temperature))).toBeCloseTo(0.95, 2)
  })

  it('nll floors a zero probability of the true class (finite, large)', () => {
    expect(nll(Float64Array.of(1, 0), 2, [1], 1)).toBeCloseTo(-Math.log(1e-12), 6)
  })
})

describe('RowsOf', () => {
  it('keeps rows in one flat array grown as they come; a row with a non-finite value is left out; a row of another width is refused', () => {
    const rows = new RowsOf()
    for (let r = 0; r < 1000; r++) expect(rows.add(3, (c) => r * 3 + c, 'm')).toBe(true)
    expect(rows.add(3, (c) => (c === 1 ? Number.NaN : 0), 'm')).toBe(false)
    expect(rows.add(3, () => 7, 'm')).toBe(true)
    const flat = rows.values()
    expect(flat.length).toBe(3003)
    expect(Array.from(flat.subarray(2997))).toEqual([2997, 2998, 2999, 7, 7, 7])
    // Grown geometrically: the room is under twice what the rows take.
    expect(flat.buffer.byteLength).toBeLessThan(2 * 3003 * 8)
    expect(() => rows.add(2, () => 0, "m's probabilities")).toThrow("m's probabilities: 2 values in a row after 3 in the first")
  })
})

describe('fitIsotonic', () => {
  /** Rows of 2 classes whose top class (0) has probability `p`; `right` says whether the label is 0. */
  const at = (p: number, right: boolean): [Float64Array, number] => [Float64Array.of(p, 1 - p), right ? 0 : 1]
  const isotonicOf = (pairs: [Float64Array, number][]) => fitIsotonic(Float64Array.from(pairs.flatMap((x) => [...x[0]])), 2, pairs.map((x) => x[1]))

  it('maps confidence to the share of right answers, pooling where accuracy would go down', () => {
    // 0.6: right 1 of 2; 0.7: right 0 of 1 (lower: pooled with 0.6 into 1 of 3); 0.9: right 2 of 2.
    const result = isotonicOf([at(0.6, true), at(0.6, false), at(0.7, false), at(0.9, true), at(0.9, true)])
    expect(result.isotonic).toEqual({ confidence: [0.6333, 0.9], accuracy: [0.3333, 1] })
    expect(result.rows).toBe(5)
    expect(result.brier_after).toBeLessThan(result.brier_before)
  })

  it('tells an overconfident model (says 0.99, right 80%) what it is worth', () => {
    const pairs = Array.from({ length: 100 }, (_, i) => at(0.99, i < 80))
    expect(isotonicOf(pairs).isotonic).toEqual({ confidence: [0.99], accuracy: [0.8] })
  })

  it('pools the rows of one confidence whatever their order in the file', () => {
    // 0.8 three times wrong, twice right: 0.4 either way (a running mean of 0.8s drifts below 0.8 and split them).
    const wrongFirst = [at(0.8, false), at(0.8, false), at(0.8, false), at(0.8, true), at(0.8, true)]
    expect(isotonicOf(wrongFirst).isotonic).toEqual({ confidence: [0.8], accuracy: [0.4] })
    expect(isotonicOf(wrongFirst.toReversed()).isotonic).toEqual({ confidence: [0.8], accuracy: [0.4] })
    // A block pooled by a violation takes the next rows of its last confidence in too.
    expect(isotonicOf([at(0.6, true), at(0.7, false), at(0.7, true)]).isotonic).toEqual({ confidence: [0.6667], accuracy: [0.6667] })
  })

  it('pools confidences that round to one point, not keeping one of their accuracies', () => {
    expect(isotonicOf([at(0.80001, false), at(0.80002, true)]).isotonic).toEqual({ confidence: [0.8], accuracy: [0.5] })
  })

  it('reads the map linearly between its points and flat beyond them', () => {
    const map = { confidence: Float64Array.of(0.5, 0.9), accuracy: Float64Array.of(0.4, 0.8) }
    expect(isotonicAt(map, 0.3)).toBe(0.4)
    expect(isotonicAt(map, 0.7)).toBeCloseTo(0.6, 12)
    expect(isotonicAt(map, 0.95)).toBe(0.8)
    expect(isotonicAt({ confidence: Float64Array.of(0.99), accuracy: Float64Array.of(0.8) }, 0.5)).toBe(0.8)
  })
})

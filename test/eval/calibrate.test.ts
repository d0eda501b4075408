// Temperature fitting: the temperature that makes the probabilities honest about how often
// the top class is right.
import { describe, expect, it } from 'vitest'
import { fitTemperature, nll } from '../../src/eval/calibrate.ts'

/** n rows of 2 classes whose top class has probability `p`, right a share `hit` of the time. */
function rows(n: number, p: number, hit: number): { probs: Float64Array[]; labels: number[] } {
  const probs = Array.from({ length: n }, () => Float64Array.of(p, 1 - p))
  const labels = Array.from({ length: n }, (_, i) => (i < Math.round(n * hit) ? 0 : 1))
  return { probs, labels }
}

describe('fitTemperature', () => {
  it('tempers an overconfident model (says 0.99, right 80% of the time): T > 1, calibrated top probability near 0.8', () => {
    const { probs, labels } = rows(100, 0.99, 0.8)
    const fit = fitTemperature(probs, labels)
    expect(fit.temperature).toBeGreaterThan(1)
    // softmax(log p / T) of the top class: 1 / (1 + (0.01 / 0.99)^(1/T)).
    expect(1 / (1 + (0.01 / 0.99) ** (1 / fit.temperature))).toBeCloseTo(0.8, 2)
    expect(fit.nll_after).toBeLessThan(fit.nll_before)
    expect(fit.rows).toBe(100)
  })

  it('sharpens an underconfident one (says 0.6, right 95% of the time): T < 1', () => {
    const { probs, labels } = rows(100, 0.6, 0.95)
    const fit = fitTemperature(probs, labels)
    expect(fit.temperature).toBeLessThan(1)
    expect(1 / (1 + (0.4 / 0.6) ** (1 / fit.temperature))).toBeCloseTo(0.95, 2)
  })

  it('nll floors a zero probability of the true class (finite, large)', () => {
    expect(nll([Float64Array.of(1, 0)], [1], 1)).toBeCloseTo(-Math.log(1e-12), 6)
  })
})

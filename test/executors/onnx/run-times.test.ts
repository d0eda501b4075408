// A model's recent run times: the quantile against a limit, kept as samples come and go,
// must say what sorting the ring says.
import { describe, expect, it } from 'vitest'
import { RunTimes } from '../../../src/executors/onnx/run-times.ts'

/** A repeatable sequence of run times, some over 2 ms: a linear congruential generator. */
function runs(n: number, seed: number): number[] {
  let x = seed
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31
    return x % 50 === 0 ? 5 + (x % 7) : (x % 1000) / 1000
  })
}

describe('RunTimes', () => {
  it('says whether a quantile is within its limit as the sorted ring does, as samples enter and leave it', () => {
    for (const seed of [1, 2, 3, 42]) {
      const times = new RunTimes(2)
      expect(times.quantileWithin(0.99)).toBe(false) // none yet
      for (const ms of runs(700, seed)) {
        times.add(ms)
        for (const q of [0.5, 0.9, 0.99]) expect(times.quantileWithin(q)).toBe(times.quantile(q) <= 2)
      }
    }
  })

  it('counts a sample exactly at the limit as within it', () => {
    const times = new RunTimes(2)
    times.add(2)
    expect(times.quantileWithin(0.99)).toBe(true)
    times.add(2.001)
    expect(times.quantileWithin(0.99)).toBe(false)
  })
})

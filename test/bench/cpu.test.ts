// The bench's CPU columns from /proc samples: a process's CPU per request, and the share of the
// whole box left idle over a run (what neither the gateway nor its load generator used).
import { describe, expect, it } from 'vitest'
import { cpuPerRequest, stealMs } from '../../bench/lib/cpu.ts'

describe('cpuPerRequest', () => {
  it('gives CPU µs per request and the box\'s idle share between two samples', () => {
    const before = { all: 1_000, main: 500, box: { idle: 100, steal: 0, total: 400 } }
    const after = { all: 5_000, main: 2_500, box: { idle: 160, steal: 0, total: 600 } }
    expect(cpuPerRequest(before, after, 20)).toEqual({ all: 200, main: 100, boxIdle: 0.3 })
  })

  it('leaves the idle share out where /proc/stat could not be read, or no tick passed', () => {
    expect(cpuPerRequest({ all: 0, main: 0, box: null }, { all: 10, main: 10, box: null }, 1)).toEqual({ all: 10, main: 10 })
    const box = { idle: 5, steal: 0, total: 10 }
    expect(cpuPerRequest({ all: 0, main: 0, box }, { all: 10, main: 10, box }, 1)).toEqual({ all: 10, main: 10 })
  })
})

describe('stealMs', () => {
  it('is the steal ticks between two readings in ms (a tick is 10 ms), null when either is missing', () => {
    expect(stealMs({ idle: 0, steal: 7, total: 100 }, { idle: 0, steal: 10, total: 200 })).toBe(30)
    expect(stealMs(null, { idle: 0, steal: 10, total: 200 })).toBeNull()
  })
})

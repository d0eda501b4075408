// Latency profiles: which calls of a member are delayed, and by how much.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { evalMain } from '../../src/eval/cli.ts'
import { parseLatencyProfile } from '../../src/eval/latency.ts'
import { tempDir } from '../temp-dirs.ts'

const calls = (source: (k: number) => number, n: number): number[] => Array.from({ length: n }, (_, k) => source(k))

describe('parseLatencyProfile', () => {
  it('model=ms delays every call; model=ms@fraction that fraction, evenly spread', () => {
    const profile = parseLatencyProfile('a=30, b=12.5@0.25')
    expect(calls(profile.delays.get('a')!, 3)).toEqual([30, 30, 30])
    expect(calls(profile.delays.get('b')!, 8)).toEqual([0, 0, 0, 12.5, 0, 0, 0, 12.5])
    const third = calls(parseLatencyProfile('c=5@0.33').delays.get('c')!, 300)
    expect(third.filter((v) => v > 0)).toHaveLength(99)
  })

  it('a .json file replays each model\'s measured delays in turn', () => {
    const file = join(tempDir('specserve-profile-'), 'remote.json')
    writeFileSync(file, JSON.stringify({ remote: [3, 40, 5] }))
    expect(calls(parseLatencyProfile(file).delays.get('remote')!, 5)).toEqual([3, 40, 5, 3, 40])
    writeFileSync(file, JSON.stringify({ remote: [] }))
    expect(() => parseLatencyProfile(file)).toThrow(/"remote" must be a non-empty list of delays in ms/)
  })

  it('refuses a model given twice: one delay per model', () => {
    expect(() => parseLatencyProfile('a=5,a=300@0.1')).toThrow('--latency-profile: "a" is given twice (one delay per model; a share of calls: a=ms@fraction)')
  })

  it('refuses what it cannot read', () => {
    expect(() => parseLatencyProfile('a')).toThrow(/"a" is not model=ms or model=ms@fraction/)
    expect(() => parseLatencyProfile('a=5@2')).toThrow(/fraction within 0\.\.1/)
    expect(() => parseLatencyProfile('/nope/x.json')).toThrow(/--latency-profile \/nope\/x\.json/)
  })

  it('refuses an empty item, or none at all, as every list flag does', () => {
    for (const text of ['a=5,,b=3', 'a=5,', ',a=5', 'a=5, ,b=3']) {
      expect(() => parseLatencyProfile(text), text).toThrow(`--latency-profile: "${text}" has an empty item; give delays model=ms[@fraction] separated by commas, e.g. --latency-profile a=30,b=5@0.5`)
    }
    expect(() => parseLatencyProfile(' ')).toThrow('--latency-profile: give at least one delay model=ms[@fraction] (or a .json file), e.g. --latency-profile a=30,b=5@0.5')
  })

  it('refuses a delay longer than a Node.js timer (2^31-1 ms), which would fire after 1 ms and make the member look fast', () => {
    expect(() => parseLatencyProfile('m=3000000000')).toThrow(
      /^--latency-profile: "m=3000000000": a delay must be at most 2147483647 ms \(about 24\.8 days\): Node\.js fires a longer timer at once/,
    )
    expect(() => parseLatencyProfile('a=5, m=2147483648@0.5')).toThrow(/"m=2147483648@0\.5": a delay must be at most 2147483647 ms/)
    expect(calls(parseLatencyProfile('m=2147483647').delays.get('m')!, 1)).toEqual([2147483647])
    const file = join(tempDir('specserve-profile-'), 'never.json')
    writeFileSync(file, '{"m": [5, 1e10]}')
    expect(() => parseLatencyProfile(file)).toThrow(`--latency-profile ${file}: "m": 10000000000 ms: a delay must be at most 2147483647 ms`)
    writeFileSync(file, '{"m": [1e400]}') // Infinity once parsed
    expect(() => parseLatencyProfile(file)).toThrow(`--latency-profile ${file}: "m": Infinity ms: a delay must be at most 2147483647 ms`)
  })

  it('specserve eval with such a delay: a usage error naming the limit, exit 2, before anything is read or loaded', async () => {
    const errors: string[] = []
    vi.spyOn(console, 'error').mockImplementation((text: string) => void errors.push(text))
    try {
      const out = join(tempDir('specserve-profile-'), 'out')
      expect(await evalMain(['--data', 'none.csv', '--label', 'y', '--out', out, '--latency-profile', 'm=3000000000'])).toBe(2)
    } finally {
      vi.restoreAllMocks()
    }
    expect(errors).toEqual([expect.stringMatching(/^specserve eval: --latency-profile: "m=3000000000": a delay must be at most 2147483647 ms/)])
  })
})

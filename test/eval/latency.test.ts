// Latency profiles: which calls of a member are delayed, and by how much.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
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

  it('refuses what it cannot read', () => {
    expect(() => parseLatencyProfile('a')).toThrow(/"a" is not model=ms or model=ms@fraction/)
    expect(() => parseLatencyProfile('a=5@2')).toThrow(/fraction within 0\.\.1/)
    expect(() => parseLatencyProfile('/nope/x.json')).toThrow(/--latency-profile \/nope\/x\.json/)
  })
})

// The command line's checks that run before the program loads: their level names are pino's.
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { LOG_LEVELS } from '../src/cli-line.ts'

describe('LOG_LEVELS', () => {
  it('are pino\'s levels, most severe first, and silent', () => {
    const pinoLevels = Object.entries(pino.levels.values).sort(([, a], [, b]) => b - a).map(([name]) => name)
    expect(LOG_LEVELS).toEqual([...pinoLevels, 'silent'])
  })
})

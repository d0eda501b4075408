// The version a remote model without a pinned version is shown as, from the versions its
// answers name: newer ones at once, older ones only once the shown one has gone unnamed for a
// while, and the version read at load replaced by the first answer that names any.
import { describe, expect, it } from 'vitest'
import { isNewer, ShownVersion, STALE_AFTER_MS } from '../../../src/executors/remote/shown-version.ts'

describe('isNewer', () => {
  it.each([
    ['10', '9', true],
    ['9', '10', false],
    ['3', '03', false],
    ['03', '3', false],
    ['123456789012345678901234', '123456789012345678901233', true],
    ['1.10.0', '1.9.2', true],
    ['1.1', '1.1.0', false],
    ['1.1.0', '1.1', true],
    ['v3', 'v2', true],
    ['V3', '2', true],
    ['2024-02-01', '2024-01-31', true],
    ['2024-01-31', '2024-02-01', false],
  ])('%s newer than %s: %s', (version, than, expected) => {
    expect(isNewer(version, than)).toBe(expected)
  })

  it.each([
    ['stable', '1'],
    ['2', 'canary'],
    ['1e21', '3'],
    ['3.5x', '3'],
    ['-1', '0'],
    ['', '1'],
  ])('%s and %s are not comparable', (a, b) => {
    expect(isNewer(a, b)).toBe(false)
    expect(isNewer(b, a)).toBe(false)
  })
})

describe('ShownVersion', () => {
  it('takes the first version an answer names over the one read at load, whatever it is', () => {
    const shown = new ShownVersion('7')
    expect(shown.answered('v2', 0)).toBe(true)
    expect(shown.current).toBe('v2')
    const none = new ShownVersion(undefined)
    expect(none.answered('3', 0)).toBe(true)
    expect(none.current).toBe('3')
  })

  it('moves to a newer version at its first answer and stays there while both answer (a traffic split)', () => {
    const shown = new ShownVersion('3')
    shown.answered('3', 0)
    expect(shown.answered('4', 10)).toBe(true)
    // 9 answers in 10 from version 3, one a second, for five times STALE_AFTER_MS.
    for (let i = 1; i < (5 * STALE_AFTER_MS) / 1000; i++) {
      const t = 10 + i * 1000
      if (i % 10 === 0) expect(shown.answered('4', t)).toBe(false)
      else expect(shown.answered('3', t)).toBe(false)
    }
    expect(shown.current).toBe('4')
  })

  it('moves back to an older version only once the shown one has gone unnamed for STALE_AFTER_MS (a rollback)', () => {
    const shown = new ShownVersion('3')
    shown.answered('4', 0)
    expect(shown.answered('3', STALE_AFTER_MS - 1)).toBe(false)
    expect(shown.current).toBe('4')
    expect(shown.answered('3', STALE_AFTER_MS)).toBe(true)
    expect(shown.current).toBe('3')
  })

  it('moves between versions it cannot compare only the same way', () => {
    const shown = new ShownVersion(undefined)
    shown.answered('blue', 0)
    expect(shown.answered('green', 1)).toBe(false)
    expect(shown.answered('green', STALE_AFTER_MS)).toBe(true)
    expect(shown.current).toBe('green')
  })

  it('remembers a bounded number of versions (an upstream naming a new one in every answer), never forgetting the shown one', () => {
    const shown = new ShownVersion('1')
    shown.answered('1', 0)
    for (let v = 2; v < 40; v++) shown.answered(`x${v}`, 1000 + v) // not comparable with 1: none is shown
    expect(shown.current).toBe('1')
    expect((shown as unknown as { seen: Map<string, number> }).seen.size).toBeLessThanOrEqual(9)
    // Much later: the shown one has gone unnamed, so an older answer takes over.
    expect(shown.answered('0', 10 * STALE_AFTER_MS)).toBe(true)
  })
})

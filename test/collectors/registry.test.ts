// The registry as config and third parties use it: built-ins registered on import, names
// unique, options validated by each factory's TypeBox schema, a new strategy pluggable.
import Type from 'typebox'
import Value from 'typebox/value'
import { describe, expect, it } from 'vitest'
import { getStrategy, majorityVote, registerStrategy, strategyNames } from '../../src/collectors/index.ts'
import type { EnsembleShape, StrategyFactory } from '../../src/collectors/index.ts'
import type { Outcome } from '../../src/types.ts'

const ensemble: EnsembleShape = {
  name: 'e',
  models: ['a', 'b'],
  outputs: [{ name: 'label', datatype: 'INT64', shape: [-1] }],
  staticQuality: [],
}
const ok = (index: number): Outcome => ({
  status: 'ok',
  index,
  outputs: { label: { datatype: 'INT64', shape: [1], data: BigInt64Array.of(1n) } },
  latencyMs: 1,
})

describe('strategy registry', () => {
  it('registers the built-in strategies on import', () => {
    expect(strategyNames()).toEqual(expect.arrayContaining(['deadline-fallback', 'majority-vote', 'best-quality']))
    expect(getStrategy('majority-vote')).toBe(majorityVote)
    expect(getStrategy('nope')).toBeUndefined()
  })

  it('rejects a duplicate name', () => {
    expect(() => registerStrategy({ ...majorityVote })).toThrow('strategy "majority-vote" is already registered')
  })

  it('validates options with each factory\'s schema (no extra keys, typed values)', () => {
    const mv = getStrategy('majority-vote')!.options
    expect(Value.Check(mv, {})).toBe(true)
    expect(Value.Check(mv, { quorum: 'all', on_no_majority: 'error', regression: 'mean', output: 'label' })).toBe(true)
    expect(Value.Check(mv, { quorum: 0 })).toBe(false)
    expect(Value.Check(mv, { quorum: 1.5 })).toBe(false)
    expect(Value.Check(mv, { quorom: 2 })).toBe(false)
    const bq = getStrategy('best-quality')!.options
    expect(Value.Check(bq, { good_enough: 1 })).toBe(true)
    expect(Value.Check(bq, { good_enough: 0 })).toBe(false)
    expect(Value.Check(bq, { good_enough: 1.2 })).toBe(false)
    const df = getStrategy('deadline-fallback')!.options
    expect(Value.Check(df, { fallback_after_ms: 0 })).toBe(true)
    expect(Value.Check(df, { fallback_after_ms: -1 })).toBe(false)
    expect(Value.Check(df, { hedge_after_ms: 0 })).toBe(true)
    expect(Value.Check(df, { hedge_after_ms: -1 })).toBe(false)
  })

  it('a third-party strategy can be registered, looked up and used', () => {
    const Options = Type.Object({ pick: Type.Integer({ minimum: 0 }) }, { additionalProperties: false })
    const pickOne: StrategyFactory<{ pick: number }> = {
      name: 'test-pick-one',
      options: Options,
      check: (options, shape) => (options.pick < shape.models.length ? [] : [`pick ${options.pick} is out of range`]),
      create: (options) => ({
        name: 'test-pick-one',
        collector: () => ({
          onOutcome: (o) => (o.index === options.pick && o.status === 'ok' ? { kind: 'answer', chosen: o.index, reason: 'picked', outputs: o.outputs, votes: null } : undefined),
          onDeadline: () => ({ kind: 'fail', code: 'DEADLINE_EXCEEDED', reason: 'deadline', votes: null }),
        }),
      }),
    }
    registerStrategy(pickOne)
    expect(strategyNames()).toContain('test-pick-one')
    const factory = getStrategy('test-pick-one')!
    expect(Value.Check(factory.options, { pick: 1 })).toBe(true)
    expect(factory.check!({ pick: 5 }, ensemble)).toEqual(['pick 5 is out of range'])
    const collector = factory.create({ pick: 1 }, ensemble).collector()
    expect(collector.onOutcome(ok(0))).toBeUndefined()
    expect(collector.onOutcome(ok(1))).toMatchObject({ chosen: 1, reason: 'picked' })
  })
})

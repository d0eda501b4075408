// An ensemble's own counters as a scrape (or an OTLP push) reads them: shadow runs by result
// that never go down while a shadow is still running, members started as `specserve eval`
// counts them (a member its executor refused is not one), and a new start time when a
// reload removes an ensemble and a later one adds it again. Scripted models on a fake clock
// (Date too), read through the producer both exporters read.
import type { HrTime } from '@opentelemetry/api'
import type { DataPoint, MetricData } from '@opentelemetry/sdk-metrics'
import Type from 'typebox'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { getStrategy, registerStrategy, type StrategyFactory } from '../../src/collectors/index.ts'
import { Gateway } from '../../src/gateway.ts'
import { GatewayMetrics } from '../../src/telemetry/metrics.ts'
import { configFrom } from '../helpers.ts'
import { useFakeClock } from '../starter/fake-clock.ts'
import { x } from '../starter/scripted.ts'

useFakeClock()

const gateways: Gateway[] = []
afterEach(async () => {
  vi.useRealTimers()
  await Promise.all(gateways.splice(0).map((g) => g.close()))
})

const MODELS = `
models:
  a: { kind: scripted, delay_ms: 1, label: 1 }
  broken: { kind: scripted, delay_ms: 1, fail: boom }
  refused: { kind: scripted, refuse: OVERLOADED }
  shadow: { kind: scripted, delay_ms: 300, label: 1 }
ensembles:
`
const ENSEMBLES = {
  answered: '  answered: { strategy: deadline-fallback, models: [a], budget_ms: { default: 100, max: 1000 }, shadow: { models: [shadow] } }\n',
  failed: '  failed: { strategy: deadline-fallback, models: [broken], budget_ms: { default: 100, max: 1000 }, shadow: { models: [shadow] } }\n',
  refusing: '  refusing: { strategy: deadline-fallback, models: [a, refused], budget_ms: { default: 100, max: 1000 } }\n',
  other: '  other: { strategy: deadline-fallback, models: [a] }\n',
}
type Name = keyof typeof ENSEMBLES
const configOf = (...names: Name[]) => configFrom(MODELS + names.map((n) => ENSEMBLES[n]).join(''))

async function serving(...names: Name[]): Promise<Gateway> {
  const g = new Gateway(configOf(...names))
  gateways.push(g)
  await g.load()
  return g
}

/** One collection of metric `name` (none yet: no points), as "label=value,..." → point. */
async function scrape(producer: GatewayMetrics, name: string): Promise<Map<string, DataPoint<number>>> {
  const { resourceMetrics } = await producer.collect()
  const metric = resourceMetrics.scopeMetrics[0]!.metrics.find((m: MetricData) => m.descriptor.name === name)
  const points = (metric?.dataPoints ?? []) as DataPoint<number>[]
  return new Map(points.map((p) => [Object.entries(p.attributes).map(([k, v]) => `${k}=${String(v)}`).join(','), p]))
}

/** specserve_shadow_runs of ensemble `ens`'s shadow, by result. */
async function shadowRuns(producer: GatewayMetrics, ens: string): Promise<Record<string, number>> {
  const points = await scrape(producer, 'specserve_shadow_runs')
  const at = (result: string): number => points.get(`ensemble=${ens},model=shadow,result=${result}`)!.value
  return { agreed: at('agreed'), disagreed: at('disagreed'), uncompared: at('uncompared'), error: at('error') }
}

describe('specserve_shadow_runs', () => {
  it('counts a shadow run once, as it ends: no result goes down across scrapes while one runs', async () => {
    const g = await serving('answered', 'failed')
    const producer = new GatewayMetrics(g)
    const none = { agreed: 0, disagreed: 0, uncompared: 0, error: 0 }

    // Answered at 1 ms; its shadow answers (and agrees) 300 ms later.
    const answered = g.predict({ id: 'a', ensemble: 'answered', inputs: x })
    await vi.advanceTimersByTimeAsync(2)
    expect((await answered).error).toBeNull()
    expect(await shadowRuns(producer, 'answered')).toEqual(none) // still running: in no result yet
    await vi.advanceTimersByTimeAsync(400)
    expect(await shadowRuns(producer, 'answered')).toEqual({ ...none, agreed: 1 })

    // A failed predict: its shadow answers with nothing to compare to.
    const failed = g.predict({ id: 'f', ensemble: 'failed', inputs: x })
    await vi.advanceTimersByTimeAsync(2)
    expect((await failed).error?.code).toBe('ALL_MODELS_FAILED')
    expect(await shadowRuns(producer, 'failed')).toEqual(none)
    await vi.advanceTimersByTimeAsync(400)
    expect(await shadowRuns(producer, 'failed')).toEqual({ ...none, uncompared: 1 })
  })
})

describe('specserve_predict_members_started', () => {
  it('does not count a member its executor refused (annotated skipped), as specserve eval does not', async () => {
    const g = await serving('refusing')
    const producer = new GatewayMetrics(g)
    let notSkipped = 0
    for (const id of ['r1', 'r2']) {
      const pending = g.predict({ id, ensemble: 'refusing', inputs: x })
      await vi.advanceTimersByTimeAsync(2)
      const result = await pending
      expect(result.error).toBeNull()
      expect(result.models.map((m) => [m.name, m.status, m.error?.code])).toEqual([['a', 'ok', undefined], ['refused', 'skipped', 'OVERLOADED']])
      notSkipped += result.models.filter((m) => m.status !== 'skipped').length // src/eval/run.ts's count
    }
    const started = await scrape(producer, 'specserve_predict_members_started')
    expect(started.get('ensemble=refusing')!.value).toBe(2)
    expect(started.get('ensemble=refusing')!.value).toBe(notSkipped)
  })
})

describe("an ensemble's counters", () => {
  it('start again with a new start time when a reload removes the ensemble and a later one adds it again', async () => {
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'))
    const g = await serving('answered', 'other')
    const producer = new GatewayMetrics(g)
    const predict = async (ensemble: string): Promise<void> => {
      const pending = g.predict({ id: 'p', ensemble, inputs: x })
      await vi.advanceTimersByTimeAsync(400) // its shadow too
      expect((await pending).error).toBeNull()
    }
    await predict('answered')
    await predict('answered')
    const first = (await scrape(producer, 'specserve_predict_requests')).get('ensemble=answered,outcome=ok')!
    expect(first.value).toBe(2)

    vi.setSystemTime(new Date('2030-01-01T00:10:00Z'))
    await g.reload(configOf('other'))
    vi.setSystemTime(new Date('2030-01-01T00:20:00Z'))
    await g.reload(configOf('answered', 'other'))
    await predict('answered')
    const readded: HrTime = [Date.parse('2030-01-01T00:20:00Z') / 1000, 0]
    const requests = await scrape(producer, 'specserve_predict_requests')
    expect(requests.get('ensemble=answered,outcome=ok')!.value).toBe(1) // counting again from 0...
    expect(requests.get('ensemble=answered,outcome=ok')!.startTime).toEqual(readded) // ...and saying so
    for (const name of ['specserve_predict_members_started', 'specserve_predict_deadline_reached', 'specserve_shadow_runs']) {
      for (const [labels, p] of await scrape(producer, name)) {
        if (labels.startsWith('ensemble=answered')) expect([name, labels, p.startTime]).toEqual([name, labels, readded])
      }
    }
    // An ensemble every reload kept keeps counting since it was first built.
    expect(requests.get('ensemble=other,outcome=ok')).toMatchObject({ value: 0, startTime: first.startTime })
    expect((await scrape(producer, 'specserve_predict_members_started')).get('ensemble=other')!.startTime).toEqual(first.startTime)
  })
})

describe('specserve_predict_requests', () => {
  it('has every outcome a predict can end with at 0 before its first one (rate() needs a sample before it), NO_CONSENSUS only where a vote can end so', async () => {
    const vote = '  vote: { strategy: { name: majority-vote, on_no_majority: error }, models: [a, broken] }\n'
    const plurality = '  plurality: { strategy: majority-vote, models: [a, broken] }\n'
    const g = new Gateway(configFrom(MODELS + ENSEMBLES.failed + vote + plurality))
    gateways.push(g)
    await g.load()
    const producer = new GatewayMetrics(g)
    const failed = g.predict({ id: 'f', ensemble: 'failed', inputs: x })
    await vi.advanceTimersByTimeAsync(400)
    expect((await failed).error?.code).toBe('ALL_MODELS_FAILED')
    const counts = Object.fromEntries([...(await scrape(producer, 'specserve_predict_requests'))].map(([labels, p]) => [labels, p.value]))
    const zeros = (ens: string, outcomes: string[]) => Object.fromEntries(outcomes.map((o) => [`ensemble=${ens},outcome=${o}`, 0]))
    expect(counts).toEqual({
      ...zeros('failed', ['ok', 'DEADLINE_EXCEEDED', 'CANCELLED', 'OVERLOADED']),
      'ensemble=failed,outcome=ALL_MODELS_FAILED': 1,
      ...zeros('vote', ['ok', 'DEADLINE_EXCEEDED', 'ALL_MODELS_FAILED', 'CANCELLED', 'OVERLOADED', 'NO_CONSENSUS']),
      // on_no_majority: plurality (the default) never ends NO_CONSENSUS.
      ...zeros('plurality', ['ok', 'DEADLINE_EXCEEDED', 'ALL_MODELS_FAILED', 'CANCELLED', 'OVERLOADED']),
    })
  })
  it("has a registered strategy's own failure codes at 0 too: the strategy says which it can end with", async () => {
    // A third party's vote that refuses to answer without consensus: /metrics learns it from the strategy, not from its options.
    const strict: StrategyFactory<Record<string, never>> = {
      name: 'test-strict-vote',
      options: Type.Object({}, { additionalProperties: false }),
      create: () => ({
        name: 'test-strict-vote',
        failCodes: ['NO_CONSENSUS'],
        collector: () => ({
          onOutcome: () => undefined,
          onDeadline: () => ({ kind: 'fail', code: 'NO_CONSENSUS', reason: 'no-majority', votes: null }),
        }),
      }),
    }
    if (!getStrategy(strict.name)) registerStrategy(strict)
    const g = new Gateway(configFrom(MODELS + '  strict: { strategy: test-strict-vote, models: [a] }\n'))
    gateways.push(g)
    await g.load()
    const requests = await scrape(new GatewayMetrics(g), 'specserve_predict_requests')
    expect([...requests.keys()].filter((labels) => labels.startsWith('ensemble=strict')).sort()).toEqual(
      ['ALL_MODELS_FAILED', 'CANCELLED', 'DEADLINE_EXCEEDED', 'NO_CONSENSUS', 'OVERLOADED', 'ok'].map((o) => `ensemble=strict,outcome=${o}`),
    )
  })
})

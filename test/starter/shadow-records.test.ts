// Serving records of a predict whose shadow members run after the answer: the record's
// `time` is the decision, not when the shadows finished, its `trace_id` the predict's, and
// the record goes out before the late answers of the same predict. Scripted models on a
// fake clock (Date too).
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base'
import { describe, expect, it, vi } from 'vitest'
import { kafkaSettings } from '../../src/kafka/config.ts'
import { attachRecordHooks } from '../../src/output/index.ts'
import type { PendingRecord } from '../../src/output/record.ts'
import type { RecordSink } from '../../src/output/sink.ts'
import type { Gateway } from '../../src/gateway.ts'
import { setTracer, traceIdOf } from '../../src/telemetry/tracing.ts'
import { serve, useFakeClock } from './fake-clock.ts'
import { x } from './scripted.ts'

useFakeClock()

// a and b agree at 2 ms; slow answers late, at 60 ms; the shadow answers 300 ms after the decision.
const models = '  a: { kind: scripted, delay_ms: 1 }\n  b: { kind: scripted, delay_ms: 2 }\n  slow: { kind: scripted, delay_ms: 60 }\n  shadow: { kind: scripted, delay_ms: 300 }'
const ensemble = '    strategy: majority-vote\n    models: [a, b, slow]\n    budget_ms: { default: 100, max: 1000 }\n    shadow: { models: [shadow], sample: 1 }'

interface Written {
  type: string
  time: string
  shadows?: unknown[]
  trace_id: string | null
}

/** The records written for one predict of `e`, with the Date.now() of its decision and the trace id of the answer given. */
async function recordsOf(g: Gateway, kafka: Record<string, unknown>, afterMs = 400): Promise<{ decidedAt: number; traceId: string | null; records: Written[] }> {
  const written: PendingRecord[] = []
  const sink: RecordSink = { kind: 'fake', write: (r) => void written.push(r), status: () => ({ kind: 'fake', state: 'connected' }), close: async () => {} }
  attachRecordHooks(g, sink, kafkaSettings({ kafka: { brokers: ['127.0.0.1:1'], ...kafka } }, '/tmp')!)
  const started = Date.now()
  const pending = g.predict({ id: 'shadowed', ensemble: 'e', inputs: x })
  await vi.advanceTimersByTimeAsync(2)
  const result = await pending
  expect(result.decision.reason).toBe('majority')
  await vi.advanceTimersByTimeAsync(afterMs)
  return { decidedAt: started + result.elapsed_ms, traceId: traceIdOf(result), records: written.map((r) => JSON.parse(r.encode()) as Written) }
}

describe('serving records of a predict with shadows', () => {
  it('carry the decision time and publish the result before the late answer of the same predict', async () => {
    const g = await serve(models, ensemble)
    const { decidedAt, records } = await recordsOf(g, { publish_late: true })
    expect(records.map((r) => r.type)).toEqual(['result', 'late'])
    expect(records.map((r) => r.time)).toEqual([new Date(decidedAt).toISOString(), new Date(decidedAt).toISOString()])
    // The shadows' answers are in the predict's record, not repeated in its late one.
    expect(records.map((r) => r.shadows?.length)).toEqual([1, undefined])
  })

  it('carry the trace id of the predict, the result and its late answer alike', async () => {
    setTracer(new BasicTracerProvider().getTracer('test'))
    try {
      const g = await serve(models, ensemble)
      const { traceId, records } = await recordsOf(g, { publish_late: true })
      expect(traceId).toMatch(/^[0-9a-f]{32}$/)
      expect(records.map((r) => [r.type, r.shadows?.length, r.trace_id])).toEqual([['result', 1, traceId], ['late', undefined, traceId]])
    } finally {
      setTracer(null)
    }
  })

  it('carry a shadow that never answers as an error at its time limit (the ensemble\'s max budget), not waited for', async () => {
    const g = await serve(`${models}\n  hung: { kind: scripted, hang: true }`, ensemble.replace('[shadow]', '[hung]'))
    const { records } = await recordsOf(g, {}, 1000)
    expect(records.map((r) => [r.type, r.shadows])).toEqual([
      ['result', [{ name: 'hung', version: '1', status: 'error', latency_ms: 1000, agrees: null, error: { code: 'MODEL_FAILED', message: 'shadow over its 1000 ms limit' }, outputs: null }]],
    ])
    expect(g.ensemble('e').requestStats.shadows.get('hung')).toMatchObject({ errors: 1, compared: 0 })
  })

  it('publish no late answer of a predict sampled out of the records', async () => {
    const g = await serve(models, ensemble)
    const { records } = await recordsOf(g, { publish_late: true, sample_rate: 0 })
    expect(records).toEqual([])
  })

  it('still publish the late answers when the record of the predict could not be written', async () => {
    const g = await serve(models, ensemble)
    const late: string[] = []
    g.hooks.onResult = () => {
      throw new Error('sink refused the record')
    }
    g.hooks.onLate = (result, model) => void late.push(`${result.id}:${model}`)
    const pending = g.predict({ id: 'shadowed', ensemble: 'e', inputs: x })
    await vi.advanceTimersByTimeAsync(2)
    expect((await pending).decision.reason).toBe('majority')
    await vi.advanceTimersByTimeAsync(400)
    expect(late).toEqual(['shadowed:2'])
  })
})


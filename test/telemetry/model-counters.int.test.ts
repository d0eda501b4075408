// An embedded model's own counters (specserve_model_runs) start again at 0 when a reload
// replaces the model: they must say so with a new start time, as specserve_model_calls does,
// or an OTLP consumer with cumulative temporality sees the counter go down.
import type { DataPoint, MetricData } from '@opentelemetry/sdk-metrics'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { inputFailure } from '../../src/errors.ts'
import { Gateway } from '../../src/gateway.ts'
import { GatewayMetrics } from '../../src/telemetry/metrics.ts'
import { tensorFromJson } from '../../src/tensor/index.ts'
import { configFrom, samples } from '../helpers.ts'

const cancer = samples('cancer')
const configWith = (version: string) =>
  configFrom(`
executors: { onnx_workers: 1 }
models:
  cancer-logreg: { kind: onnx, path: ../models/cancer_logreg.onnx, version: "${version}" }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-logreg], budget_ms: { default: 5000, max: 10000 } }
`)

async function points(producer: GatewayMetrics, name: string): Promise<DataPoint<number>[]> {
  const { resourceMetrics } = await producer.collect()
  return resourceMetrics.scopeMetrics[0]!.metrics.find((m: MetricData) => m.descriptor.name === name)!.dataPoints as DataPoint<number>[]
}

afterEach(() => vi.useRealTimers())

describe("an embedded model's counters", () => {
  it('start again with a new start time when a reload replaces the model', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'))
    const gateway = new Gateway(configWith('1'))
    const producer = new GatewayMetrics(gateway)
    try {
      await gateway.load()
      const predict = async (): Promise<void> => {
        const spec = gateway.ensemble('cancer').inputs[0]!
        const result = await gateway.predict({ id: 'p', ensemble: 'cancer', inputs: { input: tensorFromJson([cancer.rows[0]!], spec, inputFailure) } })
        expect(result.error).toBeNull()
      }
      await predict()
      await predict()
      const ran = (ps: DataPoint<number>[]): number => ps.reduce((sum, p) => sum + p.value, 0)
      const before = await points(producer, 'specserve_model_runs')
      expect(ran(before)).toBe(2)

      vi.setSystemTime(new Date('2030-01-01T00:10:00Z'))
      await gateway.reload(configWith('2'))
      await predict()
      const after = await points(producer, 'specserve_model_runs')
      expect(ran(after)).toBe(1) // a new model: its counts start again...
      for (const p of after) expect(p.startTime).toEqual([Date.parse('2030-01-01T00:10:00Z') / 1000, 0]) // ...and say so
      // As the gateway's own counters of that model do.
      const calls = await points(producer, 'specserve_model_calls')
      expect(calls[0]!.startTime).toEqual(after[0]!.startTime)
    } finally {
      await gateway.close()
    }
  })
})

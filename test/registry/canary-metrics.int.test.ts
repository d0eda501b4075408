// A canary's runs are counted under the version that ran: specserve_model_calls and
// specserve_model_wins get a series per version, and the serving version's stats
// (GET /v1/models/{name}) no longer include the canary's runs.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DataPoint, MetricData } from '@opentelemetry/sdk-metrics'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inputFailure } from '../../src/errors.ts'
import { GatewayMetrics } from '../../src/telemetry/metrics.ts'
import { tensorFromJson } from '../../src/tensor/index.ts'
import { silentLogger } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
const examples = join(root, 'examples')
const cancer = samples('cancer')
let dir: string
let served: Served

beforeAll(async () => {
  dir = tempDir('specserve-canary-metrics-')
  // promote_after far away: the rollout stays a canary for the whole test.
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, watch: false }
models:
  cancer-main:
    kind: onnx
    source: repository
    path: ${models}/cancer_logreg.onnx
    validation: { dataset: { path: ${examples}/cancer_holdout.csv, label: target, min_accuracy: 0.95 } }
    rollout: { canary: { weight: 0.5, promote_after: 100000, max_error_rate: 0.01, min_agreement: 0.9 } }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main], budget_ms: { default: 5000, max: 10000 } }
`,
  )
  served = await serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
})

afterAll(async () => {
  await served.stop()
})

async function collect(name: string): Promise<DataPoint<number>[]> {
  const { resourceMetrics } = await new GatewayMetrics(served.gateway).collect()
  const metric = resourceMetrics.scopeMetrics[0]!.metrics.find((m: MetricData) => m.descriptor.name === name)
  return (metric?.dataPoints ?? []) as DataPoint<number>[]
}

describe('canary metrics', () => {
  it("counts a canary's calls and wins under the canary's version, not the serving one's", async () => {
    const { gateway, app } = served
    const put = await app.inject({ method: 'PUT', url: '/v1/models/cancer-main/versions/2', headers: { 'content-type': 'application/octet-stream' }, payload: readFileSync(join(models, 'cancer_mlp.onnx')) })
    expect(put.statusCode).toBe(202)
    expect(JSON.parse(put.body).version.state).toBe('canary')

    const spec = gateway.ensemble('cancer').inputs[0]!
    const annotated = new Map<string, number>()
    // Until each version has answered a few times (weight 0.5: a handful of predicts).
    for (let i = 0; (annotated.get('1') ?? 0) < 5 || (annotated.get('2') ?? 0) < 5; i++) {
      const result = await gateway.predict({ id: `c${i}`, ensemble: 'cancer', inputs: { input: tensorFromJson([cancer.rows[i % cancer.rows.length]!], spec, inputFailure) } })
      expect(result.error).toBeNull()
      const version = result.models[0]!.version
      annotated.set(version, (annotated.get(version) ?? 0) + 1)
    }

    const calls = await collect('specserve_model_calls')
    const ok = (version: string): number | undefined => calls.find((p) => p.attributes.version === version && p.attributes.status === 'ok')?.value
    expect(ok('1')).toBe(annotated.get('1'))
    expect(ok('2')).toBe(annotated.get('2'))
    const wins = await collect('specserve_model_wins')
    expect(wins.find((p) => p.attributes.version === '2')?.value).toBe(annotated.get('2'))

    // The serving version's own stats: its runs only.
    const stats = JSON.parse((await app.inject('/v1/models/cancer-main')).body).stats
    expect(stats.ok).toBe(annotated.get('1'))
  })
})

// Shadow members on real ONNX models: they run after the answer (a shadow slower than the
// budget never delays it), are never chosen, their answers and agreement land in the serving
// record, and agreement per shadow model is counted. Config mistakes are refused.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/config/yaml.ts'
import { inputFailure } from '../../src/errors.ts'
import { Gateway } from '../../src/gateway.ts'
import { tensorFromJson } from '../../src/tensor/index.ts'
import type { PredictRequest, PredictResult } from '../../src/types.ts'
import { configFrom, root, samples } from '../helpers.ts'

const models = join(root, 'models')
const cancer = samples('cancer')

const yaml = (shadow: string, extra = ''): string => `
executors: { onnx_workers: 1 }
models:
  cancer-logreg: { kind: onnx, path: ${models}/cancer_logreg.onnx, version: "4" }
  cancer-mlp: { kind: onnx, path: ${models}/cancer_mlp.onnx, version: "2" }
  cancer-slow: { kind: onnx, path: ${models}/cancer_slow.onnx, placement: worker }
  wine-logreg: { kind: onnx, path: ${models}/wine_logreg.onnx }
ensembles:
  cancer:
    strategy: deadline-fallback
    models: [cancer-logreg]
    budget_ms: { default: 1000, max: 2000 }
    shadow: ${shadow}
${extra}`

let gateway: Gateway
const records: { result: PredictResult; req: PredictRequest }[] = []
let recorded: (() => void) | undefined

const request = (row: number): PredictRequest => ({
  id: `row-${row}`,
  ensemble: 'cancer',
  inputs: { input: tensorFromJson([cancer.rows[row]], gateway.ensemble('cancer').inputs[0]!, inputFailure) },
})

beforeAll(async () => {
  gateway = new Gateway(configFrom(yaml('{ models: [cancer-mlp, cancer-slow], sample: 1 }')))
  gateway.hooks.onResult = (result, req) => {
    records.push({ result, req })
    recorded?.()
  }
  await gateway.load()
})
afterAll(() => gateway.close())

describe('shadow members', () => {
  it('answer after the predict, never chosen, with their answers and agreement in the record', async () => {
    for (let row = 0; row < cancer.rows.length; row++) {
      const record = new Promise<void>((resolve) => (recorded = resolve))
      const result = await gateway.predict(request(row))
      // Answered by its one member while cancer-slow (tens of ms a run) has not answered yet: a shadow never delays the answer.
      expect(result.error).toBeNull()
      expect(result.decision.chosen).toBe('cancer-logreg')
      expect(result.models.map((m) => m.name)).toEqual(['cancer-logreg'])
      expect(result.shadows).toBeUndefined()
      expect(records.some((r) => r.result.id === `row-${row}`)).toBe(false)
      await record
      const { result: withShadows } = records.at(-1)!
      expect(withShadows.id).toBe(`row-${row}`)
      expect(withShadows.outputs).toBe(result.outputs)
      const [mlp, slow] = withShadows.shadows!
      expect(mlp).toMatchObject({ name: 'cancer-mlp', version: '2', status: 'ok', agrees: cancer.expected.cancer_mlp![row] === cancer.expected.cancer_logreg![row] })
      expect(slow).toMatchObject({ name: 'cancer-slow', status: 'ok', agrees: cancer.expected.cancer_slow![row] === cancer.expected.cancer_logreg![row] })
      expect(slow!.latency_ms).toBeGreaterThan(result.elapsed_ms)
      expect([...(mlp!.outputs!.label!.data as BigInt64Array)].map(Number)).toEqual([cancer.expected.cancer_mlp![row]])
    }
    const counts = Object.fromEntries(gateway.ensemble('cancer').shadow!.members.map((m) => [m.model.name, { ...m.counts }]))
    // The MLP disagrees with logistic regression on the third held-out row; the slow model never does.
    expect(counts).toEqual({ 'cancer-mlp': { errors: 0, compared: 3, agreed: 2, uncompared: 0 }, 'cancer-slow': { errors: 0, compared: 3, agreed: 3, uncompared: 0 } })
  })

  it('keep their counters across a reload, and run on none of the predicts with sample: 0', async () => {
    await gateway.reload(configFrom(yaml('{ models: [cancer-mlp], sample: 0 }')))
    records.length = 0
    const record = new Promise<void>((resolve) => (recorded = resolve))
    await gateway.predict(request(0))
    await record
    expect(records[0]!.result.shadows).toBeUndefined()
    expect(gateway.ensemble('cancer').shadow!.members[0]!.counts).toMatchObject({ compared: 3, agreed: 2 })
  })

  it('refuse a shadow that is a member, an unknown model, or one whose inputs differ', async () => {
    expect(() => configFrom(yaml('{ models: [cancer-logreg, nope] }'))).toThrow(ConfigError)
    try {
      configFrom(yaml('{ models: [cancer-logreg, nope] }'))
    } catch (err) {
      expect((err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
        'ensembles.cancer.shadow.models.0: "cancer-logreg" is a member of the ensemble; a shadow is never chosen',
        'ensembles.cancer.shadow.models.1: unknown model "nope"',
      ])
    }
    const wine = new Gateway(configFrom(yaml('{ models: [wine-logreg] }')))
    await expect(wine.load()).rejects.toThrow(/ensembles\.cancer\.shadow\.models\.0: inputs of "wine-logreg" \(input:FP32\[-1,13\]\) differ from "cancer-logreg"/)
    await wine.close()
  })
})

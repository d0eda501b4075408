// A newer version must give every output the serving version gives: one that drops or renames
// an output (here `probabilities`, renamed in the model's bytes as the audit did) is rejected
// on every swap, an upload or a directory copied in, as the gate rejects, with or without a
// canary. Without this it served, and `probabilities` vanished from every answer of the
// ensemble (it answers with what all its members give), with no error anywhere. A version
// with one more output swaps in. Real models, real workers, no broker (the model stream's
// records take the same pipeline: stream-rejections.int.test.ts).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { VersionMeta } from '../../src/registry/store.ts'
import type { Logger, MetricAttributes } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { renamed, withExtraOutput } from './output-variants.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
const examples = join(root, 'examples')
const cancer = samples('cancer')
// Passes the data set gate below (accuracy 0.965 ≥ 0.95), renamed or not: the gate reads `label`.
const mlp = readFileSync(join(models, 'cancer_mlp.onnx'))
const noProbabilities = renamed(mlp, 'probabilities', 'probabilitiez')
const lacking = "outputs label:INT64[-1] probabilitiez:FP32[-1,2] lack the serving version's probabilities:FP32[-1,2]"

/** A gateway serving cancer-main (version 1: logreg) from a repository beside its sibling, with or without a canary rollout. */
async function serve(rollout: boolean, log: Logger): Promise<Served> {
  const dir = tempDir('specserve-outputs-kept-')
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
executors: { onnx_workers: 1 }
repository: { path: ./repo, watch: false, keep_versions: 10 }
models:
  cancer-main:
    kind: onnx
    source: repository
    path: ${models}/cancer_logreg.onnx
    validation: { dataset: { path: ${examples}/cancer_holdout.csv, label: target, min_accuracy: 0.95 } }
${rollout ? '    rollout: { canary: { weight: 0.5, promote_after: 100000 } }\n' : ''}  cancer-logreg: { kind: onnx, path: ${models}/cancer_logreg.onnx }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main, cancer-logreg], budget_ms: { default: 5000, max: 10000 } }
`,
  )
  return serveWithRegistry(join(dir, 'gateway.yaml'), log)
}

const upload = (served: Served, version: number, body: Buffer) =>
  served.app.inject({ method: 'PUT', url: `/v1/models/cancer-main/versions/${version}`, headers: { 'content-type': 'application/octet-stream' }, payload: body })

/** What the ensemble says it answers with, and what a predict answers with (and which version of cancer-main ran). */
async function answers(served: Served): Promise<{ declared: string[]; outputs: string[]; version: string | undefined }> {
  const described = (await served.app.inject({ url: '/v1/ensembles/cancer' })).json() as { outputs: { name: string }[] }
  const predicted = (await served.app.inject({ method: 'POST', url: '/v1/ensembles/cancer/predict', payload: { inputs: { input: [cancer.rows[0]] } } })).json() as {
    outputs: Record<string, unknown>
    models: { name: string; version: string }[]
  }
  return { declared: described.outputs.map((o) => o.name), outputs: Object.keys(predicted.outputs), version: predicted.models.find((m) => m.name === 'cancer-main')?.version }
}

const version = (served: Served, v: number): VersionMeta => served.registry.version('cancer-main', v)

function rejectedCount(served: Served): number {
  let rejected = 0
  served.registry.collect({
    gauge: () => undefined,
    counter: (name, _help, points) => {
      if (name !== 'specserve_model_version_events') return
      for (const [attrs, value] of points as [MetricAttributes, number][]) if (attrs.event === 'rejected') rejected = value
    },
  })
  return rejected
}

describe('without a rollout', () => {
  const lines: { msg: string; obj: Record<string, unknown> }[] = []
  const log: Logger = {
    info: () => undefined,
    warn: () => undefined,
    error: (obj, msg) => lines.push({ msg, obj: obj as Record<string, unknown> }),
  }
  let served: Served

  beforeAll(async () => {
    served = await serve(false, log)
  })

  afterAll(async () => {
    await served.stop()
  })

  it('rejects an upload that renames an output: 422, the reason kept, logged and counted; the serving version answers with it still', async () => {
    const res = await upload(served, 2, noProbabilities)
    expect(res.statusCode).toBe(422)
    expect(res.json()).toMatchObject({ code: 'MODEL_REJECTED', message: `version 2 of "cancer-main" rejected: models.cancer-main: version 2's ${lacking}` })
    expect(version(served, 2)).toMatchObject({ state: 'rejected', reason: `models.cancer-main: version 2's ${lacking}`, gate: null })
    expect(lines.at(-1)).toMatchObject({ msg: 'model version rejected; version 1 keeps serving', obj: { model: 'cancer-main', version: 2, reason: expect.stringContaining(lacking) } })
    expect(rejectedCount(served)).toBe(1)
    expect(await answers(served)).toEqual({ declared: ['label', 'probabilities'], outputs: ['label', 'probabilities'], version: '1' })
  })

  it('rejects a version directory copied in that renames an output', async () => {
    const staged = join(tempDir('specserve-outputs-staged-'), '3')
    mkdirSync(staged)
    writeFileSync(join(staged, 'model.onnx'), noProbabilities)
    renameSync(staged, join(served.registry.repository.path, 'cancer-main', '3'))
    await served.registry.rescan() // resolves once what it found is judged
    expect(version(served, 3)).toMatchObject({ state: 'rejected', source: 'directory', reason: `models.cancer-main: version 3's ${lacking}` })
    expect(rejectedCount(served)).toBe(2)
    expect(await answers(served)).toEqual({ declared: ['label', 'probabilities'], outputs: ['label', 'probabilities'], version: '1' })
  })

  it('swaps in a version with one more output; the ensemble answers as before (its sibling gives no such output)', async () => {
    const res = await upload(served, 4, withExtraOutput(mlp, 'extra'))
    expect(res.statusCode).toBe(201)
    expect(res.json().version).toMatchObject({ version: 4, state: 'serving' })
    expect(await answers(served)).toEqual({ declared: ['label', 'probabilities'], outputs: ['label', 'probabilities'], version: '4' })
  })

  it('compares with the version serving now: one without the extra output it gives is rejected too', async () => {
    const res = await upload(served, 5, mlp)
    expect(res.statusCode).toBe(422)
    expect(res.json().message).toBe(`version 5 of "cancer-main" rejected: models.cancer-main: version 5's outputs label:INT64[-1] probabilities:FP32[-1,2] lack the serving version's extra:FP32[-1,2]`)
    expect((await answers(served)).version).toBe('4')
  })
})

describe('with a canary rollout', () => {
  let served: Served

  beforeAll(async () => {
    served = await serve(true, { info: () => undefined, warn: () => undefined, error: () => undefined })
  })

  afterAll(async () => {
    await served.stop()
  })

  it('refuses a canary that renames an output as before, said as a refusal (the file loaded)', async () => {
    const res = await upload(served, 2, noProbabilities)
    expect(res.statusCode).toBe(422)
    expect(res.json()).toMatchObject({ code: 'MODEL_REJECTED', message: `version 2 of "cancer-main" rejected: models.cancer-main: the canary's ${lacking}` })
    expect(version(served, 2)).toMatchObject({ state: 'rejected', reason: `models.cancer-main: the canary's ${lacking}` })
    expect(await answers(served)).toEqual({ declared: ['label', 'probabilities'], outputs: ['label', 'probabilities'], version: '1' })
  })

  it('starts a canary with one more output (202)', async () => {
    const res = await upload(served, 3, withExtraOutput(mlp, 'extra'))
    expect(res.statusCode).toBe(202)
    expect(res.json().version).toMatchObject({ version: 3, state: 'canary' })
    expect((await answers(served)).declared).toEqual(['label', 'probabilities'])
  })
})

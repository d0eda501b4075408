// A newer version must give every output the serving version gives: one that drops or renames
// an output (here `probabilities`, renamed in the model's bytes as the audit did) is rejected
// on every swap, an upload or a directory copied in, as the gate rejects, with or without a
// canary. Without this it served, and `probabilities` vanished from every answer of the
// ensemble (it answers with what all its members give), with no error anywhere. A version
// with one more output swaps in. Real models, real workers, no broker (the model stream's
// records take the same pipeline: stream-rejections.int.test.ts).
import { mkdirSync, readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { VersionMeta } from '../../src/registry/version-meta.ts'
import type { Logger, MetricAttributes } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { reloadFromFile } from '../../src/reload/index.ts'
import { renamed, withExtraOutput } from './output-variants.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
const examples = join(root, 'examples')
const cancer = samples('cancer')
// Passes the data set gate below (accuracy 0.965 ≥ 0.95), renamed or not: the gate reads `label`.
const mlp = readFileSync(join(models, 'cancer_mlp.onnx'))
const noProbabilities = renamed(mlp, 'probabilities', 'probabilitiez')

interface Setup {
  /** cancer-main's file at start (version 1). */
  readonly seed?: string
  readonly rollout?: boolean
  /** The canary's runs before it is promoted (rollout only). */
  readonly promoteAfter?: number
  readonly outputsMayDrop?: readonly string[]
}

/** A gateway serving cancer-main (version 1: logreg, or `seed`) from a repository beside its sibling, in ensemble "cancer". */
async function serve(log: Logger, setup: Setup = {}): Promise<Served & { readonly config: (sibling?: string) => void }> {
  const dir = tempDir('specserve-outputs-kept-')
  const config = (sibling = `${models}/cancer_logreg.onnx`): void =>
    writeFileSync(
      join(dir, 'gateway.yaml'),
      `
executors: { onnx_workers: 1 }
repository: { path: ./repo, watch: false, keep_versions: 10 }
models:
  cancer-main:
    kind: onnx
    source: repository
    path: ${setup.seed ?? `${models}/cancer_logreg.onnx`}
    validation: { dataset: { path: ${examples}/cancer_holdout.csv, label: target, min_accuracy: 0.95 } }
${setup.rollout ? `    rollout: { canary: { weight: 0.5, promote_after: ${setup.promoteAfter ?? 100000} } }\n` : ''}${setup.outputsMayDrop ? `    outputs_may_drop: ${JSON.stringify(setup.outputsMayDrop)}\n` : ''}  cancer-logreg: { kind: onnx, path: ${sibling} }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main, cancer-logreg], budget_ms: { default: 5000, max: 10000 } }
`,
    )
  config()
  return { ...(await serveWithRegistry(join(dir, 'gateway.yaml'), log)), config }
}

/** A model file in a directory of its own. */
function modelFile(bytes: Buffer): string {
  const file = join(tempDir('specserve-outputs-file-'), 'model.onnx')
  writeFileSync(file, bytes)
  return file
}

/** A logger keeping its warn and error lines. */
function lineLog(): { log: Logger; warned: Line[]; errors: Line[] } {
  const warned: Line[] = []
  const errors: Line[] = []
  const log: Logger = { info: () => undefined, warn: (obj, msg) => warned.push({ msg, obj: obj as Record<string, unknown> }), error: (obj, msg) => errors.push({ msg, obj: obj as Record<string, unknown> }) }
  return { log, warned, errors }
}

type Line = { msg: string; obj: Record<string, unknown> }

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

const taken = (who: string, outputs: string): string =>
  `models.cancer-main: ${who} would take away ensemble "cancer"'s probabilities:FP32[-1,2] (the model's outputs would be ${outputs}); list an output in models.cancer-main.outputs_may_drop to let it go`
const renamedOutputs = 'label:INT64[-1] probabilitiez:FP32[-1,2]'

describe('without a rollout', () => {
  const { log, warned, errors } = lineLog()
  let served: Served

  beforeAll(async () => {
    served = await serve(log)
  })

  afterAll(async () => {
    await served.stop()
  })

  it('rejects an upload that renames an output the ensemble declares: 422, the reason kept, logged and counted; the serving version answers with it still', async () => {
    const res = await upload(served, 2, noProbabilities)
    expect(res.statusCode).toBe(422)
    expect(res.json()).toMatchObject({ code: 'MODEL_REJECTED', message: `version 2 of "cancer-main" rejected: ${taken('version 2', renamedOutputs)}` })
    expect(version(served, 2)).toMatchObject({ state: 'rejected', reason: taken('version 2', renamedOutputs), gate: null })
    expect(errors.at(-1)).toMatchObject({ msg: 'model version rejected; version 1 keeps serving', obj: { model: 'cancer-main', version: 2, reason: expect.stringContaining('probabilities:FP32[-1,2]') } })
    expect(rejectedCount(served)).toBe(1)
    expect(await answers(served)).toEqual({ declared: ['label', 'probabilities'], outputs: ['label', 'probabilities'], version: '1' })
  })

  it('rejects a version directory copied in that renames an output', async () => {
    const staged = join(tempDir('specserve-outputs-staged-'), '3')
    mkdirSync(staged)
    writeFileSync(join(staged, 'model.onnx'), noProbabilities)
    // Built a while ago, then moved in: a file written just now is taken only once it has settled (copy-in.ts).
    const past = Date.now() / 1000 - 600
    utimesSync(join(staged, 'model.onnx'), past, past)
    renameSync(staged, join(served.registry.repository.path, 'cancer-main', '3'))
    await served.registry.rescan() // resolves once what it found is judged
    expect(version(served, 3)).toMatchObject({ state: 'rejected', source: 'directory', reason: taken('version 3', renamedOutputs) })
    expect(rejectedCount(served)).toBe(2)
    expect(await answers(served)).toEqual({ declared: ['label', 'probabilities'], outputs: ['label', 'probabilities'], version: '1' })
  })

  it('swaps in a version with one more output; the ensemble answers as before (its sibling gives no such output)', async () => {
    const res = await upload(served, 5, withExtraOutput(mlp, 'extra'))
    expect(res.statusCode).toBe(201)
    expect(res.json().version).toMatchObject({ version: 5, state: 'serving' })
    expect(await answers(served)).toEqual({ declared: ['label', 'probabilities'], outputs: ['label', 'probabilities'], version: '5' })
  })

  it('swaps in a later version without that extra output: no ensemble declares it, so no client loses it', async () => {
    const res = await upload(served, 6, mlp)
    expect(res.statusCode).toBe(201)
    expect(res.json().version).toMatchObject({ version: 6, state: 'serving' })
    expect(res.json().version.outputs_lost).toBeUndefined()
    expect(await answers(served)).toEqual({ declared: ['label', 'probabilities'], outputs: ['label', 'probabilities'], version: '6' })
    expect(warned).toEqual([])
  })

  it('keeps a late upload that lacks an output as a rollback target, saying what it would take; a rollback to it is not refused but warns, and its answer says it', async () => {
    const res = await upload(served, 4, noProbabilities)
    expect(res.statusCode).toBe(200)
    expect(res.json().version).toMatchObject({ version: 4, state: 'ready', outputs_lost: { cancer: ['probabilities'] } })
    // The first rollback goes to version 5 (one more output): the ensemble loses nothing.
    const first = await served.app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback' })
    expect(first.json()).toMatchObject({ serving: 5, version: { version: 5 } })
    expect(first.json().version.outputs_lost).toBeUndefined()
    expect(warned).toEqual([])
    const second = await served.app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback' })
    expect(second.statusCode).toBe(200)
    expect(second.json()).toMatchObject({ serving: 4, version: { version: 4, state: 'serving', outputs_lost: { cancer: ['probabilities'] } } })
    expect(warned).toEqual([
      { msg: 'version 4 of "cancer-main" swapped in (a rollback): ensemble "cancer" loses probabilities:FP32[-1,2]', obj: { model: 'cancer-main', version: 4, outputs_lost: { cancer: ['probabilities'] } } },
    ])
    expect(await answers(served)).toEqual({ declared: ['label'], outputs: ['label'], version: '4' })
  })
})

describe('with outputs_may_drop', () => {
  const { log, warned } = lineLog()
  let served: Served

  beforeAll(async () => {
    served = await serve(log, { outputsMayDrop: ['probabilities'] })
  })

  afterAll(async () => {
    await served.stop()
  })

  it('refuses a version that drops an output it does not list', async () => {
    const res = await upload(served, 2, renamed(mlp, 'label', 'lapel'))
    expect(res.statusCode).toBe(422)
    expect(res.json().message).toBe(`version 2 of "cancer-main" rejected: models.cancer-main: version 2 would take away ensemble "cancer"'s label:INT64[-1] (the model's outputs would be lapel:INT64[-1] probabilities:FP32[-1,2]); list an output in models.cancer-main.outputs_may_drop to let it go`)
    expect((await answers(served)).declared).toEqual(['label', 'probabilities'])
  })

  it('swaps in a version that drops a listed output, with a warning naming the ensemble and the output, and the version saying it', async () => {
    const res = await upload(served, 3, noProbabilities)
    expect(res.statusCode).toBe(201)
    expect(res.json().version).toMatchObject({ version: 3, state: 'serving', outputs_lost: { cancer: ['probabilities'] } })
    expect(warned).toEqual([
      { msg: 'version 3 of "cancer-main" swapped in (outputs_may_drop lets them go): ensemble "cancer" loses probabilities:FP32[-1,2]', obj: { model: 'cancer-main', version: 3, outputs_lost: { cancer: ['probabilities'] } } },
    ])
    expect(await answers(served)).toEqual({ declared: ['label'], outputs: ['label'], version: '3' })
  })
})

describe('a deployment serving a misnamed output', () => {
  const { log, warned } = lineLog()
  let served: Served & { readonly config: (sibling?: string) => void }

  beforeAll(async () => {
    // What the old bug left serving: probabilitiez, which the ensemble does not declare (its sibling gives probabilities).
    served = await serve(log, { seed: modelFile(noProbabilities) })
  })

  afterAll(async () => {
    await served.stop()
  })

  it('swaps in the corrected model: the ensemble gains probabilities back, and loses nothing it declared', async () => {
    expect((await answers(served)).declared).toEqual(['label'])
    const res = await upload(served, 2, mlp)
    expect(res.statusCode).toBe(201)
    expect(await answers(served)).toEqual({ declared: ['label', 'probabilities'], outputs: ['label', 'probabilities'], version: '2' })
    expect(warned).toEqual([])
  })

  it('applies a config reload that takes an output from the ensemble (a sibling\'s file changed), warning in its log and its warnings', async () => {
    served.config(modelFile(noProbabilities))
    const outcome = await reloadFromFile(served.gateway, log)
    expect(outcome).toMatchObject({ ok: true, warnings: ['the reload takes outputs from ensembles: ensemble "cancer" loses probabilities:FP32[-1,2]'] })
    expect(outcome.ok && 'outputsLost' in outcome.report).toBe(false) // POST /admin/reload answers with the report: no undocumented field
    expect(warned).toEqual([{ msg: 'the reload takes outputs from ensembles: ensemble "cancer" loses probabilities:FP32[-1,2]', obj: { file: expect.any(String), outputs_lost: { cancer: ['probabilities'] } } }])
    expect((await answers(served)).declared).toEqual(['label'])
  })
})

describe('with a canary rollout', () => {
  let served: Served

  beforeAll(async () => {
    // Serving a version with an output no ensemble declares (its sibling lacks it).
    served = await serve(lineLog().log, { rollout: true, seed: modelFile(withExtraOutput(mlp, 'extra')) })
  })

  afterAll(async () => {
    await served.stop()
  })

  it('refuses a canary that renames an output the ensemble declares, said as a refusal (the file loaded)', async () => {
    const res = await upload(served, 2, noProbabilities)
    expect(res.statusCode).toBe(422)
    // The pair answers with what both versions give: label alone.
    expect(res.json()).toMatchObject({ code: 'MODEL_REJECTED', message: `version 2 of "cancer-main" rejected: ${taken('the canary (version 2)', 'label:INT64[-1]')}` })
    expect(version(served, 2)).toMatchObject({ state: 'rejected', reason: taken('the canary (version 2)', 'label:INT64[-1]') })
    expect(await answers(served)).toEqual({ declared: ['label', 'probabilities'], outputs: ['label', 'probabilities'], version: '1' })
  })

  it('starts a canary without the extra output the serving version gives (no ensemble declares it) (202)', async () => {
    const res = await upload(served, 3, mlp)
    expect(res.statusCode).toBe(202)
    expect(res.json().version).toMatchObject({ version: 3, state: 'canary' })
    expect((await answers(served)).declared).toEqual(['label', 'probabilities'])
  })

  it('starts a canary with one more output (202)', async () => {
    const res = await upload(served, 4, withExtraOutput(mlp, 'more'))
    expect(res.statusCode).toBe(202)
    expect(res.json().version).toMatchObject({ version: 4, state: 'canary' })
    expect((await answers(served)).declared).toEqual(['label', 'probabilities'])
  })
})

describe('with a canary rollout and outputs_may_drop', () => {
  const { log, warned } = lineLog()
  let served: Served

  beforeAll(async () => {
    served = await serve(log, { rollout: true, promoteAfter: 3, outputsMayDrop: ['probabilities'] })
  })

  afterAll(async () => {
    await served.stop()
  })

  it('keeps what the canary took in its record once it is promoted (the promotion swaps from the pair, which already lacked it)', async () => {
    const res = await upload(served, 2, noProbabilities)
    expect(res.statusCode).toBe(202)
    expect(version(served, 2)).toMatchObject({ state: 'canary', outputs_lost: { cancer: ['probabilities'] } })
    // Each predict is a run of the pair; the canary takes half of them, and is promoted after its third.
    for (let predicts = 0; version(served, 2).state === 'canary' && predicts < 500; predicts++) await answers(served)
    await served.registry.idle()
    expect(version(served, 2)).toMatchObject({ state: 'serving', outputs_lost: { cancer: ['probabilities'] } })
    expect(warned.map((line) => line.msg)).toEqual(['version 2 of "cancer-main" swapped in (outputs_may_drop lets them go): ensemble "cancer" loses probabilities:FP32[-1,2]'])
  })

  it('keeps what the serving version took when a canary after it is rolled back (the swap back from the pair takes nothing more)', async () => {
    // Version 2, promoted by the test above, serves without probabilities; version 3 lacks it too.
    expect(version(served, 2)).toMatchObject({ state: 'serving', outputs_lost: { cancer: ['probabilities'] } })
    expect((await upload(served, 3, noProbabilities)).statusCode).toBe(202)
    // The pair takes nothing more from the ensemble: the canary records nothing.
    expect(version(served, 3).state).toBe('canary')
    expect(version(served, 3).outputs_lost ?? null).toBeNull()
    const res = await served.app.inject({ method: 'POST', url: '/v1/models/cancer-main/rollback' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ serving: 2 })
    expect(version(served, 3).state).toBe('retired')
    expect(version(served, 2)).toMatchObject({ state: 'serving', outputs_lost: { cancer: ['probabilities'] } })
    expect(await answers(served)).toEqual({ declared: ['label'], outputs: ['label'], version: '2' })
    // Nothing more was taken: no warning beyond version 2's own.
    expect(warned).toHaveLength(1)
  })
})

// Hot reload in process, as an operator drives it: edit the YAML, reload, and check what
// serves. Unchanged models keep their executor (no new onnxruntime session) and their
// stats; a broken file is refused with its errors and the old config keeps serving;
// predicts running through the swap never fail.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { loadConfigFile } from '../../src/config/load.ts'
import { Gateway } from '../../src/gateway.ts'
import { inputFailure } from '../../src/errors.ts'
import { reloadFromFile, startReloadTriggers } from '../../src/reload/index.ts'
import { tensorFromJson } from '../../src/tensor/index.ts'
import type { Logger, PredictResult } from '../../src/types.ts'
import { freePort, root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const models = join(root, 'models')
const cancer = samples('cancer')
const expectedProbabilities = (JSON.parse(readFileSync(join(models, 'manifest.json'), 'utf8')) as {
  tasks: { cancer: { expected_probabilities: Record<string, number[][]> } }
}).tasks.cancer.expected_probabilities

/** The YAML an operator would write; `mlpFile` lets a test swap the model behind "cancer-mlp". */
function yaml({ strategy = 'deadline-fallback', mlpFile = 'cancer_mlp.onnx', wine = false } = {}): string {
  return `
executors: { onnx_workers: 2 }
admin: { watch_config: true }
models:
  cancer-mlp: { kind: onnx, path: ${models}/${mlpFile}, version: "1" }
  cancer-logreg: { kind: onnx, path: ${models}/cancer_logreg.onnx }
  wine-logreg: { kind: onnx, path: ${models}/wine_logreg.onnx }
  wine-tree: { kind: onnx, path: ${models}/wine_tree.onnx }
ensembles:
  cancer:
    strategy: ${strategy}
    models: [cancer-mlp, cancer-logreg]
    budget_ms: { default: 2000, max: 5000 }
${wine ? '  wine: { strategy: majority-vote, models: [wine-logreg, wine-tree], budget_ms: { default: 2000, max: 5000 } }' : ''}
`
}

const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = []
const log: Logger = {
  info: (obj, msg) => lines.push({ level: 'info', msg, obj: obj as Record<string, unknown> }),
  warn: (obj, msg) => lines.push({ level: 'warn', msg, obj: obj as Record<string, unknown> }),
  error: (obj, msg) => lines.push({ level: 'error', msg, obj: obj as Record<string, unknown> }),
}

let dir: string
let file: string
let gateway: Gateway

function predictCancer(row = 0): Promise<PredictResult> {
  const spec = gateway.ensemble('cancer').inputs[0]!
  return gateway.predict({ id: `r${row}`, ensemble: 'cancer', inputs: { input: tensorFromJson([cancer.rows[row]], spec, inputFailure) } })
}

beforeAll(async () => {
  dir = tempDir('specserve-reload-')
  file = join(dir, 'gateway.yaml')
  writeFileSync(file, yaml())
  gateway = new Gateway(loadConfigFile(file))
  await gateway.load()
})

afterAll(async () => {
  await gateway?.close()
})

describe('hot reload', () => {
  it('adds an ensemble, keeping unchanged models, their sessions and their stats', async () => {
    const before = gateway.model('cancer-mlp')
    expect((await predictCancer()).error).toBeNull()
    const count = before.stats.count
    writeFileSync(file, yaml({ wine: true }))
    const outcome = await reloadFromFile(gateway, log)
    expect(outcome.ok).toBe(true)
    if (!outcome.ok) return
    expect(outcome.report.ensembles.added).toEqual(['wine'])
    expect(outcome.report.ensembles.changed).toEqual([])
    expect(outcome.report.models.kept.sort()).toEqual(['cancer-logreg', 'cancer-mlp', 'wine-logreg', 'wine-tree'])
    // Same runtime object: same executor, same loaded sessions, counters carry on.
    expect(gateway.model('cancer-mlp')).toBe(before)
    expect(gateway.model('cancer-mlp').stats.count).toBe(count)
    const wine = samples('wine')
    const spec = gateway.ensemble('wine').inputs[0]!
    const result = await gateway.predict({ id: 'w', ensemble: 'wine', inputs: { input: tensorFromJson([wine.rows[0]], spec, inputFailure) } })
    expect(result.error).toBeNull()
    expect(result.strategy).toBe('majority-vote')
  })

  it('changes a strategy', async () => {
    writeFileSync(file, yaml({ wine: true, strategy: 'best-quality' }))
    const outcome = await reloadFromFile(gateway, log)
    expect(outcome.ok && outcome.report.ensembles.changed).toEqual(['cancer'])
    const result = await predictCancer()
    expect(result.strategy).toBe('best-quality')
    expect(result.error).toBeNull()
  })

  it('swaps a model file: the new model answers, under the same name', async () => {
    const old = gateway.model('cancer-mlp')
    writeFileSync(file, yaml({ wine: true, mlpFile: 'cancer_gbdt.onnx' }))
    const outcome = await reloadFromFile(gateway, log)
    expect(outcome.ok && outcome.report.models.changed).toEqual(['cancer-mlp'])
    expect(gateway.model('cancer-mlp')).not.toBe(old)
    expect(gateway.model('cancer-mlp').stats.count).toBe(0) // new model, new counters
    writeFileSync(file, yaml({ wine: true, mlpFile: 'cancer_gbdt.onnx', strategy: 'deadline-fallback' }))
    expect((await reloadFromFile(gateway, log)).ok).toBe(true)
    for (let row = 0; row < cancer.rows.length; row++) {
      const result = await predictCancer(row)
      expect(result.decision.chosen).toBe('cancer-mlp')
      const probabilities = [...(result.outputs!.probabilities!.data as Float32Array)]
      expectedProbabilities.cancer_gbdt![row]!.forEach((p, i) => expect(probabilities[i]).toBeCloseTo(p, 4))
    }
  })

  it('refuses a broken file with every error and its line, and keeps serving the old config', async () => {
    const rejected = gateway.reloads.rejected
    writeFileSync(file, yaml({ wine: true }).replace('models: [cancer-mlp, cancer-logreg]', 'models: [cancer-mlp, cancer-logreg, nope]').replace('wine_tree.onnx', 'gone.onnx'))
    const outcome = await reloadFromFile(gateway, log)
    expect(outcome.ok).toBe(false)
    if (outcome.ok) return
    expect(outcome.status).toBe(422)
    expect(outcome.code).toBe('CONFIG_INVALID')
    expect(outcome.errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/gateway\.yaml:\d+:\d+ ensembles\.cancer\.models\.2: unknown model "nope"/),
        expect.stringMatching(/gateway\.yaml:\d+:\d+ models\.wine-tree\.path: cannot read model file .*gone\.onnx/),
      ]),
    )
    expect(lines.at(-1)).toMatchObject({ level: 'error', msg: expect.stringMatching(/rejected/) })
    writeFileSync(file, 'models: {\n  broken: [')
    const syntax = await reloadFromFile(gateway, log)
    expect(!syntax.ok && syntax.errors[0]).toMatch(/gateway\.yaml:\d+:\d+/)
    expect(gateway.reloads.rejected).toBe(rejected + 2)
    // The last good config still serves.
    expect((await predictCancer()).error).toBeNull()
    expect([...gateway.ensembles.keys()].sort()).toEqual(['cancer', 'wine'])
  })

  it('refuses a config that adds source: repository models to a gateway started without repository: (their seed would serve ungated)', async () => {
    const rejected = gateway.reloads.rejected
    const added = yaml().replace('models:\n', `repository: { path: ${join(dir, 'repo')}, watch: false }\nmodels:\n  cancer-repo: { kind: onnx, source: repository, path: ${models}/cancer_logreg.onnx }\n`).replace('models: [cancer-mlp, cancer-logreg]', 'models: [cancer-repo, cancer-logreg]')
    writeFileSync(file, added)
    const outcome = await reloadFromFile(gateway, log)
    expect(outcome).toMatchObject({ ok: false, status: 422, code: 'CONFIG_INVALID', errors: [expect.stringMatching(/gateway\.yaml:\d+:\d+ models\.cancer-repo\.source: source: repository needs the model repository.*restart it/)] })
    expect(gateway.reloads.rejected).toBe(rejected + 1)
    expect(gateway.config.models.has('cancer-repo')).toBe(false)
    expect((await predictCancer()).error).toBeNull()
  })

  it('applies a config with a deprecated key, and says so in the log and the outcome', async () => {
    writeFileSync(file, yaml({ wine: true, strategy: '{ name: deadline-fallback, hedge_after_ms: 5 }' }))
    const outcome = await reloadFromFile(gateway, log)
    expect(outcome.ok).toBe(true)
    if (!outcome.ok) return
    const warning = /gateway\.yaml:\d+:\d+ ensembles\.cancer\.strategy\.hedge_after_ms: renamed fallback_after_ms; the old name still works for now/
    expect(outcome.warnings).toEqual([expect.stringMatching(warning)])
    expect(lines.some((l) => l.level === 'warn' && warning.test(l.msg))).toBe(true)
    expect(gateway.ensemble('cancer').strategy.startDelaysMs).toEqual([0, 5])
  })

  it('says which models it loaded have an upstream that did not answer, in the log and the outcome, as serve does at start', async () => {
    const closed = await freePort() // nothing listens there
    const down =
      `  down:\n    kind: oip\n    url: http://127.0.0.1:${closed}\n    model: m\n` +
      '    inputs: [{ name: input, datatype: FP32, shape: [-1, 30] }]\n    outputs: [{ name: label, datatype: INT64, shape: [-1] }]\n'
    writeFileSync(file, `${yaml().replace('models:\n', `models:\n${down}`)}  remote: { strategy: deadline-fallback, models: [down, cancer-logreg] }\n`)
    lines.length = 0
    const outcome = await reloadFromFile(gateway, log)
    expect(outcome.ok).toBe(true)
    if (!outcome.ok) return
    const warning = /gateway\.yaml:\d+:\d+ models\.down\.url: its upstream's metadata could not be read at load \(.*ECONNREFUSED.*\): serving it on the inputs and outputs the YAML declares/
    expect(outcome.warnings).toEqual([expect.stringMatching(warning)])
    expect(lines.filter((l) => l.level === 'warn').map((l) => [l.obj.model, l.msg])).toEqual([['down', expect.stringMatching(/^its upstream's metadata could not be read at load/)]])
    // A later reload that keeps the model loads nothing: no word again.
    expect(await reloadFromFile(gateway, log)).toMatchObject({ ok: true, warnings: [] })
  })

  it('refuses a config whose models fail to load, closing what it loaded', async () => {
    // A file that exists but is not an ONNX model passes the static checks and fails at load.
    writeFileSync(join(dir, 'not-a-model.onnx'), 'not onnx')
    writeFileSync(file, yaml({ wine: true }).replace(`${models}/wine_tree.onnx`, join(dir, 'not-a-model.onnx')))
    const outcome = await reloadFromFile(gateway, log)
    expect(!outcome.ok && outcome.errors.join('\n')).toMatch(/models\.wine-tree: failed to load/)
    expect((await predictCancer()).error).toBeNull()
  })

  it('counts a reload whose build fails unexpectedly (not the config\'s fault) as rejected, answered INTERNAL, and keeps serving', async () => {
    const rejected = gateway.reloads.rejected
    const builder = (gateway as unknown as { builder: { build(): Promise<unknown> } }).builder
    const build = vi.spyOn(builder, 'build').mockRejectedValueOnce(new Error('EIO: i/o error, read'))
    try {
      writeFileSync(file, yaml({ wine: true }))
      expect(await reloadFromFile(gateway, log)).toMatchObject({ ok: false, status: 500, code: 'INTERNAL', message: 'EIO: i/o error, read' })
    } finally {
      build.mockRestore()
    }
    expect(gateway.reloads.rejected).toBe(rejected + 1)
    expect((await predictCancer()).error).toBeNull()
  })

  it('keeps every predict running through a series of swaps error-free', async () => {
    const configs = [yaml({ wine: true }), yaml({ wine: true, mlpFile: 'cancer_gbdt.onnx' }), yaml({ strategy: 'best-quality' }), yaml({ wine: true })]
    let stop = false
    const failures: string[] = []
    let done = 0
    let waiter: { at: number; resolve: () => void } | undefined
    /** Resolves once `n` more predicts have finished. */
    const progress = (n: number): Promise<void> => new Promise((resolve) => (waiter = { at: done + n, resolve }))
    const worker = async (n: number): Promise<void> => {
      for (let i = 0; !stop && i < 5000; i++) {
        const result = await predictCancer((n + i) % cancer.rows.length)
        // Not only the request: no model of it may fail (a fallback would hide an unloaded model).
        if (result.error) failures.push(`${result.error.code}: ${result.error.message}`)
        for (const m of result.models) if (m.status === 'error') failures.push(`${m.name}: ${m.error?.message}`)
        done++
        if (waiter && done >= waiter.at) waiter.resolve()
      }
    }
    const load = Promise.all([0, 1, 2, 3, 4, 5].map(worker))
    for (const text of configs) {
      await progress(30)
      writeFileSync(file, text)
      const outcome = await reloadFromFile(gateway, log)
      expect(outcome.ok).toBe(true)
    }
    await progress(30)
    stop = true
    await load
    expect(failures).toEqual([])
    expect(done).toBeGreaterThanOrEqual(150)
    expect(gateway.reloads.applied).toBeGreaterThanOrEqual(configs.length)
  })

  it('reloads when the file changes on disk (the watcher), once per change', async () => {
    const triggers = startReloadTriggers(gateway, log, 50)
    try {
      const applied = gateway.reloads.applied
      const reloaded = new Promise<void>((resolve) => {
        const info = log.info
        log.info = (obj, msg) => {
          info(obj, msg)
          if (msg === 'config reloaded') {
            log.info = info
            resolve()
          }
        }
      })
      writeFileSync(file, yaml({ wine: false }))
      await reloaded
      expect(gateway.reloads.applied).toBe(applied + 1)
      expect(gateway.ensembles.has('wine')).toBe(false)
    } finally {
      triggers.stop()
    }
  })
})

describe('a reload refused because the gateway began to drain while it loaded', () => {
  /** A reload (or, with `trial`, a version trial) of a fresh gateway whose build `builds` (calling the real build) while a drain begins. */
  async function reloadWhileDraining(builds: (build: () => Promise<unknown>, drain: () => void) => Promise<unknown>, trial = false) {
    const draining = new Gateway(loadConfigFile(file))
    await draining.load()
    try {
      const builder = (draining as unknown as { builder: { build(...args: unknown[]): Promise<unknown> } }).builder
      const build = builder.build.bind(builder)
      vi.spyOn(builder, 'build').mockImplementationOnce((...args) => builds(() => build(...args), () => draining.drain()))
      writeFileSync(file, yaml({ wine: true }))
      const outcome = trial ? await draining.trial(new Map()).then(() => ({ ok: true }), (err: unknown) => ({ ok: false, code: (err as { code?: string }).code })) : await reloadFromFile(draining, log)
      return { outcome, reloads: { ...draining.reloads } }
    } finally {
      vi.restoreAllMocks()
      await draining.close()
    }
  }

  it('is answered NOT_READY and counted neither applied nor rejected when its build succeeded', async () => {
    const built = await reloadWhileDraining(async (build, drain) => {
      const issues = await build()
      drain()
      return issues
    })
    expect(built).toMatchObject({ outcome: { ok: false, code: 'NOT_READY' }, reloads: { applied: 0, rejected: 0 } })
  })

  it('is answered NOT_READY, not INTERNAL, and counted neither when its build failed unexpectedly', async () => {
    const failed = await reloadWhileDraining((_build, drain) => {
      drain()
      return Promise.reject(new Error('EIO: i/o error, read'))
    })
    expect(failed).toMatchObject({ outcome: { ok: false, code: 'NOT_READY' }, reloads: { applied: 0, rejected: 0 } })
  })

  it('answers a version trial whose build failed while the drain began NOT_READY (the version is judged again later), not the failure', async () => {
    const failed = await reloadWhileDraining((_build, drain) => {
      drain()
      return Promise.reject(new Error('EIO: i/o error, read'))
    }, true)
    expect(failed).toMatchObject({ outcome: { ok: false, code: 'NOT_READY' }, reloads: { applied: 0, rejected: 0 } })
  })
})

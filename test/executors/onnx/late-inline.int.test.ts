// A tiny model whose warm-up was measured slow (a busy box at load: other loads, the JIT, a
// profiler) starts in the workers, and moves inline once its worker runs show it tiny: it
// is not condemned to a thread hop per request for the life of the process. The warm-up
// figures the real pool reports are made slow here; everything else is real.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { inputFailure } from '../../../src/errors.ts'
import { OnnxPool } from '../../../src/executors/onnx/pool.ts'
import { Gateway } from '../../../src/gateway.ts'
import { tensorFromJson } from '../../../src/tensor/index.ts'
import { configFrom, samples } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { writeSlowOnZerosModel } from './hand-made-models.ts'

// inline_max_ms 2: the worker runs that move the model inline are timed on a shared box.
let gateway: Gateway
const rows = samples('cancer').rows
const digits = samples('digits').rows

beforeAll(async () => {
  const register = OnnxPool.prototype.register
  const spy = vi.spyOn(OnnxPool.prototype, 'register').mockImplementation(async function (this: OnnxPool, ...args: Parameters<OnnxPool['register']>) {
    const loaded = await register.apply(this, args)
    return { ...loaded, warmRunsMs: loaded.warmRunsMs.map(() => 5) } // every warm-up run "took" 5 ms
  })
  gateway = new Gateway(
    configFrom(`executors: { onnx_workers: 1, inline_max_ms: 2 }
models:
  late: { kind: onnx, path: ../models/cancer_logreg.onnx }
  heavy: { kind: onnx, path: ../models/digits_rf.onnx }
  kept: { kind: onnx, path: ../models/cancer_logreg.onnx, placement: worker }
ensembles:
  late: { strategy: deadline-fallback, models: [late], budget_ms: { default: 5000, max: 5000 } }
  heavy: { strategy: deadline-fallback, models: [heavy], budget_ms: { default: 5000, max: 5000 } }
  kept: { strategy: deadline-fallback, models: [kept], budget_ms: { default: 5000, max: 5000 } }
`),
  )
  await gateway.load()
  spy.mockRestore()
})
afterAll(async () => gateway?.close())

const predict = (ensemble: string) =>
  gateway.predict({ id: 'p', ensemble, inputs: { input: tensorFromJson((ensemble === 'heavy' ? digits : rows).slice(0, 1), gateway.ensemble(ensemble).inputs[0]!, inputFailure) } })
const placementOf = (model: string) => (gateway.model(model).executor.describe!() as { placement: { current: string; reason: string; inline_p50_ms: number | null; warm_p50_ms: number } }).placement

/** The model's runs by where they ran, as /metrics exports them. */
function runs(model: string): { inline: number; worker: number } {
  const counts = { inline: 0, worker: 0 }
  gateway.model(model).executor.collect!({
    gauge: () => undefined,
    counter: (name, _help, points) => {
      if (name === 'specserve_model_runs') for (const [attrs, n] of points) counts[attrs.placement as 'inline' | 'worker'] = n
    },
  })
  return counts
}

describe('a tiny model measured slow at load', () => {
  it('starts in the workers, then moves inline once its worker runs show it tiny', async () => {
    expect(placementOf('late')).toMatchObject({ current: 'worker', reason: expect.stringMatching(/warm-up median 5\.000 ms.*over inline_max_ms/) })
    // Worker runs are checked every 128; the inline session opens in the background after that.
    let sent = 0
    while (placementOf('late').current === 'worker' && sent < 2000) {
      expect((await predict('late')).error).toBeNull()
      sent++
    }
    expect(placementOf('late')).toMatchObject({ current: 'inline', reason: expect.stringMatching(/worker median .* ms ≤ half of inline_max_ms 2: moved inline/) })
    expect(sent).toBeGreaterThanOrEqual(128)
    expect(sent).toBeLessThan(2000)
    // Judged by its inline session's own warm-up now, not the load's 5 ms.
    expect(placementOf('late').warm_p50_ms).toBeLessThan(5)
    const before = runs('late')
    for (let i = 0; i < 10; i++) expect((await predict('late')).error).toBeNull()
    expect(runs('late')).toEqual({ inline: before.inline + 10, worker: before.worker })
  })

  it('stays in the workers when its file is too big to open on the event loop (a 461 KB random forest)', async () => {
    for (let i = 0; i < 260; i++) expect((await predict('heavy')).error).toBeNull()
    expect(placementOf('heavy')).toMatchObject({ current: 'worker', inline_p50_ms: null, reason: expect.stringMatching(/its file \(\d+ bytes\) is over 65536 to open on the event loop/) })
  })

  it('leaves a model pinned to the workers there, however tiny', async () => {
    for (let i = 0; i < 260; i++) expect((await predict('kept')).error).toBeNull()
    expect(placementOf('kept')).toMatchObject({ current: 'worker', inline_p50_ms: null, inline_max_rows: null })
  })
})

describe('a model whose warm-up is slow and whose real inputs are not', () => {
  it('moves inline on its worker runs and is judged by them there, not by its inline session\'s warm-up', async () => {
    // ~10 ms on a warm-up's zeros, a few µs on the inputs below (hand-made-models.ts): the
    // inline session's warm-up says "slow" again, as the load's did.
    const path = join(tempDir('specserve-slow-on-zeros-'), 'slow-on-zeros.onnx')
    writeSlowOnZerosModel(path, 1e7)
    const g = new Gateway(
      configFrom(`executors: { onnx_workers: 1, inline_max_ms: 2 }
models:
  m: { kind: onnx, path: ${path} }
ensembles:
  m: { strategy: deadline-fallback, models: [m], budget_ms: { default: 5000, max: 5000 } }
`),
    )
    try {
      await g.load()
      const placement = () => (g.model('m').executor.describe!() as { placement: { current: string; reason: string; warm_p50_ms: number; inline_max_rows: number } }).placement
      const input = { input: { datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.from([0, 1, 0, 1]) } }
      const served = async (budgetMs: number) => {
        const r = await g.predict({ id: 'z', ensemble: 'm', inputs: input, budgetMs })
        expect(r.error, JSON.stringify(r.models[0])).toBeNull()
        expect(Number(r.outputs!.label!.data[0])).toBe(1)
      }
      expect(placement()).toMatchObject({ current: 'worker', reason: expect.stringMatching(/over inline_max_ms 2/) })
      let sent = 0
      while (placement().current === 'worker' && sent < 2000) {
        await served(5000)
        sent++
      }
      expect(placement()).toMatchObject({ current: 'inline', reason: expect.stringMatching(/moved inline/) })
      // Through two checks of its inline median (every 128 runs), on real runs: it stays inline.
      for (let i = 0; i < 300; i++) await served(5000)
      expect(placement()).toMatchObject({ current: 'inline' })
      expect(placement().warm_p50_ms).toBeLessThan(1)
      expect(placement().inline_max_rows).toBeGreaterThan(1)
      // A budget well under its warm-up's ~13 ms is started inline: answered, or (a stalled box)
      // cut at its deadline once started, or refused as needing its worker runs' time, well
      // under 1 ms; never refused as needing the warm-up's.
      const tight = (await g.predict({ id: 'z', ensemble: 'm', inputs: input, budgetMs: 2 })).models[0]!
      const needs = tight.error?.code === 'WOULD_MISS_DEADLINE' ? Number(/needs ~([\d.]+) ms/.exec(tight.error.message ?? '')?.[1]) : 0
      expect(needs, JSON.stringify(tight)).toBeLessThan(1)
    } finally {
      await g.close()
    }
  })
})

// A worker stuck in a run far past its deadline (onnxruntime cannot interrupt one, and a
// thread terminated inside one aborts the process) is set aside: the pool sends it nothing
// more, a new worker serves in its place, the stuck one is logged and counted, and its thread
// closes by itself once its run ends. The thresholds are shortened here; each test waits for
// the stuck thread's exit before it ends, as a process that exits with a thread inside a run aborts.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { describe, expect, it, vi } from 'vitest'
import type { OnnxPool } from '../../../src/executors/onnx/pool.ts'
import type { Tensor, TensorMap } from '../../../src/tensor/index.ts'
import { root, samples } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { writeCostlyModel, writeSlowOnZerosModel } from './hand-made-models.ts'
import { later, metricsOf, sampleRows, usePool, workersOf } from './pool-helpers.ts'

const signal = new AbortController().signal
/** One row for the costly model: `cost` is its column 3 (its Loop turns, in thousands: ~1.5 ms each). */
const costing = (cost: number): TensorMap => ({ input: { datatype: 'FP32', shape: [1, 4], data: Float32Array.from([1, 2, 3, cost]) } })
/** Looked at every 20 ms; stuck 200 ms past the deadline. */
const watchdog = { everyMs: 20, floorMs: 200, runs: 10 }
/** A run of some 2 s: far longer than the watchdog allows a run with a 50 ms budget. */
const STUCK = 1500

const pools = usePool()

/** A one-worker pool serving the costly model, timed by a few fast runs; its worker, and whether that has exited. */
async function costlyPool(): Promise<{ pool: OnnxPool; old: Worker; exited: () => boolean; exit: Promise<unknown> }> {
  const path = join(tempDir('specserve-watchdog-'), 'costly.onnx')
  writeCostlyModel(path, 1000)
  const pool = pools.open({ workers: 1, queueLimit: 8, watchdog })
  await pool.register('costly', path)
  for (let i = 0; i < 3; i++) await pool.run('costly', costing(0), signal, later())
  const old = workersOf(pool)[0]!
  let gone = false
  const exit = once(old, 'exit').then(() => (gone = true))
  return { pool, old, exited: () => gone, exit }
}

const STUCK_MESSAGE = /^inference worker stuck: a run of model costly has gone on for over \d+\.\d s, past its deadline$/

describe('ONNX worker pool: a worker stuck in a run', () => {
  it('is set aside and replaced: the next request is served by the new worker, the stuck one is logged once and counted, and closes once its run ends', async () => {
    const { pool, old, exited, exit } = await costlyPool()
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    const stuck = pool.run('costly', costing(STUCK), signal, later(50))
    await expect(stuck).rejects.toMatchObject({ code: 'MODEL_FAILED', message: expect.stringMatching(STUCK_MESSAGE) })
    const fresh = workersOf(pool)[0]!
    expect(fresh).not.toBe(old)
    const posted = vi.spyOn(Worker.prototype, 'postMessage')
    const out = await pool.run('costly', costing(0), signal, later())
    expect(Array.from((out.label as Tensor).data as BigInt64Array, Number)).toEqual([2])
    // Its run went to the new worker, while the stuck one still runs.
    expect(posted.mock.contexts.filter((_, i) => (posted.mock.calls[i]![0] as { type: string }).type === 'run')).toEqual([fresh])
    expect(exited()).toBe(false)
    expect(warned).toHaveBeenCalledTimes(1)
    expect(warned).toHaveBeenCalledWith(
      expect.stringMatching(/^inference worker stuck: a run of model costly has gone on for over \d+\.\d s, past its deadline: set aside \(it closes once that run ends\) and replaced; the 1 request it held \(model costly\) failed MODEL_FAILED$/),
      { code: 'SPECSERVE_WORKER_STUCK' },
    )
    expect(metricsOf(pool)).toMatchObject({ specserve_onnx_workers_stuck: 1, specserve_onnx_workers_set_aside: 1, specserve_onnx_workers_busy: 0, specserve_onnx_queue_depth: 0 })
    // Its run over, it closes by itself (asked to, after that run), and is no longer counted as set aside.
    await exit
    expect(metricsOf(pool)).toMatchObject({ specserve_onnx_workers_stuck: 1, specserve_onnx_workers_set_aside: 0 })
    expect(pool.stats().restarts).toBe(0) // an exit it was asked for: no crash
  })

  it('is set aside during a stop too: its request fails at once, not when the run ends, and the stop ends once its thread has', async () => {
    const { pool, old, exited, exit } = await costlyPool()
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    const stuck = pool.run('costly', costing(STUCK), signal, later(50))
    let closed = false
    // The stop waits for the runs sent to the workers: this one is found stuck meanwhile.
    const closing = pool.close().then(() => void (closed = true))
    await expect(stuck).rejects.toMatchObject({ code: 'MODEL_FAILED', message: expect.stringMatching(STUCK_MESSAGE) })
    expect(exited()).toBe(false)
    expect(closed).toBe(false)
    expect(workersOf(pool)[0]).toBe(old) // not replaced while the gateway stops
    expect(warned).toHaveBeenCalledWith(expect.stringMatching(/: set aside \(it closes once that run ends\); the 1 request/), { code: 'SPECSERVE_WORKER_STUCK' })
    // A clean exit cannot leave a thread inside a run behind: the stop ends with it (serve bounds this by its grace).
    await closing
    expect(exited()).toBe(true)
    await exit
  })

  it('lets a register whose load waits behind a stuck run go on in the worker started in its place, without waiting for that run', async () => {
    const { pool, exited, exit } = await costlyPool()
    vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    const stuck = pool.run('costly', costing(STUCK), signal, later(50))
    // Its load goes to the worker after that run (the register reads the file's stamp first).
    const registering = pool.register('fast', join(root, 'models', 'cancer_logreg.onnx'))
    await expect(stuck).rejects.toMatchObject({ code: 'MODEL_FAILED', message: expect.stringMatching(STUCK_MESSAGE) })
    await expect(registering).resolves.toMatchObject({ inputs: [{ name: 'input' }] })
    expect(exited()).toBe(false)
    const out = await pool.run('fast', sampleRows('cancer'), signal, later())
    expect(Array.from((out.label as Tensor).data as BigInt64Array, Number)).toEqual([samples('cancer').expected.cancer_logreg![0]])
    await exit
  })

  it('does not count the time a run waits in a worker behind the load of another model', async () => {
    const dir = tempDir('specserve-watchdog-')
    writeCostlyModel(join(dir, 'costly.onnx'), 1000)
    // Slow on the zeros of its warm-up: its load takes the warm-up's whole 150 ms.
    writeSlowOnZerosModel(join(dir, 'slow-load.onnx'), 1e7)
    const pool = pools.open({ workers: 1, queueLimit: 8, watchdog: { ...watchdog, everyMs: 10, floorMs: 50 } })
    await pool.register('costly', join(dir, 'costly.onnx'))
    for (let i = 0; i < 3; i++) await pool.run('costly', costing(0), signal, later())
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    const post = Worker.prototype.postMessage
    const loadPosted = new Promise<void>((resolve) => {
      vi.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (this: Worker, ...args: Parameters<Worker['postMessage']>) {
        post.apply(this, args)
        if ((args[0] as { type: string }).type === 'load') resolve()
      })
    })
    const loading = pool.register('slow-load', join(dir, 'slow-load.onnx'))
    await loadPosted
    // Sent after the load: it runs once the load is done, well past its deadline and the 50 ms allowed.
    const started = performance.now()
    const behind = pool.run('costly', costing(0), signal, later(10))
    let ranAt = 0
    await Promise.all([loading, behind.then(() => void (ranAt = performance.now()))])
    expect(ranAt - started).toBeGreaterThan(150)
    expect(warned).not.toHaveBeenCalled()
    expect(pool.stats()).toMatchObject({ stuck: 0, setAside: 0 })
  })

  it('sets aside no more threads than the pool has workers: a second stuck worker is left in place, said once', { timeout: 30_000 }, async () => {
    const { pool, exit } = await costlyPool()
    let capSaid: () => void
    const said = new Promise<void>((resolve) => (capSaid = resolve))
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation((message) => {
      if (String(message).includes('not set aside')) capSaid()
    })
    // Some 6 s: still running while the replacement gets stuck too.
    await expect(pool.run('costly', costing(4 * STUCK), signal, later(50))).rejects.toMatchObject({ code: 'MODEL_FAILED' })
    const fresh = workersOf(pool)[0]!
    await pool.run('costly', costing(0), signal, later())
    const second = pool.run('costly', costing(STUCK), signal, later(50))
    await said
    expect(workersOf(pool)[0]).toBe(fresh) // left in place, not replaced
    expect(pool.stats()).toMatchObject({ stuck: 1, setAside: 1 })
    expect(warned).toHaveBeenLastCalledWith(
      'inference worker stuck in a run of model costly, not set aside: 1 stuck thread is still running, as many as the pool has workers; its jobs wait for it until one of those ends',
      { code: 'SPECSERVE_WORKER_STUCK' },
    )
    await second // its run ends, on the worker left in place
    await exit
    expect(warned).toHaveBeenCalledTimes(2)
    expect(pool.stats()).toMatchObject({ stuck: 1, setAside: 0 })
  })

  it('sets aside, once it closes, a stuck worker left in place past that cap (nothing replaces it then): the close of its other workers does not wait for its run', { timeout: 30_000 }, async () => {
    const { pool, exited, exit } = await costlyPool()
    let capSaid: () => void
    const said = new Promise<void>((resolve) => (capSaid = resolve))
    vi.spyOn(process, 'emitWarning').mockImplementation((message) => {
      if (String(message).includes('not set aside')) capSaid()
    })
    await expect(pool.run('costly', costing(STUCK), signal, later(50))).rejects.toMatchObject({ code: 'MODEL_FAILED' })
    const fresh = workersOf(pool)[0]!
    let freshGone = false
    const freshExit = once(fresh, 'exit').then(() => (freshGone = true))
    await pool.run('costly', costing(0), signal, later())
    const second = pool.run('costly', costing(STUCK), signal, later(50))
    await said
    await pool.closeLeavingStuck()
    await expect(second).rejects.toMatchObject({ code: 'MODEL_FAILED', message: expect.stringMatching(STUCK_MESSAGE) })
    expect(pool.stats()).toMatchObject({ stuck: 2, setAside: 2 })
    expect([exited(), freshGone]).toEqual([false, false])
    // close() waits for both threads.
    await pool.close()
    await Promise.all([exit, freshExit])
    expect(pool.stats()).toMatchObject({ stuck: 2, setAside: 0 })
  })

  it('keeps a process whose pool closes with a worker set aside alive until that thread exits: no abort', { timeout: 30_000 }, async () => {
    // A process of its own: in this one the test runner holds the loop, where a process whose
    // loop drained would tear the set-aside thread down inside its run (an abort, 134).
    const dir = tempDir('specserve-watchdog-exit-')
    const script = join(dir, 'close.ts')
    writeFileSync(
      script,
      `import { OnnxPool } from ${JSON.stringify(join(root, 'src/executors/onnx/pool.ts'))}
import { writeCostlyModel } from ${JSON.stringify(join(root, 'test/executors/onnx/hand-made-models.ts'))}
process.emitWarning = () => {}
const path = ${JSON.stringify(join(dir, 'costly.onnx'))}
writeCostlyModel(path, 1000)
const row = (cost) => ({ input: { datatype: 'FP32', shape: [1, 4], data: Float32Array.from([1, 2, 3, cost]) } })
const signal = new AbortController().signal
const pool = new OnnxPool({ workers: 1, queueLimit: 8, watchdog: ${JSON.stringify(watchdog)} })
await pool.register('costly', path)
for (let i = 0; i < 3; i++) await pool.run('costly', row(0), signal, performance.now() + 60_000)
await pool.run('costly', row(${STUCK}), signal, performance.now() + 50).catch(() => {})
await pool.close()
console.log('closed', JSON.stringify(pool.stats()))
`,
    )
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (b: Buffer) => (out += String(b)))
    child.stderr.on('data', (b: Buffer) => (out += String(b)))
    const [code, signalCode] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null]
    expect([code, signalCode], out).toEqual([0, null])
    expect(out).toMatch(/^closed \{.*"stuck":1,"setAside":0\}$/m)
  })
})

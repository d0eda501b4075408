import { readdirSync, readFileSync } from 'node:fs'
import { getPriority } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { describe, expect, it, vi } from 'vitest'
import { OnnxPool } from '../../../src/executors/onnx/pool.ts'
import type { Tensor, TensorMap } from '../../../src/tensor/index.ts'
import { root, samples } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { writeSlowOnZerosModel } from './hand-made-models.ts'
import { holdFirstAnswer, later, sampleRows, usePool } from './pool-helpers.ts'

const model = (file: string): string => join(root, 'models', file)
const rows = (task: string, n = 1): TensorMap => sampleRows(task, n)
const labels = (out: TensorMap): number[] => Array.from((out.label as Tensor).data as BigInt64Array, Number)
/** The pool dispatches once per turn of the event loop (a microtask): after this, what it can send is sent. */
const dispatched = (): Promise<void> => Promise.resolve()

const pools = usePool()

/** This process's threads by their nice value (Linux: /proc/self/task/<tid>/stat, field 19). */
function threadsAtNice(nice: number): number {
  let n = 0
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) === nice) n++
    } catch {
      // a thread that ended while we looked
    }
  }
  return n
}

describe('ONNX worker pool', () => {
  it('loads a real model, reads its metadata and reproduces the labels scikit-learn gave', async () => {
    const pool = pools.open({ workers: 2, queueLimit: 16 })
    const meta = await pool.register('wine', model('wine_rf.onnx'))
    expect(meta.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 13] }])
    expect(meta.outputs.map((o) => `${o.name}:${o.datatype}`)).toEqual(['label:INT64', 'probabilities:FP32'])
    const out = await pool.run('wine', rows('wine', 3), new AbortController().signal, later())
    expect(labels(out)).toEqual(samples('wine').expected.wine_rf)
    expect((out.probabilities as Tensor).shape).toEqual([3, 3])
  })

  it('runs its workers the nice steps asked below the event loop, and leaves the event loop as it was', async () => {
    const loop = getPriority()
    const lowered = Math.min(19, loop + 3)
    const already = threadsAtNice(lowered)
    const pool = pools.open({ workers: 2, queueLimit: 8, nice: 3 })
    // A worker reports its priority before it answers any load: once loaded, both have.
    await pool.register('wine', model('wine_rf.onnx'))
    expect(pool.stats().nice).toBe(lowered - loop)
    expect(threadsAtNice(lowered) - already).toBe(2)
    expect(getPriority()).toBe(loop)
  })

  it('keeps the event loop responsive while a slow model runs', async () => {
    const pool = pools.open({ workers: 2, queueLimit: 16 })
    const { warmRunsMs } = await pool.register('slow', model('cancer_slow.onnx'))
    const fastest = Math.min(...warmRunsMs)
    const runs = [0, 1, 2, 3].map(() => pool.run('slow', rows('cancer'), new AbortController().signal, later()))
    await dispatched()
    // Two rounds: two runs on the workers, two waiting (not sent ahead: a slow model is not pipelined).
    expect(pool.stats()).toMatchObject({ busy: 2, queued: 2 })
    let firstDone = false
    const markDone = (): void => void (firstDone = true)
    void Promise.race(runs).then(markDone, markDone)
    // While 4 runs of tens of milliseconds go on two workers, the main thread's timers keep firing.
    let ticksBeforeFirstRun = 0
    while (!firstDone) {
      await new Promise((r) => setTimeout(r, 2))
      if (!firstDone) ticksBeforeFirstRun++
    }
    await Promise.all(runs)
    // The slow model really is slow: tens of milliseconds per run, measured at warm-up. (Not the
    // rounds' wall time against the warm-up's: on a loaded box the warm-up ran 158 ms per run and
    // the rounds 102 ms; the queue above shows the two rounds.)
    expect(fastest).toBeGreaterThan(10)
    // Were inference on this thread, no timer could fire before the first run ended.
    expect(ticksBeforeFirstRun).toBeGreaterThanOrEqual(3)
  })

  it('never starts a queued job whose request was aborted', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 16 })
    await pool.register('slow', model('cancer_slow.onnx'))
    await pool.register('fast', model('cancer_logreg.onnx'))
    const busy = pool.run('slow', rows('cancer'), new AbortController().signal, later())
    const cancelled = new AbortController()
    const queued = pool.run('slow', rows('cancer'), cancelled.signal, later())
    await dispatched()
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 1 })
    cancelled.abort(new Error('decided'))
    await expect(queued).rejects.toThrow('decided')
    expect(pool.stats().queued).toBe(0)
    await busy
    // The only worker runs jobs in order: had the aborted job been sent, it would have run before this one.
    await pool.run('fast', rows('cancer'), new AbortController().signal, later())
    expect(pool.laneStats('slow')!.runs).toBe(1)
  })

  it('answers a job aborted while its run still goes on when the run ends: a late answer is still data', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 16 })
    // Two requests in one batch: the run goes on for the one still waiting, whatever the other does.
    await pool.register('batched', model('cancer_logreg.onnx'), { batching: { maxBatch: 2, maxDelayMs: 60_000 } })
    const cut = new AbortController()
    const decided = pool.run('batched', rows('cancer'), cut.signal, later())
    const waiting = pool.run('batched', rows('cancer'), new AbortController().signal, later())
    await dispatched()
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 0 })
    // Its request was decided without it: its answer still comes, for late records and counters.
    cut.abort(new Error('decided'))
    const [late, answered] = await Promise.all([decided, waiting])
    expect(Object.keys(late)).toEqual(['label', 'probabilities'])
    expect(Object.keys(answered)).toEqual(['label', 'probabilities'])
  })

  it('runs a model\'s short-budget job before a long-budget one queued ahead of it', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 16 })
    await pool.register('slow', model('cancer_slow.onnx'))
    const answered: string[] = []
    const run = (name: string, budgetMs: number): Promise<void> =>
      pool.run('slow', rows('cancer'), new AbortController().signal, later(budgetMs)).then(() => void answered.push(name))
    const busy = run('busy', 60_000)
    await dispatched()
    await Promise.all([busy, run('long budget, queued first', 60_000), run('short budget, queued second', 30_000)])
    expect(answered).toEqual(['busy', 'short budget, queued second', 'long budget, queued first'])
  })

  /** One worker running the cancer logistic regression, timed as fast by a few real runs (the very first is slower). */
  async function fastPool(): Promise<OnnxPool> {
    const pool = pools.open({ workers: 1, queueLimit: 16 })
    await pool.register('fast', model('cancer_logreg.onnx'))
    for (let i = 0; i < 3; i++) await pool.run('fast', rows('cancer'), new AbortController().signal, later())
    return pool
  }

  /** A long job, and a short one pipelined behind it in the worker and cancelled there: the short one must never run. */
  async function cancelWhilePipelined(pool: OnnxPool): Promise<void> {
    const row = samples('cancer').rows[0]!
    const n = 40_000
    const batch: TensorMap = { input: { datatype: 'FP32', shape: [n, 30], data: Float32Array.from({ length: n * 30 }, (_, i) => row[i % 30]!) } }
    const first = pool.run('fast', batch, new AbortController().signal, later())
    const cancelled = new AbortController()
    const second = pool.run('fast', rows('cancer'), cancelled.signal, later())
    await dispatched()
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 1 }) // both are in the worker already: the second waits there
    cancelled.abort(new Error('decided'))
    await expect(second).rejects.toThrow('decided') // had it run, it would have resolved with outputs
    expect(labels(await first)).toHaveLength(n)
  }

  it('pipelines a fast model, and never runs a pipelined job that was cancelled while it waited in the worker', async () => {
    await cancelWhilePipelined(await fastPool())
  })

  it('still never runs a cancelled pipelined job once unit ids pass 2^31 (about 30 hours at 20k units/s) and start again', async () => {
    const pool = await fastPool()
    // Ids ran up to there: the next two units are numbered 2^31 - 1 and then whatever follows it.
    ;(pool as unknown as { dispatcher: { nextId: number } }).dispatcher.nextId = 2 ** 31 - 1
    await cancelWhilePipelined(pool)
    await cancelWhilePipelined(pool)
  })

  it('closes cleanly while an inference is running', async () => {
    const closing = new OnnxPool({ workers: 1, queueLimit: 8 })
    await closing.register('slow', model('cancer_slow.onnx'))
    const running = closing.run('slow', rows('cancer'), new AbortController().signal, later())
    const queued = expect(closing.run('slow', rows('cancer'), new AbortController().signal, later())).rejects.toThrow('gateway closing')
    await closing.close()
    expect(labels(await running)).toEqual([samples('cancer').expected.cancer_slow![0]])
    await queued
  })

  it('rejects with OVERLOADED once the queue is full', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 2 })
    await pool.register('slow', model('cancer_slow.onnx'))
    const signal = new AbortController().signal
    const running = pool.run('slow', rows('cancer'), signal, later())
    await dispatched()
    // One job in the worker, two waiting: the queue (2) is full.
    const accepted = [running, pool.run('slow', rows('cancer'), signal, later()), pool.run('slow', rows('cancer'), signal, later())]
    await expect(pool.run('slow', rows('cancer'), signal, later())).rejects.toMatchObject({ code: 'OVERLOADED', skipped: true })
    await Promise.all(accepted)
  })

  it('skips a job that cannot finish in the time left, once the model has been timed', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 8 })
    await pool.register('slow', model('cancer_slow.onnx'))
    await pool.run('slow', rows('cancer'), new AbortController().signal, later())
    await expect(pool.run('slow', rows('cancer'), new AbortController().signal, later(20))).rejects.toMatchObject({ code: 'WOULD_MISS_DEADLINE', skipped: true })
    expect(pool.laneStats('slow')!.runs).toBe(1) // refused without running
  })

  it('never gives one model more workers than its max_concurrency', async () => {
    const pool = pools.open({ workers: 2, queueLimit: 8 })
    await pool.register('slow', model('cancer_slow.onnx'), { cap: 1 })
    await pool.register('fast', model('cancer_logreg.onnx'))
    const slow = [1, 2, 3].map(() => pool.run('slow', rows('cancer'), new AbortController().signal, later()))
    // The second worker stays free for other models while three slow jobs wait their turn.
    const out = await pool.run('fast', rows('cancer'), new AbortController().signal, later())
    expect(pool.laneStats('slow')!.runs).toBe(0) // it did not wait for a slow run to end
    expect(labels(out)).toEqual([samples('cancer').expected.cancer_logreg![0]])
    await Promise.all(slow)
  })

  it('closes right after unloading models without aborting the process', async () => {
    // Stopping a worker inside a native release used to abort the whole process (SIGABRT):
    // surviving this loop is the assertion, and every pool reports itself closed.
    const files = ['cancer_logreg', 'cancer_mlp', 'cancer_gbdt', 'wine_rf', 'digits_rf', 'digits_mlp']
    for (let i = 0; i < 8; i++) {
      const p = new OnnxPool({ workers: 2, queueLimit: 8 })
      await Promise.all(files.map((m) => p.register(m, model(`${m}.onnx`))))
      for (const m of files) p.unregister(m)
      await p.close()
      expect(p.stats().busy).toBe(0)
    }
  })

  it('reports a model that fails to load with the runtime message', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 8 })
    await expect(pool.register('bad', join(root, 'package.json'))).rejects.toThrow(/protobuf|parse|load|Load/i)
  })

  /** Registers a model whose load takes its warm-up's whole 150 ms (slow on zeros); resolves once that load is posted to the worker. */
  async function slowLoad(pool: OnnxPool): Promise<{ loading: Promise<unknown> }> {
    const path = join(tempDir('specserve-pool-'), 'slow-load.onnx')
    writeSlowOnZerosModel(path, 1e7)
    const post = Worker.prototype.postMessage
    const posted = new Promise<void>((resolve) => {
      vi.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (this: Worker, ...args: Parameters<Worker['postMessage']>) {
        post.apply(this, args)
        if ((args[0] as { type: string }).type === 'load') resolve()
      })
    })
    const loading = pool.register('slow-load', path)
    await posted
    return { loading }
  }

  it('counts a job sent to a worker still answering a load as queued until the worker begins it', async () => {
    const pool = await fastPool()
    const { loading } = await slowLoad(pool)
    const behind = pool.run('fast', rows('cancer'), new AbortController().signal, later())
    await dispatched()
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 1 })
    await loading
    expect(pool.stats().queued).toBe(0)
    expect(labels(await behind)).toEqual([samples('cancer').expected.cancer_logreg![0]])
  })

  it('counts a pipelined job as queued until the worker begins it: behind the run before it, then behind a load sent between them', async () => {
    const pool = await fastPool()
    const row = samples('cancer').rows[0]!
    const n = 40_000
    const batch: TensorMap = { input: { datatype: 'FP32', shape: [n, 30], data: Float32Array.from({ length: n * 30 }, (_, i) => row[i % 30]!) } }
    // The first run's answer is held from the pool until released: till then it is running, as the pool sees it.
    const answer = holdFirstAnswer()
    const first = pool.run('fast', batch, new AbortController().signal, later())
    await dispatched()
    const { loading } = await slowLoad(pool)
    const second = pool.run('fast', rows('cancer'), new AbortController().signal, later())
    await dispatched()
    // Behind the run (and the load after it).
    expect(answer.released).toBe(false)
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 1 })
    // The run before it answered: the load is next in the worker, and it still waits.
    await answer.release()
    expect(labels(await first)).toHaveLength(n)
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 1 })
    await loading
    expect(pool.stats().queued).toBe(0)
    expect(labels(await second)).toEqual([samples('cancer').expected.cancer_logreg![0]])
  })

  it('sends every fast member handed to one worker in one turn as one message', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 16 })
    const keys = ['a', 'b', 'c']
    for (const key of keys) await pool.register(key, model('cancer_logreg.onnx'))
    // One real run each times them as fast (only timed fast models may wait inside a worker).
    for (const key of keys) await pool.run(key, rows('cancer'), new AbortController().signal, later())
    const posted = vi.spyOn(Worker.prototype, 'postMessage')
    const outs = await Promise.all(keys.map((key) => pool.run(key, rows('cancer'), new AbortController().signal, later())))
    expect(outs.map(labels)).toEqual(keys.map(() => [samples('cancer').expected.cancer_logreg![0]]))
    const runs = posted.mock.calls.map(([msg]) => msg as { type: string; units?: unknown[] }).filter((msg) => msg.type === 'run')
    expect(runs.map((msg) => msg.units!.length)).toEqual([3])
  })

  it('closes once however often it is asked, and refuses work after', async () => {
    const closing = new OnnxPool({ workers: 1, queueLimit: 8 })
    await closing.register('fast', model('cancer_logreg.onnx'))
    await Promise.all([closing.close(), closing.close()])
    await closing.close()
    await expect(closing.run('fast', rows('cancer'), new AbortController().signal, later())).rejects.toThrow('not loaded')
  })

  it('unloads a model from the workers that loaded it when another worker fails to', async () => {
    const pool = pools.open({ workers: 2, queueLimit: 8 })
    const posted = vi.spyOn(Worker.prototype, 'postMessage')
    await expect(pool.register('bad', join(root, 'package.json'))).rejects.toThrow()
    const unloads = posted.mock.calls.map(([msg]) => msg as { type: string; key?: string }).filter((msg) => msg.type === 'unload')
    expect(unloads).toEqual([{ type: 'unload', key: 'bad' }, { type: 'unload', key: 'bad' }])
  })
})

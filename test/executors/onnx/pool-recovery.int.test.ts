// The pool when a worker goes away or the pool closes while models load: a close never
// waits on loads not begun (nor cuts one under way: terminating a thread inside a native
// create aborts the process), and a worker started again after a crash loads what its
// siblings loaded, from the same file, or serves none of that model's runs.
import { copyFileSync } from 'node:fs'
import { once } from 'node:events'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { describe, expect, it, vi } from 'vitest'
import type { OnnxPool } from '../../../src/executors/onnx/pool.ts'
import type { Tensor, TensorMap } from '../../../src/tensor/index.ts'
import { root, samples } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { later, metricsOf, sampleRows, usePool, workersOf } from './pool-helpers.ts'

const model = (file: string): string => join(root, 'models', file)
const labels = (out: TensorMap): number[] => Array.from((out.label as Tensor).data as BigInt64Array, Number)
const probabilities = (out: TensorMap): number[] => Array.from((out.probabilities as Tensor).data as Float32Array)
const signal = new AbortController().signal
/** The pool dispatches once per turn of the event loop (a microtask): after this, what it can send is sent. */
const dispatched = (): Promise<void> => Promise.resolve()

const pools = usePool()

type Message = { readonly type: string; readonly key?: string }
const isLoadAnswer = (msg: Message): boolean => msg.type === 'loaded' || msg.type === 'load-failed'

/** Every message posted to a worker from now on, with the worker it went to (`log` is told each one's type). */
function recordPosts(log?: string[]): { worker: Worker; msg: Message }[] {
  const posts: { worker: Worker; msg: Message }[] = []
  const post = Worker.prototype.postMessage
  vi.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (this: Worker, ...args: Parameters<Worker['postMessage']>) {
    const msg = args[0] as Message
    posts.push({ worker: this, msg })
    log?.push(msg.type)
    post.apply(this, args)
  })
  return posts
}

/**
 * Worker `index` goes away as a crash would (told to exit while it holds no unit: no native
 * call is cut; `kill` false: the test tells it), and the pool starts another. Resolves once
 * the old one has exited, with the new one and a promise that it has answered every load the
 * pool sent it.
 */
async function restarted(pool: OnnxPool, index: number, kill = true): Promise<{ worker: Worker; loaded: Promise<void> }> {
  const posts = recordPosts()
  const old = workersOf(pool)[index]!
  if (kill) old.postMessage({ type: 'close' })
  await once(old, 'exit')
  // The pool's 'exit' listener ran first: the new worker is in place and its loads are posted.
  const worker = workersOf(pool)[index]!
  expect(worker).not.toBe(old)
  const loads = posts.filter((p) => p.worker === worker && p.msg.type === 'load').length
  const loaded = new Promise<void>((resolve) => {
    let answered = 0
    const listener = (msg: Message): void => {
      if (!isLoadAnswer(msg) || ++answered < loads) return
      worker.off('message', listener)
      resolve()
    }
    worker.on('message', listener)
  })
  return { worker, loaded }
}

describe('ONNX worker pool: closing while loading, and a worker crash', () => {
  it('closes during a load without opening the loads queued behind it, and asks the worker to exit only once it has answered them', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 8 })
    // What went to the worker and what it answered, in order.
    const log: string[] = []
    // The worker's own answers, in the order it took the loads (one at a time, as sent; a
    // register stats its file first, so two sent together may go out in either order).
    const answers: { key: string; outcome: string }[] = []
    workersOf(pool)[0]!.on('message', (msg: Message & { key?: string; message?: string }) => {
      if (!isLoadAnswer(msg)) return
      log.push('answer')
      answers.push({ key: msg.key!, outcome: msg.type === 'loaded' ? 'loaded' : msg.message! })
    })
    recordPosts(log)
    const keys = Array.from({ length: 6 }, (_, i) => `m${i}`)
    const registers = keys.map((key) => pool.register(key, model('cancer_slow.onnx')).then(() => 'loaded', (err: Error) => err.message))
    await registers[0]
    // The worker opens the next load now (on a busy box, a second may be begun too before this
    // thread gets here); the rest wait behind it in its queue. Each takes a few hundred ms: with
    // enough of them, the old close's 10 s terminate() landed inside one (SIGABRT).
    await pool.close()
    const outcomes = await Promise.all(registers)
    // Each register ends as the worker answered its load: one it had begun, loaded (the close
    // cuts none); every one after those, refused by the worker itself, never opened.
    expect(answers.map((a) => a.key).sort()).toEqual(keys)
    expect(outcomes).toEqual(keys.map((key) => answers.find((a) => a.key === key)!.outcome))
    const inOrder = answers.map((a) => a.outcome)
    const begun = inOrder.indexOf('gateway closing')
    expect(begun).toBeGreaterThanOrEqual(1)
    expect(inOrder).toEqual([...Array<string>(begun).fill('loaded'), ...Array<string>(6 - begun).fill('gateway closing')])
    // 'close' (and with it the terminate() timer) went out only after every load was answered.
    expect(log.filter((e) => e === 'answer')).toHaveLength(6)
    expect(log.indexOf('close')).toBeGreaterThan(log.lastIndexOf('answer'))
  })

  it('refuses a register once it is closing, rather than post a load to a worker on its way out', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 8 })
    const closing = pool.close()
    await expect(pool.register('late', model('cancer_logreg.onnx'))).rejects.toThrow('gateway closing')
    await closing
  })

  it('a worker that crashes holding a request fails it MODEL_FAILED, says so in a warning, counts a restart, and is started again', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 16 })
    await pool.register('fast', model('cancer_logreg.onnx'))
    // Real runs time it as fast: a second request is then sent to the worker behind the first (pipelined).
    for (let i = 0; i < 3; i++) await pool.run('fast', sampleRows('cancer'), signal, later())
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    const old = workersOf(pool)[0]!
    const first = pool.run('fast', sampleRows('cancer'), signal, later())
    await dispatched()
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 0 })
    // It goes away after the first run, as after a crash: the request sent to it next never runs.
    old.postMessage({ type: 'close' })
    const lost = pool.run('fast', sampleRows('cancer'), signal, later())
    await dispatched()
    // Held by that worker before it answers the first: sent only after that answer, it could
    // meet the exit first (Node, hearing the exit before the answer, emits both in one go, and
    // the pool would rightly send it to the replacement, where it runs).
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 1 })
    expect(labels(await first)).toEqual([samples('cancer').expected.cancer_logreg![0]])
    const crashed = 'inference worker crashed: inference worker exited with code 0'
    await expect(lost).rejects.toMatchObject({ code: 'MODEL_FAILED', message: crashed })
    expect(warned).toHaveBeenCalledWith(
      'inference worker crashed (inference worker exited with code 0) and was started again: the 1 request it held (model fast) failed MODEL_FAILED',
      { code: 'SPECSERVE_WORKER_CRASH' },
    )
    expect(metricsOf(pool).specserve_onnx_worker_restarts).toBe(1)
    // The worker started in its place serves the next one.
    expect(workersOf(pool)[0]).not.toBe(old)
    expect(labels(await pool.run('fast', sampleRows('cancer'), signal, later()))).toEqual([samples('cancer').expected.cancer_logreg![0]])
    // A stop is no crash: the workers' exit then is neither counted nor told.
    await pool.close()
    expect(metricsOf(pool).specserve_onnx_worker_restarts).toBe(1)
    expect(warned).toHaveBeenCalledTimes(1)
  })

  it('a worker replaced while the gateway stops loads nothing: the stop does not wait for its loads', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 8 })
    await pool.register('m', model('cancer_logreg.onnx'))
    pool.beginClose()
    const posts = recordPosts()
    const old = workersOf(pool)[0]!
    old.postMessage({ type: 'close' })
    await once(old, 'exit')
    const fresh = workersOf(pool)[0]!
    expect(fresh).not.toBe(old)
    expect(posts.filter((p) => p.worker === fresh && p.msg.type === 'load')).toEqual([])
  })

  it('a worker started again after a crash does not load a model file replaced on disk since: the workers that loaded it serve it', async () => {
    const file = join(tempDir('specserve-respawn-'), 'model.onnx')
    copyFileSync(model('cancer_logreg.onnx'), file)
    const pool = pools.open({ workers: 2, queueLimit: 16 })
    await pool.register('m', file)
    const served = probabilities(await pool.run('m', sampleRows('cancer'), signal, later()))
    // Replaced beside the config: the next reload takes it. Until then the model is what was loaded.
    copyFileSync(model('cancer_mlp.onnx'), file)
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    const { loaded } = await restarted(pool, 1)
    await loaded
    // Both workers idle, six runs: the new worker would get half of them, were it given any.
    const outs = await Promise.all(Array.from({ length: 6 }, () => pool.run('m', sampleRows('cancer'), signal, later())))
    for (const out of outs) expect(probabilities(out)).toEqual(served)
    expect(warned).toHaveBeenCalledWith(expect.stringMatching(/did not load model m \(model file .* changed on disk/), { code: 'SPECSERVE_WORKER_RELOAD' })
  })

  it('a model no worker could load again after a crash fails its runs at once, MODEL_FAILED, rather than "not loaded" forever', async () => {
    const file = join(tempDir('specserve-respawn-'), 'model.onnx')
    copyFileSync(model('cancer_logreg.onnx'), file)
    const pool = pools.open({ workers: 1, queueLimit: 16 })
    await pool.register('m', file)
    copyFileSync(model('cancer_mlp.onnx'), file)
    vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    const { loaded } = await restarted(pool, 0)
    // Queued: the new worker takes no unit until its loads have answered.
    const waiting = pool.run('m', sampleRows('cancer'), signal, later())
    await loaded
    const lost = { code: 'MODEL_FAILED', message: expect.stringContaining('model m is in no inference worker') }
    await expect(waiting).rejects.toMatchObject(lost)
    await expect(pool.run('m', sampleRows('cancer'), signal, later())).rejects.toMatchObject(lost)
  })

  it('a register whose load a worker never answered, as it crashed first, is loaded by the worker started in its place', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 8 })
    await pool.register('first', model('cancer_logreg.onnx'))
    vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    const old = workersOf(pool)[0]!
    // The load never reaches it: it goes away instead, as after a crash.
    const post = Worker.prototype.postMessage
    vi.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (this: Worker, ...args: Parameters<Worker['postMessage']>) {
      if (this === old && (args[0] as Message).type === 'load') return post.call(this, { type: 'close' })
      post.apply(this, args)
    })
    await expect(pool.register('second', model('cancer_mlp.onnx'))).resolves.toMatchObject({ inputs: [{ name: 'input' }] })
    expect(workersOf(pool)[0]).not.toBe(old)
    expect(labels(await pool.run('second', sampleRows('cancer'), signal, later()))).toEqual([samples('cancer').expected.cancer_mlp![0]])
    expect(labels(await pool.run('first', sampleRows('cancer'), signal, later()))).toEqual([samples('cancer').expected.cancer_logreg![0]])
  })

  it('a register whose load is lost with the worker started in its place too fails, rather than go on from one replacement to the next', async () => {
    const pool = pools.open({ workers: 1, queueLimit: 8 })
    await pool.register('first', model('cancer_logreg.onnx'))
    vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    // Its load ends the first two workers it goes to, as a model whose load crashes its worker would.
    let ended = 0
    const post = Worker.prototype.postMessage
    vi.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (this: Worker, ...args: Parameters<Worker['postMessage']>) {
      const msg = args[0] as Message
      if (msg.type === 'load' && msg.key === 'second' && ended++ < 2) return post.call(this, { type: 'close' })
      post.apply(this, args)
    })
    await expect(pool.register('second', model('cancer_mlp.onnx'))).rejects.toThrow('inference worker exited with code 0')
    expect(pool.stats().restarts).toBe(2)
    expect(labels(await pool.run('first', sampleRows('cancer'), signal, later()))).toEqual([samples('cancer').expected.cancer_logreg![0]])
  })

  it('a worker that crashes while a model is being registered is replaced by one that loads that model too', async () => {
    const pool = pools.open({ workers: 2, queueLimit: 16 })
    await pool.register('wide', model('digits_wide.onnx'))
    // Worker 0 runs a long batch (~0.7 s), so the register below waits for it there...
    const busy = pool.run('wide', sampleRows('digits', 20_000), signal, later())
    await dispatched()
    expect(pool.stats()).toMatchObject({ busy: 1, queued: 0 })
    // ...while worker 1 loads the new model and then goes away.
    const second = workersOf(pool)[1]!
    second.on('message', (msg: Message) => void (msg.type === 'loaded' && msg.key === 'fast' && second.postMessage({ type: 'close' })))
    let registered = false
    const registering = pool.register('fast', model('cancer_logreg.onnx')).then(() => void (registered = true))
    const { loaded } = await restarted(pool, 1, false)
    expect(registered).toBe(false) // the crash came during the register
    await Promise.all([loaded, registering, busy])
    // Both workers idle, the model not timed yet (so not pipelined): the runs alternate between them.
    const outs = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.run('fast', sampleRows('cancer', 1, i), signal, later())))
    const expected = samples('cancer').expected.cancer_logreg!
    expect(outs.map(labels)).toEqual(outs.map((_, i) => [expected[i % expected.length]]))
  })
})

// The library's close while an ONNX worker thread is inside a run that outlasts its bound: it
// rejects at the bound with CloseTimeoutError, before the run has ended (the thread is still
// there), the thread is never terminated (a thread terminated inside a run aborts the process:
// this test's own), and the close ends once the run does. What `serve` does with the same bound: test/lifecycle/running-inference.int.test.ts.
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { expect, it, vi } from 'vitest'
import { CloseTimeoutError } from '../src/gateway-close.ts'
import { Gateway } from '../src/gateway.ts'
import { writeCostlyModel } from './executors/onnx/hand-made-models.ts'
import { configFrom } from './helpers.ts'
import { tempDir } from './temp-dirs.ts'

/** One row whose run takes `cost` thousand Loop turns (~1.5-2.5 ms each). */
const costing = (cost: number) => ({ input: { datatype: 'FP32', shape: [1, 4], data: Float32Array.from([1, 2, 3, cost]) } }) as const

it('rejects past its bound while a worker is inside a run, never cutting it; the close goes on and ends with the run', { timeout: 60_000 }, async () => {
  const path = join(tempDir('specserve-close-'), 'costly.onnx')
  writeCostlyModel(path, 1000)
  const gateway = new Gateway(configFrom(`
executors: { onnx_workers: 1 }
models: { costly: { kind: onnx, path: ${path}, placement: worker } }
ensembles: { e: { strategy: deadline-fallback, models: [costly], budget_ms: { default: 200, max: 60000 } } }
`))
  await gateway.load()
  // The run's end, as the pool sees it: its worker's answer (or the thread's exit).
  let runEnded = false
  const post = Worker.prototype.postMessage
  const spy = vi.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (this: Worker, ...args: Parameters<Worker['postMessage']>) {
    if ((args[0] as { type: string }).type === 'run') {
      const ended = (): void => void (runEnded = true)
      this.once('message', ended).once('exit', ended)
      spy.mockRestore()
    }
    post.apply(this, args)
  })
  // A run of 2-4 s: answered at its 200 ms deadline, `timeout`, its worker still inside it.
  const result = await gateway.predict({ id: 'long', ensemble: 'e', inputs: costing(1500) })
  expect(result.models[0]).toMatchObject({ status: 'timeout' })
  const err = (await gateway.close(100).then(() => undefined, (e: unknown) => e)) as CloseTimeoutError
  expect(err).toBeInstanceOf(CloseTimeoutError)
  // At its bound, not once the run was over.
  expect(runEnded).toBe(false)
  expect(err.pending).toEqual(expect.arrayContaining(['the inference workers']))
  // A worker is inside a run: the message says so.
  expect(err.message).toMatch(/^the gateway did not close within 100 ms: .*the inference workers still closing, as an inference an ONNX worker thread is inside cannot be interrupted/)
  // Still under way, not pretended done: it ends with the run (the process alive: the thread was not terminated).
  await err.closed
  await expect(gateway.close(0)).resolves.toBeUndefined()
})

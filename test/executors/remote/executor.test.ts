// The remote executor over a scripted protocol adapter, on a fake clock: a gRPC deadline
// error that comes a hair before the caller's deadline (the gRPC deadline is set on the wall
// clock in whole milliseconds) is left for the caller's timer, so the request ends as a
// timeout (504), not as an upstream failure (502); one that comes well before stays an error.
// A metadata call never answered at load ends at its 10 s limit, which its error names.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { parseConfig } from '../../../src/config/load.ts'
import { ModelErrorCode } from '../../../src/errors.ts'
import { UpstreamError } from '../../../src/executors/remote/errors.ts'
import { RemoteExecutor, type ProtocolAdapter } from '../../../src/executors/remote/executor.ts'
import type { RemoteSettings } from '../../../src/executors/remote/config.ts'
import type { InferContext } from '../../../src/executors/types.ts'

beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }))
afterEach(() => vi.useRealTimers())

const io = 'inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }], outputs: [{ name: y, datatype: FP32, shape: [-1] }]'
// first_calls_ms at its least: the first call is cut at the caller's deadline, as every later one (circuit.ts's learner).
const settings = parseConfig(`models:\n  m: { kind: oip, url: "grpc://127.0.0.1:1", model: m, retries: 0, circuit_breaker: { first_calls_ms: 5 }, ${io} }\nensembles:\n  e: { strategy: deadline-fallback, models: [m] }\n`, '/tmp/remote.yaml').models.get('m')!.spec as RemoteSettings

/** An adapter whose every call fails with the gRPC deadline error `earlyMs` before the time it was given. */
function deadlineErrorEarly(earlyMs: number): ProtocolAdapter {
  return {
    fetchMetadata: () => Promise.resolve(null),
    infer: (_inputs, _outputs, signal, timeoutMs) =>
      new Promise((_resolve, reject) => {
        const timer = setTimeout(() => reject(new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, 'no answer from /m within the time allowed')), timeoutMs - earlyMs)
        signal.addEventListener('abort', () => {
          clearTimeout(timer)
          reject(signal.reason as Error)
        }, { once: true })
      }),
    close: () => Promise.resolve(),
  }
}

/** Runs one call with a 100 ms deadline whose caller decides (aborts) at the deadline; what it settled with, and when. */
async function callWithDeadline(adapter: ProtocolAdapter): Promise<{ error: Error; at: number }> {
  const executor = new RemoteExecutor('m', 'oip', settings, adapter)
  await executor.load()
  const caller = new AbortController()
  const atDeadline = new Error('out of time')
  setTimeout(() => caller.abort(atDeadline), 100)
  const ctx: InferContext = { signal: caller.signal, over: false, member: 0, spareable: false, deadline: 100 }
  const settled = executor.infer({ x: { datatype: 'FP32', shape: [1, 2], data: Float32Array.of(0.5, 0.5) } }, ctx).then(
    () => ({ error: new Error('answered'), at: performance.now() }),
    (error: Error) => ({ error, at: performance.now() }),
  )
  await vi.advanceTimersByTimeAsync(200)
  return settled
}

describe('remote executor: the gRPC deadline and the caller\'s', () => {
  it('leaves a deadline error 2.5 ms before the caller\'s deadline to the caller\'s timer', async () => {
    const { error, at } = await callWithDeadline(deadlineErrorEarly(2.5))
    expect(error.message).toBe('out of time')
    expect(at).toBe(100)
  })

  it('reports a deadline error that comes well before the caller\'s deadline as the upstream\'s failure', async () => {
    const { error, at } = await callWithDeadline(deadlineErrorEarly(10))
    expect(error).toBeInstanceOf(UpstreamError)
    expect(error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' })
    expect(at).toBe(90)
  })
})

describe('remote executor: the metadata call at load', () => {
  it('gives up at 10 s, saying so and naming the upstream; the YAML declares the tensors, so the model loads', async () => {
    const never: ProtocolAdapter = {
      fetchMetadata: (signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })),
      infer: () => Promise.reject(new Error('not called')),
      close: () => Promise.resolve(),
    }
    const executor = new RemoteExecutor('m', 'oip', settings, never)
    let loaded = false
    const loading = executor.load().then(() => (loaded = true))
    await vi.advanceTimersByTimeAsync(9_999)
    expect(loaded).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    await loading
    expect(executor.describe()).toMatchObject({ metadata_error: 'no answer to the metadata call from grpc://127.0.0.1:1 within 10 s (the limit at load)' })
  })
})

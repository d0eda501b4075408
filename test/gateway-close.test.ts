// Gateway.close() within a bound: a model whose close does not end (as one whose inference an
// ONNX worker thread is inside: the close waits for the run) makes close(graceMs) reject with
// CloseTimeoutError once graceMs is over, naming what still closes, while the close goes on;
// without a bound (the default) it waits; predicts are refused from the first call. Fake timers.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { CloseTimeoutError } from '../src/gateway-close.ts'
import { Gateway } from '../src/gateway.ts'
import { configFrom } from './helpers.ts'
import { releaseClose, x } from './starter/scripted.ts'

/** `held`: a model whose close waits for releaseClose('held'); `quick`: one whose close is done at once. */
const yaml = (models: string, server = ''): string => `${server}
models:
${models.includes('held') ? '  held: { kind: scripted, close_held: true }\n' : ''}  quick: { kind: scripted }
ensembles:
  e: { strategy: deadline-fallback, models: [${models}] }
`

/** A gateway loaded (with real timers), then fake timers. */
async function loaded(text: string): Promise<Gateway> {
  const gateway = new Gateway(configFrom(text))
  await gateway.load()
  vi.useFakeTimers()
  return gateway
}

/** What became of `pending` so far. */
function watch(pending: Promise<void>): { settled: boolean; error: unknown } {
  const state = { settled: false, error: undefined as unknown }
  pending.then(
    () => (state.settled = true),
    (err: unknown) => ((state.settled = true), (state.error = err)),
  )
  return state
}

afterEach(() => {
  releaseClose('held')
  vi.useRealTimers()
})

describe('Gateway.close(graceMs)', () => {
  it('past graceMs rejects with CloseTimeoutError naming what still closes; the close goes on, and ends with it', async () => {
    const gateway = await loaded(yaml('held, quick'))
    const closing = watch(gateway.close(500))
    await vi.advanceTimersByTimeAsync(499)
    expect(closing.settled).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    const err = closing.error as CloseTimeoutError
    expect(err).toBeInstanceOf(CloseTimeoutError)
    expect(err).toMatchObject({ name: 'CloseTimeoutError', code: 'CLOSE_TIMEOUT', graceMs: 500, pending: ['model held'] })
    // No ONNX worker is inside a run here: the message blames none.
    expect(err.message).toBe('the gateway did not close within 500 ms: model held still closing. The close goes on (error.closed settles once it is done).')
    // Nothing pretends to have stopped: no predict is taken, and the close is still under way.
    expect(gateway.ready).toBe(false)
    expect(() => gateway.start({ id: 'p', ensemble: 'e', inputs: x })).toThrow(expect.objectContaining({ code: 'NOT_READY' }))
    const closed = watch(err.closed)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(closed.settled).toBe(false)
    releaseClose('held')
    await err.closed // no timer moved: the run's end alone ends it
    // Every call shares that one close: done now, so at once, whatever its bound.
    await expect(gateway.close(0)).resolves.toBeUndefined()
  })

  it('waits for as long as it takes when no graceMs is given, whatever server.shutdown_grace_ms says', async () => {
    const gateway = await loaded(yaml('held', 'server: { shutdown_grace_ms: 0 }'))
    const pending = gateway.close()
    const closing = watch(pending)
    await vi.advanceTimersByTimeAsync(3_600_000)
    expect(closing.settled).toBe(false)
    releaseClose('held')
    await expect(pending).resolves.toBeUndefined()
  })

  it('takes a bound past the longest timer (2^31-1 ms) as none: such a timer would fire at once', async () => {
    const gateway = await loaded(yaml('held'))
    const pending = gateway.close(2 ** 31)
    const closing = watch(pending)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(closing.settled).toBe(false)
    expect(vi.getTimerCount()).toBe(0)
    releaseClose('held')
    await expect(pending).resolves.toBeUndefined()
  })

  it('a second call waits on the same close with its own bound; Infinity waits for as long as it takes', async () => {
    const gateway = await loaded(yaml('held'))
    const short = watch(gateway.close(100))
    const pending = gateway.close(Infinity)
    const unbounded = watch(pending)
    await vi.advanceTimersByTimeAsync(3_600_000)
    expect(short.error).toBeInstanceOf(CloseTimeoutError)
    expect(unbounded.settled).toBe(false)
    releaseClose('held')
    await expect(pending).resolves.toBeUndefined()
  })

  it('resolves as soon as the models are closed, leaving no timer behind', async () => {
    const gateway = await loaded(yaml('quick'))
    // No timer moved: the models' close alone ends it, and its bound's timer is cleared.
    await expect(gateway.close(500)).resolves.toBeUndefined()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('refuses a bound that is not one', async () => {
    const gateway = await loaded(yaml('quick'))
    await expect(gateway.close(-1)).rejects.toThrow(RangeError)
    await expect(gateway.close(Number.NaN)).rejects.toThrow(RangeError)
    await gateway.close(0)
  })
})

// Placement decisions from measurements alone (no onnxruntime): the warm-up decides, live
// runs move a model that grows slow to the workers and back, pins override, and big
// batches of a tiny model go to the workers.
import { describe, expect, it } from 'vitest'
import { Placement } from '../../../src/executors/onnx/placement.ts'
import { RunTimes } from '../../../src/executors/onnx/run-times.ts'

const times = (ms: number, n = 128): RunTimes => {
  const t = new RunTimes()
  for (let i = 0; i < n; i++) t.add(ms)
  return t
}

describe('placement of an embedded model', () => {
  it('auto: inline when the warm-up median is within half the limit and its p90 within it; else the workers', () => {
    expect(new Placement('auto', 0.2, [0.01, 0.012, 0.015, 0.011]).current).toBe('inline')
    expect(new Placement('auto', 0.2, [0.15, 0.15, 0.15]).current).toBe('worker') // median over half the limit
    expect(new Placement('auto', 0.2, [...new Array(8).fill(0.01), 0.5, 0.5]).current).toBe('worker') // p90 over the limit
    expect(new Placement('auto', 0.2, []).current).toBe('worker') // nothing measured
    // A load that stalled once (JIT, another load) is not held against a tiny model.
    expect(new Placement('auto', 0.2, [...new Array(63).fill(0.01), 3.4]).current).toBe('inline')
  })

  it('pins win over measurements', () => {
    expect(new Placement('inline', 0.2, [50]).current).toBe('inline')
    expect(new Placement('worker', 0.2, [0.01]).current).toBe('worker')
    expect(new Placement('inline', 0.2, [50]).where(10_000)).toBe('inline')
  })

  it('warns about a model pinned inline whose warm-up is over the limit, and about nothing else', () => {
    const slow = new Placement('inline', 0.2, [40, 42, 44])
    expect(slow.current).toBe('inline')
    expect(slow.warning).toMatch(/warm-up median is 42\.000 ms, over inline_max_ms 0\.2/)
    expect(slow.describe(undefined, undefined).warning).toBe(slow.warning)
    expect(new Placement('inline', 0.2, [0.01, 0.02]).warning).toBeUndefined()
    expect(new Placement('auto', 0.2, [40, 42, 44]).warning).toBeUndefined()
    expect(new Placement('worker', 0.2, [40, 42, 44]).warning).toBeUndefined()
  })

  it('sends a request with more rows than the limit allows for a tiny model to the workers', () => {
    const p = new Placement('auto', 0.2, [0.02, 0.02, 0.02])
    expect(p.maxRows).toBe(10)
    expect(p.where(10)).toBe('inline')
    expect(p.where(11)).toBe('worker')
  })

  it('moves an inline model that has grown slow to the workers, and back once its worker runs are tiny again', () => {
    const p = new Placement('auto', 0.2, [0.01, 0.01])
    p.observeInline(times(0.05, 127)) // checked every 128 runs only
    p.observeInline(times(0.3))
    expect(p.current).toBe('worker')
    expect(p.reason).toMatch(/inline median 0\.300 ms > inline_max_ms 0\.2: moved to the workers/)
    expect(p.observeWorker(times(0.15), true)).toBeNull()
    expect(p.current).toBe('worker') // not under half the limit yet
    expect(p.observeWorker(times(0.05), true)).toBeNull() // it has its session: it moves at once
    expect(p.current).toBe('inline')
  })

  it('moves a model the load measured slow inline once its worker runs are tiny, unless told it cannot run inline', () => {
    const busyLoad = new Placement('auto', 0.2, [0.15, 0.15, 0.15])
    expect(busyLoad).toMatchObject({ current: 'worker', maxRows: 1 })
    const tail = new RunTimes()
    for (let i = 0; i < 128; i++) tail.add(i % 5 === 0 ? 0.5 : 0.02) // median tiny, p90 over the limit
    expect(busyLoad.observeWorker(tail, false)).toBeNull()
    const reason = busyLoad.observeWorker(times(0.02), false)
    expect(reason).toMatch(/worker median 0\.020 ms ≤ half of inline_max_ms 0\.2: moved inline/)
    expect(busyLoad.current).toBe('worker') // no session yet: it moves once one is open
    busyLoad.moveInline(reason!, [0.02, 0.02, 0.02])
    expect(busyLoad).toMatchObject({ current: 'inline', reason, maxRows: 10, typicalMs: 0.02 })
    const failed = new Placement('auto', 0.2, [0.15, 0.15, 0.15])
    failed.stayInWorkers('an inline session failed to open: boom')
    expect(failed.observeWorker(times(0.02), false)).toBeNull()
    expect(failed).toMatchObject({ current: 'worker', reason: 'an inline session failed to open: boom' })
  })

  it('never moves a pinned model', () => {
    const p = new Placement('inline', 0.2, [0.01])
    p.observeInline(times(5))
    expect(p.current).toBe('inline')
  })

  it('says where it is and why', () => {
    expect(new Placement('auto', 0.2, [0.01, 0.02]).describe(times(0.01), undefined)).toMatchObject({
      mode: 'auto',
      current: 'inline',
      inline_max_ms: 0.2,
      warm_p50_ms: 0.02,
      inline_p50_ms: 0.01,
      worker_p99_ms: null,
      reason: 'warm-up median 0.020 ms, p90 0.020 ms: within inline_max_ms 0.2',
    })
  })
})

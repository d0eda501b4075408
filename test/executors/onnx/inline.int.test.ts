// Placement with real models: a tiny model runs on the main thread's session, a slow one
// in the workers; pins are honoured, and dedicated_workers pins a model to its workers; a
// big batch of a tiny model goes to the workers; and the inline lane drops less-preferred
// members of requests already decided.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { Gateway } from '../../../src/gateway.ts'
import { inputFailure } from '../../../src/errors.ts'
import { tensorFromJson } from '../../../src/tensor/index.ts'
import type { MetricAttributes, MetricsSink } from '../../../src/types.ts'
import { join } from 'node:path'
import { SHARED_POOL } from '../../../src/executors/onnx/executor.ts'
import { InlineModel } from '../../../src/executors/onnx/inline.ts'
import type { OnnxPool } from '../../../src/executors/onnx/pool.ts'
import { offPathContext, type InferContext } from '../../../src/executors/types.ts'
import type { TensorMap } from '../../../src/tensor/index.ts'
import { configFrom, root, samples } from '../../helpers.ts'

// inline_max_ms 2, ten times the default: the load measures a 0.03 ms model on a shared 2-core
// box whose neighbours can stretch its warm-up past 0.2 ms (placement.test.ts holds the rule
// to exact figures); the straggler (tens of ms) is far over either.
let gateway: Gateway
const rows = samples('cancer').rows

beforeAll(async () => {
  gateway = new Gateway(
    configFrom(`executors: { onnx_workers: 1, inline_max_ms: 2 }
models:
  tiny: { kind: onnx, path: ../models/cancer_logreg.onnx }
  tiny-b: { kind: onnx, path: ../models/cancer_logreg.onnx }
  tiny-c: { kind: onnx, path: ../models/cancer_logreg.onnx }
  pinned: { kind: onnx, path: ../models/cancer_logreg.onnx, placement: worker }
  pinned-inline: { kind: onnx, path: ../models/cancer_logreg.onnx, placement: inline }
  own: { kind: onnx, path: ../models/cancer_logreg.onnx, dedicated_workers: 1 }
  slow: { kind: onnx, path: ../models/cancer_slow.onnx }
ensembles:
  tiny: { strategy: deadline-fallback, models: [tiny], budget_ms: { default: 5000, max: 5000 } }
  pinned: { strategy: deadline-fallback, models: [pinned], budget_ms: { default: 5000, max: 5000 } }
  pinned-inline: { strategy: deadline-fallback, models: [pinned-inline], budget_ms: { default: 5000, max: 5000 } }
  own: { strategy: deadline-fallback, models: [own], budget_ms: { default: 5000, max: 5000 } }
  straggler: { strategy: deadline-fallback, models: [slow, tiny], budget_ms: { default: 5000, max: 5000 } }
  three: { strategy: deadline-fallback, models: [tiny, tiny-b, tiny-c], budget_ms: { default: 5000, max: 5000 } }
`),
  )
  await gateway.load()
})
afterAll(async () => gateway?.close())

const predict = (ensemble: string, batch = rows.slice(0, 1)) =>
  gateway.predict({ id: 'p', ensemble, inputs: { input: tensorFromJson(batch, gateway.ensemble(ensemble).inputs[0]!, inputFailure) } })

const placementOf = (model: string): Record<string, unknown> => (gateway.model(model).executor.describe!() as { placement: Record<string, unknown> }).placement

/** An executor's run counters, as /metrics exports them. */
function runs(model: string): { inline: number; worker: number } {
  const counts = { inline: 0, worker: 0 }
  const sink: MetricsSink = {
    gauge: () => undefined,
    counter: (name, _help, points) => {
      if (name !== 'specserve_model_runs') return
      for (const [attrs, n] of points as (readonly [MetricAttributes, number])[]) counts[attrs.placement as 'inline' | 'worker'] = n
    },
  }
  gateway.model(model).executor.collect!(sink)
  return counts
}

describe('placement with real models', () => {
  it('runs a tiny model inline and a slow one in the workers, each saying why', async () => {
    expect(placementOf('tiny')).toMatchObject({ mode: 'auto', current: 'inline' })
    expect(placementOf('slow')).toMatchObject({ mode: 'auto', current: 'worker', reason: expect.stringMatching(/over inline_max_ms 2/) })
    const before = runs('tiny').inline
    expect((await predict('tiny')).error).toBeNull()
    expect(runs('tiny').inline).toBe(before + 1)
  })

  it('honours a pin to the workers', async () => {
    expect(placementOf('pinned')).toMatchObject({ mode: 'worker', current: 'worker', reason: 'pinned (placement: worker)', inline_max_rows: null })
    expect((await predict('pinned')).error).toBeNull()
    expect(runs('pinned')).toEqual({ inline: 0, worker: 1 })
  })

  it('honours a pin to the main thread, without loading the model into the workers', async () => {
    // No row cap: a pinned model's requests run where it is pinned, whatever their size (operations.md).
    expect(placementOf('pinned-inline')).toMatchObject({ mode: 'inline', current: 'inline', reason: 'pinned (placement: inline)', inline_max_rows: null })
    const big = Array.from({ length: 64 }, (_, i) => rows[i % rows.length]!)
    expect((await predict('pinned-inline', big)).error).toBeNull()
    expect(runs('pinned-inline')).toEqual({ inline: 1, worker: 0 })
    const pool = gateway.resources.get(SHARED_POOL) as OnnxPool
    expect(pool.laneStats('pinned-inline')).toBeUndefined()
    expect(pool.laneStats('pinned')).toBeDefined()
  })

  it('runs a model with dedicated_workers in them, never inline, however tiny its warm-up', async () => {
    // A model given workers of its own is one its operator knows to be slow: a warm-up on zeros must not put it on the event loop.
    expect(placementOf('own')).toMatchObject({ mode: 'worker', current: 'worker', reason: 'dedicated_workers: it runs in workers of its own', inline_max_rows: null })
    for (let i = 0; i < 3; i++) expect((await predict('own')).error).toBeNull()
    expect(runs('own')).toEqual({ inline: 0, worker: 3 })
  })

  it('sends a batch bigger than a tiny model may take inline to the workers, with the same answer', async () => {
    const maxRows = placementOf('tiny').inline_max_rows as number
    const big = Array.from({ length: maxRows + 1 }, (_, i) => rows[i % rows.length]!)
    const before = runs('tiny')
    const result = await predict('tiny', big)
    expect(runs('tiny')).toEqual({ inline: before.inline, worker: before.worker + 1 })
    expect(result.outputs!.label!.shape).toEqual([maxRows + 1])
  })

  it('answers a straggler ensemble with its inline fallback while the slow member runs in a worker', async () => {
    const inputs = { input: tensorFromJson(rows.slice(0, 1), gateway.ensemble('straggler').inputs[0]!, inputFailure) }
    // A budget well under the slow model's warm-up median (~100 ms on the box it was tuned on, 40 ms on a faster one).
    const budgetMs = Math.min(10, (placementOf('slow').warm_p50_ms as number) / 4)
    const result = await gateway.predict({ id: 's', ensemble: 'straggler', inputs, budgetMs })
    expect(result.decision).toMatchObject({ chosen: 'tiny', reason: 'fallback-at-deadline' })
    expect(result.models.map((m) => m.status)).toEqual(['timeout', 'ok'])
  })

  it('runs a straggler ensemble\'s inline fallback in time while a burst of first-position runs keeps the lane full', async () => {
    const inputs = { input: tensorFromJson(rows.slice(0, 1), gateway.ensemble('straggler').inputs[0]!, inputFailure) }
    const budgetMs = Math.min(20, (placementOf('slow').warm_p50_ms as number) / 2)
    // Another ensemble's first members arrive faster than the lane runs them, turn after turn,
    // until the straggler request is answered: the fallback (spareable, second position)
    // queues behind them, and must still answer by the deadline.
    let answered = false
    let outstanding = 0
    const sent: Promise<unknown>[] = []
    const burst = (): void => {
      if (answered) return
      for (let i = 0; i < 64; i++) {
        outstanding++
        sent.push(predict('tiny').finally(() => outstanding--))
      }
      setImmediate(burst)
    }
    burst()
    try {
      const result = await gateway.predict({ id: 's', ensemble: 'straggler', inputs, budgetMs })
      answered = true
      const behind = outstanding
      expect(result.decision).toMatchObject({ chosen: 'tiny', reason: 'fallback-at-deadline' })
      expect(result.models.map((m) => m.status)).toEqual(['timeout', 'ok'])
      // The test's premise: when the fallback answered, more burst runs were waiting than the lane holds.
      expect(behind).toBeGreaterThan(64)
    } finally {
      // Pass or fail, the burst's runs end here: the next test counts runs.
      answered = true
      await Promise.all(sent)
    }
  })

  it('drops less-preferred inline members of requests decided before their turn on the lane', async () => {
    const before = { a: runs('tiny').inline, b: runs('tiny-b').inline, c: runs('tiny-c').inline }
    const results = await Promise.all(Array.from({ length: 64 }, () => predict('three')))
    expect(results.every((r) => r.decision.chosen === 'tiny')).toBe(true)
    expect(runs('tiny').inline - before.a).toBe(64)
    // Each request decided on its preferred member: most fallbacks never ran.
    expect(runs('tiny-b').inline - before.b + runs('tiny-c').inline - before.c).toBeLessThan(64)
  })

})

for (const [kind, native] of [['native session', true], ['public API session', false]] as const) {
  describe(`the inline lane (${kind})`, () => {
    const ctx = (): InferContext => ({ signal: new AbortController().signal, over: false, member: 0, spareable: false, deadline: performance.now() + 60_000 })
    const input = { input: tensorFromJson(rows.slice(0, 1), { name: 'input', datatype: 'FP32', shape: [-1, 30] }, inputFailure) }
    const open = () => InlineModel.open(join(root, 'models', 'cancer_logreg.onnx'), () => undefined, { native })

    it('runs the model and answers what scikit-learn gave', async () => {
      const model = await open()
      try {
        expect(model.session.sync).toBe(native)
        const out = await model.run({ input: tensorFromJson(rows, { name: 'input', datatype: 'FP32', shape: [-1, 30] }, inputFailure) }, ctx())
        expect(Array.from(out.label!.data as BigInt64Array, Number)).toEqual(samples('cancer').expected.cancer_logreg)
        expect(out.probabilities!.shape).toEqual([rows.length, 2])
      } finally {
        await model.close()
      }
    })

    it('settles a run onnxruntime refuses, and keeps running the others', async () => {
      const model = await open()
      try {
        // Int32 data under an FP32 datatype: onnxruntime refuses the tensor before any run starts.
        const wrong: TensorMap = { input: { datatype: 'FP32', shape: [1, 30], data: new Int32Array(30) as unknown as Float32Array } }
        const refused = await Promise.allSettled(Array.from({ length: 40 }, () => model.run(wrong, ctx())))
        expect(refused.every((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'MODEL_FAILED')).toBe(true)
        // None of them holds a place on the lane: a good run still runs.
        expect(Number((await model.run(input, ctx())).label!.data[0])).toBe(samples('cancer').expected.cancer_logreg![0])
      } finally {
        await model.close()
      }
    })

    it('releases a session only after its runs left onnxruntime, and refuses runs after', async () => {
      const model = await open()
      const running = Promise.allSettled(Array.from({ length: 64 }, () => model.run(input, ctx())))
      // Releasing it under a running inference would abort the process: surviving is the first assertion.
      await model.close()
      const settled = await running
      expect(settled.filter((r) => r.status === 'fulfilled').length).toBeGreaterThan(0)
      expect(settled.every((r) => r.status === 'fulfilled' || (r.reason as Error).message === 'model unloaded')).toBe(true)
      await expect(model.run(input, ctx())).rejects.toThrow('model unloaded')
    })
  })
}

describe('the inline lane on the native session', () => {
  it('drops a run handed over whose request is decided before its turn comes: it never runs', async () => {
    const model = await InlineModel.open(join(root, 'models', 'cancer_logreg.onnx'), () => undefined)
    try {
      const input = { input: tensorFromJson(rows.slice(0, 1), { name: 'input', datatype: 'FP32', shape: [-1, 30] }, inputFailure) }
      const decided = { signal: new AbortController().signal, over: false, member: 1, spareable: false, deadline: performance.now() + 60_000 }
      const needed = { ...decided, member: 0 }
      const ranBefore = model.ran
      const first = model.run(input, needed)
      const second = model.run(input, decided) // handed over at once: the lane is far from full
      decided.over = true // its request is decided (another member answered) before the lane's next turn
      await expect(second).rejects.toThrow('the request was decided before this run started')
      expect(Number((await first).label!.data[0])).toBe(samples('cancer').expected.cancer_logreg![0])
      expect(model.ran - ranBefore).toBe(1)
    } finally {
      await model.close()
    }
  })

  // The clock alone is faked (setImmediate stays real): a fallback queued with 4 ms left has
  // waited past half its time, and more than AGED_MS, once the clock moves 3 ms.
  describe('a fallback queued behind a full lane of first-position runs', () => {
    const input = { input: tensorFromJson(rows.slice(0, 1), { name: 'input', datatype: 'FP32', shape: [-1, 30] }, inputFailure) }
    const needed = (): InferContext => ({ signal: new AbortController().signal, over: false, member: 0, spareable: false, deadline: performance.now() + 60_000 })
    const fallback = (ms: number): InferContext => ({ ...needed(), member: 1, spareable: true, deadline: performance.now() + ms })

    const shadow = (ms: number, signal = new AbortController().signal): InferContext => offPathContext(signal, performance.now() + ms, true)
    const gate = (ms: number): InferContext => offPathContext(new AbortController().signal, performance.now() + ms, false)

    /**
     * The order runs answered in ('dropped' for one dropped unrun): `firsts` first-position runs
     * (32 fill the lane, the rest wait), then what `queue` asks for behind them, on the faked
     * clock it may move (`advance`). `native: false`: the public API session (no shortcut).
     */
    async function orderOf(queue: (run: (label: string, ctx: InferContext) => void, advance: (ms: number) => void) => void, { firsts = 64, native = true } = {}): Promise<string[]> {
      vi.useFakeTimers({ toFake: ['performance'] })
      const model = await InlineModel.open(join(root, 'models', 'cancer_logreg.onnx'), () => undefined, { native })
      try {
        const order: string[] = []
        const runs = Array.from({ length: firsts }, () => model.run(input, needed()).then(() => void order.push('first')))
        const run = (label: string, ctx: InferContext): void =>
          void runs.push(model.run(input, ctx).then(() => void order.push(label), (err: Error) => void order.push(err.message === 'the request was decided before this run started' ? 'dropped' : err.message)))
        queue(run, (ms) => vi.advanceTimersByTime(ms))
        await Promise.all(runs)
        return order
      } finally {
        vi.useRealTimers()
        await model.close()
      }
    }

    /** Asserts `a` and `b` both answered, `a` first. */
    const answeredBefore = (order: readonly string[], a: string, b: string): void => {
      expect(order).toContain(a)
      expect(order).toContain(b)
      expect(order.indexOf(a)).toBeLessThan(order.indexOf(b))
    }

    /** orderOf 64 first-position runs, then `late` (label, context) queued behind them; the clock then moves 3 ms. */
    const answerOrder = (late: () => readonly [string, InferContext][]): Promise<string[]> =>
      orderOf((run, advance) => {
        for (const [label, ctx] of late()) run(label, ctx)
        advance(3)
      })

    it('runs once it is urgent as soon as a run ends, in the same turn: before the other 31 runs handed over with that one', async () => {
      expect((await answerOrder(() => [['fallback', fallback(4)]])).indexOf('fallback')).toBe(1)
    })

    it('waits behind every first-position run while it is not urgent', async () => {
      expect((await answerOrder(() => [['fallback', fallback(60_000)]])).indexOf('fallback')).toBe(64)
    })

    it('runs at most 8 urgent fallbacks per turn that way; the rest wait for the next turn, as before', async () => {
      const order = await answerOrder(() => Array.from({ length: 20 }, () => ['fallback', fallback(4)] as const))
      expect(order.slice(0, 10)).toEqual(['first', ...Array<string>(8).fill('fallback'), 'first'])
      expect(order.lastIndexOf('fallback')).toBeGreaterThan(32)
    })

    it('takes no shortcut for a run off any request\'s path (a shadow): urgent, it runs on the next turn, after a fallback queued after it', async () => {
      const order = await answerOrder(() => [['shadow', shadow(4)], ['fallback', fallback(4)]])
      // The first run's end picks position 1's urgent fallback (checked before the shadow's queue)
      // and runs it at once (the shortcut); the second's hands the shadow to the next turn, where it runs first.
      expect(order.indexOf('fallback')).toBe(1)
      expect(order.indexOf('shadow')).toBe(33)
    })

    it('holds no fallback behind a run off any request\'s path that is not urgent yet: the shadow waits in a queue of its own', async () => {
      const order = await answerOrder(() => [['shadow', shadow(60_000)], ['fallback', fallback(4)]])
      expect(order.indexOf('fallback')).toBe(1)
      expect(order.indexOf('shadow')).toBe(65)
    })

    it('holds no gate run (off any request\'s path, but needed) behind a shadow that is not urgent yet', async () => {
      const order = await answerOrder(() => [['shadow', shadow(60_000)], ['gate', gate(60_000)]])
      // Needed and aged, it is handed over at the first run's end, after the 31 runs handed over with that one.
      expect(order.indexOf('gate')).toBe(32)
      expect(order.indexOf('shadow')).toBe(65)
    })

    it.each([
      ['not urgent yet', 60_000],
      ['urgent too', 4],
    ])('lets no older shadow, %s, go before an urgent fallback when both may start (public API session: no shortcut)', async (_, shadowMs) => {
      // 8 runs out: spare ones queue. The shadow is queued first, the fallback just after.
      const order = await orderOf((run, advance) => {
        run('shadow', shadow(shadowMs))
        advance(0.01)
        run('fallback', fallback(4))
        advance(3)
      }, { firsts: 8, native: false })
      answeredBefore(order, 'fallback', 'shadow')
    })

    it('runs an urgent shadow in its turn among needed position-1 runs queued after it, not after all of them (it would starve under load)', async () => {
      const order = await orderOf((run, advance) => {
        run('shadow', shadow(4))
        advance(3) // the shadow is urgent
        // Votes a request needs (majority-vote's second member), queued after it.
        for (let i = 0; i < 40; i++) run('second', { ...needed(), member: 1 })
        advance(2) // they have aged too
      })
      answeredBefore(order, 'shadow', 'second')
    })

    it('runs a third member that is an urgent fallback before an urgent shadow (public API session: no shortcut)', async () => {
      const order = await orderOf((run, advance) => {
        run('shadow', shadow(4))
        run('fallback', { ...fallback(4), member: 2 })
        advance(3) // both urgent, and waited over 1 ms
      }, { native: false })
      answeredBefore(order, 'fallback', 'shadow')
    })

    it('runs a needed third member before an urgent shadow queued after it (arrival order, as with second members)', async () => {
      const order = await orderOf((run, advance) => {
        run('third', { ...needed(), member: 2 })
        advance(0.5)
        run('shadow', shadow(4))
        advance(3) // both have waited over 1 ms; the shadow is urgent
      })
      answeredBefore(order, 'third', 'shadow')
    })

    it('runs an urgent shadow before a needed third member queued after it, with no first-position run waiting', async () => {
      const order = await orderOf((run, advance) => {
        run('shadow', shadow(4))
        advance(0.5)
        run('third', { ...needed(), member: 2 })
        advance(3) // both have waited over 1 ms; the shadow is urgent
      }, { firsts: 32 })
      answeredBefore(order, 'shadow', 'third')
    })

    it('drops a decided shadow at the next pick while aged position-1 runs keep the lane full', async () => {
      const order = await orderOf((run, advance) => {
        for (let i = 0; i < 40; i++) run('second', { ...needed(), member: 1 })
        const limit = new AbortController()
        run('shadow', shadow(60_000, limit.signal))
        limit.abort() // its time is over
        advance(3) // the second members have aged: each refill would take one of them first
      })
      expect(order.indexOf('dropped')).toBe(1)
    })

    it('drops a decided shadow at the next pick, even while a needed position-1 run heads its queue', async () => {
      // 32 first-position runs fill the lane; a needed second member and a shadow queue behind them.
      const order = await orderOf((run) => {
        run('second', { ...needed(), member: 1 })
        const limit = new AbortController()
        run('shadow', shadow(60_000, limit.signal))
        limit.abort() // its time is over before any run ends
      }, { firsts: 32 })
      expect(order.indexOf('dropped')).toBe(1)
      expect(order).not.toContain('shadow')
    })

    it('takes runs off any request\'s path in turn with spare position-1 members, in arrival order, when both may start', async () => {
      const order = await orderOf((run, advance) => {
        for (const late of ['fallback', 'shadow', 'fallback', 'shadow']) {
          advance(0.01) // queued one after another
          run(late, late === 'shadow' ? shadow(60_000) : fallback(60_000))
        }
      })
      // Spares, never urgent here: they start once the lane has room, after every first-position run.
      expect(order.slice(64)).toEqual(['fallback', 'shadow', 'fallback', 'shadow'])
    })

    it('drops a decided run at the head of a later position\'s queue at the next pick, without waiting for the first position to empty', async () => {
      const order = await orderOf((run) => {
        const third = { ...needed(), member: 2, spareable: true }
        run('ran', third)
        third.over = true // its request is decided (an earlier member answered) while it waits
      })
      expect(order.indexOf('dropped')).toBe(1)
      expect(order).not.toContain('ran')
    })

    it('drops an urgent fallback whose request the one answered just before it decided: the next pick waits for that answer\'s reaction', async () => {
      let over = false
      const member = (position: number): InferContext => ({ signal: new AbortController().signal, get over() { return over }, member: position, spareable: true, deadline: performance.now() + 4 })
      vi.useFakeTimers({ toFake: ['performance'] })
      const model = await InlineModel.open(join(root, 'models', 'cancer_logreg.onnx'), () => undefined)
      try {
        const firsts = Array.from({ length: 64 }, () => model.run(input, needed()))
        // Two less-preferred members of one request: the first to answer decides it (as a Run's reaction does).
        const decider = model.run(input, member(1)).then(() => void (over = true))
        const second = model.run(input, member(2))
        vi.advanceTimersByTime(3)
        await decider
        await expect(second).rejects.toThrow('the request was decided before this run started')
        await Promise.all(firsts)
      } finally {
        vi.useRealTimers()
        await model.close()
      }
    })
  })
})

// A canary's run cut before it answered (the request decided without it, its deadline came,
// its client went away) is the canary's: annotated with the canary's version and counted in
// that version's calls, not the serving version's. It is no evidence against the canary.
// Scripted models on a fake clock through the real Gateway; every run goes to the canary (weight 1).
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DataPoint, MetricData } from '@opentelemetry/sdk-metrics'
import { ModelError } from '../../src/errors.ts'
import type { Executor, InferContext } from '../../src/executors/types.ts'
import { Gateway } from '../../src/gateway.ts'
import { CanaryExecutor, type CanaryPlan } from '../../src/registry/canary.ts'
import type { CanarySettings } from '../../src/registry/config.ts'
import { failure } from '../../src/starter/outcomes.ts'
import { GatewayMetrics } from '../../src/telemetry/metrics.ts'
import type { TensorMap } from '../../src/tensor/index.ts'
import type { PredictResult } from '../../src/types.ts'
import { configFrom } from '../helpers.ts'
import { useFakeClock } from '../starter/fake-clock.ts'
import { x, type ScriptedConfig } from '../starter/scripted.ts'

useFakeClock()

const settings: CanarySettings = { weight: 1, promoteAfter: 1000, maxErrorRate: 0.01, minAgreement: 0.9 }
const gateways: Gateway[] = []

afterEach(async () => {
  await Promise.all(gateways.splice(0).map((g) => g.close()))
})

/** `fast` (answers in 5 ms) and `main` (serving version 1) whose canary, version 2, runs as `canary` scripts it and takes `weight` of its runs. */
async function serveWithCanary(canary: Omit<ScriptedConfig, 'kind'>, ensemble: string, weight = 1): Promise<Gateway> {
  const config = configFrom(`models:\n  fast: { kind: scripted, delay_ms: 5, label: 1 }\n  main: { kind: scripted, delay_ms: 5, label: 1 }\nensembles:\n  e:\n${ensemble}\n`)
  const plan: CanaryPlan = { version: '2', spec: { kind: 'scripted', ...canary }, settings: { ...settings, weight }, decide: () => undefined }
  const models = new Map(config.models)
  models.set('main', { ...config.models.get('main')!, canary: plan })
  const gateway = new Gateway({ ...config, models })
  gateways.push(gateway)
  await gateway.load()
  return gateway
}

async function predict(g: Gateway, ms: number, signal?: AbortSignal): Promise<PredictResult> {
  let result: PredictResult | undefined
  void g.predict({ id: 'r', ensemble: 'e', inputs: x, signal }).then((r) => (result = r))
  await vi.advanceTimersByTimeAsync(ms)
  if (!result) throw new Error(`no result after ${ms} ms`)
  return result
}

const mainOf = (r: PredictResult) => r.models.find((m) => m.name === 'main')

/** `main`'s counters: the serving version's, and the canary's. */
function countsOf(g: Gateway): { serving: Record<string, unknown>; canary: Record<string, unknown> | undefined } {
  const stats = g.models.get('main')!.stats
  const other = stats.otherVersion
  return { serving: stats.toJSON(), canary: other && { version: other.version, ...other.stats.toJSON() } }
}

async function calls(g: Gateway, version: string, status: string): Promise<number | undefined> {
  const { resourceMetrics } = await new GatewayMetrics(g).collect()
  const metric = resourceMetrics.scopeMetrics[0]!.metrics.find((m: MetricData) => m.descriptor.name === 'specserve_model_calls')
  return (metric?.dataPoints as DataPoint<number>[] | undefined)?.find((p) => p.attributes.model === 'main' && p.attributes.version === version && p.attributes.status === status)?.value
}

const stubOf = (infer: Executor['infer']): Executor => ({
  name: 'm',
  kind: 'stub',
  metadata: () => ({ name: 'm', version: '1', kind: 'stub', inputs: [], outputs: [] }),
  load: () => Promise.resolve(),
  infer,
  close: () => Promise.resolve(),
})

const evidenceOf = (g: Gateway) => (g.models.get('main')!.executor as CanaryExecutor).evidence()

describe('a canary run cut before it answered', () => {
  it('decided without it: annotated and counted as the canary version cancelled, not as a canary failure', async () => {
    const g = await serveWithCanary({ hang: true }, '    strategy: deadline-fallback\n    models: [fast, main]\n    budget_ms: { default: 500, max: 1000 }')
    const r = await predict(g, 5)
    expect(r.decision).toMatchObject({ chosen: 'fast', reason: 'preferred-finished' })
    expect(mainOf(r)).toMatchObject({ version: '2', status: 'cancelled', used: false })
    const { serving, canary } = countsOf(g)
    expect(serving).toMatchObject({ count: 0, cancelled: 0 })
    expect(canary).toMatchObject({ version: '2', count: 1, cancelled: 1, errors: 0 })
    expect(await calls(g, '2', 'cancelled')).toBe(1)
    expect(await calls(g, '1', 'cancelled')).toBe(0)
    expect(evidenceOf(g)).toMatchObject({ requests: 0, errors: 0 })
  })

  it('by the deadline: the canary version timed out, its run as long as the budget', async () => {
    const g = await serveWithCanary({ hang: true }, '    strategy: deadline-fallback\n    models: [main, fast]\n    budget_ms: { default: 40, max: 1000 }')
    const r = await predict(g, 40)
    expect(r.decision).toMatchObject({ chosen: 'fast', reason: 'fallback-at-deadline' })
    expect(mainOf(r)).toMatchObject({ version: '2', status: 'timeout', latency_ms: 40 })
    const { serving, canary } = countsOf(g)
    expect(serving).toMatchObject({ count: 0, timeouts: 0 })
    expect(canary).toMatchObject({ version: '2', count: 1, timeouts: 1 })
    expect(await calls(g, '2', 'timeout')).toBe(1)
    expect(evidenceOf(g)).toMatchObject({ requests: 0, errors: 0 })
  })

  it('cancelled by its client: the canary version cancelled', async () => {
    const g = await serveWithCanary({ hang: true }, '    strategy: deadline-fallback\n    models: [main, fast]\n    budget_ms: { default: 500, max: 1000 }')
    const client = new AbortController()
    setTimeout(() => client.abort(), 2)
    const r = await predict(g, 2, client.signal)
    expect(r.error?.code).toBe('CANCELLED')
    expect(mainOf(r)).toMatchObject({ version: '2', status: 'cancelled' })
    expect(countsOf(g).canary).toMatchObject({ version: '2', count: 1, cancelled: 1 })
    expect(countsOf(g).serving).toMatchObject({ count: 0 })
  })

  it('that answers late: its late answer is the canary version too, and the canary evidence counts it answered', async () => {
    const g = await serveWithCanary({ delay_ms: 50 }, '    strategy: deadline-fallback\n    models: [fast, main]\n    budget_ms: { default: 500, max: 1000 }')
    const r = await predict(g, 5)
    expect(mainOf(r)).toMatchObject({ version: '2', status: 'cancelled' })
    await vi.advanceTimersByTimeAsync(45)
    expect(countsOf(g).canary).toMatchObject({ version: '2', count: 1, cancelled: 1, late: 1 })
    expect(countsOf(g).serving).toMatchObject({ count: 0, late: 0 })
    expect(evidenceOf(g)).toMatchObject({ requests: 1, errors: 0 })
  })

  it('the serving version, when the run went to it, is annotated and counted as before', async () => {
    const g = await serveWithCanary({ hang: true }, '    strategy: deadline-fallback\n    models: [fast, main]\n    budget_ms: { default: 500, max: 1000 }', 0)
    const r = await predict(g, 5)
    expect(mainOf(r)).toMatchObject({ version: '1', status: 'cancelled' })
    expect(countsOf(g)).toMatchObject({ serving: { count: 1, cancelled: 1 }, canary: undefined })
  })
})

describe('canary evidence of a cut run', () => {
  it('a canary that throws at once, rather than rejecting, fails as the canary version and counts against it', async () => {
    const executor = new CanaryExecutor(stubOf(() => Promise.resolve({})), stubOf(() => { throw new Error('no session') }), { version: '2', spec: {}, settings, decide: () => undefined })
    await executor.load()
    const live: InferContext = { signal: new AbortController().signal, over: false, member: 0, spareable: false, deadline: Number.POSITIVE_INFINITY }
    // As the starter runs an executor: a throw at once is its failure, like a rejection.
    const thrown = await new Promise<TensorMap>((resolve) => resolve(executor.infer({}, live))).catch((err: unknown) => err)
    expect(failure(0, thrown, 1)).toMatchObject({ status: 'error', error: { message: 'no session' }, version: '2' })
    expect(executor.evidence()).toMatchObject({ requests: 1, errors: 1 })
  })

  it('a run that fails because its request was over (the abort) is not a canary failure; one that fails in time is', async () => {
    const aborted = new ModelError('MODEL_FAILED', 'the request was decided or ran out of time')
    let abort: () => void = () => undefined
    const canary = stubOf((_inputs, ctx) => (ctx.over ? Promise.reject(new Error('started after the request was over')) : new Promise<TensorMap>((_, reject) => (abort = () => reject(aborted)))))
    const executor = new CanaryExecutor(stubOf(() => Promise.resolve({})), canary, { version: '2', spec: {}, settings, decide: () => undefined })
    await executor.load()
    // The request is decided while the canary runs: it sees `over`, and its run rejects with the abort reason.
    const cut = { signal: new AbortController().signal, over: false, member: 0, spareable: false, deadline: Number.POSITIVE_INFINITY }
    const pending = executor.infer({}, cut)
    cut.over = true
    abort()
    await expect(pending).rejects.toBe(aborted)
    expect(executor.evidence()).toMatchObject({ requests: 0, errors: 0 })
    const failing = new CanaryExecutor(stubOf(() => Promise.resolve({})), stubOf(() => Promise.reject(new Error('boom'))), { version: '2', spec: {}, settings, decide: () => undefined })
    await failing.load()
    const live: InferContext = { signal: new AbortController().signal, over: false, member: 0, spareable: false, deadline: Number.POSITIVE_INFINITY }
    await expect(failing.infer({}, live)).rejects.toThrow('boom')
    expect(failing.evidence()).toMatchObject({ requests: 1, errors: 1 })
  })
})

import * as grpc from '@grpc/grpc-js'
import { connect } from 'node:net'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { PredictResult } from '../../../src/types.ts'
import { samples } from '../../helpers.ts'
import { signals } from '../../starter/scripted.ts'
import { failure, startHarness, trailerCode, trailerResult, unary, xInput, type Harness } from './harness.ts'

let h: Harness
const cancer = samples('cancer')
const predict = (request: object, options: grpc.CallOptions = {}) => unary(h.gatewayClient, 'Predict', request, options)

beforeAll(async () => {
  h = await startHarness()
})
afterAll(async () => h?.close())

describe('specserve.v1.Gateway over gRPC', () => {
  it('predicts with typed tensors and mirrors the REST response', async () => {
    for (const [i, row] of cancer.rows.entries()) {
      const res = await predict({ ensemble: 'cancer', id: `row-${i}`, inputs: { input: { fp32_data: row, shape: [1, 30] } } })
      const chosen = (res.decision as { chosen: string }).chosen
      expect(res.id).toBe(`row-${i}`)
      expect(res.strategy).toBe('deadline-fallback')
      const label = (res.outputs as Record<string, { datatype: string; shape: string[]; int64_data: string[] }>).label!
      expect(label.datatype).toBe('INT64')
      expect(label.shape).toEqual(['1'])
      expect(Number(label.int64_data[0])).toBe(cancer.expected[chosen.replace('-', '_')]![i])
      const probs = (res.outputs as Record<string, { fp32_data: number[] }>).probabilities!
      expect(probs.fp32_data).toHaveLength(2)
      expect(probs.fp32_data[0]! + probs.fp32_data[1]!).toBeCloseTo(1, 5)
      const models = res.models as { name: string; version: string; status: string; used: boolean }[]
      expect(models.map((m) => m.name)).toEqual(['cancer-mlp', 'cancer-logreg'])
      expect(models.find((m) => m.used)?.name).toBe(chosen)
      expect(models[0]!.version).toBe('3')
      expect(res.budget_ms).toBe(1000)
      expect(res.elapsed_ms).toBeGreaterThan(0)
    }
  })

  it('infers a single dynamic dimension when the shape is left out', async () => {
    const res = await predict({ ensemble: 'cancer', inputs: { input: { fp32_data: [...cancer.rows[0]!, ...cancer.rows[1]!] } } })
    const label = (res.outputs as Record<string, { shape: string[]; int64_data: string[] }>).label!
    expect(label.shape).toEqual(['2'])
    expect(label.int64_data).toHaveLength(2)
  })

  it('lists ensembles and describes an ensemble and a model', async () => {
    const list = await unary(h.gatewayClient, 'ListEnsembles', {})
    const names = (list.ensembles as { name: string }[]).map((e) => e.name)
    expect(names).toEqual(['cancer', 'fallback', 'broken', 'late', 'hanging', 'split'])
    const ens = await unary(h.gatewayClient, 'GetEnsemble', { name: 'split' })
    expect(ens.strategy).toBe('majority-vote')
    expect(ens.strategy_options).toEqual({
      quorum: { string_value: 'all', kind: 'string_value' },
      on_no_majority: { string_value: 'error', kind: 'string_value' },
    })
    expect(ens.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: ['-1', '2'] }])
    const model = await unary(h.gatewayClient, 'GetModel', { name: 'cancer-mlp' })
    expect(model).toMatchObject({ name: 'cancer-mlp', version: '3', kind: 'onnx', ensembles: ['cancer'] })
    expect(Number((model.stats as { count: string }).count)).toBeGreaterThan(0)
    // Where it runs and why, as REST's GET /v1/models/{name} says it.
    const details = JSON.parse(model.details_json as string) as { placement: { mode: string; current: string; reason: string } }
    expect(details.placement).toMatchObject({ mode: 'auto', current: expect.stringMatching(/^(inline|worker)$/), reason: expect.any(String) })
  })

  it('answers NOT_FOUND for an unknown ensemble or model', async () => {
    for (const [method, request] of [
      ['Predict', { ensemble: 'nope', inputs: {} }],
      ['GetEnsemble', { name: 'nope' }],
      ['GetModel', { name: 'nope' }],
    ] as const) {
      const err = await failure(unary(h.gatewayClient, method, request))
      expect(err.code).toBe(grpc.status.NOT_FOUND)
      expect(trailerCode(err)).toBe('UNKNOWN_ENSEMBLE')
    }
  })

  it('answers INVALID_ARGUMENT for a wrong dtype, wrong shape, missing or unknown input, or bad budget', async () => {
    const row = cancer.rows[0]!
    const cases: [object, string, RegExp][] = [
      [{ input: { datatype: 'FP64', fp64_data: row, shape: [1, 30] } }, 'BAD_INPUT', /datatype FP64 given, model declares FP32/],
      [{ input: { fp32_data: row.slice(0, 29), shape: [1, 29] } }, 'BAD_INPUT', /shape \[1, 29\] does not match declared \[-1, 30\]/],
      [{ input: { fp32_data: row, shape: [2, 30] } }, 'BAD_INPUT', /30 elements do not fill shape \[2, 30\]/],
      [{}, 'BAD_INPUT', /missing input "input"/],
      [{ input: { fp32_data: row, shape: [1, 30] }, extra: { fp32_data: [1] } }, 'BAD_INPUT', /unknown input "extra"/],
    ]
    for (const [inputs, code, message] of cases) {
      const err = await failure(predict({ ensemble: 'cancer', inputs }))
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(trailerCode(err)).toBe(code)
      expect(err.details).toMatch(message)
    }
    for (const budget_ms of [0, -5, 5000]) {
      const err = await failure(predict({ ensemble: 'cancer', budget_ms, inputs: { input: { fp32_data: row } } }))
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(trailerCode(err)).toBe('BAD_BUDGET')
    }
  })

  it('reads the inputs before the budget, as every frontend does: bad inputs and a bad budget are the inputs\' BAD_INPUT', async () => {
    const row = cancer.rows[0]!
    const cases: [object, number, RegExp][] = [
      [{}, 5000, /missing input "input"/],
      [{ input: { fp32_data: row, shape: [1, 30] }, extra: { fp32_data: [1] } }, -5, /unknown input "extra"/],
      [{ input: { fp32_data: row, shape: [2, 30] } }, Number.NaN, /30 elements do not fill shape \[2, 30\]/],
    ]
    for (const [inputs, budget_ms, message] of cases) {
      const err = await failure(predict({ ensemble: 'cancer', budget_ms, inputs }))
      expect([err.code, trailerCode(err)], String(budget_ms)).toEqual([grpc.status.INVALID_ARGUMENT, 'BAD_INPUT'])
      expect(err.details).toMatch(message)
    }
    // The budget alone, named as written.
    const err = await failure(predict({ ensemble: 'cancer', budget_ms: Number.NaN, inputs: { input: { fp32_data: row } } }))
    expect([trailerCode(err), err.details]).toEqual(['BAD_BUDGET', 'budget_ms must be a finite number, got NaN'])
  })

  it('maps failed predicts to UNAVAILABLE, DEADLINE_EXCEEDED and FAILED_PRECONDITION with annotations in the trailers', async () => {
    const cases = [
      ['broken', grpc.status.UNAVAILABLE, 'ALL_MODELS_FAILED', 'error'],
      ['late', grpc.status.DEADLINE_EXCEEDED, 'DEADLINE_EXCEEDED', 'timeout'],
      ['split', grpc.status.FAILED_PRECONDITION, 'NO_CONSENSUS', 'ok'],
    ] as const
    for (const [ensemble, status, code, modelStatus] of cases) {
      const err = await failure(predict({ ensemble, inputs: xInput }))
      expect(err.code).toBe(status)
      expect(trailerCode(err)).toBe(code)
      const result = trailerResult(err)
      expect(result).toMatchObject({ code, ensemble, outputs: null })
      expect((result.models as { status: string }[])[0]!.status).toBe(modelStatus)
    }
    const broken = trailerResult(await failure(predict({ ensemble: 'broken', inputs: xInput })))
    expect((broken.models as { error: unknown }[])[0]!.error).toEqual({ code: 'MODEL_FAILED', message: 'boom' })
  })

  it('uses the call deadline as the budget (min with budget_ms and the cap)', async () => {
    // Deadline 900 ms: the budget is the deadline's less the reply's margin (at most 50 ms),
    // not the ensemble's 100 ms default nor its 1,000 ms cap, and the slow preferred model
    // (600 ms) makes it. An answer decided right at the deadline is not asserted here: this
    // VM fires long timers late in proportion to their length (see replyMargin's tests).
    const res = await predict({ ensemble: 'fallback', inputs: xInput }, { deadline: Date.now() + 900 })
    expect(res.budget_ms).toBeGreaterThan(800)
    expect(res.budget_ms).toBeLessThan(900)
    expect((res.decision as { chosen: string }).chosen).toBe('slow')
    // An explicit, smaller budget_ms wins over the deadline: the fallback answers at it.
    const own = await predict({ ensemble: 'fallback', budget_ms: 150, inputs: xInput }, { deadline: Date.now() + 5000 })
    expect(own.budget_ms).toBe(150)
    expect((own.decision as { chosen: string }).chosen).toBe('fast')
    expect((own.models as { status: string }[]).map((m) => m.status)).toEqual(['timeout', 'ok'])
    // A long deadline is clamped to the cap.
    const capped = await predict({ ensemble: 'fallback', inputs: xInput }, { deadline: Date.now() + 60_000 })
    expect(capped.budget_ms).toBe(1000)
    expect((capped.decision as { chosen: string }).chosen).toBe('slow')
  })

  it('fails a zero or past deadline with DEADLINE_EXCEEDED and keeps serving', async () => {
    for (const deadline of [Date.now(), Date.now() - 1000, Date.now() + 1]) {
      const err = await failure(predict({ ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } }, { deadline }))
      expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED)
    }
    await expect(predict({ ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } })).resolves.toMatchObject({ ensemble: 'cancer' })
  })

  it('aborts the request and its executors when the client cancels', async () => {
    signals.clear()
    const finished = new Promise<PredictResult>((resolve) => (h.gateway.hooks.onResult = resolve))
    const call = h.gatewayClient.Predict!({ ensemble: 'hanging', inputs: xInput }, () => undefined) as grpc.ClientUnaryCall
    await vi.waitFor(() => expect(signals.get('hang')).toHaveLength(1))
    call.cancel()
    const result = await finished
    h.gateway.hooks.onResult = undefined
    expect(result.error?.code).toBe('CANCELLED')
    expect(result.elapsed_ms).toBeLessThan(2000)
    expect(result.models[0]!.status).toBe('cancelled')
    expect(signals.get('hang')![0]!.aborted).toBe(true)
    expect(h.gateway.admission.count).toBe(0)
  })

  it('answers RESOURCE_EXHAUSTED when overloaded or when a message is over the size limit', async () => {
    const calls = Array.from({ length: 6 }, () => h.gatewayClient.Predict!({ ensemble: 'hanging', inputs: xInput }, () => undefined) as grpc.ClientUnaryCall)
    await vi.waitFor(() => expect(h.gateway.admission.count).toBe(6))
    const err = await failure(predict({ ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } }))
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED)
    expect(trailerCode(err)).toBe('OVERLOADED')
    for (const call of calls) call.cancel()
    await vi.waitFor(() => expect(h.gateway.admission.count).toBe(0))

    const huge = await failure(predict({ ensemble: 'cancer', inputs: { input: { fp32_data: new Array(30 * 1000).fill(1) } } }))
    expect(huge.code).toBe(grpc.status.RESOURCE_EXHAUSTED)
    await expect(predict({ ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } })).resolves.toMatchObject({ ensemble: 'cancer' })
  })

  it('answers INVALID_ARGUMENT to bytes that are not a PredictRequest, and survives garbage on the socket', async () => {
    const garbage = await failure(
      new Promise((resolve, reject) => {
        h.gatewayClient.makeUnaryRequest(
          '/specserve.v1.Gateway/Predict',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0x12, 0x03, 0x0a, 0x01]), // an `inputs` entry claims 3 bytes, 2 follow,
          (err, res) => (err ? reject(err) : resolve(res)),
        )
      }),
    )
    expect(garbage.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(trailerCode(garbage)).toBe('BAD_REQUEST')

    const [host, port] = h.address.split(':') as [string, string]
    const socket = connect(Number(port), host)
    await once(socket, 'connect')
    socket.write(Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.alloc(4096, 0xab)]))
    socket.resume()
    await once(socket, 'close')
    await expect(predict({ ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } })).resolves.toMatchObject({ ensemble: 'cancer' })
  })
})

describe('specserve.v1.Gateway: weighted and soft votes', () => {
  let soft: Harness
  beforeAll(async () => {
    soft = await startHarness(`
executors: { onnx_workers: 1 }
models:
  cancer-mlp: { kind: onnx, path: ../models/cancer_mlp.onnx }
  cancer-logreg: { kind: onnx, path: ../models/cancer_logreg.onnx }
  cancer-gbdt: { kind: onnx, path: ../models/cancer_gbdt.onnx }
ensembles:
  soft:
    strategy: { name: majority-vote, mode: soft, weights: { cancer-logreg: 1.5 } }
    models: [cancer-mlp, cancer-logreg, cancer-gbdt]
    budget_ms: { default: 1000, max: 2000 }
  selective:
    strategy: { name: majority-vote, mode: soft }
    models: [cancer-logreg, cancer-mlp, cancer-gbdt]
    select: { policy: adaptive, accuracy_target: 0.99 }
`)
  })
  afterAll(async () => soft?.close())

  it('describes member selection in GetEnsemble: all when not configured, else the policy and its options', async () => {
    expect((await unary(soft.gatewayClient, 'GetEnsemble', { name: 'soft' })).select).toEqual({ policy: 'all', accuracy_target: 0, explore: 0 })
    expect((await unary(soft.gatewayClient, 'GetEnsemble', { name: 'selective' })).select).toEqual({ policy: 'adaptive', accuracy_target: 0.99, explore: 0.05 })
  })

  it('carries the exact probability mass in weighted_votes and whole votes in votes', async () => {
    const res = await unary(soft.gatewayClient, 'Predict', { ensemble: 'soft', inputs: { input: { fp32_data: cancer.rows[0], shape: [1, 30] } } })
    const decision = res.decision as { reason: string; votes: Record<string, number>; weighted_votes: Record<string, number> }
    expect(decision.reason).toBe('soft')
    const mass = Object.values(decision.weighted_votes)
    // Every member answered or the vote stopped early: the mass is at most the total weight, 3.5.
    expect(mass.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(3.5 + 1e-9)
    expect(mass.some((v) => !Number.isInteger(v))).toBe(true)
    for (const [key, value] of Object.entries(decision.weighted_votes)) expect(decision.votes[key] ?? 0).toBe(Math.round(value))
    const probs = (res.outputs as Record<string, { fp32_data: number[] }>).probabilities!
    expect(probs.fp32_data[0]! + probs.fp32_data[1]!).toBeCloseTo(1, 5)
  })
})

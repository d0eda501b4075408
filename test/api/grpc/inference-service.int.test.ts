import * as grpc from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { samples } from '../../helpers.ts'
import { expectCancelStopsRuns, failure, startHarness, trailerCode, trailerResult, unary, type Harness } from './harness.ts'

let h: Harness
const cancer = samples('cancer')
const call = (method: string, request: object, options: grpc.CallOptions = {}) => unary(h.inferenceClient, method, request, options)
const input = (row: readonly number[], extra: object = {}) => ({ name: 'input', datatype: 'FP32', shape: [1, 30], contents: { fp32_contents: row }, ...extra })
type Param = { string_param?: string; double_param?: number; parameter_choice: string }
type OutputTensor = { name: string; datatype: string; shape: string[]; contents: { int64_contents: string[]; fp32_contents: number[] } | null }

beforeAll(async () => {
  h = await startHarness()
})
afterAll(async () => h?.close())

describe('inference.GRPCInferenceService (Open Inference Protocol V2)', () => {
  it('reports liveness, readiness and server metadata', async () => {
    expect(await call('ServerLive', {})).toEqual({ live: true })
    expect(await call('ServerReady', {})).toEqual({ ready: true })
    expect(await call('ServerMetadata', {})).toMatchObject({ name: 'specserve', extensions: ['binary_tensor_data'] })
    expect(await call('ModelReady', { name: 'cancer' })).toEqual({ ready: true })
    expect(await call('ModelReady', { name: 'cancer', version: '1' })).toEqual({ ready: true })
    for (const request of [{ name: 'nope' }, { name: 'cancer', version: '2' }]) {
      expect((await failure(call('ModelReady', request))).code).toBe(grpc.status.NOT_FOUND)
    }
  })

  it('describes each ensemble as a V2 model', async () => {
    const meta = await call('ModelMetadata', { name: 'cancer' })
    expect(meta).toMatchObject({ name: 'cancer', versions: ['1'], platform: 'specserve_ensemble' })
    expect(meta.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: ['-1', '30'], parameters: {} }])
    expect((meta.outputs as { name: string }[]).map((o) => o.name)).toEqual(['label', 'probabilities'])
    expect((meta.parameters as Record<string, Param>).models!.string_param).toBe('cancer-mlp,cancer-logreg')
  })

  it('infers from typed contents; the decision and annotations are in the response parameters', async () => {
    for (const [i, row] of cancer.rows.entries()) {
      const res = await call('ModelInfer', { model_name: 'cancer', id: `r${i}`, inputs: [input(row)] })
      expect(res).toMatchObject({ model_name: 'cancer', model_version: '1', id: `r${i}`, raw_output_contents: [] })
      const params = res.parameters as Record<string, Param>
      const chosen = params.chosen!.string_param!
      expect(params.strategy!.string_param).toBe('deadline-fallback')
      expect(params.reason!.string_param).toBe('preferred-finished')
      expect(params.budget_ms!.double_param).toBe(1000)
      const models = JSON.parse(params.models!.string_param!) as { name: string; used: boolean }[]
      expect(models.find((m) => m.used)?.name).toBe(chosen)
      const label = (res.outputs as OutputTensor[]).find((o) => o.name === 'label')!
      expect(label).toMatchObject({ datatype: 'INT64', shape: ['1'] })
      expect(Number(label.contents!.int64_contents[0])).toBe(cancer.expected[chosen.replace('-', '_')]![i])
    }
  })

  it('answers raw contents with raw outputs, and returns only the outputs asked for', async () => {
    const rows = cancer.rows.slice(0, 2)
    const raw = Buffer.from(new Float32Array(rows.flat()).buffer)
    const res = await call('ModelInfer', {
      model_name: 'cancer',
      model_version: '1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 30] }],
      outputs: [{ name: 'probabilities' }],
      raw_input_contents: [raw],
    })
    const outputs = res.outputs as OutputTensor[]
    expect(outputs).toEqual([{ name: 'probabilities', datatype: 'FP32', shape: ['2', '2'], parameters: {}, contents: null }])
    const bytes = (res.raw_output_contents as Buffer[])[0]!
    const probs = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
    expect(probs).toHaveLength(4)
    expect(probs[0]! + probs[1]!).toBeCloseTo(1, 5)
  })

  it('takes budget_ms from the request parameters and the deadline from the call', async () => {
    const params = { budget_ms: { int64_param: '300' } }
    const res = await call('ModelInfer', { model_name: 'cancer', parameters: params, inputs: [input(cancer.rows[0]!)] })
    expect((res.parameters as Record<string, Param>).budget_ms!.double_param).toBe(300)
    const timed = await call('ModelInfer', { model_name: 'cancer', inputs: [input(cancer.rows[0]!)] }, { deadline: Date.now() + 500 })
    expect((timed.parameters as Record<string, Param>).budget_ms!.double_param).toBeLessThan(500)
    const bad = await failure(call('ModelInfer', { model_name: 'cancer', parameters: { budget_ms: { string_param: 'soon' } }, inputs: [input(cancer.rows[0]!)] }))
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(trailerCode(bad)).toBe('BAD_BUDGET')
    // Inputs are read first, on every frontend: a missing input is BAD_INPUT whatever the budget.
    const both = await failure(call('ModelInfer', { model_name: 'cancer', parameters: { budget_ms: { string_param: 'soon' } }, inputs: [] }))
    expect([both.code, trailerCode(both)]).toEqual([grpc.status.INVALID_ARGUMENT, 'BAD_INPUT'])
  })

  it('rejects bad inputs with INVALID_ARGUMENT and a clear message', async () => {
    const row = cancer.rows[0]!
    const cases: [object, RegExp][] = [
      [{ inputs: [input(row, { datatype: 'INT64', contents: { int64_contents: row.map(() => '1') } })] }, /datatype INT64 given, model declares FP32/],
      [{ inputs: [input(row, { shape: [1, 31] })] }, /30 elements do not fill shape \[1, 31\]/],
      [{ inputs: [input(row, { shape: [2, 15] })] }, /shape \[2, 15\] does not match declared \[-1, 30\]/],
      [{ inputs: [] }, /missing input "input"/],
      [{ inputs: [input(row), input(row)] }, /given twice/],
      [{ inputs: [input(row, { name: 'features' })] }, /unknown input "features"/],
      [{ inputs: [input(row)], outputs: [{ name: 'logits' }] }, /unknown output "logits"/],
      [{ inputs: [input(row, { contents: null })], raw_input_contents: [Buffer.alloc(12)] }, /12 raw bytes, shape \[1, 30\] of FP32 needs 120/],
      [{ inputs: [input(row)], raw_input_contents: [Buffer.alloc(120), Buffer.alloc(4)] }, /raw_input_contents has 2 entries for 1 inputs/],
    ]
    for (const [request, message] of cases) {
      const err = await failure(call('ModelInfer', { model_name: 'cancer', ...request }))
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(err.details).toMatch(message)
    }
    expect((await failure(call('ModelInfer', { model_name: 'nope', inputs: [] }))).code).toBe(grpc.status.NOT_FOUND)
  })

  it('reads a request in the order every frontend does: the id, then the inputs, then the outputs asked for (ModelInfer and ModelStreamInfer)', async () => {
    const row = cancer.rows[0]!
    const cases: [object, string, RegExp][] = [
      [{ id: 'a\nb', inputs: [input(row)], outputs: [{ name: 'logits' }] }, 'BAD_REQUEST', /^id must not contain control characters/],
      [{ id: 'a\nb', inputs: [input(row, { name: 'features' })] }, 'BAD_REQUEST', /^id must not contain control characters/],
      [{ inputs: [input(row, { name: 'features' })], outputs: [{ name: 'logits' }] }, 'BAD_INPUT', /^unknown input "features"/],
    ]
    const stream = (h.inferenceClient.ModelStreamInfer as () => grpc.ClientDuplexStream<object, { error_message: string }>)()
    const replies: string[] = []
    stream.on('data', (r: { error_message: string }) => replies.push(r.error_message))
    const ended = new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject))
    for (const [request] of cases) stream.write({ model_name: 'cancer', ...request })
    stream.end()
    await ended
    expect(replies.sort()).toEqual([expect.stringMatching(/^BAD_INPUT: unknown input "features"/), expect.stringMatching(/^BAD_REQUEST: id must not/), expect.stringMatching(/^BAD_REQUEST: id must not/)])
    for (const [request, code, message] of cases) {
      const err = await failure(call('ModelInfer', { model_name: 'cancer', ...request }))
      expect([trailerCode(err), err.details]).toEqual([code, expect.stringMatching(message)])
    }
  })

  it('maps a failed infer to its status with the annotations in the trailers', async () => {
    const x = { name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [0.5, 0.5] } }
    const err = await failure(call('ModelInfer', { model_name: 'late', inputs: [x] }))
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED)
    expect(trailerResult(err)).toMatchObject({ code: 'DEADLINE_EXCEEDED', ensemble: 'late', models: [{ name: 'hang', status: 'timeout' }] })
    expect((await failure(call('ModelInfer', { model_name: 'broken', inputs: [x] }))).code).toBe(grpc.status.UNAVAILABLE)
  })

  it('streams inferences over ModelStreamInfer: each answered with its id as it completes, a failed one with its error, then the call ends', async () => {
    const stream = (h.inferenceClient.ModelStreamInfer as () => grpc.ClientDuplexStream<object, { error_message: string; infer_response: { id: string; model_name: string; outputs: OutputTensor[] } | null }>)()
    const replies: { error_message: string; infer_response: { id: string; model_name: string; outputs: OutputTensor[] } | null }[] = []
    stream.on('data', (r) => replies.push(r))
    const ended = new Promise((resolve, reject) => {
      stream.on('end', resolve)
      stream.on('error', reject)
    })
    for (const [i, row] of cancer.rows.entries()) stream.write({ model_name: 'cancer', id: `s${i}`, inputs: [input(row)] })
    stream.write({ model_name: 'nope', id: 'bad', inputs: [input(cancer.rows[0]!)] })
    stream.end()
    await ended
    expect(replies).toHaveLength(cancer.rows.length + 1)
    const bad = replies.find((r) => r.infer_response?.id === 'bad')!
    expect(bad.error_message).toMatch(/^UNKNOWN_ENSEMBLE: /)
    for (const [i, row] of cancer.rows.entries()) {
      const streamed = replies.find((r) => r.infer_response?.id === `s${i}`)!
      expect(streamed.error_message).toBe('')
      const single = await call('ModelInfer', { model_name: 'cancer', id: `s${i}`, inputs: [input(row)] })
      expect(streamed.infer_response!.outputs).toEqual(single.outputs)
    }
  })

  it('cancels the inferences still running when the client cancels ModelStreamInfer', async () => {
    const x = { name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [0.5, 0.5] } }
    const open = () => (h.inferenceClient.ModelStreamInfer as () => grpc.ClientDuplexStream<object, unknown>)()
    await expectCancelStopsRuns(h, open, (call, id) => call.write({ model_name: 'hanging', id, inputs: [x] }))
  })
})

// Remote executors against real peers, provisioned into the cache (scripts/peers/*.sh):
// MLServer with mlserver-sklearn (Open Inference Protocol V2, REST and gRPC), seldon-core's
// v1 microservice wrapper (REST and gRPC), and a TF Serving STAND-IN (a small Python server
// using TF Serving's published protos; not TF Serving itself). All serve the scikit-learn
// wine random forest that models/train.py trains; answers are checked against its labels.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { configFrom, samples } from '../helpers.ts'
import { startMlserver, startSeldon, startTfServingStandIn, type Peer } from './peers.ts'

const wine = samples('wine')
const expected = wine.expected.wine_rf! // the forest's labels for the sample rows
const served = { name: 'wine', trained: 'wine_rf', features: 13, classes: 3 }
const cancer = samples('cancer')
const input = `inputs: [{ name: input, datatype: FP32, shape: [-1, 13] }]`
const probs = `{ name: probabilities, datatype: FP32, shape: [-1, 3] }`
const mlserverOutputs = `outputs: [{ name: label, datatype: INT64, shape: [-1], upstream: predict }, { name: probabilities, datatype: FP32, shape: [-1, 3], upstream: predict_proba }]`

let mlserver: Peer
let seldon: Peer
let tfs: Peer
let tfsBinary: Peer // a binary classifier: the stand-in exports a regression signature for it, as TF's binary heads do
let app: FastifyInstance

beforeAll(async () => {
  // Cold cache: installs three venvs and trains the models (minutes); warm: seconds.
  ;[mlserver, seldon, tfs, tfsBinary] = await Promise.all([
    startMlserver(served),
    startSeldon(served),
    startTfServingStandIn(served),
    startTfServingStandIn({ name: 'cancer', trained: 'cancer_logreg', features: 30, classes: 2 }),
  ])
  const solo = (name: string): string => `  ${name}: { strategy: deadline-fallback, models: [${name}], budget_ms: { default: 3000, max: 5000 } }\n`
  const remotes = ['mlserver-rest', 'mlserver-grpc', 'mlserver-meta', 'seldon-rest', 'seldon-rest-tensor', 'seldon-grpc', 'seldon-grpc-ndarray', 'tf-rest', 'tf-rest-row', 'tf-grpc', 'tf-classify-rest', 'tf-classify-grpc', 'tf-regress-rest', 'tf-regress-grpc', 'tf-regress-multiclass']
  const classify = `method: classify, signature: classification, ${input}, outputs: [{ name: classes, datatype: BYTES, shape: [-1, 3] }, { name: probabilities, datatype: FP32, shape: [-1, 3], upstream: scores }]`
  const regress = `model: cancer, method: regress, signature: regression, inputs: [{ name: input, datatype: FP32, shape: [-1, 30] }], outputs: [{ name: p1, datatype: FP32, shape: [-1], upstream: outputs }]`
  const yaml = `
executors: { onnx_workers: 1 }
models:
  wine-logreg: { kind: onnx, path: ../models/wine_logreg.onnx }
  wine-knn: { kind: onnx, path: ../models/wine_knn.onnx }
  mlserver-rest: { kind: oip, url: "${mlserver.restUrl}", model: wine, ${mlserverOutputs} }
  mlserver-grpc: { kind: oip, url: "${mlserver.grpcUrl}", model: wine, ${mlserverOutputs} }
  mlserver-meta: { kind: oip, url: "${mlserver.restUrl}", model: wine }
  seldon-rest: { kind: seldon, url: "${seldon.restUrl}", deployment: wine, namespace: test, ${input}, outputs: [${probs}] }
  seldon-rest-tensor: { kind: seldon, url: "${seldon.restUrl}", data_format: tensor, ${input}, outputs: [${probs}] }
  seldon-grpc: { kind: seldon, url: "${seldon.grpcUrl}", deployment: wine, ${input}, outputs: [${probs}] }
  seldon-grpc-ndarray: { kind: seldon, url: "${seldon.grpcUrl}", data_format: ndarray, tags: { team: wine }, ${input}, outputs: [${probs}] }
  tf-rest: { kind: tfserving, url: "${tfs.restUrl}", model: wine }
  tf-rest-row: { kind: tfserving, url: "${tfs.restUrl}", model: wine, version: 1, rest_format: row }
  tf-grpc: { kind: tfserving, url: "${tfs.grpcUrl}", model: wine, version_label: stable, signature: serving_default }
  tf-classify-rest: { kind: tfserving, url: "${tfs.restUrl}", model: wine, ${classify} }
  tf-classify-grpc: { kind: tfserving, url: "${tfs.grpcUrl}", model: wine, ${classify} }
  tf-regress-rest: { kind: tfserving, url: "${tfsBinary.restUrl}", ${regress} }
  tf-regress-grpc: { kind: tfserving, url: "${tfsBinary.grpcUrl}", ${regress} }
  tf-regress-multiclass: { kind: tfserving, url: "${tfs.restUrl}", model: wine, method: regress, signature: regression, ${input}, outputs: [{ name: value, datatype: FP32, shape: [-1], upstream: outputs }], retries: 0 }
ensembles:
${remotes.map(solo).join('')}${solo('wine-logreg')}
  mixed-fallback: { strategy: deadline-fallback, models: [mlserver-rest, seldon-rest, wine-logreg], budget_ms: { default: 3000, max: 5000 } }
  mixed-vote: { strategy: majority-vote, models: [wine-knn, mlserver-grpc, seldon-grpc], budget_ms: { default: 3000, max: 5000 } }
  mixed-quality: { strategy: best-quality, models: [wine-logreg, mlserver-rest, seldon-rest], budget_ms: { default: 3000, max: 5000 } }
`
  app = buildServer(configFrom(yaml))
  await app.gateway.load()
}, 1_800_000)

afterAll(async () => {
  await app?.close()
  await Promise.all([mlserver?.stop(), seldon?.stop(), tfs?.stop(), tfsBinary?.stop()])
})

const predict = async (ensemble: string, rows: readonly (readonly number[])[] = wine.rows) => {
  const res = await app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { input: rows } } })
  return { statusCode: res.statusCode, body: res.json() }
}
const argmax = (rows: number[][]): number[] => rows.map((r) => r.indexOf(Math.max(...r)))

describe('remote executors against real peers', () => {
  for (const name of ['mlserver-rest', 'mlserver-grpc', 'seldon-rest', 'seldon-rest-tensor', 'seldon-grpc', 'seldon-grpc-ndarray', 'tf-rest', 'tf-rest-row', 'tf-grpc']) {
    const peer = name.startsWith('tf-') ? 'the TF Serving stand-in' : name.startsWith('seldon') ? 'seldon-core' : 'MLServer'
    it(`${name}: ${peer} answers a batch of ${wine.rows.length} rows with the forest's classes`, async () => {
      const { statusCode, body } = await predict(name)
      expect(statusCode, JSON.stringify(body)).toBe(200)
      expect(body.models[0]).toMatchObject({ name, status: 'ok', used: true })
      expect(argmax(body.outputs.probabilities)).toEqual(expected)
      if (body.outputs.label) expect(body.outputs.label).toEqual(expected)
    })
  }

  for (const name of ['tf-classify-rest', 'tf-classify-grpc']) {
    it(`${name}: the TF Serving stand-in classifies tf.Examples (one per row) with the forest's classes and scores`, async () => {
      const { statusCode, body } = await predict(name)
      expect(statusCode, JSON.stringify(body)).toBe(200)
      expect(body.outputs.classes).toEqual(wine.rows.map(() => ['0', '1', '2']))
      expect(argmax(body.outputs.probabilities)).toEqual(expected)
    })
  }

  for (const name of ['tf-regress-rest', 'tf-regress-grpc']) {
    it(`${name}: the TF Serving stand-in regresses tf.Examples: P(class 1) of the binary classifier`, async () => {
      const want = cancer.probabilities.cancer_logreg!.map((p) => p[1]!)
      const { statusCode, body } = await predict(name, cancer.rows)
      expect(statusCode, JSON.stringify(body)).toBe(200)
      expect(body.outputs.p1).toHaveLength(want.length)
      body.outputs.p1.forEach((v: number, i: number) => expect(v).toBeCloseTo(want[i]!, 4))
    })
  }

  it('tf.Example floats keep their type when they are whole numbers (TF Serving reads 1 as int64, 1.0 as float)', async () => {
    const whole = [Array.from({ length: 30 }, (_, i) => i + 1)]
    const { statusCode, body } = await predict('tf-regress-rest', whole)
    expect(statusCode, JSON.stringify(body)).toBe(200)
    expect(body.outputs.p1).toHaveLength(1)
  })

  it('regress on a model without a regression signature is that model\'s UPSTREAM_ERROR, with the upstream\'s message', async () => {
    const { statusCode, body } = await predict('tf-regress-multiclass')
    expect(statusCode).toBe(502)
    expect(body.models[0]).toMatchObject({ name: 'tf-regress-multiclass', status: 'error', error: { code: 'UPSTREAM_ERROR' } })
    expect(body.models[0].error.message).toBe('HTTP 400 from POST /v1/models/wine:regress: Serving signature key "regression" not found.')
  })

  it('reads inputs and outputs from V2 model metadata (MLServer) and TF signature metadata (stand-in, REST and gRPC)', () => {
    expect(app.gateway.model('mlserver-meta').executor.metadata()).toMatchObject({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 13] }],
      outputs: [
        { name: 'predict', datatype: 'INT64', shape: [-1] },
        { name: 'predict_proba', datatype: 'FP64', shape: [-1, 3] },
      ],
    })
    for (const name of ['tf-rest', 'tf-grpc']) {
      const meta = app.gateway.model(name).executor.metadata()
      expect(meta.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 13] }])
      expect([...meta.outputs].sort((a, b) => a.name.localeCompare(b.name))).toEqual([
        { name: 'label', datatype: 'INT64', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
      ])
    }
  })

  it('mixed ensemble (MLServer, seldon-core, embedded ONNX) under deadline-fallback: the preferred remote model answers', async () => {
    const { statusCode, body } = await predict('mixed-fallback')
    expect(statusCode, JSON.stringify(body)).toBe(200)
    expect(body.decision.chosen).toBe('mlserver-rest')
    expect(argmax(body.outputs.probabilities)).toEqual(expected)
    expect(body.models.map((m: { status: string }) => m.status)[0]).toBe('ok')
  })

  it('mixed ensemble under majority-vote: two remote forests outvote the embedded k-NN where they disagree', async () => {
    const disagree = wine.rows.findIndex((_, i) => wine.expected.wine_knn![i] !== expected[i])
    expect(disagree).toBeGreaterThanOrEqual(0)
    const { statusCode, body } = await predict('mixed-vote', [wine.rows[disagree]!])
    expect(statusCode, JSON.stringify(body)).toBe(200)
    expect(body.decision.votes[String(expected[disagree])]).toBe(2)
    expect(argmax(body.outputs.probabilities)).toEqual([expected[disagree]])
  })

  it('mixed ensemble under best-quality: the most confident model wins (ties to the earlier one), every model annotated', async () => {
    const members = ['wine-logreg', 'mlserver-rest', 'seldon-rest']
    for (const row of [wine.rows[0]!, wine.rows[wine.rows.length - 1]!]) {
      // Each member's own confidence on this row, asked alone.
      const confidence: number[] = []
      for (const m of members) confidence.push(Math.max(...((await predict(m, [row])).body.outputs.probabilities[0] as number[])))
      const best = confidence.indexOf(Math.max(...confidence))
      const { statusCode, body } = await predict('mixed-quality', [row])
      expect(statusCode, JSON.stringify(body)).toBe(200)
      // No good_enough: the collector waits for all three, so none is cancelled.
      expect(body.models.map((m: { status: string }) => m.status)).toEqual(['ok', 'ok', 'ok'])
      expect(body.decision.chosen, `confidences ${confidence.join(', ')}`).toBe(members[best])
      expect(Math.max(...(body.outputs.probabilities[0] as number[]))).toBeCloseTo(confidence[best]!, 5)
    }
  })
})

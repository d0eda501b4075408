// What a remote call carries and how it is retried, on the wire of real servers: routing
// headers and gRPC metadata (Seldon v2's seldon-model, Seldon v1's seldon and namespace),
// a retry after a retryable failure and none after a final one, a client's tiny budget that
// must not open the circuit for everyone, a gRPC call cancelled when the collector decides,
// and an answer larger than max_response_bytes.
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { parseRemote, type RemoteModelConfig } from '../../../src/executors/remote/config.ts'
import { acquirePool, requestJson } from '../../../src/executors/remote/http.ts'
import { Gateway } from '../../../src/gateway.ts'
import { configFrom, samples } from '../../helpers.ts'
import { WINE_IO as io, startFaultServer, startGrpcFaultServer, type Annotation, type FaultServer, type GrpcFaultServer } from './fault-server.ts'

const row = samples('wine').rows[0]!

let http: FaultServer
/** A server of its own, so its connection count is this test's alone. */
let reuse: FaultServer
let rpc: GrpcFaultServer
let tight: GrpcFaultServer
let app: FastifyInstance

interface Body {
  code?: string
  outputs?: Record<string, unknown>
  decision?: { chosen: string | null }
  models: Annotation[]
}

async function predict(ensemble: string, budget = 1000): Promise<{ statusCode: number; body: Body }> {
  const res = await app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { input: [row] }, budget_ms: budget } })
  return { statusCode: res.statusCode, body: res.json() }
}

beforeAll(async () => {
  http = await startFaultServer()
  reuse = await startFaultServer()
  rpc = await startGrpcFaultServer()
  tight = await startGrpcFaultServer({ 'grpc.max_receive_message_length': 64 })
  const models: Record<string, string> = {
    'ok-a': `kind: oip, url: "${reuse.url}", model: ok, ${io}`,
    'ok-b': `kind: oip, url: "${reuse.url}", model: ok, ${io}`,
    'routed-rest': `kind: oip, url: "${http.url}", model: ok, seldon_model: iris, headers: { x-tenant: blue }, ${io}`,
    'routed-grpc': `kind: oip, url: "${rpc.url}", model: ok, seldon_model: iris, headers: { x-tenant: blue }, ${io}`,
    'seldon-grpc': `kind: seldon, url: "${rpc.url}", deployment: wine, namespace: prod, inputs: [{ name: input, datatype: FP32, shape: [-1, 13] }], outputs: [{ name: probabilities, datatype: FP32, shape: [-1, 3] }]`,
    'seldon-failing': `kind: seldon, url: "${rpc.url}", deployment: failing, retries: 0, inputs: [{ name: input, datatype: FP32, shape: [-1, 13] }], outputs: [{ name: probabilities, datatype: FP32, shape: [-1, 3] }]`,
    retried: `kind: oip, url: "${http.url}", model: flaky503, retries: 1, ${io}`,
    'not-retryable': `kind: oip, url: "${http.url}", model: error500, retries: 2, ${io}`,
    tiny: `kind: oip, url: "${http.url}", model: delayed, retries: 0, circuit_breaker: { failures: 2, reset_ms: 60000 }, ${io}`,
    'narrow-hang': `kind: oip, url: "${http.url}", model: hang, retries: 0, pool_size: 2, ${io}`,
    'narrow-ok': `kind: oip, url: "${http.url}", model: ok, retries: 0, pool_size: 2, ${io}`,
    'fair-hang': `kind: oip, url: "${http.url}", model: hang, retries: 0, circuit_breaker: { failures: 2, reset_ms: 60000, first_calls_ms: 50 }, ${io}`,
    delayed: `kind: oip, url: "${http.url}", model: delayed, ${io}`,
    'grpc-hang': `kind: oip, url: "${rpc.url}", model: hang, ${io}`,
    'huge-rest': `kind: oip, url: "${http.url}", model: huge, max_response_bytes: 65536, retries: 0, ${io}`,
    'announced-huge': `kind: oip, url: "${http.url}", model: announced-huge, max_response_bytes: 65536, retries: 0, ${io}`,
    'huge-grpc': `kind: oip, url: "${rpc.url}", model: huge, max_response_bytes: 65536, retries: 0, ${io}`,
    'tight-grpc': `kind: oip, url: "${tight.url}", model: ok, retries: 0, circuit_breaker: { failures: 2, reset_ms: 60000 }, ${io}`,
    'tight-equal': `kind: oip, url: "${tight.url}", model: ok, retries: 0, max_response_bytes: 64, ${io}`,
    'tf-grpc': `kind: tfserving, url: "${rpc.url}", model: wine, inputs: [{ name: input, datatype: FP32, shape: [-1, 13] }], outputs: [{ name: probabilities, datatype: FP32, shape: [-1, 3] }]`,
    'tf-unversioned': `kind: tfserving, url: "${rpc.url}", model: unversioned, inputs: [{ name: input, datatype: FP32, shape: [-1, 13] }], outputs: [{ name: probabilities, datatype: FP32, shape: [-1, 3] }]`,
  }
  const solo = Object.keys(models).map((m) => `  ${m}: { strategy: deadline-fallback, models: [${m}], budget_ms: { default: 1000, max: 2000 } }`)
  const yaml = [
    'models:',
    ...Object.entries(models).map(([name, body]) => `  ${name}: { ${body} }`),
    'ensembles:',
    ...solo,
    '  cancel-grpc: { strategy: deadline-fallback, models: [delayed, grpc-hang], budget_ms: { default: 1000, max: 2000 } }',
  ].join('\n')
  app = buildServer(configFrom(yaml))
  await app.gateway.load()
})

afterAll(async () => {
  await app?.close()
  await http?.close()
  await reuse?.close()
  await rpc?.close()
  await tight?.close()
})

describe('remote calls on the wire', () => {
  it('reuses keep-alive connections: predicts to two models on one origin open none', async () => {
    expect((await predict('ok-a')).statusCode).toBe(200)
    const open = reuse.connections // the load's metadata calls and the first predict opened these
    for (let i = 0; i < 5; i++) {
      for (const ensemble of ['ok-a', 'ok-b']) expect((await predict(ensemble)).statusCode).toBe(200)
    }
    expect(reuse.connections).toBe(open)
  })

  it('gives each model a pool of its own, kept for the same model with the same pool settings (a reload)', async () => {
    const ctx = { baseDir: '.', problem: (field: string, message: string) => expect.fail(`${field}: ${message}`), warn: () => undefined }
    const settings = (extra: object) => parseRemote({ kind: 'oip', url: reuse.url, ...extra } as RemoteModelConfig, ctx)
    const a = acquirePool(settings({}), 'a')
    const again = acquirePool(settings({}), 'a')
    const b = acquirePool(settings({}), 'b')
    const small = acquirePool(settings({ pool_size: 2 }), 'a')
    try {
      expect(again.upstream).toBe(a.upstream)
      expect(b.upstream).not.toBe(a.upstream)
      expect(small.upstream).not.toBe(a.upstream)
    } finally {
      await Promise.all([a.release(), again.release(), b.release(), small.release()])
    }
  })

  it('a call still queued for a connection ends when its signal aborts, not when a connection frees up', async () => {
    const ctx = { baseDir: '.', problem: (field: string, message: string) => expect.fail(`${field}: ${message}`), warn: () => undefined }
    const { upstream, release } = acquirePool(parseRemote({ kind: 'oip', url: http.url, pool_size: 1 } as RemoteModelConfig, ctx), 'queued')
    const call = (signal: AbortSignal) => requestJson(upstream, { method: 'POST', path: '/v2/models/hang/infer', headers: {}, body: '{"inputs":[{"shape":[1]}]}', signal })
    const holding = new AbortController()
    const arrived = http.nextRequest()
    const first = call(holding.signal).catch(() => 'ended')
    await arrived // the first holds the pool's one connection
    const queued = new AbortController()
    const second = call(queued.signal)
    const reason = new Error('deadline')
    queued.abort(reason)
    try {
      await expect(second).rejects.toBe(reason) // while the first still holds the one connection
    } finally {
      holding.abort()
      await first
      await release()
    }
  })

  it('an answer that is not HTTP/1.1 is UPSTREAM_BAD_RESPONSE, not an error status', async () => {
    const raw = createServer((socket) => socket.once('data', () => socket.end('SSH-2.0-OpenSSH_9.2\r\n')))
    raw.listen(0, '127.0.0.1')
    await once(raw, 'listening')
    const ctx = { baseDir: '.', problem: (field: string, message: string) => expect.fail(`${field}: ${message}`), warn: () => undefined }
    const { upstream, release } = acquirePool(parseRemote({ kind: 'oip', url: `http://127.0.0.1:${(raw.address() as AddressInfo).port}` } as RemoteModelConfig, ctx), 'not-http')
    try {
      const answer = requestJson(upstream, { method: 'POST', path: '/v2/models/m/infer', headers: {}, body: '{}', signal: new AbortController().signal })
      await expect(answer).rejects.toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE', message: expect.stringMatching(/^answer to POST \/v2\/models\/m\/infer is not HTTP\/1\.1: /) })
    } finally {
      await release()
      raw.close()
    }
  })

  it("a model whose upstream hangs holds only its own connections: a neighbour on the same server answers, and the hung calls end at their deadline", async () => {
    const hung = Array.from({ length: 2 }, () => predict('narrow-hang', 300))
    const started = performance.now()
    const res = await predict('narrow-ok', 200)
    expect(res.body.models[0]).toMatchObject({ name: 'narrow-ok', status: 'ok' })
    expect(performance.now() - started).toBeLessThan(200)
    for (const r of await Promise.all(hung)) expect(r.statusCode).toBe(504)
  })

  it('OIP sends seldon-model and the configured headers, over REST and as gRPC metadata', async () => {
    expect((await predict('routed-rest')).statusCode).toBe(200)
    expect(http.headers.get('ok')).toMatchObject({ 'seldon-model': 'iris', 'x-tenant': 'blue' })
    expect((await predict('routed-grpc')).statusCode).toBe(200)
    expect(rpc.metadata.get('ok')).toMatchObject({ 'seldon-model': 'iris', 'x-tenant': 'blue' })
  })

  it('annotates the version a gRPC answer names (OIP model_version, TF Serving model_spec.version) when YAML pins none', async () => {
    // Neither upstream serves metadata: until an answer names a version, the model shows "1".
    const shown = async (name: string) => ((await app.inject({ method: 'GET', url: `/v1/models/${name}` })).json() as { version: string }).version
    expect(await shown('tf-grpc')).toBe('1')
    for (const [ensemble, version] of [['routed-grpc', '7'], ['tf-grpc', '9']] as const) {
      const res = await predict(ensemble)
      expect(res.statusCode).toBe(200)
      expect(res.body.models[0]).toMatchObject({ name: ensemble, status: 'ok', version })
      expect(await shown(ensemble)).toBe(version)
    }
    // An empty version wrapper names no version (it would read as "0").
    expect((await predict('tf-unversioned')).body.models[0]).toMatchObject({ name: 'tf-unversioned', status: 'ok', version: '1' })
    expect(await shown('tf-unversioned')).toBe('1')
  })

  it('Seldon v1 over gRPC sends the deployment and namespace as routing metadata, and maps the answer', async () => {
    const res = await predict('seldon-grpc')
    expect(res.statusCode).toBe(200)
    expect(rpc.metadata.get('seldon')).toMatchObject({ seldon: 'wine', namespace: 'prod' })
    const [probabilities] = res.body.outputs!.probabilities as number[][]
    expect(probabilities!.map((p) => Number(p.toFixed(3)))).toEqual([0.2, 0.3, 0.5])
  })

  it('a Seldon answer with status FAILURE is UPSTREAM_ERROR, with its info', async () => {
    const res = await predict('seldon-failing')
    expect(res.statusCode).toBe(502)
    expect(res.body.models[0]!.error).toMatchObject({ code: 'UPSTREAM_ERROR' })
    expect(res.body.models[0]!.error!.message).toContain('model crashed: out of memory')
  })

  it('retries a retryable failure (503) within the budget, and never a final one (500)', async () => {
    const before = http.hits.get('flaky503') ?? 0
    const ok = await predict('retried')
    expect(ok.statusCode).toBe(200)
    expect(ok.body.models[0]).toMatchObject({ name: 'retried', status: 'ok', used: true })
    expect((http.hits.get('flaky503') ?? 0) - before).toBe(2)

    const hits = http.hits.get('error500') ?? 0
    const failed = await predict('not-retryable')
    expect(failed.statusCode).toBe(502)
    expect(failed.body.models[0]!.error?.code).toBe('UPSTREAM_ERROR')
    expect((http.hits.get('error500') ?? 0) - hits).toBe(1)
  })

  it("a client's tiny budgets do not open a healthy model's circuit, even before its first answer; cut-offs after a fair chance do", async () => {
    // tiny's upstream answers in 50 ms. Budgets of 10 ms are cut off every time, but its first
    // call runs on to its fair chance (circuit_breaker.first_calls_ms), answers, and from then
    // on a cut-off counts only after twice its usual latency.
    for (let i = 0; i < 6; i++) {
      const res = await predict('tiny', 10)
      expect(res.statusCode).toBe(504)
      expect(res.body.models[0]).toMatchObject({ name: 'tiny', status: 'timeout' })
    }
    expect((await app.inject('/v1/models/tiny')).json().health).toMatchObject({ circuit: 'closed' })
    expect((await predict('tiny', 1000)).body.models[0]).toMatchObject({ name: 'tiny', status: 'ok' })
    // An upstream that never answers: each call had its fair chance (50 ms), and failures: 2 opens it.
    for (let i = 0; i < 2; i++) expect((await predict('fair-hang', 60)).body.models[0]).toMatchObject({ name: 'fair-hang', status: 'timeout' })
    expect((await predict('fair-hang', 60)).body.models[0]).toMatchObject({ name: 'fair-hang', status: 'skipped', error: { code: 'CIRCUIT_OPEN' } })
  })

  it('cancels a losing gRPC call when the collector decides', async () => {
    const cancelled = rpc.nextCancel()
    const res = await predict('cancel-grpc')
    expect(res.statusCode).toBe(200)
    expect(res.body.decision?.chosen).toBe('delayed')
    expect(res.body.models[1]).toMatchObject({ name: 'grpc-hang', status: 'cancelled', used: false })
    await cancelled // the server saw the call go away
  })

  it("refuses at load a declared tensor whose kind (number or string) contradicts the upstream's metadata", async () => {
    const gateway = new Gateway(
      configFrom(`
models: { typed: { kind: oip, url: "${http.url}", model: typed, outputs: [{ name: label, datatype: INT64, shape: [-1] }] } }
ensembles: { e: { strategy: deadline-fallback, models: [typed] } }
`),
    )
    try {
      await expect(gateway.load()).rejects.toThrow("output label is declared INT64, but the upstream's metadata says BYTES")
    } finally {
      await gateway.close()
    }
  })

  it('a request the gRPC upstream refuses as too large is its refusal of our input (UPSTREAM_ERROR), not an answer over max_response_bytes, and opens no circuit', async () => {
    // tight-equal: the upstream's limit is our max_response_bytes, word for word the same refusal.
    for (const ensemble of ['tight-grpc', 'tight-grpc', 'tight-grpc', 'tight-equal']) {
      const res = await predict(ensemble)
      expect(res.statusCode).toBe(502)
      expect(res.body.models[0]!.error).toMatchObject({ code: 'UPSTREAM_ERROR', message: expect.stringMatching(/refused the request as too large: Received message larger than max \(\d+ vs 64\)/) as unknown })
    }
  })

  it('an answer larger than max_response_bytes is UPSTREAM_BAD_RESPONSE, over REST and gRPC', async () => {
    for (const ensemble of ['huge-rest', 'huge-grpc']) {
      const res = await predict(ensemble)
      expect(res.statusCode).toBe(502)
      expect(res.body.models[0]!.error).toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE' })
      expect(res.body.models[0]!.error!.message).toContain('max_response_bytes')
    }
  })

  it('an answer whose content-length announces more than max_response_bytes is refused at its headers, not at the deadline', async () => {
    const res = await predict('announced-huge', 2000)
    expect(res.statusCode).toBe(502)
    expect(res.body.models[0]!.error).toEqual({
      code: 'UPSTREAM_BAD_RESPONSE',
      message: `answer to POST /v2/models/announced-huge/infer announces ${200 << 20} bytes, more than max_response_bytes (65536)`,
    })
  })
})

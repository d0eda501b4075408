// The policy on the REST listener, native and Open Inference Protocol routes alike:
// credentials, scopes, redaction of annotations, rate limits, the admin token, and a key
// revoked by a reload.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { Gateway } from '../../src/gateway.ts'
import { startTelemetry, type Telemetry } from '../../src/telemetry/index.ts'
import { configFrom, freePort } from '../helpers.ts'
import { bearer, guardedYaml, KEYS, UPSTREAM_DETAIL } from './fixture.ts'
import { METADATA_ERROR_REDACTED } from '../../src/security/redact.ts'
import '../starter/scripted.ts'

let app: FastifyInstance
let gateway: Gateway
let telemetry: Telemetry

beforeAll(async () => {
  process.env.SPECSERVE_ADMIN_TOKEN = 'admin-s3cret'
  const config = configFrom(guardedYaml({ down: await freePort() }))
  gateway = new Gateway(config)
  telemetry = startTelemetry(gateway, config.telemetry)
  app = buildServer(config, { gateway, telemetry })
  await gateway.load()
})
afterAll(async () => {
  delete process.env.SPECSERVE_ADMIN_TOKEN
  await app.close()
  await telemetry.shutdown()
  await gateway.close()
})

const body = { inputs: { x: [[0.5, 0.5]] } }
const v2Body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [0.5, 0.5] }] }
const native = (ensemble: string, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: body, headers })
const oip = (ensemble: string, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: `/v2/models/${ensemble}/infer`, payload: v2Body, headers })

describe('credentials', () => {
  it.each([
    ['native predict', () => native('e')],
    ['OIP infer', () => oip('e')],
    ['a read route', () => app.inject('/v1/ensembles')],
    ['OIP metadata', () => app.inject('/v2/models/e')],
    ['an unknown route', () => app.inject('/v1/nothing-here')],
  ])('%s without credentials: 401 UNAUTHENTICATED, with a Bearer challenge', async (_what, call) => {
    const res = await call()
    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate']).toBe('Bearer')
    expect(res.json()).toMatchObject({ code: 'UNAUTHENTICATED' })
  })

  it('answers in each API\'s error shape: native {code, message}, OIP {error, code}', async () => {
    expect((await native('e', bearer('nope'))).json()).toEqual({ code: 'UNAUTHENTICATED', message: 'unknown API key' })
    expect((await oip('e', bearer('nope'))).json()).toEqual({ code: 'UNAUTHENTICATED', error: 'unknown API key' })
    expect((await native('e', { authorization: `Basic ${KEYS.predictE}` })).json()).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringMatching(/unsupported authorization scheme/) })
  })

  it('leaves health open to anonymous callers (anonymous: [health]) and nothing else', async () => {
    for (const url of ['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready']) expect((await app.inject(url)).statusCode, url).toBe(200)
    expect((await app.inject('/metrics')).statusCode).toBe(401)
    expect((await app.inject('/v2')).statusCode).toBe(401)
  })
})

describe('scopes', () => {
  it('predict:e predicts on e over both APIs, and on nothing else', async () => {
    expect((await native('e', bearer(KEYS.predictE))).statusCode).toBe(200)
    expect((await oip('e', bearer(KEYS.predictE))).statusCode).toBe(200)
    for (const res of [await native('g', bearer(KEYS.predictE)), await oip('g', bearer(KEYS.predictE))]) {
      expect(res.statusCode).toBe(403)
      expect(res.json()).toMatchObject({ code: 'PERMISSION_DENIED' })
    }
    expect((await app.inject({ url: '/v1/ensembles', headers: bearer(KEYS.predictE) })).statusCode).toBe(403)
  })

  it('read lists and describes, but does not predict', async () => {
    for (const url of ['/v1/ensembles', '/v1/ensembles/e', '/v1/models/ok', '/v2/models/e', '/v2/models/e/ready', '/v2']) {
      expect((await app.inject({ url, headers: bearer(KEYS.reader) })).statusCode, url).toBe(200)
    }
    expect((await native('e', bearer(KEYS.reader))).json()).toEqual({ code: 'PERMISSION_DENIED', message: 'needs scope predict:e or predict:*' })
  })

  it('metrics (or read) opens /metrics', async () => {
    expect((await app.inject({ url: '/metrics', headers: bearer(KEYS.metrics) })).statusCode).toBe(200)
    expect((await app.inject({ url: '/metrics', headers: bearer(KEYS.reader) })).statusCode).toBe(200)
    expect((await app.inject({ url: '/metrics', headers: bearer(KEYS.predictE) })).statusCode).toBe(403)
  })

  it('an unknown route with valid credentials is a 404, not a 401', async () => {
    expect((await app.inject({ url: '/v1/nothing-here', headers: bearer(KEYS.reader) })).statusCode).toBe(404)
  })
})

describe('redaction', () => {
  it('without debug, annotations keep status and code but drop the message (native and OIP)', async () => {
    const res = await native('e', bearer(KEYS.predictE))
    expect(res.json().models[0]).toEqual({ name: 'broken', version: '1', status: 'error', latency_ms: expect.any(Number), used: false, error: { code: 'MODEL_FAILED' } })
    expect(res.body).not.toContain('10.0.0.7')
    const v2 = await oip('e', bearer(KEYS.predictE))
    expect(JSON.parse(v2.json().parameters.models)[0].error).toEqual({ code: 'MODEL_FAILED' })
    expect(v2.body).not.toContain('10.0.0.7')
  })

  it('a failed predict keeps its code and fixed message, without upstream details', async () => {
    const plain = await app.inject({ method: 'POST', url: '/v1/ensembles/f/predict', payload: body, headers: bearer(KEYS.limited) })
    expect(plain.statusCode).toBe(502)
    expect(plain.json()).toMatchObject({ code: 'ALL_MODELS_FAILED', message: 'every model of the ensemble failed', models: [{ status: 'error', error: { code: 'MODEL_FAILED' } }] })
    expect(plain.body).not.toContain('10.0.0.7')
  })

  it("a model's description says its upstream's metadata could not be read at load, and only to debug the upstream's error", async () => {
    const described = (key: string) => app.inject({ url: '/v1/models/down', headers: bearer(key) }).then((res) => res.json().metadata_error)
    expect(await described(KEYS.reader)).toBe(METADATA_ERROR_REDACTED)
    expect(await described(KEYS.debugger)).toMatch(/ECONNREFUSED 127\.0\.0\.1:\d+/)
  })

  it('with debug, annotations are whole', async () => {
    const res = await native('e', bearer(KEYS.debugger))
    expect(res.json().models[0].error).toEqual({ code: 'MODEL_FAILED', message: UPSTREAM_DETAIL })
  })
})

describe('rate limits', () => {
  it('refuses past the burst with 429 RATE_LIMITED and retry-after, for that key only', async () => {
    // rps 0.5, burst 2 (drawn once by the test above): three at once cannot all pass.
    const codes: number[] = []
    let refused
    for (let i = 0; i < 3; i++) {
      const res = await native('g', bearer(KEYS.limited))
      codes.push(res.statusCode)
      if (res.statusCode === 429) refused = res
    }
    expect(codes).toContain(429)
    expect(refused!.headers['retry-after']).toMatch(/^[1-2]$/)
    expect(refused!.json()).toMatchObject({ code: 'RATE_LIMITED', retry_after_s: Number(refused!.headers['retry-after']) })
    // Another key is not affected.
    expect((await native('g', bearer(KEYS.debugger))).statusCode).toBe(200)
  })
})

describe('admin', () => {
  it('SPECSERVE_ADMIN_TOKEN is a key with the admin scope and only that; other keys are refused', async () => {
    expect((await app.inject({ method: 'POST', url: '/admin/reload', headers: bearer(KEYS.debugger) })).statusCode).toBe(403)
    expect((await app.inject({ method: 'POST', url: '/admin/reload' })).statusCode).toBe(401)
    expect((await native('g', bearer('admin-s3cret'))).statusCode).toBe(403)
    // Let through to the reload itself: the test config's file does not exist.
    const res = await app.inject({ method: 'POST', url: '/admin/reload', headers: bearer('admin-s3cret') })
    expect(res.json()).toMatchObject({ code: 'CONFIG_INVALID', errors: [expect.stringMatching(/cannot read config/)] })
  })

  it('a reload that drops the auth section needs a restart, and never opens the gateway meanwhile', async () => {
    const open = guardedYaml().replace(/\nauth:[\s\S]*$/, '\n')
    const report = await gateway.reload(configFrom(open))
    expect(report.restartNeeded).toContain('auth')
    expect((await native('e')).statusCode).toBe(401)
    expect((await native('e', bearer(KEYS.debugger))).statusCode).toBe(200)
    await gateway.reload(configFrom(guardedYaml()))
  })

  it('a key removed by a reload is refused from the next request on', async () => {
    expect((await native('e', bearer(KEYS.predictE))).statusCode).toBe(200)
    await gateway.reload(configFrom(guardedYaml({ without: ['predictE'] })))
    expect((await native('e', bearer(KEYS.predictE))).json()).toEqual({ code: 'UNAUTHENTICATED', message: 'unknown API key' })
    expect((await native('e', bearer(KEYS.debugger))).statusCode).toBe(200)
  })
})

// specserve_auth_refusals_total as Prometheus scrapes it from /metrics: one guarded gateway
// served over REST and gRPC (unary and PredictStream), each kind of refusal made on each
// API, and the counts read back by code and API; on an open gateway, the refusals of the
// SPECSERVE_ADMIN_TOKEN check.
import * as grpc from '@grpc/grpc-js'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { GrpcStatus } from '../../src/errors.ts'
import { Gateway } from '../../src/gateway.ts'
import { startTelemetry, type Telemetry } from '../../src/telemetry/index.ts'
import { failure, startHarness, type Harness } from '../api/grpc/harness.ts'
import { configFrom } from '../helpers.ts'
import { parseExposition, promparse, sample } from '../telemetry/prometheus-text.ts'
import { bearer, guardedYaml, KEYS } from './fixture.ts'

const NAME = 'specserve_auth_refusals_total'
const CODES = ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'RATE_LIMITED'] as const
const APIS = ['rest', 'grpc'] as const

let h: Harness
let telemetry: Telemetry
let app: FastifyInstance

beforeAll(async () => {
  promparse()
  h = await startHarness(guardedYaml())
  telemetry = startTelemetry(h.gateway, h.gateway.config.telemetry)
  app = buildServer(h.gateway.config, { gateway: h.gateway, telemetry })
  await app.ready()
})
afterAll(async () => {
  await app.close()
  await telemetry.shutdown()
  await h.close()
})

/** The six counts, by `code/api`, scraped with the metrics key (which is never refused). */
async function refusals(server: FastifyInstance = app, headers: Record<string, string> = bearer(KEYS.metrics)): Promise<Record<string, number>> {
  const res = await server.inject({ url: '/metrics', headers })
  expect(res.statusCode).toBe(200)
  const families = parseExposition(res.body)
  expect(families.get(NAME)?.type).toBe('COUNTER')
  const counts: Record<string, number> = {}
  for (const code of CODES) for (const api of APIS) counts[`${code}/${api}`] = sample(families, NAME, { code, api }).value!
  return counts
}

const body = { inputs: { x: [[0.5, 0.5]] } }
const native = (ensemble: string, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: body, headers })
const x = { x: { fp32_data: [0.5, 0.5], shape: [1, 2] } }
const withAuth = (key?: string): grpc.Metadata => {
  const md = new grpc.Metadata()
  if (key !== undefined) md.set('authorization', bearer(key).authorization)
  return md
}
const predict = (ensemble: string, key?: string) =>
  new Promise((resolve, reject) => {
    h.gatewayClient.Predict!({ ensemble, inputs: x }, withAuth(key), {}, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)))
  })
/** Messages on one PredictStream; resolves with each reply's error code by id ('' when answered). */
function streamed(ensemble: string, key: string, ids: string[]): Promise<Record<string, string>> {
  const call = (h.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, { id: string; error?: { code: string } }>)(withAuth(key))
  const codes: Record<string, string> = {}
  call.on('data', (reply: { id: string; error?: { code: string } }) => (codes[reply.id] = reply.error?.code ?? ''))
  const done = new Promise<Record<string, string>>((resolve, reject) => {
    call.on('end', () => resolve(codes))
    call.on('error', reject)
  })
  for (const id of ids) call.write({ id, ensemble, inputs: x })
  call.end()
  return done
}

describe('specserve_auth_refusals_total', () => {
  it('is there for every code and API before anything is refused, at 0', async () => {
    expect(Object.values(await refusals())).toEqual([0, 0, 0, 0, 0, 0])
  })

  it('counts each refusal once, by code and by the API that refused it', async () => {
    // gRPC: one without credentials, one unknown key; one unary and one streamed message without the scope.
    expect((await failure(predict('e'))).code).toBe(GrpcStatus.UNAUTHENTICATED)
    expect((await failure(predict('e', 'no-such-key'))).code).toBe(GrpcStatus.UNAUTHENTICATED)
    expect((await failure(predict('g', KEYS.predictE))).code).toBe(GrpcStatus.PERMISSION_DENIED)
    expect(await streamed('g', KEYS.predictE, ['theirs'])).toEqual({ theirs: 'PERMISSION_DENIED' })
    expect(await streamed('e', KEYS.predictE, ['mine'])).toEqual({ mine: '' })
    // The limited key (burst 2, 0.5/s): opening the stream takes a token, its first message the
    // other, its second is refused; then the bucket is empty, so a stream cannot even open.
    expect(await streamed('g', KEYS.limited, ['first', 'second'])).toEqual({ first: '', second: 'RATE_LIMITED' })
    expect((await failure(streamed('g', KEYS.limited, ['third']))).code).toBe(GrpcStatus.RESOURCE_EXHAUSTED)

    // REST: two without credentials, one with an unknown key, one without the scope.
    expect((await native('e')).statusCode).toBe(401)
    expect((await app.inject({ url: '/v1/ensembles' })).statusCode).toBe(401)
    expect((await native('e', bearer('no-such-key'))).statusCode).toBe(401)
    expect((await native('g', bearer(KEYS.predictE))).statusCode).toBe(403)
    // The limited key's bucket is the one gRPC drained (0.5/s: at most one token back meanwhile).
    let restLimited = 0
    for (let i = 0; i < 3; i++) if ((await native('g', bearer(KEYS.limited))).statusCode === 429) restLimited++
    expect(restLimited).toBeGreaterThanOrEqual(2)
    // Let through: not counted.
    expect((await native('e', bearer(KEYS.predictE))).statusCode).toBe(200)

    expect(await refusals()).toEqual({
      'UNAUTHENTICATED/rest': 3,
      'UNAUTHENTICATED/grpc': 2,
      'PERMISSION_DENIED/rest': 1,
      'PERMISSION_DENIED/grpc': 2,
      'RATE_LIMITED/rest': restLimited,
      'RATE_LIMITED/grpc': 2,
    })
  })

  it('counts a scrape of /metrics that is itself refused', async () => {
    const before = await refusals()
    expect((await app.inject({ url: '/metrics', headers: bearer(KEYS.predictE) })).statusCode).toBe(403)
    expect(await refusals()).toEqual({ ...before, 'PERMISSION_DENIED/rest': before['PERMISSION_DENIED/rest']! + 1 })
  })
})

describe('specserve_auth_refusals_total on an open gateway', () => {
  it('counts the requests SPECSERVE_ADMIN_TOKEN refuses', async () => {
    process.env.SPECSERVE_ADMIN_TOKEN = 'admin-s3cret'
    const config = configFrom('models:\n  ok: { kind: scripted, label: 1 }\nensembles:\n  e: { strategy: deadline-fallback, models: [ok] }\nadmin: { reload_endpoint: true, watch_config: false }\n')
    const gateway = new Gateway(config)
    const openTelemetry = startTelemetry(gateway, config.telemetry)
    const open = buildServer(config, { gateway, telemetry: openTelemetry })
    try {
      await gateway.load()
      expect((await open.inject({ method: 'POST', url: '/admin/reload' })).statusCode).toBe(401)
      expect((await open.inject({ method: 'POST', url: '/admin/reload', headers: bearer('wrong') })).statusCode).toBe(401)
      expect((await open.inject({ method: 'POST', url: '/v1/ensembles/e/predict', payload: body })).statusCode).toBe(200)
      expect(await refusals(open, {})).toMatchObject({ 'UNAUTHENTICATED/rest': 2, 'UNAUTHENTICATED/grpc': 0, 'PERMISSION_DENIED/rest': 0 })
    } finally {
      delete process.env.SPECSERVE_ADMIN_TOKEN
      await open.close()
      await openTelemetry.shutdown()
      await gateway.close()
    }
  })
})

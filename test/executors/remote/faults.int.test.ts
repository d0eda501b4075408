// Every listed upstream fault, through the REST API of a real gateway: the answer arrives
// by the deadline (measured, with a tolerance for a busy 2-core box), the remote model's
// annotation says what happened, its circuit opens after repeated failures (then it is
// skipped at once), and the gateway keeps serving.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom, freePort, samples } from '../../helpers.ts'
import { WINE_IO as io, startFaultServer, startGrpcFaultServer, type Annotation, type FaultServer, type GrpcFaultServer } from './fault-server.ts'

const BUDGET = 150
/** Scheduling slack allowed past the deadline on a shared 2-core box. */
const TOLERANCE = 120
const row = samples('wine').rows[0]!

let http: FaultServer
let rpc: GrpcFaultServer
let app: FastifyInstance

interface Answer {
  statusCode: number
  elapsed: number
  body: { code?: string; decision?: { chosen: string | null }; models: Annotation[] }
}

async function predict(ensemble: string, budget = BUDGET): Promise<Answer> {
  const t0 = performance.now()
  const res = await app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { input: [row] }, budget_ms: budget } })
  return { statusCode: res.statusCode, elapsed: performance.now() - t0, body: res.json() }
}

// first_calls_ms: the budget, so a call to a model that never answered is judged at its deadline, as later ones.
const remote = (entry: string, url: string, model: string, extra = '', firstCallsMs = BUDGET): string =>
  `  ${entry}: { kind: oip, url: "${url}", model: ${model}, retries: 0, circuit_breaker: { failures: 3, reset_ms: 60000, first_calls_ms: ${firstCallsMs} }, ${io}${extra} }\n`
const ensemble = (name: string, models: string[], strategy = 'deadline-fallback'): string =>
  `  ${name}: { strategy: ${strategy}, models: [${models.join(', ')}], budget_ms: { default: ${BUDGET}, max: 2000 } }\n`

const FAULTS = [
  { fault: 'refuse', status: 'error', code: 'UPSTREAM_UNAVAILABLE' },
  { fault: 'hang', status: 'timeout', code: undefined },
  { fault: 'slow', status: 'timeout', code: undefined },
  { fault: 'error500', status: 'error', code: 'UPSTREAM_ERROR' },
  { fault: 'garbage', status: 'error', code: 'UPSTREAM_BAD_RESPONSE' },
  { fault: 'wrongshape', status: 'error', code: 'UPSTREAM_BAD_RESPONSE' },
  { fault: 'grpc-error', status: 'error', code: 'UPSTREAM_ERROR' },
] as const

beforeAll(async () => {
  http = await startFaultServer(BUDGET * 3)
  rpc = await startGrpcFaultServer()
  const refused = `http://127.0.0.1:${await freePort()}`
  let models = '  wine-logreg: { kind: onnx, path: ../models/wine_logreg.onnx }\n'
  let ensembles = ''
  for (const { fault } of FAULTS) {
    const url = fault === 'refuse' ? refused : fault === 'grpc-error' ? rpc.url : http.url
    models += remote(fault, url, fault === 'grpc-error' ? 'error' : fault)
    ensembles += ensemble(`with-${fault}`, [fault, 'wine-logreg'])
  }
  models += remote('solo-hang', http.url, 'hang') + remote('solo-500', http.url, 'error500') + remote('ok', http.url, 'ok')
  models += remote('cancel-hang', http.url, 'hang', '', 60_000) + remote('delayed', http.url, 'delayed') + remote('capped', http.url, 'hang', ', timeout_ms: 40')
  models += remote('hedged', http.url, 'flaky', ', hedge_after_ms: 30') + remote('grpc-ok', rpc.url, 'ok') + remote('grpc-hang', rpc.url, 'hang')
  ensembles += ensemble('solo-hang', ['solo-hang']) + ensemble('solo-500', ['solo-500']) + ensemble('with-ok', ['ok', 'wine-logreg'])
  ensembles += ensemble('cancel-hang', ['delayed', 'cancel-hang']) + ensemble('capped', ['capped', 'wine-logreg'])
  ensembles += ensemble('hedged', ['hedged']) + ensemble('grpc-ok', ['grpc-ok']) + ensemble('grpc-hang', ['grpc-hang'])
  app = buildServer(configFrom(`executors: { onnx_workers: 1 }\nmodels:\n${models}ensembles:\n${ensembles}`))
  await app.gateway.load()
})

afterAll(async () => {
  await app?.close()
  await http?.close()
  await rpc?.close()
})

describe('remote faults: answered by the deadline, annotated, circuit opens, gateway keeps serving', () => {
  for (const { fault, status, code } of FAULTS) {
    it(`upstream fault "${fault}": the fallback answers, the remote model is annotated ${status}${code ? ` ${code}` : ''}, then skipped`, async () => {
      for (let i = 0; i < 3; i++) {
        const res = await predict(`with-${fault}`)
        expect(res.statusCode).toBe(200)
        expect(res.elapsed).toBeLessThan(BUDGET + TOLERANCE)
        expect(res.body.decision?.chosen).toBe('wine-logreg')
        const a = res.body.models[0]!
        expect(a).toMatchObject({ name: fault, status, used: false })
        if (code) expect(a.error?.code).toBe(code)
      }
      // Three consecutive failures: the circuit is open and the model costs nothing.
      const res = await predict(`with-${fault}`)
      expect(res.statusCode).toBe(200)
      expect(res.body.models[0]).toMatchObject({ name: fault, status: 'skipped', error: { code: 'CIRCUIT_OPEN' } })
      expect(res.elapsed).toBeLessThan(BUDGET)
      // The model's description says so too.
      expect((await app.inject(`/v1/models/${fault}`)).json().health).toMatchObject({ circuit: 'open', next_probe_ms: expect.any(Number) })
    })
  }

  it('a hanging model alone: 504 DEADLINE_EXCEEDED at the deadline, annotated timeout', async () => {
    const res = await predict('solo-hang')
    expect(res.statusCode).toBe(504)
    expect(res.body.code).toBe('DEADLINE_EXCEEDED')
    expect(res.elapsed).toBeGreaterThanOrEqual(BUDGET - 5)
    expect(res.elapsed).toBeLessThan(BUDGET + TOLERANCE)
    expect(res.body.models[0]).toMatchObject({ name: 'solo-hang', status: 'timeout' })
  })

  it('a failing model alone: 502 ALL_MODELS_FAILED, with the upstream message in the annotation', async () => {
    const res = await predict('solo-500')
    expect(res.statusCode).toBe(502)
    expect(res.body.code).toBe('ALL_MODELS_FAILED')
    expect(res.body.models[0]!.error).toMatchObject({ code: 'UPSTREAM_ERROR' })
    expect(res.body.models[0]!.error!.message).toContain('division by zero')
  })

  it('a losing remote call is aborted when the collector decides: marked cancelled, never counted as a failure', async () => {
    // The first call to a model that never answered runs on to its fair chance (60 s here,
    // circuit_breaker.first_calls_ms), so that an upstream's latency is learnt whatever the budgets;
    // the run still stops waiting for it. The calls after it are cancelled.
    const first = await predict('cancel-hang')
    expect(first.body.models[1]).toMatchObject({ name: 'cancel-hang', status: 'cancelled' })
    for (let i = 0; i < 4; i++) {
      const aborted = http.nextAbort()
      const res = await predict('cancel-hang')
      expect(res.statusCode).toBe(200)
      expect(res.body.decision?.chosen).toBe('delayed')
      expect(res.body.models[1]).toMatchObject({ name: 'cancel-hang', status: 'cancelled' })
      await aborted // the upstream saw its request go away
    }
  })

  it('timeout_ms caps one model below the budget', async () => {
    const res = await predict('capped', 1000)
    expect(res.statusCode).toBe(200)
    expect(res.body.models[0]!.error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' })
    expect(res.body.models[0]!.error!.message).toContain('timeout_ms 40')
    expect(res.elapsed).toBeLessThan(40 + TOLERANCE)
  })

  it('a hedged second request answers when the first one hangs', async () => {
    const before = http.hits.get('flaky') ?? 0
    const res = await predict('hedged', 1000)
    expect(res.statusCode).toBe(200)
    expect(res.body.models[0]).toMatchObject({ name: 'hedged', status: 'ok', used: true })
    expect(res.elapsed).toBeLessThan(30 + TOLERANCE)
    expect((http.hits.get('flaky') ?? 0) - before).toBe(2)
  })

  it('gRPC: the remaining budget is the call deadline; a call still running at the deadline is cancelled', async () => {
    const ok = await predict('grpc-ok', 400)
    expect(ok.statusCode).toBe(200)
    const seen = rpc.deadlines.at(-1)!
    expect(seen).toBeGreaterThan(400 - TOLERANCE)
    expect(seen).toBeLessThanOrEqual(400)
    const cancelled = rpc.nextCancel()
    const hang = await predict('grpc-hang')
    expect(hang.statusCode).toBe(504)
    expect(hang.elapsed).toBeLessThan(BUDGET + TOLERANCE)
    await cancelled
  })

  it('keeps serving healthy ensembles after all of that', async () => {
    const res = await predict('with-ok')
    expect(res.statusCode).toBe(200)
    expect(res.body.decision?.chosen).toBe('ok')
    expect(res.body.models[0]).toMatchObject({ status: 'ok', used: true })
  })
})

// select: latency-aware with a real remote member: MLServer (mlserver-sklearn, Open Inference
// Protocol over REST, provisioned by scripts/peers/mlserver.sh) serving the wine random
// forest, reached through a loopback proxy that holds its inference answers back for a
// settable time, as a far or overloaded upstream would. Once the slow member's live p95 is
// known, it is skipped (WOULD_MISS_DEADLINE) and the embedded fallback answers at once
// instead of at the deadline; after 31 skips in a row it is started again, and answers.
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { configFrom, samples } from '../helpers.ts'
import { startMlserver, type Peer } from './peers.ts'

const wine = samples('wine')
/** Room for a first call to a Python server on a shared 2-core box; the slow upstream is far over it. */
const BUDGET_MS = 300

let mlserver: Peer
let proxy: Server
/** How long the proxy holds an inference answer back (ms). */
let delayMs = 0
let app: FastifyInstance

/** Forwards every request to MLServer; inference calls are answered `delayMs` late. */
function startProxy(target: string): Promise<string> {
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const forward = async (): Promise<void> => {
        const upstream = await request(`${target}${req.url}`, {
          method: req.method as 'GET' | 'POST',
          body: chunks.length ? Buffer.concat(chunks) : undefined,
          headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        })
        const body = Buffer.from(await upstream.body.arrayBuffer())
        if (!res.destroyed) res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/json') }).end(body)
      }
      const held = req.url?.endsWith('/infer') ? delayMs : 0
      const go = (): void => void forward().catch(() => res.destroy())
      if (held > 0) setTimeout(go, held)
      else go()
    })
  })
  proxy.listen(0, '127.0.0.1')
  return once(proxy, 'listening').then(() => `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`)
}

beforeAll(async () => {
  mlserver = await startMlserver({ name: 'wine', trained: 'wine_rf', features: 13, classes: 3 })
  const url = await startProxy(mlserver.restUrl)
  // MLServer's first inference is slow (its model and code paths warm up): not this test's subject.
  const warm = await fetch(`${mlserver.restUrl}/v2/models/wine/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 13], datatype: 'FP32', data: wine.rows[0] }] }),
  })
  if (!warm.ok) throw new Error(`MLServer warm-up: HTTP ${warm.status} ${await warm.text()}`)
  // The circuit breaker is set out of the way: this test is about selection by latency alone.
  const yaml = `
executors: { onnx_workers: 1 }
models:
  far-forest:
    kind: oip
    url: "${url}"
    model: wine
    retries: 0
    circuit_breaker: { failures: 1000 }
    outputs: [{ name: label, datatype: INT64, shape: [-1], upstream: predict }, { name: probabilities, datatype: FP32, shape: [-1, 3], upstream: predict_proba }]
  wine-logreg: { kind: onnx, path: ../models/wine_logreg.onnx }
ensembles:
  aware:
    strategy: deadline-fallback
    models: [far-forest, wine-logreg]
    select: latency-aware
    budget_ms: { default: ${BUDGET_MS}, max: 1000 }
`
  app = buildServer(configFrom(yaml))
  await app.gateway.load()
}, 1_800_000)

afterAll(async () => {
  await app?.close()
  proxy?.close()
  await mlserver?.stop()
})

interface Annotation {
  name: string
  status: string
  error?: { code: string; message: string }
}
interface Answer {
  outputs: { label: number[] }
  decision: { chosen: string; reason: string }
  models: Annotation[]
  elapsed_ms: number
}

async function predict(i: number): Promise<Answer> {
  const res = await app.inject({ method: 'POST', url: '/v1/ensembles/aware/predict', payload: { inputs: { input: [wine.rows[i % wine.rows.length]] } } })
  expect(res.statusCode).toBe(200)
  return res.json() as Answer
}

describe('select: latency-aware with a real remote member', () => {
  it('skips a remote member slower than the budget once its p95 is known, and starts it again after 31 skips', async () => {
    // Fast at first: the remote forest answers and is preferred.
    delayMs = 0
    const fast = await predict(0)
    expect(fast.decision).toMatchObject({ chosen: 'far-forest', reason: 'preferred-finished' })
    expect(fast.outputs.label).toEqual([wine.expected.wine_rf![0]])

    // Slow (1,000 ms behind a 300 ms budget): until its p95 is known (16 runs), it is started
    // and cut at the deadline; the embedded fallback answers then.
    delayMs = 1000
    for (let i = 1; i < 16; i++) {
      const slow = await predict(i)
      expect(slow.models[0]).toMatchObject({ name: 'far-forest', status: 'timeout' })
      expect(slow.decision).toMatchObject({ chosen: 'wine-logreg', reason: 'fallback-at-deadline' })
    }

    // Its p95 (runs cut at the deadline count as what they had taken) now fills the budget:
    // never started, the fallback decides without waiting for the deadline.
    for (let i = 16; i < 47; i++) {
      const skipped = await predict(i)
      expect(skipped.models[0]).toMatchObject({ name: 'far-forest', status: 'skipped', error: { code: 'WOULD_MISS_DEADLINE' } })
      expect(skipped.decision).toMatchObject({ chosen: 'wine-logreg', reason: 'fallback-after-error' })
      expect(skipped.elapsed_ms).toBeLessThan(BUDGET_MS)
    }
    const described = (await app.inject('/v1/models/far-forest')).json() as { stats: { skipped: number; timeouts: number } }
    expect(described.stats).toMatchObject({ skipped: 31, timeouts: 15 })

    // The upstream has recovered; the 32nd request after 31 skips in a row starts it again.
    delayMs = 0
    const retried = await predict(47)
    expect(retried.models[0]).toMatchObject({ name: 'far-forest', status: 'ok' })
    expect(retried.decision).toMatchObject({ chosen: 'far-forest', reason: 'preferred-finished' })
    expect(retried.outputs.label).toEqual([wine.expected.wine_rf![47 % wine.rows.length]])
  })
})

// Which version a remote model is reported as: the one YAML pins (and the gateway calls), else
// the upstream's own, as its metadata names it at load, in the predict annotations, in
// GET /v1/models, GET /v1/models/{name} and the ensemble's description alike.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { Gateway } from '../../../src/gateway.ts'
import { startTelemetry, type Telemetry } from '../../../src/telemetry/index.ts'
import type { PredictResult } from '../../../src/types.ts'
import { configFrom } from '../../helpers.ts'

const INPUTS = [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }]
const OUTPUTS = [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }]

/** A V2 REST upstream serving model `m` (versions 2 and 3; 3 by default) and `nameless` (no versions listed). */
async function startVersionedUpstream(): Promise<{ url: string; paths: string[]; close: () => Promise<void> }> {
  const paths: string[] = []
  const server: Server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString()))
    req.on('end', () => {
      paths.push(`${req.method} ${req.url}`)
      const url = req.url ?? ''
      const pinned = /\/versions\/(\w+)/.exec(url)?.[1]
      res.setHeader('content-type', 'application/json')
      if (req.method === 'GET') {
        const versions = url.startsWith('/v2/models/nameless') ? undefined : pinned ? [pinned] : ['2', '3']
        return res.end(JSON.stringify({ name: 'm', versions, platform: 'fake', inputs: INPUTS, outputs: OUTPUTS }))
      }
      const rows = (JSON.parse(body) as { inputs: { shape: number[] }[] }).inputs[0]!.shape[0]!
      const data = new Array(rows).fill([0.6, 0.3, 0.1]).flat()
      res.end(JSON.stringify({ model_name: 'm', model_version: pinned ?? '3', outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [rows, 3], data }] }))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    paths,
    close: async () => {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

let upstream: Awaited<ReturnType<typeof startVersionedUpstream>>
let app: FastifyInstance
let gateway: Gateway
let telemetry: Telemetry

beforeAll(async () => {
  upstream = await startVersionedUpstream()
  const yaml = [
    'models:',
    `  unpinned: { kind: oip, url: "${upstream.url}", model: m }`,
    `  pinned: { kind: oip, url: "${upstream.url}", model: m, version: 2 }`,
    `  nameless: { kind: oip, url: "${upstream.url}", model: nameless }`,
    'ensembles:',
    '  all: { strategy: best-quality, models: [unpinned, pinned, nameless], budget_ms: { default: 2000, max: 5000 } }',
    '  shadowed: { strategy: deadline-fallback, models: [pinned], shadow: { models: [unpinned], sample: 1 }, budget_ms: { default: 2000, max: 5000 } }',
  ].join('\n')
  const config = configFrom(yaml)
  gateway = new Gateway(config)
  telemetry = startTelemetry(gateway, config.telemetry)
  app = buildServer(config, { gateway, telemetry })
  await gateway.load()
})

afterAll(async () => {
  await app?.close()
  await gateway?.close()
  await telemetry?.shutdown()
  await upstream?.close()
})

const expected = { unpinned: '3', pinned: '2', nameless: '1' }

describe('the version of a remote model', () => {
  it('is annotated as the upstream version called: YAML\'s when pinned, else the one the upstream serves', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/ensembles/all/predict', payload: { inputs: { x: [[1, 2]] } } })
    expect(res.statusCode).toBe(200)
    const models = (res.json() as { models: { name: string; version: string; status: string }[] }).models
    expect(models.map((m) => [m.name, m.status, m.version])).toEqual([
      ['unpinned', 'ok', '3'],
      ['pinned', 'ok', '2'],
      ['nameless', 'ok', '1'],
    ])
    // The pinned model called version 2; the others the upstream's default.
    expect(upstream.paths).toContain('POST /v2/models/m/versions/2/infer')
    expect(upstream.paths).toContain('POST /v2/models/m/infer')
  })

  it('is the same in GET /v1/models, GET /v1/models/{name} and the ensemble\'s description', async () => {
    const list = (await app.inject({ method: 'GET', url: '/v1/models' })).json() as { models: { name: string; version: string }[] }
    expect(Object.fromEntries(list.models.map((m) => [m.name, m.version]))).toEqual(expected)
    for (const [name, version] of Object.entries(expected)) {
      expect((await app.inject({ method: 'GET', url: `/v1/models/${name}` })).json()).toMatchObject({ name, version })
    }
    const ensemble = (await app.inject({ method: 'GET', url: '/v1/ensembles/all' })).json() as { models: { name: string; version: string }[] }
    expect(Object.fromEntries(ensemble.models.map((m) => [m.name, m.version]))).toEqual(expected)
  })

  it('counts its calls as the model\'s own, not as a canary version\'s', async () => {
    const described = (await app.inject({ method: 'GET', url: '/v1/models/unpinned' })).json() as { stats: { count: number; ok: number } }
    expect(described.stats).toMatchObject({ count: 1, ok: 1 })
    expect(gateway.model('unpinned').stats.otherVersion).toBeUndefined()
  })

  it('is the version /metrics labels its calls with, as its annotations do', async () => {
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
    for (const [name, version] of Object.entries(expected)) {
      expect(metrics).toMatch(new RegExp(`specserve_model_calls_total\\{[^}]*model="${name}"[^}]*version="${version}"[^}]*status="ok"[^}]*\\} 1`))
    }
  })

  it('is the version a shadow\'s answer names in the serving record', async () => {
    const recorded = new Promise<PredictResult>((resolve) => {
      gateway.hooks.onResult = (result) => {
        if (result.ensemble === 'shadowed') resolve(result)
      }
    })
    expect((await app.inject({ method: 'POST', url: '/v1/ensembles/shadowed/predict', payload: { inputs: { x: [[1, 2]] } } })).statusCode).toBe(200)
    expect((await recorded).shadows).toEqual([expect.objectContaining({ name: 'unpinned', version: '3', status: 'ok' })])
  })
})

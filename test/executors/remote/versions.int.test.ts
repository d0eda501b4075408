// Which version a remote model is reported as: the one YAML pins (and the gateway calls), else
// the upstream's own, as its metadata names it at load, in the predict annotations, in
// GET /v1/models, GET /v1/models/{name} and the ensemble's description alike. Then, as the
// upstream moves on: each answer annotated with the version it names, the model shown as a
// newer one from its first answer on, not moved back by an older answer, one metrics series.
// (shown-version.test.ts has the rules over time.)
import { EventEmitter, once } from 'node:events'
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

interface Hold {
  readonly path: string
  readonly arrived: () => void
  release?: () => void
}

interface Upstream {
  url: string
  paths: string[]
  /** The default version it serves (its metadata's last, and what unpinned answers name): 3 at first. */
  serving: string
  /** Set: the next infer whose path has `path` in it is held until released, then answers with the version it came in under. */
  hold: Hold | null
  /** Emits `answered` (path, version) as each infer is answered. */
  readonly events: EventEmitter
  close: () => Promise<void>
}

/** A V2 REST upstream serving model `m` (versions 2 and `serving`, 3 at first) and `nameless` (no versions listed). */
async function startVersionedUpstream(): Promise<Upstream> {
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
        const versions = url.startsWith('/v2/models/nameless') ? undefined : pinned ? [pinned] : ['2', upstream.serving]
        return res.end(JSON.stringify({ name: 'm', versions, platform: 'fake', inputs: INPUTS, outputs: OUTPUTS }))
      }
      const rows = (JSON.parse(body) as { inputs: { shape: number[] }[] }).inputs[0]!.shape[0]!
      const data = new Array(rows).fill([0.6, 0.3, 0.1]).flat()
      // A model that lists no versions names none in its answers either.
      const version = url.startsWith('/v2/models/nameless') ? undefined : (pinned ?? upstream.serving)
      const answer = JSON.stringify({ model_name: 'm', model_version: version, outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [rows, 3], data }] })
      const reply = (): void => {
        res.end(answer)
        upstream.events.emit('answered', url, version)
      }
      const hold = upstream.hold
      if (!hold || !url.includes(hold.path)) return reply()
      upstream.hold = null
      hold.release = reply
      hold.arrived()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const upstream: Upstream = {
    url: `http://127.0.0.1:${port}`,
    paths,
    serving: '3',
    hold: null,
    events: new EventEmitter(),
    close: async () => {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
  return upstream
}

let upstream: Upstream
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
    '  alone: { strategy: deadline-fallback, models: [unpinned], budget_ms: { default: 2000, max: 5000 } }',
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

describe('a remote model without a pinned version, when its upstream moves to another default version', () => {
  const versionOf = async (name: string): Promise<string> => ((await app.inject({ method: 'GET', url: `/v1/models/${name}` })).json() as { version: string }).version
  const annotated = async (ensemble: string): Promise<Record<string, string>> => {
    const res = await app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { x: [[1, 2]] } } })
    expect(res.statusCode).toBe(200)
    return Object.fromEntries((res.json() as { models: { name: string; version: string }[] }).models.map((m) => [m.name, m.version]))
  }
  /** Holds the next infer on `path`: resolves once it is in, with the function that lets it answer. */
  const holdNext = async (path: string, send: () => void): Promise<() => void> => {
    let arrived!: () => void
    const held = new Promise<void>((resolve) => (arrived = resolve))
    const hold: Hold = { path, arrived }
    upstream.hold = hold
    send()
    await held
    return () => hold.release!()
  }
  const unpinnedAnswered = (): Promise<unknown> =>
    new Promise((resolve) => {
      const on = (url: string, version: string | undefined): void => {
        if (url !== '/v2/models/m/infer') return
        upstream.events.off('answered', on)
        resolve(version)
      }
      upstream.events.on('answered', on)
    })
  const unpinnedCalls = (metrics: string): string[] => metrics.split('\n').filter((l) => /^specserve_model_calls_total\{[^}]*model="unpinned"[^}]*status="ok"/.test(l))

  it('is shown as the newer version its answers name from the first such answer on, everywhere', async () => {
    upstream.serving = '4'
    expect(await versionOf('unpinned')).toBe('3') // nothing has answered yet
    expect(await annotated('all')).toEqual({ unpinned: '4', pinned: '2', nameless: '1' })
    expect(await versionOf('unpinned')).toBe('4')
    const ensemble = (await app.inject({ method: 'GET', url: '/v1/ensembles/all' })).json() as { models: { name: string; version: string }[] }
    expect(ensemble.models.find((m) => m.name === 'unpinned')?.version).toBe('4')
    expect((await app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/specserve_model_calls_total\{[^}]*model="unpinned"[^}]*version="4"[^}]*status="ok"[^}]*\} \d+/)
  })

  it('names that version in a shadow\'s answer too', async () => {
    upstream.serving = '5'
    const recorded = new Promise<PredictResult>((resolve) => {
      gateway.hooks.onResult = (result) => {
        if (result.ensemble === 'shadowed') resolve(result)
      }
    })
    expect((await app.inject({ method: 'POST', url: '/v1/ensembles/shadowed/predict', payload: { inputs: { x: [[1, 2]] } } })).statusCode).toBe(200)
    expect((await recorded).shadows).toEqual([expect.objectContaining({ name: 'unpinned', version: '5', status: 'ok' })])
    expect(await versionOf('unpinned')).toBe('5')
  })

  it('annotates an answer of the older version still in flight with that version, and does not move back to it', async () => {
    upstream.serving = '50'
    expect(await annotated('alone')).toEqual({ unpinned: '50' })
    let first!: Promise<Record<string, string>>
    const release = await holdNext('/v2/models/m/infer', () => {
      first = annotated('alone')
    })
    upstream.serving = '60'
    expect(await annotated('alone')).toEqual({ unpinned: '60' })
    release()
    expect(await first).toEqual({ unpinned: '50' })
    expect(await versionOf('unpinned')).toBe('60')
  })

  it('annotates each member with the version its own answer named, even when the model moved before the decision', async () => {
    upstream.serving = '70'
    expect(await annotated('alone')).toEqual({ unpinned: '70' })
    // best-quality waits for every member: the pinned one is held while the unpinned one answers with 70.
    const answered = unpinnedAnswered()
    let first!: Promise<Record<string, string>>
    const release = await holdNext('/versions/2/', () => {
      first = annotated('all')
    })
    expect(await answered).toBe('70')
    upstream.serving = '80'
    expect(await annotated('alone')).toEqual({ unpinned: '80' })
    release()
    expect(await first).toEqual({ unpinned: '70', pinned: '2', nameless: '1' })
  })

  it('does not move back on a rollback: the answers name the older version, the model stays shown as the newest, and its calls stay one series', async () => {
    upstream.serving = '90'
    expect(await annotated('alone')).toEqual({ unpinned: '90' })
    const before = unpinnedCalls((await app.inject({ method: 'GET', url: '/metrics' })).body)
    expect(before).toHaveLength(1)
    upstream.serving = '40'
    expect(await annotated('alone')).toEqual({ unpinned: '40' })
    expect(await annotated('alone')).toEqual({ unpinned: '40' })
    expect(await versionOf('unpinned')).toBe('90')
    const after = unpinnedCalls((await app.inject({ method: 'GET', url: '/metrics' })).body)
    expect(after).toHaveLength(1)
    expect(after[0]).toMatch(/version="90"/)
    const count = (line: string): number => Number(line.split(' ').pop())
    expect(count(after[0]!)).toBe(count(before[0]!) + 2)
  })
})

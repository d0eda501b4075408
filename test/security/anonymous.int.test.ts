// What `auth.anonymous` opens to requests without credentials, on a guarded gateway's REST
// listener: `read` opens listing and describing and, as for keys and tokens, `/metrics`;
// `metrics` opens `/metrics` only; predicts always need credentials.
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { configFrom } from '../helpers.ts'
import { serveLoaded, type ServedApp } from '../served-app.ts'
import { guardedYaml } from './fixture.ts'
import '../starter/scripted.ts'

let served: ServedApp
let app: FastifyInstance

async function start(anonymous: string): Promise<void> {
  served = await serveLoaded(configFrom(guardedYaml().replace('anonymous: [health]', `anonymous: ${anonymous}`)))
  app = served.app
}
afterEach(async () => served.close())

/** The status each anonymous request gets. */
async function statuses(): Promise<Record<string, number>> {
  const call = async (method: 'GET' | 'POST', url: string): Promise<number> => (await app.inject({ method, url, ...(method === 'POST' && { payload: { inputs: { x: [[0.5, 0.5]] } } }) })).statusCode
  return {
    metrics: await call('GET', '/metrics'),
    list: await call('GET', '/v1/ensembles'),
    health: await call('GET', '/healthz'),
    predict: await call('POST', '/v1/ensembles/g/predict'),
  }
}

describe('anonymous callers', () => {
  it('anonymous: [health, read] opens /metrics too, as read does for keys and tokens', async () => {
    await start('[health, read]')
    expect(await statuses()).toEqual({ metrics: 200, list: 200, health: 200, predict: 401 })
  })

  it('anonymous: [health, metrics] opens /metrics and not the read routes', async () => {
    await start('[health, metrics]')
    expect(await statuses()).toEqual({ metrics: 200, list: 401, health: 200, predict: 401 })
  })

  it('anonymous: [health] opens health only', async () => {
    await start('[health]')
    expect(await statuses()).toEqual({ metrics: 401, list: 401, health: 200, predict: 401 })
  })
})

// POST /admin/reload's credentials: with SPECSERVE_ADMIN_TOKEN set, a request without that
// bearer token is refused 401 UNAUTHENTICATED (the catalogue's one name for missing or
// wrong credentials), in constant time, before anything is read.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { configFrom } from '../helpers.ts'
import '../starter/scripted.ts'

let app: FastifyInstance
beforeAll(() => {
  process.env.SPECSERVE_ADMIN_TOKEN = 's3cret'
  app = buildServer(configFrom('admin: { reload_endpoint: true, watch_config: false }\nmodels:\n  a: { kind: scripted }\nensembles:\n  e: { strategy: deadline-fallback, models: [a] }\n'))
})
afterAll(async () => {
  delete process.env.SPECSERVE_ADMIN_TOKEN
  await app.close()
})

describe('POST /admin/reload credentials', () => {
  it.each([
    ['no Authorization header', {}],
    ['a wrong token', { authorization: 'Bearer s3cre7' }],
    ['another scheme', { authorization: 'Basic s3cret' }],
  ])('%s → 401 UNAUTHENTICATED', async (_what, headers) => {
    const res = await app.inject({ method: 'POST', url: '/admin/reload', headers })
    expect(res.statusCode).toBe(401)
    expect(res.json()).toEqual({ code: 'UNAUTHENTICATED', message: 'POST /admin/reload needs Authorization: Bearer <SPECSERVE_ADMIN_TOKEN>' })
  })

  it('lets the right token through to the reload itself (here: a config file that is not there)', async () => {
    const res = await app.inject({ method: 'POST', url: '/admin/reload', headers: { authorization: 'Bearer s3cret' } })
    expect(res.statusCode).toBe(422)
    expect(res.json()).toMatchObject({ code: 'CONFIG_INVALID', errors: [expect.stringMatching(/cannot read config/)] })
  })
})

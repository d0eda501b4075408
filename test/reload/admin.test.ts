// POST /admin/reload's credentials: with SPECSERVE_ADMIN_TOKEN set, a request without that
// bearer token is refused 401 UNAUTHENTICATED (the catalogue's one name for missing or
// wrong credentials) with `www-authenticate: Bearer`, in constant time, before its body is
// read; the header is read as the guard reads it (the scheme in any case, spaces around the token).
// What a reload it triggers logs carries the request's id.
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { configFrom } from '../helpers.ts'
import '../starter/scripted.ts'

let app: FastifyInstance
beforeAll(() => {
  process.env.SPECSERVE_ADMIN_TOKEN = 's3cret'
  app = buildServer(configFrom('server: { body_limit_bytes: 1024 }\nadmin: { reload_endpoint: true, watch_config: false }\nmodels:\n  a: { kind: scripted }\nensembles:\n  e: { strategy: deadline-fallback, models: [a] }\n'))
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
    expect(res.headers['www-authenticate']).toBe('Bearer')
    expect(res.json()).toEqual({ code: 'UNAUTHENTICATED', message: 'POST /admin/reload needs Authorization: Bearer <SPECSERVE_ADMIN_TOKEN>' })
  })

  it.each([
    ['a body that is not JSON', { 'content-type': 'application/json' }, 'nope'],
    ['a body over server.body_limit_bytes', { 'content-type': 'text/plain' }, 'x'.repeat(2048)],
  ])('refuses a request without the token before its body is read: %s is 401, not the parser\'s error', async (_what, headers, payload) => {
    const res = await app.inject({ method: 'POST', url: '/admin/reload', headers, payload })
    expect([res.statusCode, res.json().code]).toEqual([401, 'UNAUTHENTICATED'])
  })

  it.each(['bearer s3cret', 'BEARER s3cret', 'Bearer   s3cret  '])('takes the token as the guard reads the header: %j', async (authorization) => {
    const res = await app.inject({ method: 'POST', url: '/admin/reload', headers: { authorization } })
    expect(res.json()).toMatchObject({ code: 'CONFIG_INVALID' })
  })

  it('lets the right token through to the reload itself (here: a config file that is not there)', async () => {
    const res = await app.inject({ method: 'POST', url: '/admin/reload', headers: { authorization: 'Bearer s3cret' } })
    expect(res.statusCode).toBe(422)
    expect(res.json()).toMatchObject({ code: 'CONFIG_INVALID', errors: [expect.stringMatching(/cannot read config/)] })
  })

  it('takes SPECSERVE_ADMIN_TOKEN without the newline a value read from a file ends with', async () => {
    process.env.SPECSERVE_ADMIN_TOKEN = 'from-a-file\n'
    const fromFile = buildServer(configFrom('admin: { reload_endpoint: true, watch_config: false }\nmodels:\n  a: { kind: scripted }\nensembles:\n  e: { strategy: deadline-fallback, models: [a] }\n'))
    try {
      const res = await fromFile.inject({ method: 'POST', url: '/admin/reload', headers: { authorization: 'Bearer from-a-file' } })
      expect(res.json()).toMatchObject({ code: 'CONFIG_INVALID' })
    } finally {
      process.env.SPECSERVE_ADMIN_TOKEN = 's3cret'
      await fromFile.close()
    }
  })
})

describe('POST /admin/reload logging', () => {
  it.each([
    ['', undefined],
    [' (LOG_REQUESTS=1)', '1'],
  ])('logs what the reload it triggered says with the request\'s id%s', async (_what, logRequests) => {
    if (logRequests) process.env.LOG_REQUESTS = logRequests
    const lines: Record<string, unknown>[] = []
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) })
    const logged = buildServer(configFrom('admin: { reload_endpoint: true, watch_config: false }\nmodels:\n  a: { kind: scripted }\nensembles:\n  e: { strategy: deadline-fallback, models: [a] }\n'), { logger })
    try {
      const res = await logged.inject({ method: 'POST', url: '/admin/reload', headers: { authorization: 'Bearer s3cret', 'x-request-id': 'reload-7' } })
      expect(res.statusCode).toBe(422)
      expect(lines.find((l) => String(l.msg).startsWith('config reload rejected'))).toMatchObject({ level: 50, reqId: 'reload-7' })
    } finally {
      delete process.env.LOG_REQUESTS
      await logged.close()
    }
  })
})

// Mutual TLS as an identity (auth.client_certs): a verified client certificate whose subject
// is named in the config is that caller, with its scopes, on REST and gRPC alike; a
// certificate the CA did not sign, or one not named, is nobody; bearer credentials, when sent,
// name the caller instead; a reload that drops the entry refuses it from the next request.
import * as grpc from '@grpc/grpc-js'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GrpcStatus } from '../../src/errors.ts'
import { reflectedDefinition } from '../../src/proto/index.ts'
import { configFrom } from '../helpers.ts'
import { makePki, type Pair, type Pki } from './certs.ts'
import { bearer } from './fixture.ts'
import { serve, type Served } from './served.ts'

const READER_KEY = 'reader-key-cc01'
let pki: Pki
let served: Served
let yaml: (certs: string) => string
const pairs: Record<'checkout' | 'other' | 'stranger' | 'checkoutAcme' | 'commaInCn', Pair> = {} as never

beforeAll(async () => {
  pki = makePki()
  const server = pki.issue('cc-server')
  pairs.checkout = pki.issue('checkout', { client: true })
  pairs.other = pki.issue('other', { client: true })
  // Named in the config, but signed by a CA the gateway does not trust.
  pairs.stranger = pki.issue('stranger', { client: true, untrusted: true })
  pairs.checkoutAcme = pki.issue('checkout-acme', { client: true, subject: '/CN=checkout/O=Acme' })
  // Signed by the trusted CA, one attribute whose value mimics two: CN = "checkout,O=Acme".
  pairs.commaInCn = pki.issue('comma-in-cn', { client: true, subject: '/CN=checkout\\,O=Acme' })
  yaml = (certs) => `
server: { tls: { cert: "${server.cert}", key: "${server.key}", client_ca: "${pki.ca}" } }
models: { ok: { kind: scripted, label: 1 } }
ensembles:
  g: { strategy: deadline-fallback, models: [ok] }
  e: { strategy: deadline-fallback, models: [ok] }
auth:
  api_keys:
    - { id: reader, sha256: "${createHash('sha256').update(READER_KEY).digest('hex')}", scopes: [read] }
  client_certs:
${certs}
  anonymous: [health]
`
  served = await serve(yaml('    - { subject: "CN=checkout", scopes: ["predict:g"] }\n    - { subject: "CN=stranger", scopes: ["predict:*"] }\n    - { subject: "CN=checkout,O=Acme", scopes: ["predict:e"] }'))
})
afterAll(async () => served.close())

const tlsOf = (pair?: Pair) => ({ ca: readFileSync(pki.ca), ...(pair && { cert: readFileSync(pair.cert), key: readFileSync(pair.key) }) })

/** A REST predict over a fresh connection (or `agent`'s) with that client certificate (or none). */
function predict(ensemble: string, pair?: Pair, headers: Record<string, string> = {}, agent: Agent | false = false): Promise<{ status: number; code?: string; resumed?: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', servername: 'localhost', port: served.restPort, path: `/v1/ensembles/${ensemble}/predict`, method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers }, ...(agent ? {} : tlsOf(pair)) },
      (res) => {
        let body = ''
        const resumed = (res.socket as TLSSocket).isSessionReused()
        res.on('data', (chunk: Buffer) => (body += chunk.toString()))
        res.on('end', () => resolve({ status: res.statusCode!, code: (JSON.parse(body) as { code?: string }).code, ...(agent && { resumed }) }))
      },
    )
    req.on('error', reject)
    req.end(JSON.stringify({ inputs: { x: [[0.5, 0.5]] } }))
  })
}

type ClientCtor = new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => grpc.Client & Record<string, (...args: unknown[]) => unknown>
const pkg = grpc.loadPackageDefinition(reflectedDefinition()) as unknown as { specserve: { v1: { Gateway: ClientCtor } } }

/** A gRPC Predict with that client certificate (or none): the status code. */
async function grpcPredict(ensemble: string, pair?: Pair): Promise<number> {
  const creds = grpc.credentials.createSsl(readFileSync(pki.ca), pair ? readFileSync(pair.key) : null, pair ? readFileSync(pair.cert) : null)
  const client = new pkg.specserve.v1.Gateway(`127.0.0.1:${served.grpcPort}`, creds, { 'grpc.ssl_target_name_override': 'localhost' })
  try {
    return await new Promise<number>((resolve) => {
      client.Predict!({ ensemble, inputs: { x: { fp32_data: [0.5, 0.5], shape: [1, 2] } } }, (err: grpc.ServiceError | null) => resolve(err ? err.code : GrpcStatus.OK))
    })
  } finally {
    client.close()
  }
}

describe('auth.client_certs', () => {
  it('REST: a named, verified certificate is that caller with its scopes; unnamed, unverified or none is nobody', async () => {
    expect(await predict('g', pairs.checkout)).toEqual({ status: 200, code: undefined })
    expect(await predict('e', pairs.checkout)).toEqual({ status: 403, code: 'PERMISSION_DENIED' })
    expect(await predict('g', pairs.other)).toEqual({ status: 401, code: 'UNAUTHENTICATED' })
    expect(await predict('g', pairs.stranger)).toEqual({ status: 401, code: 'UNAUTHENTICATED' })
    expect(await predict('g')).toEqual({ status: 401, code: 'UNAUTHENTICATED' })
  })

  it('REST: a connection that resumes a TLS session is still its certificate\'s caller', async () => {
    const agent = new Agent({ keepAlive: false, maxCachedSessions: 4, ...tlsOf(pairs.checkout) })
    try {
      expect(await predict('g', undefined, {}, agent)).toEqual({ status: 200, code: undefined, resumed: false })
      expect(await predict('g', undefined, {}, agent)).toEqual({ status: 200, code: undefined, resumed: true })
      expect(await predict('e', undefined, {}, agent)).toMatchObject({ status: 403, resumed: true })
    } finally {
      agent.destroy()
    }
  })

  it('REST: bearer credentials, when sent, name the caller instead of the certificate', async () => {
    expect(await predict('g', pairs.checkout, bearer(READER_KEY))).toEqual({ status: 403, code: 'PERMISSION_DENIED' })
    expect(await predict('g', pairs.checkout, bearer('unknown-key'))).toEqual({ status: 401, code: 'UNAUTHENTICATED' })
  })

  it('gRPC: the same callers', async () => {
    expect(await grpcPredict('g', pairs.checkout)).toBe(GrpcStatus.OK)
    expect(await grpcPredict('e', pairs.checkout)).toBe(GrpcStatus.PERMISSION_DENIED)
    for (const pair of [pairs.other, pairs.stranger, undefined]) expect(await grpcPredict('g', pair)).toBe(GrpcStatus.UNAUTHENTICATED)
  })

  it('a certificate whose CN holds a comma does not pass for the subject its text spells (CN="checkout,O=Acme")', async () => {
    expect(await predict('e', pairs.checkoutAcme)).toEqual({ status: 200, code: undefined })
    expect(await grpcPredict('e', pairs.checkoutAcme)).toBe(GrpcStatus.OK)
    expect(await predict('e', pairs.commaInCn)).toEqual({ status: 401, code: 'UNAUTHENTICATED' })
    expect(await grpcPredict('e', pairs.commaInCn)).toBe(GrpcStatus.UNAUTHENTICATED)
  })

  it('a reload that drops the entry refuses the certificate from the next request on', async () => {
    await served.gateway.reload(configFrom(yaml('    - { subject: "CN=other", scopes: ["predict:g"] }')))
    expect((await predict('g', pairs.checkout)).status).toBe(401)
    expect(await grpcPredict('g', pairs.checkout)).toBe(GrpcStatus.UNAUTHENTICATED)
    expect((await predict('g', pairs.other)).status).toBe(200)
  })
})

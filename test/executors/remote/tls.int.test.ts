// TLS to remote models, against real servers that require a client certificate (mutual
// TLS): an HTTPS V2 endpoint and a gRPC server, with certificates made by openssl for the
// test (a CA, a server certificate for 127.0.0.1, a client certificate). A model with the
// CA and its client certificate is answered; without the client certificate, or without
// the CA, its call fails as UPSTREAM_UNAVAILABLE and says TLS; a server certificate the
// gateway does not trust is not retried. A rotated certificate file makes a reload create
// the model afresh.
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../../src/api/rest/server.ts'
import { configFrom, root, samples } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { WINE_IO as io, goodAnswer } from './fault-server.ts'

const row = samples('wine').rows[0]!

let dir: string
let https: Server
let rpc: grpc.Server
let app: FastifyInstance
let yaml: string
const hits = { rest: 0, grpc: 0 }
/** TCP connections the HTTPS server accepted (a retry would open another). */
let connections = 0

/** A CA, and a server (127.0.0.1) and a client certificate it signed, as PEM files in `dir`. */
function makeCertificates(): void {
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  }
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=specserve test CA', '-keyout', 'ca.key', '-out', 'ca.pem')
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`)
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`)
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`)
  }
}

const pem = (name: string): Buffer => readFileSync(join(dir, name))

beforeAll(async () => {
  dir = tempDir('specserve-tls-')
  makeCertificates()
  https = createServer({ key: pem('server.key'), cert: pem('server.pem'), ca: pem('ca.pem'), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    hits.rest++
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(goodAnswer(1))))
  })
  https.on('connection', () => connections++)
  https.listen(0, '127.0.0.1')
  await once(https, 'listening')
  const restPort = (https.address() as { port: number }).port

  const def = loadSync('inference/grpc_service.proto', { keepCase: true, longs: Number, defaults: true, includeDirs: [join(root, 'proto')] })
  rpc = new grpc.Server()
  rpc.addService(def['inference.GRPCInferenceService'] as grpc.ServiceDefinition, {
    ModelMetadata: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'declared in YAML' }),
    ModelInfer: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
      hits.grpc++
      cb(null, {
        outputs: [
          { name: 'label', datatype: 'INT64', shape: [1], contents: { int64_contents: [1] } },
          { name: 'probabilities', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [0.1, 0.8, 0.1] } },
        ],
      })
    },
  })
  const credentials = grpc.ServerCredentials.createSsl(pem('ca.pem'), [{ private_key: pem('server.key'), cert_chain: pem('server.pem') }], true)
  const grpcPort = await new Promise<number>((resolve, reject) => rpc.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))))

  const mutual = `tls: { ca: ${dir}/ca.pem, cert: ${dir}/client.pem, key: ${dir}/client.key }`
  const models: Record<string, string> = {
    'mtls-rest': `url: "https://127.0.0.1:${restPort}", ${mutual}`,
    'mtls-grpc': `url: "grpcs://127.0.0.1:${grpcPort}", ${mutual}`,
    'no-client-cert-rest': `url: "https://127.0.0.1:${restPort}", tls: { ca: ${dir}/ca.pem }`,
    'no-client-cert-grpc': `url: "grpcs://127.0.0.1:${grpcPort}", tls: { ca: ${dir}/ca.pem }`,
    'untrusted-rest': `url: "https://127.0.0.1:${restPort}"`,
    'untrusted-grpc': `url: "grpcs://127.0.0.1:${grpcPort}"`,
  }
  yaml = [
    'models:',
    ...Object.entries(models).map(([name, where]) => `  ${name}: { kind: oip, model: ok, retries: 2, ${where}, ${io} }`),
    'ensembles:',
    ...Object.keys(models).map((m) => `  ${m}: { strategy: deadline-fallback, models: [${m}], budget_ms: { default: 2000, max: 2000 } }`),
  ].join('\n')
  app = buildServer(configFrom(yaml))
  await app.gateway.load()
})

afterAll(async () => {
  await app?.close()
  https?.closeAllConnections()
  https?.close()
  rpc?.forceShutdown()
})

async function predict(ensemble: string): Promise<{ statusCode: number; body: { models: { status: string; error?: { code: string; message: string } }[] } }> {
  const res = await app.inject({ method: 'POST', url: `/v1/ensembles/${ensemble}/predict`, payload: { inputs: { input: [row] } } })
  return { statusCode: res.statusCode, body: res.json() }
}

describe('TLS to remote models (the servers require a client certificate)', () => {
  it('answers over mutual TLS, REST and gRPC', async () => {
    for (const ensemble of ['mtls-rest', 'mtls-grpc']) {
      const res = await predict(ensemble)
      expect(res.statusCode, JSON.stringify(res.body)).toBe(200)
      expect(res.body.models[0]).toMatchObject({ status: 'ok' })
    }
  })

  it('without the client certificate, or without the CA: UPSTREAM_UNAVAILABLE naming TLS, and the model is never reached', async () => {
    for (const [ensemble, kind] of [
      ['no-client-cert-rest', 'rest'],
      ['untrusted-rest', 'rest'],
      ['no-client-cert-grpc', 'grpc'],
      ['untrusted-grpc', 'grpc'],
    ] as const) {
      const before = hits[kind]
      const res = await predict(ensemble)
      expect(res.statusCode, ensemble).toBe(502)
      expect(res.body.models[0]!.error, ensemble).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' })
      expect(res.body.models[0]!.error!.message, ensemble).toMatch(/TLS|certificate|SSL/i)
      expect(hits[kind], `${ensemble} reached the model`).toBe(before)
    }
  })

  it('a server certificate the gateway does not trust is final: one connection, no retry (retries: 2)', async () => {
    const before = connections
    const res = await predict('untrusted-rest')
    expect(res.body.models[0]!.error!.message).toContain('TLS handshake failed: SELF_SIGNED_CERT_IN_CHAIN')
    expect(connections - before).toBe(1)
  })

  it('a rotated client certificate makes a reload create the model afresh', async () => {
    const unchanged = await app.gateway.reload(configFrom(yaml))
    expect(unchanged.models.kept).toContain('mtls-rest')
    // Same contents, new file: what a certificate rotation looks like to the gateway.
    writeFileSync(join(dir, 'client.pem'), `${readFileSync(join(dir, 'client.pem'), 'utf8')}\n`)
    const rotated = await app.gateway.reload(configFrom(yaml))
    expect(rotated.models.kept).not.toContain('mtls-rest')
    expect((await predict('mtls-rest')).statusCode).toBe(200)
  })
})

// TLS on both listeners with certificates made at test time: HTTPS and gRPC over TLS,
// a certificate replaced on disk while a connection is open (the open connection carries
// on with the old one, new connections get the new one), a bad replacement refused, a pair
// whose configured paths are symlinks into another directory renewed there, and mutual TLS
// (a client certificate from the right CA, none, or one from a stranger CA).
import * as grpc from '@grpc/grpc-js'
import { once } from 'node:events'
import { copyFileSync, mkdirSync, readFileSync, renameSync, symlinkSync } from 'node:fs'
import { Agent, request, type RequestOptions } from 'node:https'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { reflectedDefinition } from '../../src/proto/index.ts'
import { tempDir } from '../temp-dirs.ts'
import { makePki, type Pair, type Pki } from './certs.ts'
import { serve as serveYaml, type Served } from './served.ts'
import '../starter/scripted.ts'

const MODELS = 'models: { ok: { kind: scripted, label: 1 } }\nensembles: { g: { strategy: deadline-fallback, models: [ok] } }\n'

const serve = (tls: string): Promise<Served> => serveYaml(`server: { tls: ${tls} }\n${MODELS}`)

interface Answer {
  status: number
  serial: string
  reused: boolean
}

/** GET /healthz over HTTPS: the status, the serial of the certificate the server showed, whether the socket was reused. */
function get(port: number, options: RequestOptions): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // No agent unless given: a fresh connection, without a TLS session to resume (a resumed session shows the certificate it began with).
    const req = request({ host: '127.0.0.1', servername: 'localhost', port, path: '/healthz', agent: false, ...options }, (res) => {
      const socket = res.socket as TLSSocket
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode!, serial: socket.getPeerCertificate().serialNumber, reused: req.reusedSocket }))
    })
    req.on('error', reject)
    req.end()
  })
}

type ClientCtor = new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => grpc.Client & Record<string, (...args: unknown[]) => unknown>
const pkg = grpc.loadPackageDefinition(reflectedDefinition()) as unknown as { inference: { GRPCInferenceService: ClientCtor } }

/** A V2 gRPC client trusting `ca`, recording the serial of each server certificate it is shown. */
function grpcClient(port: number, ca: string, client?: Pair): { client: grpc.Client & Record<string, (...args: unknown[]) => unknown>; serials: string[] } {
  const serials: string[] = []
  const creds = grpc.credentials.createSsl(readFileSync(ca), client ? readFileSync(client.key) : null, client ? readFileSync(client.cert) : null, {
    checkServerIdentity: (_host, cert) => {
      serials.push(cert.serialNumber)
      return undefined
    },
  })
  return { client: new pkg.inference.GRPCInferenceService(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost' }), serials }
}

const live = (client: grpc.Client & Record<string, (...args: unknown[]) => unknown>): Promise<unknown> =>
  new Promise((resolve, reject) => client.ServerLive!({}, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))))

let pki: Pki
beforeAll(() => {
  pki = makePki()
})

describe('TLS on both listeners', () => {
  let served: Served
  let live1: Pair
  let first: string
  beforeAll(async () => {
    live1 = pki.issue('server')
    first = pki.serial(live1)
    served = await serve(`{ cert: "${live1.cert}", key: "${live1.key}" }`)
  })
  afterAll(async () => served.close())

  it('serves HTTPS with the configured certificate, and refuses a client that does not trust it', async () => {
    expect(await get(served.restPort, { ca: readFileSync(pki.ca) })).toMatchObject({ status: 200, serial: first })
    await expect(get(served.restPort, {})).rejects.toThrow(/self[- ]signed|unable to verify|unable to get local issuer/i)
  })

  it('serves gRPC over TLS with the same certificate', async () => {
    const { client, serials } = grpcClient(served.grpcPort, pki.ca)
    expect(await live(client)).toEqual({ live: true })
    expect(serials).toEqual([first])
    client.close()
  })

  it('a certificate replaced on disk is used for new connections; open ones carry on', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(pki.ca) })
    const { client: openGrpc, serials: openSerials } = grpcClient(served.grpcPort, pki.ca)
    expect(await get(served.restPort, { agent })).toMatchObject({ status: 200, serial: first, reused: false })
    await live(openGrpc)

    const renewed = pki.issue('server-renewed')
    const both = Promise.all([once(served.app.tls!, 'reloaded'), once(served.grpc.tls!, 'reloaded')])
    pki.install(renewed, live1)
    await both

    // The kept-alive HTTPS connection and the open gRPC channel were not dropped.
    expect(await get(served.restPort, { agent })).toMatchObject({ status: 200, serial: first, reused: true })
    expect(await live(openGrpc)).toEqual({ live: true })
    expect(openSerials).toEqual([first])
    // New connections get the renewed certificate.
    expect(await get(served.restPort, { ca: readFileSync(pki.ca) })).toMatchObject({ status: 200, serial: pki.serial(renewed) })
    const { client: fresh, serials } = grpcClient(served.grpcPort, pki.ca)
    await live(fresh)
    expect(serials).toEqual([pki.serial(renewed)])
    fresh.close()
    openGrpc.close()
    agent.destroy()
  })

  it('a replacement whose key does not match its certificate is refused; the previous pair keeps serving', async () => {
    const before = (await get(served.restPort, { ca: readFileSync(pki.ca) })).serial
    const other = pki.issue('mismatched')
    const rejected = once(served.app.tls!, 'rejected')
    const logged = vi.spyOn(served.app.log, 'error')
    try {
      pki.install({ cert: other.cert, key: pki.issue('unrelated').key }, live1)
      const [err] = await rejected
      expect(String(err)).toMatch(/key values mismatch|KEY_VALUES_MISMATCH/i)
      // One line with the reason, not a stack trace: an operator's mistake, not the gateway's.
      expect(logged.mock.calls).toEqual([[{ error: expect.stringMatching(/key values mismatch|KEY_VALUES_MISMATCH/i), cert: expect.any(String) }, 'TLS files changed but do not make a valid pair: the previous ones keep serving']])
    } finally {
      logged.mockRestore()
    }
    expect(await get(served.restPort, { ca: readFileSync(pki.ca) })).toMatchObject({ status: 200, serial: before })
  })
})

describe('a certificate and key that are symlinks into another directory', () => {
  let served: Served
  let target: Pair
  beforeAll(async () => {
    // The configured paths are links (tls.crt -> <elsewhere>/current.crt), as a certbot live/ directory or a shared mount has them.
    const elsewhere = tempDir('specserve-tls-target-')
    const linked = tempDir('specserve-tls-links-')
    const first = pki.issue('linked-server')
    target = { cert: join(elsewhere, 'current.crt'), key: join(elsewhere, 'current.key') }
    copyFileSync(first.cert, target.cert)
    copyFileSync(first.key, target.key)
    symlinkSync(target.cert, join(linked, 'tls.crt'))
    symlinkSync(target.key, join(linked, 'tls.key'))
    served = await serve(`{ cert: "${join(linked, 'tls.crt')}", key: "${join(linked, 'tls.key')}" }`)
  })
  afterAll(async () => served.close())

  it("a new pair written over the links' targets is served to new connections, on both listeners", async () => {
    const before = (await get(served.restPort, { ca: readFileSync(pki.ca) })).serial
    const renewed = pki.issue('linked-renewed')
    const both = Promise.all([once(served.app.tls!, 'reloaded'), once(served.grpc.tls!, 'reloaded')])
    pki.install(renewed, target)
    await both
    expect(before).not.toBe(pki.serial(renewed))
    expect(await get(served.restPort, { ca: readFileSync(pki.ca) })).toMatchObject({ status: 200, serial: pki.serial(renewed) })
    const { client, serials } = grpcClient(served.grpcPort, pki.ca)
    await live(client)
    expect(serials).toEqual([pki.serial(renewed)])
    client.close()
  }, 10_000)
})

describe('a Kubernetes Secret volume (tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/)', () => {
  let served: Served
  let volume: string
  /** Writes `pair` into a new timestamped directory and swaps ..data to it, as the kubelet updates a Secret volume. */
  const project = (pair: Pair, stamp: string): void => {
    mkdirSync(join(volume, stamp))
    copyFileSync(pair.cert, join(volume, stamp, 'tls.crt'))
    copyFileSync(pair.key, join(volume, stamp, 'tls.key'))
    symlinkSync(stamp, join(volume, '..data_tmp'))
    renameSync(join(volume, '..data_tmp'), join(volume, '..data'))
  }
  beforeAll(async () => {
    volume = tempDir('specserve-tls-secret-')
    project(pki.issue('secret-server'), '..2025_01_01_00_00_00.1')
    symlinkSync('..data/tls.crt', join(volume, 'tls.crt'))
    symlinkSync('..data/tls.key', join(volume, 'tls.key'))
    served = await serve(`{ cert: "${join(volume, 'tls.crt')}", key: "${join(volume, 'tls.key')}" }`)
  })
  afterAll(async () => served.close())

  it('an update of the Secret is served to new connections', async () => {
    const renewed = pki.issue('secret-renewed')
    const both = Promise.all([once(served.app.tls!, 'reloaded'), once(served.grpc.tls!, 'reloaded')])
    project(renewed, '..2025_01_02_00_00_00.2')
    await both
    expect(await get(served.restPort, { ca: readFileSync(pki.ca) })).toMatchObject({ status: 200, serial: pki.serial(renewed) })
  }, 10_000)
})

describe('mutual TLS', () => {
  let served: Served
  let client: Pair
  let stranger: Pair
  beforeAll(async () => {
    const server = pki.issue('mtls-server')
    client = pki.issue('client-a', { client: true })
    stranger = pki.issue('client-x', { client: true, untrusted: true })
    served = await serve(`{ cert: "${server.cert}", key: "${server.key}", client_ca: "${pki.ca}", require_client_cert: true }`)
  })
  afterAll(async () => served.close())

  it('REST: a client certificate from client_ca is let in; none, or one from another CA, is not', async () => {
    const ca = readFileSync(pki.ca)
    expect(await get(served.restPort, { ca, cert: readFileSync(client.cert), key: readFileSync(client.key) })).toMatchObject({ status: 200 })
    await expect(get(served.restPort, { ca })).rejects.toThrow()
    await expect(get(served.restPort, { ca, cert: readFileSync(stranger.cert), key: readFileSync(stranger.key) })).rejects.toThrow()
  })

  it('gRPC: the same', async () => {
    const ok = grpcClient(served.grpcPort, pki.ca, client).client
    expect(await live(ok)).toEqual({ live: true })
    for (const pair of [undefined, stranger]) {
      const refused = grpcClient(served.grpcPort, pki.ca, pair).client
      await expect(live(refused)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE })
      refused.close()
    }
    ok.close()
  })
})

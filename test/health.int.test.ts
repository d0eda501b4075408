// `specserve health`, the image's HEALTHCHECK: run as a process against a gateway served
// in-process from the same config file, over plain HTTP, over TLS, over mutual TLS, and with
// nothing listening. The probe asks the listener serve announced (SPECSERVE_LISTENER_FILE),
// else finds it from the config (and SPECSERVE_*), as serve does.
import { once } from 'node:events'
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net'
import { TLSSocket } from 'node:tls'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { buildServer } from '../src/api/rest/server.ts'
import { loadConfigFile } from '../src/config/load.ts'
import { Gateway } from '../src/gateway.ts'
import { probe, readTarget } from '../src/health.ts'
import { freePort, outputContains, root, startProcess } from './helpers.ts'
import { makePki } from './security/certs.ts'
import { tempDir } from './temp-dirs.ts'

const cli = join(root, 'src', 'cli.ts')
/** What the image's HEALTHCHECK runs: the same probe without the rest of the CLI. */
const imageProbe = join(root, 'src', 'health.ts')
/** No SPECSERVE_* from the environment the tests run in: only what a test gives. */
const CLEAN_ENV = { SPECSERVE_HOST: '', SPECSERVE_REST_PORT: '', SPECSERVE_GRPC_PORT: '' }

/** A config of one model, its server section given, written to a temporary directory. */
function configFile(server: string): string {
  const file = join(tempDir('specserve-health-'), 'specserve.yaml')
  writeFileSync(file, `server: ${server}\nmodels:\n  lr: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} }\nensembles:\n  e: { strategy: deadline-fallback, models: [lr] }\n`)
  return file
}

const running: { app: FastifyInstance; gateway: Gateway }[] = []
afterEach(async () => {
  for (const { app, gateway } of running.splice(0)) {
    await app.close()
    await gateway.close()
  }
})

/** The REST listener of a gateway served from `file`, where its config puts it (/healthz answers once it listens). */
async function serveFile(file: string): Promise<void> {
  const config = loadConfigFile(file)
  const gateway = new Gateway(config)
  const app = buildServer(config, { gateway })
  running.push({ app, gateway })
  await app.listen({ host: config.server.host, port: config.server.rest_port })
}

async function health(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string }> {
  const proc = startProcess(process.execPath, args, { env: { ...CLEAN_ENV, ...env } })
  const [code] = (await once(proc.child, 'exit')) as [number | null]
  return { code, output: proc.output() }
}

describe('specserve health', () => {
  it('exits 0 when the gateway answers /healthz over plain HTTP (the subcommand and the image entry alike)', async () => {
    const port = await freePort()
    const file = configFile(`{ host: 127.0.0.1, rest_port: ${port}, grpc_port: null }`)
    await serveFile(file)
    for (const args of [[cli, 'health', '-c', file], [imageProbe, file]]) {
      const { code, output } = await health(args)
      expect(output).toBe(`specserve health: ok: http://127.0.0.1:${port}/healthz answered 200\n`)
      expect(code).toBe(0)
    }
  })

  it('probes over HTTPS when the config has server.tls, asking loopback when the gateway listens on 0.0.0.0', async () => {
    const pki = makePki()
    const server = pki.issue('server')
    const port = await freePort()
    const file = configFile(`{ host: 0.0.0.0, rest_port: ${port}, grpc_port: null, tls: { cert: ${server.cert}, key: ${server.key} } }`)
    await serveFile(file)
    const { code, output } = await health([cli, 'health', '-c', file])
    // Listening on every interface: the probe asks loopback.
    expect(output).toBe(`specserve health: ok: https://127.0.0.1:${port}/healthz answered 200\n`)
    expect(code).toBe(0)
  })

  it('with mutual TLS required, the answered handshake is the check, and it says /healthz was not reached', async () => {
    const pki = makePki()
    const server = pki.issue('server')
    const port = await freePort()
    const file = configFile(`{ host: 127.0.0.1, rest_port: ${port}, grpc_port: null, tls: { cert: ${server.cert}, key: ${server.key}, client_ca: ${pki.ca}, require_client_cert: true } }`)
    await serveFile(file)
    const { code, output } = await health([cli, 'health', '-c', file])
    expect(output).toBe(
      `specserve health: ok: https://127.0.0.1:${port}/healthz: the TLS handshake was answered; server.tls.require_client_cert refuses the probe (it has no client certificate: SPECSERVE_HEALTH_CERT and SPECSERVE_HEALTH_KEY give it one), so /healthz itself was not asked\n`,
    )
    expect(code).toBe(0)
  })

  it('with mutual TLS required and a client certificate in SPECSERVE_HEALTH_CERT/KEY, asks /healthz itself; one the listener refuses fails it', async () => {
    const pki = makePki()
    const server = pki.issue('server')
    const port = await freePort()
    const file = configFile(`{ host: 127.0.0.1, rest_port: ${port}, grpc_port: null, tls: { cert: ${server.cert}, key: ${server.key}, client_ca: ${pki.ca}, require_client_cert: true } }`)
    await serveFile(file)
    const probe = pki.issue('probe', { client: true })
    const asked = await health([imageProbe, file], { SPECSERVE_HEALTH_CERT: probe.cert, SPECSERVE_HEALTH_KEY: probe.key })
    expect(asked).toEqual({ code: 0, output: `specserve health: ok: https://127.0.0.1:${port}/healthz answered 200\n` })
    const stranger = pki.issue('stranger', { client: true, untrusted: true })
    const refused = await health([imageProbe, file], { SPECSERVE_HEALTH_CERT: stranger.cert, SPECSERVE_HEALTH_KEY: stranger.key })
    // TLS 1.3 sends the refusal after the client's side of the handshake: as an alert, or as the
    // connection reset under the request (the probe then asks again without the certificate).
    const why = /the listener refused the probe's client certificate \(SPECSERVE_HEALTH_CERT; is it issued by server\.tls\.client_ca\?\): .+/
    expect(refused.output).toMatch(new RegExp(`^specserve health: https://127\\.0\\.0\\.1:${port}/healthz: ${why.source}\n$`))
    expect(refused.code).toBe(1)
    const half = await health([imageProbe, file], { SPECSERVE_HEALTH_CERT: probe.cert })
    expect(half).toEqual({ code: 1, output: 'specserve health: SPECSERVE_HEALTH_CERT is set without SPECSERVE_HEALTH_KEY: a client certificate needs both\n' })
    // The key of another certificate: TLS refuses the pair before connecting, and the check says so in one line.
    const mismatched = await health([imageProbe, file], { SPECSERVE_HEALTH_CERT: probe.cert, SPECSERVE_HEALTH_KEY: stranger.key })
    expect(mismatched.output).toMatch(/^specserve health: cannot use SPECSERVE_HEALTH_CERT and SPECSERVE_HEALTH_KEY: .+\n$/)
    expect(mismatched.code).toBe(1)
  })

  describe('with a client certificate, a connection reset after the handshake', () => {
    const pki = makePki()
    const issued = pki.issue('probe', { client: true })
    const certificate = { cert: readFileSync(issued.cert), key: readFileSync(issued.key) }
    /** Probes a listener on loopback that `accept`s each connection (a TCP or TLS server). */
    async function probeOf(server: NetServer, timeoutMs = 5000) {
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      try {
        const target = { host: '127.0.0.1', port: (server.address() as AddressInfo).port, tls: true, mutualTls: true }
        return { url: `https://127.0.0.1:${target.port}/healthz`, port: target.port, result: await probe(target, timeoutMs, certificate) }
      } finally {
        server.close()
      }
    }

    it('from a listener resetting every connection is a reset, not a refused certificate', async () => {
      const { url, port, result } = await probeOf(createServer((socket) => socket.resetAndDestroy()))
      expect(result).toEqual({ ok: false, reason: `${url}: connection reset, with the client certificate and without (connect ECONNRESET 127.0.0.1:${port})` })
    })

    it('from a listener that answers /healthz without a certificate is healthy, and says so', async () => {
      const pair = pki.issue('server')
      const options = { isServer: true, cert: readFileSync(pair.cert), key: readFileSync(pair.key), requestCert: true, rejectUnauthorized: false }
      // TLS over a TCP socket of its own: the reset goes out on the TCP connection.
      const server = createServer((raw) => {
        const socket = new TLSSocket(raw, options)
        socket.on('secure', () => {
          if (Object.keys(socket.getPeerCertificate()).length > 0) raw.resetAndDestroy()
          else socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
        })
        socket.on('error', () => raw.destroy())
      })
      const { url, result } = await probeOf(server)
      expect(result).toEqual({ ok: true, asked: true, note: `${url} answered 200 without the client certificate; it reset the connection that presented SPECSERVE_HEALTH_CERT` })
    })

    it('with too little time left is not asked again', async () => {
      const { url, result } = await probeOf(createServer((socket) => socket.resetAndDestroy()), 499)
      expect(result).toEqual({ ok: false, reason: `${url}: connection reset with the client certificate (SPECSERVE_HEALTH_CERT), too late to ask again without it` })
    })
  })

  it('asks the listener serve announced (SPECSERVE_LISTENER_FILE), whatever the watched config says since', async () => {
    // Port 0: only the running gateway knows its port.
    const file = configFile('{ host: 127.0.0.1, rest_port: 0, grpc_port: null }')
    const announced = join(dirname(file), 'listener.json')
    const env = { ...CLEAN_ENV, SPECSERVE_LISTENER_FILE: announced }
    const proc = startProcess(process.execPath, [cli, 'serve', '-c', file], { env })
    try {
      await outputContains(proc, '"msg":"ready"')
      const { port } = JSON.parse(readFileSync(announced, 'utf8')) as { port: number }
      // A typo saved since: the reload is refused and the gateway serves on; it is healthy.
      writeFileSync(file, 'server: { rest_port: [\n')
      const { code, output } = await health([imageProbe, file], env)
      expect(output).toBe(`specserve health: ok: http://127.0.0.1:${port}/healthz answered 200\n`)
      expect(code).toBe(0)
      // A second serve that cannot bind (on the running gateway's port) leaves that gateway's file (it removed it before it bound).
      const second = await health([cli, 'serve', '-c', configFile(`{ host: 127.0.0.1, rest_port: ${port}, grpc_port: null }`)], env)
      expect(second.output).toContain(`specserve: cannot listen for REST on 127.0.0.1:${port}: the port is already in use`)
      expect(second.code).toBe(1)
      expect(JSON.parse(readFileSync(announced, 'utf8'))).toMatchObject({ port, pid: proc.child.pid })
      // The file speaks for that gateway and that config only: asked about another config, or
      // once the gateway is gone, the probe reads the config (and finds the typo).
      const other = configFile(`{ host: 127.0.0.1, rest_port: ${await freePort()}, grpc_port: null }`)
      expect((await health([imageProbe, other], env)).output).toMatch(/connection refused/)
      expect((await health([cli, 'health', '-c', other], env)).output).toMatch(/connection refused/)
      // With --announced, the image entry and the subcommand alike ask the gateway serve announced, whatever config they are given.
      for (const args of [[imageProbe, '--announced', other], [cli, 'health', '--announced', '-c', other], [cli, 'health', other, '--announced']]) {
        const anyConfig = await health(args, env)
        expect(anyConfig.output, args.join(' ')).toBe(`specserve health: ok: http://127.0.0.1:${port}/healthz answered 200\n`)
        expect(anyConfig.code).toBe(0)
      }
      await proc.stop()
      const gone = await health([imageProbe, file], env)
      expect(gone.output).toMatch(/^specserve health: cannot tell where the gateway listens: /)
      expect(gone.code).toBe(1)
      // Nothing announced any more: --announced reads the config it is given.
      const unannounced = await health([cli, 'health', '--announced', '-c', other], env)
      expect(unannounced.output).toMatch(/connection refused/)
      expect(unannounced.code).toBe(1)
    } finally {
      await proc.stop()
    }
  })

  it("the image's HEALTHCHECK, as deploy/Dockerfile runs it, asks the gateway the container serves whatever its -c (docker run IMAGE serve -c /conf/x.yaml)", async () => {
    const dockerfile = readFileSync(join(root, 'deploy', 'Dockerfile'), 'utf8')
    const [node, ...args] = JSON.parse(/^HEALTHCHECK [^\n]*\\\n\s+CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[]
    expect(node).toBe('node')
    const file = configFile('{ host: 127.0.0.1, rest_port: 0, grpc_port: null }') // not the image's default config
    const env = { ...CLEAN_ENV, SPECSERVE_LISTENER_FILE: join(dirname(file), 'listener.json') }
    const proc = startProcess(process.execPath, [cli, 'serve', '-c', file], { env })
    try {
      await outputContains(proc, '"msg":"ready"')
      const { port } = JSON.parse(readFileSync(env.SPECSERVE_LISTENER_FILE, 'utf8')) as { port: number }
      const { code, output } = await health(args, env)
      expect(output).toBe(`specserve health: ok: http://127.0.0.1:${port}/healthz answered 200\n`)
      expect(code).toBe(0)
      // Once that gateway is gone its announcement says nothing: the image's default config is read.
      await proc.stop()
      const gone = await health(args, env)
      expect(gone.output).toMatch(/^specserve health: cannot tell where the gateway listens: cannot read config: .*\/etc\/specserve\/specserve\.yaml/)
      expect(gone.code).toBe(1)
    } finally {
      await proc.stop()
    }
  })

  it('reads a config that shares one anchor more than 100 times, as serve does (its limit, not the YAML library\'s default)', () => {
    const file = join(tempDir('specserve-health-'), 'specserve.yaml')
    const models = Array.from({ length: 150 }, (_, i) => `  m${i}: { <<: *model }`).join('\n')
    writeFileSync(file, `server: { host: 127.0.0.1, rest_port: 18080 }\nshared: &model { kind: onnx, path: x.onnx }\nmodels:\n${models.replaceAll('{ <<: *model }', '*model')}\n`)
    expect(readTarget(file)).toMatchObject({ host: '127.0.0.1', port: 18080 })
  })

  it('reads past a fault outside server (a merge key the loader refuses, say): a refused reload must not fail the probe; one in server does', () => {
    const dir = tempDir('specserve-health-')
    const file = join(dir, 'specserve.yaml')
    writeFileSync(file, `server: { host: 127.0.0.1, rest_port: 18080 }\nshared: &model { kind: onnx, path: x.onnx }\nmodels:\n  m: { <<: *model }\n`)
    expect(readTarget(file)).toMatchObject({ host: '127.0.0.1', port: 18080 })
    writeFileSync(file, `server: { host: !!js/function 127.0.0.1, rest_port: 18080 }\n`)
    expect(() => readTarget(file)).toThrow(/server\.host: unknown tag !!js\/function/)
  })

  it('follows SPECSERVE_REST_PORT as serve does', async () => {
    const [filePort, envPort] = [await freePort(), await freePort()]
    const file = configFile(`{ host: 127.0.0.1, rest_port: ${filePort}, grpc_port: null }`)
    const gateway = configFile(`{ host: 127.0.0.1, rest_port: ${envPort}, grpc_port: null }`)
    await serveFile(gateway)
    const { code, output } = await health([cli, 'health', '-c', file], { SPECSERVE_REST_PORT: String(envPort) })
    expect(output).toBe(`specserve health: ok: http://127.0.0.1:${envPort}/healthz answered 200\n`)
    expect(code).toBe(0)
  })

  it('exits 1 with one line saying why: nothing listens, the listener speaks TLS the config does not have, the config is unreadable', async () => {
    const port = await freePort()
    const refused = await health([cli, 'health', '-c', configFile(`{ host: 127.0.0.1, rest_port: ${port} }`)])
    expect(refused.output).toBe(`specserve health: http://127.0.0.1:${port}/healthz: connection refused (nothing listens there)\n`)
    expect(refused.code).toBe(1)

    const pki = makePki()
    const server = pki.issue('server')
    const tlsPort = await freePort()
    await serveFile(configFile(`{ host: 127.0.0.1, rest_port: ${tlsPort}, grpc_port: null, tls: { cert: ${server.cert}, key: ${server.key} } }`))
    const plain = await health([cli, 'health', '-c', configFile(`{ host: 127.0.0.1, rest_port: ${tlsPort} }`)])
    expect(plain.output).toBe(`specserve health: http://127.0.0.1:${tlsPort}/healthz: connection reset (a listener with TLS? server.tls is not set in this config)\n`)
    expect(plain.code).toBe(1)

    const bad = configFile('{ host: 127.0.0.1, rest_port: eighty }')
    const unreadable = await health([imageProbe, bad])
    expect(unreadable.output).toMatch(/^specserve health: cannot tell where the gateway listens: .*specserve\.yaml: server\.rest_port: "eighty" is not a port .+\n$/)
    expect(unreadable.code).toBe(1)
  })
})

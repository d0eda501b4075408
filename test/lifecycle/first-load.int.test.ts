// The first load of a real `specserve serve` process, as an orchestrator sees it: a SIGTERM
// while the models load is a stop (exit 0, the load's error still in the log), not a failed
// start (exit 1); and the gRPC health service says SERVING as soon as /readyz says ready, not
// only once the registry has started (a model stream whose broker never answers holds that).
// Readiness waits for the model stream to catch up, but a broker down holds it only for the
// catch-up grace (catch_up_timeout_ms, at most 15 s), naming the brokers' error (/readyz,
// /v2/health/ready and gRPC health alike).
// A signal before serve has installed its own handlers (its modules loading, its config being
// read) is held, not Node's default (the process ended: exit 129 at SIGHUP, 143 at SIGTERM).
// Each step waits for an event: the upstream's request, a log line, the broker's connection,
// the process opening its config file (a FIFO the test answers).
import * as grpc from '@grpc/grpc-js'
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, constants, openSync, renameSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { createServer as createHttpServer, type ServerResponse } from 'node:http'
import { createServer as createTcpServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, outputContains, root, samples, startProcess, type Proc } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const raw = (b: Buffer): Buffer => b
/** grpc.health.v1.HealthCheckResponse's one field (1, an enum) as its name; proto3 leaves UNKNOWN (0) out. */
const HEALTH = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN']
const healthOf = (message: Buffer): string => HEALTH[message[1] ?? 0]!

/** Everything a test opened, closed after it whatever happened. */
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** `specserve serve` on `yaml`, written to a temporary directory, on free REST and gRPC ports. */
async function serve(yaml: string): Promise<{ proc: Proc; restPort: number; grpcPort: number; dir: string }> {
  const dir = tempDir('specserve-first-load-')
  writeFileSync(join(dir, 'gateway.yaml'), yaml)
  const [restPort, grpcPort] = [await freePort(), await freePort()]
  const proc = startProcess(process.execPath, [join(root, 'src', 'cli.ts'), 'serve', '-c', join(dir, 'gateway.yaml')], {
    env: { SPECSERVE_REST_PORT: String(restPort), SPECSERVE_GRPC_PORT: String(grpcPort), LOG_LEVEL: 'info' },
  })
  cleanups.push(() => proc.stop('SIGKILL'))
  return { proc, restPort, grpcPort, dir }
}

/** A gRPC client of the process's health service, closed after the test. */
function healthClient(grpcPort: number): grpc.Client {
  const client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure())
  cleanups.push(() => client.close())
  return client
}

describe('a signal during the first load', () => {
  it('is a stop: shutdown carries on and exits 0, and the load\'s error is logged, not reported as a failed start (exit 1)', async () => {
    // The model's upstream: its metadata (read at load) is held until the test answers it.
    let metadata!: (res: ServerResponse) => void
    const asked = new Promise<ServerResponse>((resolve) => (metadata = resolve))
    const upstream = createHttpServer((req, res) => (req.method === 'GET' ? metadata(res) : res.writeHead(404).end()))
    upstream.listen(0, '127.0.0.1')
    await once(upstream, 'listening')
    cleanups.push(() => (upstream.closeAllConnections(), upstream.close()))
    const url = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`
    const { proc, grpcPort } = await serve(`
server: { host: 127.0.0.1, shutdown_grace_ms: 20000 }
models: { m: { kind: oip, url: "${url}", model: m } }
ensembles: { e: { strategy: deadline-fallback, models: [m] } }
`)
    const held = await asked // the gateway is loading: gRPC listens already, /readyz says 503

    // A load balancer watching health: shutdown waits for its Watch (up to the grace) before it
    // closes the models, so the load ends by the upstream's answer below, not by the close.
    const watch = healthClient(grpcPort).makeServerStreamRequest('/grpc.health.v1.Health/Watch', raw, raw, Buffer.alloc(0))
    watch.on('error', () => undefined) // cut at shutdown
    const [first] = (await once(watch, 'data')) as [Buffer]
    expect(healthOf(first)).toBe('NOT_SERVING')

    const exited = once(proc.child, 'exit') as Promise<[number | null]>
    process.kill(proc.child.pid!, 'SIGTERM')
    await outputContains(proc, '"msg":"draining"')
    held.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"model store unreachable"}')
    // Logged while the drain goes on, or (a failed start) reported as the process exits.
    const logged = outputContains(proc, 'the load ended in an error during shutdown').then(() => 'logged')
    expect(await Promise.race([logged, exited.then(([code]) => `exited ${code} first`)])).toBe('logged')
    watch.cancel() // the drain's last open call: shutdown goes on

    const [code] = await exited
    expect(code).toBe(0)
    expect(proc.output()).toMatch(/"level":40,.*model store unreachable.*"msg":"the load ended in an error during shutdown"/)
  })
})

/**
 * `specserve serve` whose config file is a FIFO. `reading` resolves when the process opens it,
 * midway through its start, before serve has its own signal handlers; its read then waits
 * until `answer()` writes `yaml` to it. The path is a regular file with `yaml` by then (renamed
 * over the FIFO the process holds open): what it reads later (the reload watch) is that.
 */
function serveFromFifo(yaml: string): { proc: Proc; reading: Promise<void>; answer: () => void } {
  const dir = tempDir('specserve-first-signal-')
  const file = join(dir, 'gateway.yaml')
  execFileSync('mkfifo', [file])
  let answer!: () => void
  const answered = new Promise<void>((resolve) => (answer = resolve))
  let opened = false
  const reading = (async () => {
    const writer = await open(file, 'w') // resolves once a reader has opened the FIFO
    opened = true
    writeFileSync(join(dir, 'next.yaml'), yaml)
    renameSync(join(dir, 'next.yaml'), file)
    void answered.then(async () => {
      await writer.writeFile(yaml).catch(() => undefined) // the reader gone (killed): EPIPE
      await writer.close()
    })
  })()
  // A process that never opened it: the test's open() waits for a reader; be one (without blocking) so that it ends.
  cleanups.push(() => opened || closeSync(openSync(file, constants.O_RDONLY | constants.O_NONBLOCK)))
  const proc = startProcess(process.execPath, [join(root, 'src', 'cli.ts'), 'serve', '-c', file], { env: { SPECSERVE_REST_PORT: '0', SPECSERVE_GRPC_PORT: 'off', LOG_LEVEL: 'info' } })
  cleanups.push(() => proc.stop('SIGKILL'))
  return { proc, reading, answer }
}

const ONE_MODEL = `server: { host: 127.0.0.1 }
admin: { watch_config: false }
models: { lr: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} } }
ensembles: { e: { strategy: deadline-fallback, models: [lr] } }
`

describe('a signal as the process starts, before serve has its own handlers', () => {
  it('SIGTERM is a stop: exit 0, and nothing is bound', async () => {
    const { proc, reading, answer } = serveFromFifo(ONE_MODEL)
    const exited = once(proc.child, 'exit') as Promise<[number | null, string | null]>
    await reading
    process.kill(proc.child.pid!, 'SIGTERM')
    answer()
    expect(await exited).toEqual([0, null])
    expect(proc.output()).toContain('"signal":"SIGTERM","grace_ms":10000,"msg":"draining"')
    expect(proc.output()).not.toContain('Server listening')
  })

  it('SIGHUP is a reload, queued until the first load is done', async () => {
    const { proc, reading, answer } = serveFromFifo(ONE_MODEL)
    await reading
    process.kill(proc.child.pid!, 'SIGHUP')
    answer()
    await outputContains(proc, 'config reload queued: the first load is still running')
    await outputContains(proc, '"msg":"ready"')
    await outputContains(proc, '"msg":"config reloaded"')
    expect(await proc.stop('SIGTERM')).toBe(0)
  })
})

/** A broker that takes connections and never answers; `connected` resolves at the first connection (the model stream starting). */
async function silentBroker(): Promise<{ port: number; connected: Promise<void> }> {
  let connected!: () => void
  const first = new Promise<void>((resolve) => (connected = resolve))
  const sockets = new Set<Socket>()
  const broker = createTcpServer((socket) => {
    sockets.add(socket)
    connected()
  })
  broker.listen(0, '127.0.0.1')
  await once(broker, 'listening')
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy()
    broker.close()
  })
  return { port: (broker.address() as { port: number }).port, connected: first }
}

/** One repository model whose versions come from a model stream on `broker`; `kafka` adds repository.kafka keys. */
const streamed = (broker: number, kafka = ''): string => `
server: { host: 127.0.0.1 }
executors: { onnx_workers: 1 }
repository: { path: ./repo, kafka: { brokers: ["127.0.0.1:${broker}"], topic: specserve.models${kafka} } }
models:
  lr: { kind: onnx, source: repository, path: ${join(root, 'models', 'cancer_logreg.onnx')} }
ensembles: { e: { strategy: deadline-fallback, models: [lr] } }
`

async function healthCheck(grpcPort: number): Promise<string> {
  const checked = await new Promise<Buffer>((resolve, reject) =>
    healthClient(grpcPort).makeUnaryRequest('/grpc.health.v1.Health/Check', raw, raw, Buffer.alloc(0), (err, message) => (err ? reject(err) : resolve(message!))),
  )
  return healthOf(checked)
}

describe('gRPC health at start', () => {
  it('says SERVING once /readyz says ready, while the registry is still starting its model stream (readiness not waiting for it)', async () => {
    const broker = await silentBroker()
    // catch_up_timeout_ms: 0: readiness does not wait for the model stream to catch up.
    const { restPort, grpcPort } = await serve(streamed(broker.port, ', catch_up_timeout_ms: 0'))
    await broker.connected // the registry starts once the gateway has loaded; its start is held here

    const ready = await fetch(`http://127.0.0.1:${restPort}/readyz`)
    expect(ready.status).toBe(200)
    expect(await healthCheck(grpcPort)).toBe('SERVING')
  })
})

describe('readiness while the model stream cannot catch up (its broker down)', () => {
  it('holds /readyz, /v2/health/ready and gRPC health not ready, naming the brokers\' error, for the catch-up grace; then ready, with a warning naming it', async () => {
    // Nothing listens there: every connection is refused. catch_up_timeout_ms under GRACE_MS
    // (15 s) is the grace: long enough for the checks below on a loaded box, short for the test.
    const refused = await freePort()
    const { proc, restPort, grpcPort } = await serve(streamed(refused, ', catch_up_timeout_ms: 8000'))
    await outputContains(proc, '"msg":"model stream: cannot consume yet; retrying"') // loaded, and the stream's first join failed
    const rest = `http://127.0.0.1:${restPort}`

    const waiting = await fetch(`${rest}/readyz`)
    expect(waiting.status).toBe(503)
    const body = (await waiting.json()) as { ready: boolean; status: string; waiting_for: { model_stream: string } }
    expect(body).toMatchObject({ ready: false, status: 'waiting' })
    expect(body.waiting_for.model_stream).toMatch(/^catching up: the topic's end offsets are not read yet \(.*ECONNREFUSED.*\); ready in [0-8] s unless they are read by then \(repository\.kafka\.catch_up_timeout_ms\)$/)
    expect((await fetch(`${rest}/v2/health/ready`)).status).toBe(400)
    expect(await healthCheck(grpcPort)).toBe('NOT_SERVING')
    // Predicts are taken meanwhile (the seed serves): readiness is for load balancers, not a refusal.
    const predict = await fetch(`${rest}/v1/ensembles/e/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: { input: [samples('cancer').rows[0]] } }) })
    expect(predict.status).toBe(200)

    // Let go when the warning is logged: the order of log lines, not a clock.
    await outputContains(proc, '"msg":"model stream: the models topic\'s end offsets are not read (the brokers\' error is `error`): ready anyway, on the versions in the local repository; the stream catches up once the brokers answer"')
    expect(proc.output()).toMatch(/"level":40,[^\n]*"error":"[^"\n]*ECONNREFUSED[^\n]*"msg":"model stream: the models topic's end offsets are not read/)
    await outputContains(proc, '"msg":"ready"')
    expect((await fetch(`${rest}/readyz`)).status).toBe(200)
    expect((await fetch(`${rest}/v2/health/ready`)).status).toBe(200)
    expect(await healthCheck(grpcPort)).toBe('SERVING')
    expect(proc.output()).toMatch(/"waiting_for":\{"model_stream":"catching up: .*"msg":"loaded; readiness waits"/)
  })
})

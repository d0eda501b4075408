// The lifecycle against a real `specserve serve` process, as an orchestrator drives it:
// reload by SIGHUP and by POST /admin/reload while clients keep predicting (no request
// may fail), a broken file refused, then SIGTERM under load: every request in flight is
// answered, and the process exits 0 within its grace period.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { Gateway } from '../../src/gateway.ts'
import { configFrom, freePort, root, samples, startProcess, waitForPort, type Proc } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const models = join(root, 'models')
const cancer = samples('cancer')
const GRACE_MS = 5000

function yaml({ strategy = 'deadline-fallback', wine = false } = {}): string {
  return `
server: { shutdown_grace_ms: ${GRACE_MS} }
executors: { onnx_workers: 2 }
admin: { reload_endpoint: true, watch_config: false }
models:
  cancer-mlp: { kind: onnx, path: ${models}/cancer_mlp.onnx }
  cancer-logreg: { kind: onnx, path: ${models}/cancer_logreg.onnx }
  cancer-slow: { kind: onnx, path: ${models}/cancer_slow.onnx, max_concurrency: 1 }
  wine-logreg: { kind: onnx, path: ${models}/wine_logreg.onnx }
  wine-tree: { kind: onnx, path: ${models}/wine_tree.onnx }
ensembles:
  cancer: { strategy: ${strategy}, models: [cancer-mlp, cancer-logreg], budget_ms: { default: 2000, max: 5000 } }
  slow: { strategy: deadline-fallback, models: [cancer-slow, cancer-logreg], budget_ms: { default: 3000, max: 5000 } }
${wine ? '  wine: { strategy: majority-vote, models: [wine-logreg, wine-tree] }' : ''}
`
}

let dir: string
let file: string
let port: number
let proc: Proc
const url = (path: string): string => `http://127.0.0.1:${port}${path}`
const predict = (ensemble: string, row = 0): Promise<Response> =>
  fetch(url(`/v1/ensembles/${ensemble}/predict`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: { input: [cancer.rows[row]] } }) })

/** Polls (the process offers no event to await from outside) until `check` holds. */
async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${proc.output()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

beforeAll(async () => {
  dir = tempDir('specserve-lifecycle-')
  file = join(dir, 'gateway.yaml')
  writeFileSync(file, yaml())
  port = await freePort()
  proc = startProcess(process.execPath, [join(root, 'src', 'cli.ts'), 'serve', '-c', file], {
    env: { SPECSERVE_REST_PORT: String(port), SPECSERVE_GRPC_PORT: 'off', LOG_LEVEL: 'info' },
  })
  await waitForPort(port)
  await until(async () => (await fetch(url('/readyz'))).status === 200, 'readiness')
})

afterAll(async () => {
  await proc?.stop('SIGKILL')
})

describe('a running specserve process', () => {
  it('reloads on SIGHUP and POST /admin/reload under load without failing a request; refuses a broken file', async () => {
    let stop = false
    const failures: string[] = []
    let served = 0
    let waiter: { at: number; resolve: () => void } | undefined
    /** Resolves once `n` more predicts have been answered: each reload happens mid-traffic. */
    const progress = (n: number): Promise<void> => new Promise((resolve) => (waiter = { at: served + n, resolve }))
    const client = async (n: number): Promise<void> => {
      for (let i = 0; !stop && i < 10_000; i++) {
        const res = await predict('cancer', (n + i) % cancer.rows.length)
        if (res.status === 200) served++
        else failures.push(`${res.status} ${await res.text()}`)
        await res.arrayBuffer().catch(() => undefined)
        if (waiter && served >= waiter.at) waiter.resolve()
      }
    }
    const load = Promise.all([0, 1, 2, 3].map(client))
    try {
      await progress(20)
      // SIGHUP: the new file adds an ensemble.
      writeFileSync(file, yaml({ wine: true }))
      process.kill(proc.child.pid!, 'SIGHUP')
      await until(async () => ((await (await fetch(url('/v1/ensembles'))).json()) as { ensembles: { name: string }[] }).ensembles.some((e) => e.name === 'wine'), 'the wine ensemble')

      await progress(20)
      // The admin endpoint: changes a strategy, answers with what changed.
      writeFileSync(file, yaml({ wine: true, strategy: 'best-quality' }))
      const applied = await fetch(url('/admin/reload'), { method: 'POST' })
      expect(applied.status).toBe(200)
      const report = (await applied.json()) as { reloaded: boolean; ensembles: { changed: string[] }; models: { kept: string[] } }
      expect(report.reloaded).toBe(true)
      expect(report.ensembles.changed).toEqual(['cancer'])
      expect(report.models.kept).toContain('cancer-mlp')

      await progress(20)
      // A broken file: 422 with the errors, the process keeps serving the last good config.
      writeFileSync(file, yaml({ wine: true }).replace('[cancer-mlp, cancer-logreg]', '[cancer-mlp, cancer-lgreg]'))
      const refused = await fetch(url('/admin/reload'), { method: 'POST' })
      expect(refused.status).toBe(422)
      const body = (await refused.json()) as { code: string; errors: string[] }
      expect(body.code).toBe('CONFIG_INVALID')
      expect(body.errors[0]).toMatch(/gateway\.yaml:\d+:\d+ ensembles\.cancer\.models\.1: unknown model "cancer-lgreg"/)
      // The log line and the response race through different pipes.
      await until(() => Promise.resolve(proc.output().includes('config reload rejected')), 'the rejection in the log')
      const after = (await (await predict('cancer')).json()) as { strategy: string }
      expect(after.strategy).toBe('best-quality')
      await progress(20)
    } finally {
      stop = true
      await load
    }
    expect(failures).toEqual([])
    expect(served).toBeGreaterThanOrEqual(80)
    const metrics = await (await fetch(url('/metrics'))).text()
    expect(metrics).toMatch(/specserve_config_reloads_total\{result="applied"\} 2/)
    expect(metrics).toMatch(/specserve_config_reloads_total\{result="rejected"\} 1/)
  })

  it('answers every request in flight at SIGTERM (a SIGHUP during the drain changes nothing), then exits 0 within the grace period', async () => {
    writeFileSync(file, yaml())
    // cancer-slow takes tens of ms and runs one at a time: these queue up behind each other.
    let answered = 0
    const inFlight = Array.from({ length: 10 }, (_, i) =>
      predict('slow', i % cancer.rows.length).finally(() => {
        answered++
      }),
    )
    // SIGTERM only once the gateway has received all ten (each is running or already
    // answered): a request still in the client's socket at SIGTERM is rightly refused.
    // `answered` is read before the metrics, so no request is counted twice.
    await until(async () => {
      const done = answered
      const text = await (await fetch(url('/metrics'))).text()
      const running = Number(/^specserve_requests_in_flight (\d+)/m.exec(text)?.[1] ?? 0)
      return running > 0 && done + running >= 10
    }, 'all ten requests at the gateway')
    const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)))
    const signalled = performance.now()
    process.kill(proc.child.pid!, 'SIGTERM')
    // Node's default for a SIGHUP nobody listens to is to end the process at once: the drain ignores it instead.
    await until(async () => proc.output().includes('draining'), 'the drain to begin')
    process.kill(proc.child.pid!, 'SIGHUP')
    const answers = await Promise.all(inFlight)
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200))
    for (const r of answers) expect(((await r.json()) as { ensemble: string }).ensemble).toBe('slow')
    // New work is refused: the listener is closed (or a kept-alive socket gets 503 + Retry-After).
    const late = await predict('cancer').then(
      (r) => r.status,
      () => 'refused',
    )
    expect([503, 'refused']).toContain(late)
    expect(await exited).toBe(0)
    // The queue drains in about a second; exiting must not wait out the grace period.
    expect(performance.now() - signalled).toBeLessThan(GRACE_MS)
    expect(proc.output()).toContain('draining')
    expect(proc.output()).toContain('"signal":"SIGTERM","msg":"stopped"') // the last line: the stop is over
  })
})

describe('readiness while draining', () => {
  it('turns /readyz to 503 with Retry-After, refuses predicts as NOT_READY, and closes each connection once answered', async () => {
    const config = configFrom(`
models: { m: { kind: onnx, path: ../models/cancer_logreg.onnx } }
ensembles: { e: { strategy: deadline-fallback, models: [m] } }
`)
    const gateway = new Gateway({ ...config, executors: { ...config.executors, onnx_workers: 1 } })
    const app = buildServer(config, { gateway })
    try {
      await gateway.load()
      // Over a real socket: the headers are the HTTP server's, which inject() does not run.
      const url = await app.listen({ host: '127.0.0.1', port: 0 })
      const before = await request(`${url}/readyz`)
      await before.body.dump()
      expect(before.statusCode).toBe(200)
      expect(before.headers.connection).toBe('keep-alive')
      gateway.drain()
      const ready = await request(`${url}/readyz`)
      expect(ready.statusCode).toBe(503)
      expect(await ready.body.json()).toMatchObject({ ready: false, status: 'draining' })
      expect(ready.headers['retry-after']).toBe('1')
      expect(ready.headers.connection).toBe('close')
      const res = await request(`${url}/v1/ensembles/e/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: { input: [cancer.rows[0]] } }) })
      expect(res.statusCode).toBe(503)
      expect(res.headers['retry-after']).toBe('1')
      expect(((await res.body.json()) as { code: string }).code).toBe('NOT_READY')
    } finally {
      await app.close()
      await gateway.close()
    }
  })
})

// The real `specserve serve` process with Kafka output, and a client that drives predicts.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort, root, samples, startProcess, waitForPort, type Proc } from '../helpers.ts'

const cli = join(root, 'src', 'cli.ts')
const model = (file: string): string => join(root, 'models', file)

/** A config with two small ensembles and Kafka output; `kafka` is extra YAML flow-map entries. */
export async function writeConfig(dir: string, brokers: string, kafka = ''): Promise<string> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, 'gateway.yaml')
  await writeFile(
    file,
    `executors: { onnx_workers: 1 }
models:
  logreg: { kind: onnx, path: ${model('cancer_logreg.onnx')}, version: "3" }
  wine-logreg: { kind: onnx, path: ${model('wine_logreg.onnx')} }
ensembles:
  cancer: { strategy: deadline-fallback, models: [logreg], budget_ms: { default: 500, max: 1000 } }
  wine: { strategy: deadline-fallback, models: [wine-logreg], budget_ms: { default: 500, max: 1000 } }
output:
  kafka: { brokers: ["${brokers}"], topic: specserve.records, spool_dir: ${join(dir, 'spool')}, retry_backoff_ms: 200, request_timeout_ms: 2000${kafka ? `, ${kafka}` : ''} }
`,
  )
  return file
}

export interface Served {
  readonly proc: Proc
  readonly url: string
  readyz(): Promise<{ status: number; body: ReadyBody }>
}

export interface ReadyBody {
  ready: boolean
  output?: { kafka: { state: string; spooled_records: number; dropped: number; spool_file: string; published: number; last_error: string | null } }
}

export async function serve(configFile: string, args: readonly string[] = []): Promise<Served> {
  const port = await freePort()
  const proc = startProcess(process.execPath, [cli, 'serve', '-c', configFile, ...args], { env: { SPECSERVE_REST_PORT: String(port), SPECSERVE_GRPC_PORT: 'off', LOG_LEVEL: 'info' } })
  const url = `http://127.0.0.1:${port}`
  const readyz = async (): Promise<{ status: number; body: ReadyBody }> => {
    const res = await fetch(`${url}/readyz`)
    return { status: res.status, body: (await res.json()) as ReadyBody }
  }
  try {
    await waitForPort(port, 30_000)
    // Readiness has no event to await from outside the process: poll it.
    for (let i = 0; (await readyz()).status !== 200; i++) {
      if (i > 300 || proc.child.exitCode !== null) throw new Error(`gateway not ready:\n${proc.output()}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  } catch (err) {
    await proc.stop('SIGKILL')
    throw err
  }
  return { proc, url, readyz }
}

/** Polls until `check` holds (a peer process has no event to await); fails with `what` after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (check(value)) return value
    if (Date.now() > until) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const rows = { cancer: samples('cancer').rows, wine: samples('wine').rows }

export interface Issued {
  readonly id: string
  readonly ensemble: 'cancer' | 'wine'
  readonly status: number
}

/** One predict; a refused connection (server closing) counts as status 0, never acknowledged. */
export async function predict(url: string, id: string, n: number): Promise<Issued> {
  const ensemble = n % 2 ? 'wine' : 'cancer'
  const list = rows[ensemble]
  try {
    const res = await fetch(`${url}/v1/ensembles/${ensemble}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id, inputs: { input: [list[n % list.length]] } }),
    })
    await res.arrayBuffer()
    return { id, ensemble, status: res.status }
  } catch {
    return { id, ensemble, status: 0 }
  }
}

/** `workers` concurrent clients issuing predicts back to back (with `gapMs` between) until stop() is called. */
export function load(url: string, prefix: string, workers: number, gapMs: number): { issued: Issued[]; stop(): Promise<Issued[]> } {
  const issued: Issued[] = []
  let running = true
  let n = 0
  const worker = async (): Promise<void> => {
    while (running) {
      const i = n++
      issued.push(await predict(url, `${prefix}-${i}`, i))
      if (gapMs) await new Promise((r) => setTimeout(r, gapMs))
    }
  }
  const all = Promise.all(Array.from({ length: workers }, worker))
  return {
    issued,
    async stop() {
      running = false
      await all
      return issued
    },
  }
}

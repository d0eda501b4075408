// onnxruntime's usage telemetry stays off (src/executors/onnx/ort-env.ts). Left on, the
// library's first session queues 1DS events for mobile.events.data.microsoft.com in
// $XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db and writes
// $TMPDIR/mat-debug-<pid>.log (plus $TMPDIR/.ses). A child process, with HOME, XDG_CACHE_HOME
// and TMPDIR of its own and no ORT_DISABLE_TELEMETRY, serves one model inline (its session on
// the main thread) and one in a worker thread, and answers one predict through each: none of
// those files may appear. The variable is read by onnxruntime's native code with getenv(),
// once per process, which is why this needs a process of its own.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { root } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'

const src = (path: string): string => pathToFileURL(join(root, 'src', path)).href

const SERVE_AND_PREDICT = `
import { buildServer } from '${src('api/rest/server.ts')}'
import { parseConfig } from '${src('config/load.ts')}'
const config = parseConfig(\`
models:
  inline: { kind: onnx, path: models/cancer_logreg.onnx, placement: inline }
  worker: { kind: onnx, path: models/cancer_mlp.onnx, placement: worker }
ensembles:
  inline: { strategy: deadline-fallback, models: [inline] }
  worker: { strategy: deadline-fallback, models: [worker] }
\`, '${join(root, 'specserve.yaml')}')
const app = buildServer(config)
await app.gateway.load()
const input = [Array(30).fill(0.5)]
for (const ensemble of ['inline', 'worker']) {
  const res = await app.inject({ method: 'POST', url: '/v1/ensembles/' + ensemble + '/predict', payload: { inputs: { input } } })
  console.log(ensemble, res.statusCode, res.json().models.map((m) => m.name + ':' + m.status).join())
}
await app.close()
console.log('telemetry variable:', process.env.ORT_DISABLE_TELEMETRY)
`

/** Runs `script` in a child whose home, cache and temp dirs are `dir`'s; its output. */
async function runIn(dir: string, script: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const home = join(dir, 'home')
  const tmp = join(dir, 'tmp')
  mkdirSync(home)
  mkdirSync(tmp)
  const file = join(dir, 'child.mjs')
  writeFileSync(file, script)
  const inherited = { ...process.env }
  delete inherited.ORT_DISABLE_TELEMETRY
  const child = spawn(process.execPath, [file], {
    cwd: root,
    env: { ...inherited, HOME: home, XDG_CACHE_HOME: join(home, '.cache'), TMPDIR: tmp, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (b: Buffer) => (output += b.toString()))
  child.stderr.on('data', (b: Buffer) => (output += b.toString()))
  const [code] = (await once(child, 'close')) as [number | null]
  expect(code, output).toBe(0)
  return output
}

/** Every file and directory under `dir`, relative to it. */
const entries = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()

describe("onnxruntime's usage telemetry", () => {
  it('is off: a gateway that runs a model inline and one in a worker leaves no telemetry queue, debug log or session file', async () => {
    const dir = tempDir('specserve-ort-telemetry-')
    const output = await runIn(dir, SERVE_AND_PREDICT)
    expect(output).toContain('inline 200 inline:ok')
    expect(output).toContain('worker 200 worker:ok')
    const left = entries(dir)
    expect(left.filter((p) => /mat-debug-|\.onnxruntime|\.ses$/.test(p))).toEqual([])
    expect(left).toEqual(['child.mjs', 'home', 'tmp'])
    expect(output).toContain('telemetry variable: 1')
  })

  it("keeps an operator's own setting", async () => {
    const dir = tempDir('specserve-ort-telemetry-')
    const output = await runIn(dir, `import '${src('executors/onnx/session.ts')}'\nconsole.log('telemetry variable:', process.env.ORT_DISABLE_TELEMETRY)\n`, { ORT_DISABLE_TELEMETRY: '0' })
    expect(output).toContain('telemetry variable: 0')
  })
})

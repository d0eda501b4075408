import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer, type Server } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { freePort, outputContains, root, samples, startProcess, waitForPort } from './helpers.ts'
import { tempDir } from './temp-dirs.ts'

const cli = join(root, 'src', 'cli.ts')

async function run(args: string[], script = cli): Promise<{ code: number | null; output: string }> {
  const proc = startProcess(process.execPath, [script, ...args])
  const code = await new Promise<number | null>((resolve) => proc.child.once('exit', (c) => resolve(c)))
  return { code, output: proc.output() }
}

/** The CLI's exit code, stdout and stderr, apart. */
async function runSplit(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout, stderr }
}

/** Every directory and file under `dir`, with the files' bytes: to show a command wrote nothing. */
function snapshot(dir: string): Record<string, string> {
  const tree: Record<string, string> = {}
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name)
    tree[path] = entry.isDirectory() ? '(dir)' : readFileSync(path).toString('base64')
  }
  return tree
}

/** A small config of one model, on loopback, written to a temporary directory. */
function smallConfig(): string {
  const file = join(tempDir('specserve-cli-'), 'small.yaml')
  writeFileSync(file, `server: { host: 127.0.0.1 }\nmodels:\n  lr: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} }\nensembles:\n  e: { strategy: deadline-fallback, models: [lr] }\n`)
  return file
}

describe('specserve CLI', () => {
  it('an unknown flag is a usage error: the usage, exit 2, no stack', async () => {
    for (const args of [['serve', '--port', '9000'], ['validate', 'x.yaml', '--bogus']]) {
      const { code, output } = await run(args)
      expect(code).toBe(2)
      expect(output).toMatch(/^specserve: Unknown option '--(port|bogus)'\nusage:\n {2}specserve serve/)
      expect(output).not.toMatch(/^\s+at /m)
    }
  })

  it('no command is a usage error on stderr (exit 2); --help is asked for, on stdout (exit 0); --version prints the version', async () => {
    const bare = await runSplit([])
    expect([bare.code, bare.stdout]).toEqual([2, ''])
    expect(bare.stderr).toMatch(/^specserve: no command given\nusage:\n {2}specserve serve/)
    const help = await runSplit(['--help'])
    expect([help.code, help.stderr]).toEqual([0, ''])
    expect(help.stdout).toMatch(/^usage:\n/)
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
    expect(await runSplit(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' })
  })

  it('--help lists every command the README and docs name, exit 0', async () => {
    const { code, output } = await run(['--help'])
    expect(code).toBe(0)
    for (const command of ['serve [-c config.yaml]', '--stream', 'validate <config.yaml>', 'bench [--quick]', 'publish-model --brokers B --topic T --name N [--version V] [--description D] model.onnx', '--location L', 'eval -c config.yaml --data holdout.csv --label <column>', '--calibrate [temperature|isotonic]']) {
      expect(output).toContain(command)
    }
  })

  it('eval --help prints the eval usage, exit 0, as the other commands do', async () => {
    for (const flag of ['--help', '-h']) {
      const { code, output } = await run(['eval', flag])
      expect(code).toBe(0)
      expect(output).toContain('specserve eval -c config.yaml --data holdout.csv --label <column>')
      expect(output).not.toContain('Unknown option')
    }
  })

  it('bench in an install without bench/ (the Docker image leaves it out): one line saying so, exit 1, no stack', async () => {
    const install = tempDir('specserve-no-bench-')
    for (const part of ['src', 'proto']) cpSync(join(root, part), join(install, part), { recursive: true })
    copyFileSync(join(root, 'package.json'), join(install, 'package.json'))
    symlinkSync(join(root, 'node_modules'), join(install, 'node_modules'))
    const { code, output } = await run(['bench', '--quick'], join(install, 'src', 'cli.ts'))
    expect(code).toBe(1)
    expect(output).toBe('specserve: bench is not part of this install (no bench/ beside src/; the Docker image leaves it out): run it from a source checkout\n')
  })

  it('serve on a port already in use: one line naming the listener and the port, exit 1, no stack, no other line outside the log', async () => {
    const held: Server = createTcpServer()
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve))
    const busy = (held.address() as { port: number }).port
    try {
      const free = await freePort()
      for (const [listener, env] of [
        ['REST', { SPECSERVE_REST_PORT: String(busy), SPECSERVE_GRPC_PORT: 'off' }],
        ['gRPC', { SPECSERVE_REST_PORT: String(free), SPECSERVE_GRPC_PORT: String(busy) }],
      ] as const) {
        const proc = startProcess(process.execPath, [cli, 'serve', '-c', smallConfig()], { env })
        const [code] = (await once(proc.child, 'exit')) as [number | null]
        expect(code).toBe(1)
        expect(proc.output()).toContain(`specserve: cannot listen for ${listener} on 127.0.0.1:${busy}: the port is already in use (another process holds it)\n`)
        expect(proc.output()).not.toMatch(/^\s+at /m)
        // Nothing else outside the JSON log: grpc-js's own `E No address added …` line included.
        expect(proc.output().split('\n').filter((line) => line !== '' && !line.startsWith('{') && !line.startsWith('specserve: ')), listener).toEqual([])
      }
    } finally {
      held.close()
    }
  })

  it('serve stops within its bounds when the OTLP endpoint does not answer: the telemetry flush is given up after 2 s', async () => {
    // An OTLP endpoint that takes requests and never answers them (a hung collector).
    const hung = createHttpServer(() => undefined)
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve))
    const endpoint = `http://127.0.0.1:${(hung.address() as { port: number }).port}`
    const port = await freePort()
    const proc = startProcess(process.execPath, [cli, 'serve', '-c', smallConfig()], {
      env: { SPECSERVE_REST_PORT: String(port), SPECSERVE_GRPC_PORT: 'off', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint },
    })
    try {
      await outputContains(proc, '"msg":"ready"')
      // Without the bound the exporters' own timeouts hold the exit 7-10 s, and stop() kills it at 10 s.
      expect(await proc.stop('SIGTERM')).toBe(0)
      expect(proc.output()).toMatch(/"waited_ms":2000,"msg":"telemetry flush not done \(OTLP endpoint slow or down\): the rest is dropped"/)
    } finally {
      await proc.stop('SIGKILL')
      hung.closeAllConnections()
      hung.close()
    }
  })

  it('serve logs a collector refusing the OTLP exports (OpenTelemetry says nothing by itself)', async () => {
    const refusing = createHttpServer((req, res) => req.resume().on('end', () => res.writeHead(401).end()))
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve))
    const endpoint = `http://127.0.0.1:${(refusing.address() as { port: number }).port}`
    const env = { SPECSERVE_REST_PORT: String(await freePort()), SPECSERVE_GRPC_PORT: 'off', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_METRIC_EXPORT_INTERVAL: '500' }
    const proc = startProcess(process.execPath, [cli, 'serve', '-c', smallConfig()], { env })
    try {
      await outputContains(proc, '"msg":"OpenTelemetry: PeriodicExportingMetricReader: metrics export failed (error OTLPExporterError: Unauthorized)"')
      expect(await proc.stop('SIGTERM')).toBe(0)
    } finally {
      await proc.stop('SIGKILL')
      refusing.close()
    }
  })

  it('validate accepts the demo config', async () => {
    const { code, output } = await run(['validate', 'examples/demo.yaml'])
    expect(output).toContain('examples/demo.yaml: ok (14 models, 5 ensembles)')
    // No demo ensemble compares uncalibrated models by raw maximum probability: no warning.
    expect(output).not.toContain('warning:')
    expect(code).toBe(0)
  })

  it('keeps its compiled code in the user\'s cache directory (Node\'s compile cache), so a later start loads faster; NODE_DISABLE_COMPILE_CACHE=1 turns it off', async () => {
    const started = async (env: NodeJS.ProcessEnv): Promise<number> => {
      const home = tempDir('specserve-cli-home-')
      const proc = startProcess(process.execPath, [cli, 'validate', 'examples/demo.yaml'], { env: { HOME: home, XDG_CACHE_HOME: undefined, NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: undefined, ...env } })
      const [code] = (await once(proc.child, 'exit')) as [number | null]
      expect(code, proc.output()).toBe(0)
      const cache = join(home, '.cache', 'specserve', 'node-compile-cache')
      return existsSync(cache) ? readdirSync(cache, { recursive: true }).length : 0
    }
    expect(await started({})).toBeGreaterThan(100)
    expect(await started({ NODE_DISABLE_COMPILE_CACHE: '1' })).toBe(0)
  })

  it('validate warns when best-quality compares uncalibrated models of different families, read from their graphs', async () => {
    const dir = tempDir('specserve-validate-')
    const file = join(dir, 'bq.yaml')
    const models = ['digits_rf', 'digits_mlp', 'wine_rf', 'wine_tree'].map((m) => `  ${m}: { kind: onnx, path: ${join(root, 'models', `${m}.onnx`)} }`).join('\n')
    const ensemble = (name: string, members: string) => `  ${name}:\n    strategy: { name: best-quality, good_enough: 0.9 }\n    models: [${members}]\n`
    writeFileSync(file, `models:\n${models}\nensembles:\n${ensemble('mixed', 'digits_rf, digits_mlp')}${ensemble('forests', 'wine_rf, wine_tree')}`)
    const { code, output } = await run(['validate', file])
    expect(code).toBe(0)
    expect(output).toMatch(
      /warning: .*bq\.yaml:8:\d+ ensembles\.mixed\.strategy: best-quality compares maximum probabilities across model families \(digits_rf: trees, digits_mlp: neural\) and digits_rf, digits_mlp are not calibrated/,
    )
    // A random forest and a decision tree are one family: their raw maxima compare fairly.
    expect(output).not.toContain('ensembles.forests')
  })

  it('validate warns about a slow model pinned inline, at its placement line', async () => {
    const dir = tempDir('specserve-validate-')
    const file = join(dir, 'pinned.yaml')
    const path = (m: string) => join(root, 'models', `${m}.onnx`)
    writeFileSync(
      file,
      // A threshold far from both models' run times (~90 ms and ~0.01 ms): on a loaded box the
      // tiny one's warm-up median has reached 0.24 ms, over the 0.2 ms default.
      `models:\n  slow:\n    kind: onnx\n    path: ${path('cancer_slow')}\n    placement: inline\n    inline_max_ms: 5\n  tiny: { kind: onnx, path: ${path('cancer_logreg')}, placement: inline, inline_max_ms: 5 }\n` +
        'ensembles:\n  e: { strategy: deadline-fallback, models: [slow, tiny] }\n',
    )
    const { code, output } = await run(['validate', file])
    expect(code).toBe(0)
    expect(output).toMatch(/warning: .*pinned\.yaml:5:\d+ models\.slow\.placement: pinned inline, but its warm-up median is [\d.]+ ms, over inline_max_ms 5/)
    expect(output).not.toContain('models.tiny')
  })

  it('validate warns about a remote model whose upstream does not answer, at its url line: it loads on its declared tensors', async () => {
    const file = join(tempDir('specserve-validate-'), 'remote.yaml')
    const closed = await freePort() // nothing listens there
    writeFileSync(
      file,
      `models:\n  lr: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} }\n  down:\n    kind: oip\n    url: http://127.0.0.1:${closed}\n    model: m\n` +
        '    inputs: [{ name: input, datatype: FP32, shape: [-1, 30] }]\n    outputs: [{ name: label, datatype: INT64, shape: [-1] }]\n' +
        'ensembles:\n  e: { strategy: deadline-fallback, models: [down, lr] }\n',
    )
    const { code, output } = await run(['validate', file])
    expect(code).toBe(0)
    expect(output).toMatch(/warning: .*remote\.yaml:5:\d+ models\.down\.url: its upstream's metadata could not be read at load \(.*ECONNREFUSED.*\): serving it on the inputs and outputs the YAML declares/)
    expect(output).not.toContain('models.lr')
  })

  it('validate prints every error with file, line and YAML path, and exits 1', async () => {
    const { code, output } = await run(['validate', 'test/fixtures/bad.yaml'])
    expect(code).toBe(1)
    const lines = output.trim().split('\n')
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/bad\.yaml:3:\d+ models\.gone\.path: cannot read model file .*missing\.onnx$/),
        expect.stringMatching(/bad\.yaml:7:\d+ ensembles\.fraud\.models\.1: unknown model "fraud-smrt"$/),
        expect.stringMatching(/bad\.yaml:8:\d+ ensembles\.fraud\.budget_ms\.default: default 50 is over max 20$/),
      ]),
    )
  })

  it('validate refuses a plaintext API key, and a sha256 that is not a hash', async () => {
    const { code, output } = await run(['validate', 'test/fixtures/insecure-auth.yaml'])
    expect(code).toBe(1)
    expect(output).toMatch(/insecure-auth\.yaml:7:\d+ auth\.api_keys\.0\.key: a plaintext key does not belong in the config/)
    expect(output).toMatch(/insecure-auth\.yaml:8:\d+ auth\.api_keys\.1\.sha256: not a hex SHA-256/)
  })

  it('validate writes nothing in the repository: says which version would serve and that a seed would be imported', async () => {
    const dir = tempDir('specserve-validate-repo-')
    // cancer-copied: a version directory copied in, never judged (no meta.json); cancer-seeded: nothing yet, a seed path.
    mkdirSync(join(dir, 'repo', 'cancer-copied', '3'), { recursive: true })
    copyFileSync(join(root, 'models', 'cancer_logreg.onnx'), join(dir, 'repo', 'cancer-copied', '3', 'model.onnx'))
    const file = join(dir, 'repo.yaml')
    writeFileSync(
      file,
      `repository: { path: ./repo }\nmodels:\n  cancer-seeded: { kind: onnx, source: repository, path: ${join(root, 'models', 'cancer_gbdt.onnx')} }\n  cancer-copied: { kind: onnx, source: repository }\nensembles:\n  cancer: { strategy: deadline-fallback, models: [cancer-seeded, cancer-copied] }\n`,
    )
    const before = snapshot(dir)
    const { code, output } = await run(['validate', file])
    expect(output).toMatch(/note: .*repo\.yaml:3:\d+ models\.cancer-seeded\.source: no version in .*cancer-seeded yet: serve would import path: .*cancer_gbdt\.onnx as version 1/)
    expect(output).toMatch(/note: .*repo\.yaml:4:\d+ models\.cancer-copied\.source: version 3 would serve/)
    expect(output).toContain('ok (2 models, 1 ensemble)')
    expect(code).toBe(0)
    expect(snapshot(dir)).toEqual(before)
  })

  it('validate reports a missing repository and a model with nothing to serve, at their lines, and writes nothing', async () => {
    const dir = tempDir('specserve-validate-repo-')
    const file = join(dir, 'empty.yaml')
    writeFileSync(file, `models:\n  cancer-main: { kind: onnx, source: repository }\nensembles:\n  cancer: { strategy: deadline-fallback, models: [cancer-main] }\nrepository: { path: ./repo }\n`)
    const before = snapshot(dir)
    const { code, output } = await run(['validate', file])
    expect(code).toBe(1)
    expect(output).toMatch(/empty\.yaml:5:\d+ repository\.path: repository directory .*repo does not exist/)
    expect(output).toMatch(/empty\.yaml:2:\d+ models\.cancer-main\.source: no version to serve in .*cancer-main/)
    expect(snapshot(dir)).toEqual(before)
  })

  it('serve answers predicts on the configured port and exits 0 on SIGTERM', async () => {
    const port = await freePort()
    const proc = startProcess(process.execPath, [cli, 'serve', '-c', 'examples/demo.yaml'], { env: { SPECSERVE_REST_PORT: String(port), SPECSERVE_GRPC_PORT: 'off' } })
    try {
      await waitForPort(port, 30_000)
      let ready = await fetch(`http://127.0.0.1:${port}/readyz`)
      for (let i = 0; i < 100 && ready.status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100)) // readiness has no event to await from outside
        ready = await fetch(`http://127.0.0.1:${port}/readyz`)
      }
      expect(ready.status).toBe(200)
      const res = await fetch(`http://127.0.0.1:${port}/v1/ensembles/cancer/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: { input: [samples('cancer').rows[0]] } }),
      })
      expect(res.status).toBe(200)
      // Open (no auth section) on 0.0.0.0: said at start.
      expect(proc.output()).toMatch(/listening on 0\.0\.0\.0 without an auth section/)
    } finally {
      expect(await proc.stop('SIGTERM')).toBe(0)
    }
  })
})

describe('specserve eval', () => {
  it('scores the demo ensembles on a held-out split and writes the report', async () => {
    const out = tempDir('specserve-eval-cli-')
    const { code, output } = await run(['eval', '-c', 'examples/demo.yaml', '--data', 'models/wine_holdout.csv', '--label', 'label', '--ensembles', 'wine', '--budgets', '20,50', '--out', out])
    expect(code).toBe(0)
    expect(output).toMatch(/^20 ms: wine [\d.]+ (matches|beats|trails).* its best member wine-\w+/m)
    expect(readdirSync(out).sort()).toEqual(['report.json', 'report.md', 'wine.svg'])
  })

  it('--calibrate isotonic fits a map per member before scoring; an unknown method is refused', async () => {
    const dir = tempDir('specserve-eval-cli-')
    const file = join(dir, 'bq.yaml')
    writeFileSync(file, `models:\n  lr: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} }\n  gb: { kind: onnx, path: ${join(root, 'models', 'cancer_gbdt.onnx')} }\nensembles:\n  best: { strategy: best-quality, models: [gb, lr] }\n`)
    const args = ['eval', '-c', file, '--data', 'models/cancer_holdout.csv', '--label', 'label', '--budgets', '50', '--out', join(dir, 'out')]
    const { code, output } = await run([...args, '--calibrate', 'isotonic'])
    expect(code).toBe(0)
    expect(output).toMatch(/^calibrated gb: isotonic, \d+ points \(Brier [\d.]+ → [\d.]+ on 143 rows\)$/m)
    expect(output).toMatch(/^calibrated lr: isotonic/m)
    const bogus = await run([...args, '--calibrate=platt'])
    expect(bogus.code).toBe(2)
    expect(bogus.output).toContain('--calibrate: "platt" is not temperature or isotonic')
  })

  it('--out naming a file: refused before the run, exit 2, no stack', async () => {
    const dir = tempDir('specserve-eval-cli-')
    const file = join(dir, 'report.txt')
    writeFileSync(file, 'not a directory\n')
    const { code, output } = await run(['eval', '-c', smallConfig(), '--data', 'models/cancer_holdout.csv', '--label', 'label', '--out', file])
    expect(code).toBe(2)
    expect(output).toBe(`specserve eval: --out ${file}: not a directory (the report is report.json, report.md and SVG files in it)\n`)
  })

  it('bad input: the file, the line and what is wrong, exit 2', async () => {
    const dir = tempDir('specserve-eval-cli-')
    const csv = join(dir, 'bad.csv')
    writeFileSync(csv, 'f0,f1,label\n1,2,0\n1,n/a,1\n')
    const bad = await run(['eval', '--data', csv, '--label', 'label'])
    expect(bad.code).toBe(2)
    expect(bad.output).toContain(`specserve eval: ${csv}:3: "n/a" in column "f1" is not a number`)
    const noLabel = await run(['eval', '--data', csv, '--label', 'truth'])
    expect(noLabel.output).toContain(`${csv}:1: no column "truth" for --label (columns: f0, f1, label)`)
    const budgets = await run(['eval', '--data', csv, '--label', 'label', '--budgets', '5,zero'])
    expect(budgets.output).toContain('--budgets: "zero" is not a positive number of ms')
    expect((await run(['eval', '--data', csv])).code).toBe(2)
  })
})

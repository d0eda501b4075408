// The specserve command line end to end, run as a user runs it: usage and exit codes, serve,
// its telemetry at stop, and eval (validate: cli-validate.int.test.ts).
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer, type Server } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { freePort, outputContains, root, samples, startProcess, waitForPort } from './helpers.ts'
import { cli, run, runSplit, smallConfig } from './cli-run.ts'
import { tempDir } from './temp-dirs.ts'

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

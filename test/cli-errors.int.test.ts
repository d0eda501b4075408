// What the CLI refuses, and how: a command line it cannot read exactly (a second file, -c and
// a file both, another command's flag) is a usage error (exit 2), never half-ignored; what
// stops a start (serve --stream without Kafka, TLS files that do not make a pair, the spool
// another process holds, a LOG_LEVEL that is not one) is one line saying why, no stack. A
// usage error and --help are answered before the program loads.
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { freePort, outputContains, root, startProcess } from './helpers.ts'
import { makePki } from './security/certs.ts'
import { tempDir } from './temp-dirs.ts'

const cli = join(root, 'src', 'cli.ts')
/** No SPECSERVE_* from the environment the tests run in; an ephemeral REST port, no gRPC. */
const ENV = { SPECSERVE_HOST: '', SPECSERVE_REST_PORT: '0', SPECSERVE_GRPC_PORT: 'off' }

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string }> {
  const proc = startProcess(process.execPath, [cli, ...args], { env: { ...ENV, ...env } })
  const [code] = (await once(proc.child, 'exit')) as [number | null]
  return { code, output: proc.output() }
}

/** A config of one model on loopback (`server` its server section), `extra` YAML after it, in a directory of its own. */
function config(name: string, extra = '', server = '{ host: 127.0.0.1 }'): string {
  const file = join(tempDir('specserve-cli-errors-'), name)
  writeFileSync(file, `server: ${server}\nmodels:\n  lr: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} }\nensembles:\n  e: { strategy: deadline-fallback, models: [lr] }\n${extra}`)
  return file
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('the command line', () => {
  it('one config file: a second one, or -c and a file both, is a usage error (exit 2) before anything is checked or served', async () => {
    const good = config('good.yaml')
    const broken = join(tempDir('specserve-cli-errors-'), 'broken.yaml')
    writeFileSync(broken, 'models: [\n')
    for (const command of ['validate', 'serve', 'health']) {
      const two = await run([command, good, broken])
      expect(two.code).toBe(2)
      expect(two.output).toMatch(new RegExp(`^specserve: ${command} takes one config file, not 2: ${escape(good)} ${escape(broken)}\nusage:\n`))
      const both = await run([command, '-c', broken, good])
      expect(both.code).toBe(2)
      expect(both.output).toMatch(new RegExp(`^specserve: ${command} takes one config file: -c ${escape(broken)} and ${escape(good)} are two\nusage:\n`))
    }
    const models = await run(['publish-model', '--brokers', 'b:9092', '--name', 'm', 'a.onnx', 'b.onnx'])
    expect(models.code).toBe(2)
    expect(models.output).toMatch(/^specserve: publish-model takes one model file, not 2: a\.onnx b\.onnx\n/)
  })

  it('a flag of another command is a usage error, as one of no command is', async () => {
    const good = config('good.yaml')
    for (const [args, flag] of [
      [['validate', '--brokers', 'b:9092', good], '--brokers'],
      [['health', '--stream', '-c', good], '--stream'],
      [['serve', '--name', 'x', '-c', good], '--name'],
      [['serve', '--announced', '-c', good], '--announced'],
      [['publish-model', '-c', good, '--brokers', 'b:9092', '--name', 'm', 'a.onnx'], '-c'],
    ] as const) {
      const { code, output } = await run([...args])
      expect(code).toBe(2)
      expect(output.split('\n')[0]).toBe(`specserve: ${args[0]} has no option '${flag}'`)
    }
  })

  it('publish-model --brokers with an empty item, or none, is a usage error (exit 2), never an empty broker given to the client', async () => {
    const closed = await freePort() // nothing listens there: a list taken whole fails fast
    const broker = `127.0.0.1:${closed}`
    for (const brokers of [`${broker},,${broker}`, `${broker},`, `,${broker}`, `${broker}, ,${broker}`]) {
      const { code, output } = await run(['publish-model', '--brokers', brokers, '--name', 'm', 'm.onnx'])
      expect(code, brokers).toBe(2)
      expect(output).toMatch(new RegExp(`^specserve: --brokers: "${escape(brokers)}" has an empty item; give brokers host:port separated by commas, e.g. --brokers kafka1:9092,kafka2:9092\nusage:\n`))
    }
    for (const brokers of ['', ' ']) {
      const { code, output } = await run(['publish-model', '--brokers', brokers, '--name', 'm', 'm.onnx'])
      expect(code, brokers).toBe(2)
      expect(output.split('\n')[0]).toBe('specserve: --brokers: give at least one broker host:port, e.g. --brokers kafka1:9092,kafka2:9092')
    }
  })

  it('--help and a usage error are answered before the program loads: none of fastify, grpc-js or onnxruntime is read', async () => {
    // A preload that says, as the process exits, how many files of those packages were loaded.
    const preload = join(tempDir('specserve-cli-errors-'), 'loaded.cjs')
    const heavy = String.raw`/node_modules\/(fastify|@grpc\/grpc-js|onnxruntime-node)\//`
    writeFileSync(preload, `process.on('exit', () => process.stderr.write('loaded: ' + Object.keys(require.cache).filter((f) => ${heavy}.test(f)).length + '\\n'))\n`)
    const loaded = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; count: number }> => {
      const proc = startProcess(process.execPath, ['--require', preload, cli, ...args], { env: { ...ENV, ...env } })
      const [code] = (await once(proc.child, 'exit')) as [number | null]
      return { code, count: Number(/^loaded: (\d+)$/m.exec(proc.output())?.[1]) }
    }
    expect(await loaded(['--help'])).toEqual({ code: 0, count: 0 })
    expect(await loaded(['serve', '--bogus'])).toEqual({ code: 2, count: 0 })
    expect(await loaded(['validate', 'a.yaml', 'b.yaml'])).toEqual({ code: 2, count: 0 })
    expect(await loaded(['publish-model', '--brokers', 'b:9092', 'm.onnx'])).toEqual({ code: 2, count: 0 })
    expect(await loaded(['serve', '-c', 'x.yaml'], { LOG_LEVEL: 'loud' })).toEqual({ code: 2, count: 0 })
    // The probe sees them when they are loaded.
    const checked = await loaded(['validate', config('good.yaml')])
    expect(checked.code).toBe(0)
    expect(checked.count).toBeGreaterThan(0)
  })
})

describe('a start that cannot go on: one line, no stack', () => {
  it('serve --stream without output.kafka: a config error at output, exit 1, nothing bound; validate --stream says the same', async () => {
    const file = config('plain.yaml')
    const message = 'output: --stream consumes requests from output.kafka (its stream.input_topic, specserve.requests by default): there is no output.kafka section'
    for (const command of ['serve', 'validate']) {
      const { code, output } = await run([command, '--stream', '-c', file])
      expect(output).toMatch(new RegExp(`^\\S*plain\\.yaml(:\\d+:\\d+)? ${escape(message)}\n$`))
      expect(code).toBe(1)
    }
  })

  it('validate and serve refuse TLS files that do not make a pair, at the key (serve crashed with a stack once both listeners were built)', async () => {
    const pki = makePki()
    const [server, other] = [pki.issue('server'), pki.issue('other')]
    const file = config('tls.yaml', '', `{ host: 127.0.0.1, tls: { cert: "${server.cert}", key: "${other.key}" } }`)
    for (const command of ['validate', 'serve']) {
      const { code, output } = await run([command, '-c', file])
      expect(output).toMatch(/^\S*tls\.yaml:1:\d+ server\.tls\.key: \S*other-key\.pem is not a PEM private key of the certificate in \S*server\.pem: .*key values mismatch\n$/)
      expect(code).toBe(1)
    }
  })

  it('publish-model to brokers that do not answer: the address and the cause, exit 1', async () => {
    const closed = await freePort() // nothing listens there
    const { code, output } = await run(['publish-model', '--brokers', `127.0.0.1:${closed}`, '--name', 'm', join(root, 'models', 'cancer_logreg.onnx')])
    expect(code).toBe(1)
    expect(output).toMatch(new RegExp(`^publish-model failed: .*ECONNREFUSED.* \\(brokers 127\\.0\\.0\\.1:${closed}\\)\n$`))
  })

  it('publish-model --brokers: the spaces around each broker are not part of its address', async () => {
    const closed = await freePort()
    const { code, output } = await run(['publish-model', '--brokers', ` 127.0.0.1:${closed} , 127.0.0.1:${closed}`, '--name', 'm', join(root, 'models', 'cancer_logreg.onnx')])
    expect(code).toBe(1)
    expect(output).toMatch(new RegExp(`^publish-model failed: .*ECONNREFUSED.* \\(brokers 127\\.0\\.0\\.1:${closed}, 127\\.0\\.0\\.1:${closed}\\)\n$`))
  })

  it('publish-model --version past 2^53 - 1 says where the range ends, exit 2', async () => {
    const { code, output } = await run(['publish-model', '--brokers', 'b:9092', '--name', 'm', '--version', '9007199254740992', 'm.onnx'])
    expect(code).toBe(2)
    expect(output).toMatch(/^publish-model needs .*--version is an integer from 0 to 9007199254740991\n/)
  })

  it('publish-model --location with neither the model file nor --sha256 is a usage error (exit 2): its record could not be known for a replay unread', async () => {
    const location = ['publish-model', '--brokers', 'b:9092', '--name', 'm', '--location', 'http://models.example/m.onnx']
    const sha = 'AB'.repeat(32)
    const refused: [string[], RegExp][] = [
      [location, /^specserve: publish-model --location needs the model file \(hashed, not sent\) or --sha256 HEX: /],
      [[...location, '--sha256', 'ab12'], /^specserve: --sha256 "ab12" is not a sha256: 64 hex digits\n/],
      [[...location.slice(0, 5), '--sha256', sha, 'm.onnx'], /^specserve: --sha256 goes with --location: /],
      [[...location, '--sha256', sha, 'm.onnx'], /^specserve: --sha256 and a model file are two sha256s: give one \(the file m\.onnx is hashed\)\n/],
    ]
    for (const [args, message] of refused) {
      const { code, output } = await run(args)
      expect([code, output]).toEqual([2, expect.stringMatching(message)])
    }
    // With a sha256 it is taken (and sent: the brokers here do not answer).
    const closed = await freePort()
    const { code, output } = await run(['publish-model', '--brokers', `127.0.0.1:${closed}`, '--name', 'm', '--location', 'http://models.example/m.onnx', '--sha256', sha])
    expect([code, output]).toEqual([1, expect.stringMatching(/^publish-model failed: .*ECONNREFUSED/)])
  })

  it('the spool another gateway holds: `specserve: <why>`, exit 1', async () => {
    const file = config('spool.yaml', 'output: { kafka: { brokers: ["127.0.0.1:9"], spool_dir: ./spool } }\n')
    const spool = join(file, '..', 'spool')
    mkdirSync(spool)
    writeFileSync(join(spool, 'specserve.results.spool.lock'), String(process.pid)) // this test process: alive, not the gateway
    const { code, output } = await run(['serve', '-c', file])
    // A line of its own; stdout's log lines and stderr's line come through two pipes, in either order.
    expect(output.split('\n')).toContain(`specserve: spool ${join(spool, 'specserve.results.spool')} is in use by process ${process.pid} (give each gateway its own spool_dir)`)
    expect(output).not.toMatch(/^\s+at /m)
    expect(code).toBe(1)
  })

  it('LOG_LEVEL: one that is not a level is a usage error, exit 2, before anything starts; empty is the default (info)', async () => {
    const file = config('log.yaml')
    const bogus = await run(['serve', '-c', file], { LOG_LEVEL: 'loud' })
    expect(bogus).toEqual({ code: 2, output: 'specserve: LOG_LEVEL=loud is not a log level: fatal, error, warn, info, debug, trace, silent\n' })
    // Empty, as unset (pino threw on it): served, logging at info.
    const proc = startProcess(process.execPath, [cli, 'serve', '-c', file], { env: { ...ENV, LOG_LEVEL: '' } })
    try {
      await outputContains(proc, '"msg":"ready"')
      expect(proc.output()).toContain('{"level":30,')
    } finally {
      expect(await proc.stop('SIGTERM')).toBe(0)
    }
  })
})

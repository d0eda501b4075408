// Config mistakes an operator makes, and what `specserve validate` must say about each:
// refused with the path and line (not a crash, not silently accepted), or accepted as written.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { configFrom, issuesOf } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const models = `models:
  a: { kind: onnx, path: ../models/cancer_logreg.onnx }
  b: { kind: onnx, path: ../models/cancer_mlp.onnx }
`
const ensemble = (extra = ''): string => `${models}ensembles:\n  e: { strategy: deadline-fallback, models: [a, b]${extra} }\n`

describe('config: model names', () => {
  it('refuses toString and constructor as ensemble members or shadows: they are not models', () => {
    const issues = issuesOf(`${models}ensembles:\n  e:\n    strategy: deadline-fallback\n    models: [a, toString]\n    shadow: { models: [constructor] }\n`)
    expect(issues).toEqual([
      expect.objectContaining({ path: 'ensembles.e.models.1', line: 7, message: 'unknown model "toString"' }),
      expect.objectContaining({ path: 'ensembles.e.shadow.models.0', line: 8, message: 'unknown model "constructor"' }),
    ])
  })

  it('refuses a shadow model listed twice (it would run, and be counted, twice), at the second mention', () => {
    const issues = issuesOf(`${models}  s: { kind: onnx, path: ../models/cancer_mlp.onnx }\nensembles:\n  e:\n    strategy: deadline-fallback\n    models: [a]\n    shadow: { models: [s, b, s] }\n`)
    expect(issues).toEqual([expect.objectContaining({ path: 'ensembles.e.shadow.models.2', line: 9, message: '"s" is listed twice (it would run, and be counted, twice)' })])
  })

  it('refuses a name that is not well-formed Unicode (a lone surrogate) at its line, rather than crashing', () => {
    const yaml = `models:\n  "a\\ud800": { kind: onnx, path: ../models/cancer_logreg.onnx }\nensembles:\n  "e\\udc00": { strategy: deadline-fallback, models: ["a\\ud800"] }\n`
    const notUnicode = (name: string): string => `${JSON.stringify(name)} is not well-formed Unicode (a lone UTF-16 surrogate): a name must be text a URL can carry`
    expect(issuesOf(yaml)).toEqual([
      { path: 'models.a\ud800', line: 2, col: 3, message: notUnicode('a\ud800') },
      { path: 'ensembles.e\udc00', line: 4, col: 3, message: notUnicode('e\udc00') },
    ])
  })

  it('names the member listed twice', () => {
    expect(issuesOf(ensemble().replace('[a, b]', '[a, b, a]'))).toEqual([expect.objectContaining({ path: 'ensembles.e.models.2', message: '"a" is listed twice' })])
  })
})

describe('config: ports', () => {
  const saved = { rest: process.env.SPECSERVE_REST_PORT, grpc: process.env.SPECSERVE_GRPC_PORT }
  afterEach(() => {
    for (const [name, value] of [['SPECSERVE_REST_PORT', saved.rest], ['SPECSERVE_GRPC_PORT', saved.grpc]] as const) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  })

  it('refuses rest_port equal to grpc_port, from the file or after the environment', () => {
    expect(issuesOf(`${ensemble()}server: { rest_port: 9000, grpc_port: 9000 }\n`)).toEqual([
      expect.objectContaining({ path: 'server.grpc_port', line: 6, message: 'rest_port and grpc_port are both 9000: the REST and gRPC listeners need different ports (or grpc_port: null)' }),
    ])
    process.env.SPECSERVE_REST_PORT = '8081' // the default grpc_port
    expect(issuesOf(ensemble())[0]?.message).toMatch(/both 8081 \(after SPECSERVE_REST_PORT from the environment\)/)
  })

  it('accepts both ports 0 (each listener picks a free one) and gRPC off', () => {
    expect(configFrom(`${ensemble()}server: { rest_port: 0, grpc_port: 0 }\n`).server).toMatchObject({ rest_port: 0, grpc_port: 0 })
    process.env.SPECSERVE_GRPC_PORT = 'off'
    process.env.SPECSERVE_REST_PORT = '9000'
    expect(configFrom(ensemble()).server).toMatchObject({ rest_port: 9000, grpc_port: null })
  })

  it('reads port variables as digits only, and REST cannot be off', () => {
    for (const value of [' ', '0x1F90', '8080.0', '1e3', '-1', '65536']) {
      process.env.SPECSERVE_GRPC_PORT = value
      expect(issuesOf(ensemble())).toEqual([{ path: '', message: `SPECSERVE_GRPC_PORT=${JSON.stringify(value)} is not a port: digits, 0 to 65535, or off` }])
    }
    delete process.env.SPECSERVE_GRPC_PORT
    process.env.SPECSERVE_REST_PORT = 'off'
    expect(issuesOf(ensemble())[0]?.message).toBe('SPECSERVE_REST_PORT="off" is not a port: digits, 0 to 65535 (the REST listener cannot be turned off)')
  })
})

describe('config: YAML', () => {
  it('names a duplicate key and its path', () => {
    expect(issuesOf(`${ensemble()}server:\n  rest_port: 1\n  rest_port: 2\n`)).toEqual([
      { path: 'server.rest_port', line: 8, col: 3, message: 'duplicate key "rest_port": give each key once' },
    ])
  })

  it('lists the allowed forms of a key that takes several, and blames the wrong field of a map form', () => {
    const message = (yaml: string): string[] => issuesOf(yaml).map((i) => `${i.path}: ${i.message}`)
    expect(message(`${ensemble()}executors: { onnx_workers: 0 }\n`)).toEqual(['executors.onnx_workers: must be one of: "auto", an integer 1 to 256'])
    expect(message(`${ensemble()}server: { grpc_port: off }\n`)).toEqual(['server.grpc_port: must be one of: an integer 0 to 65535, null'])
    expect(message(ensemble(', select: adaptiv'))).toEqual(['ensembles.e.select: must be one of: "all", "latency-aware", "adaptive", a map (policy, accuracy_target, explore)'])
    expect(message(ensemble(', select: { policy: adaptive, accuracy_target: 2 }'))).toEqual(['ensembles.e.select.accuracy_target: must be <= 1'])
  })
})

describe('config: values', () => {
  it('refuses a numeric version that would not read back as written, and says to quote it', () => {
    const versioned = (version: string): string => ensemble().replace('cancer_logreg.onnx }', `cancer_logreg.onnx, version: ${version} }`)
    expect(issuesOf(versioned('1.10'))).toEqual([
      expect.objectContaining({ path: 'models.a.version', line: 2, message: 'version 1.10 reads as the number 1.1; quote it to keep it as written: version: "1.10"' }),
    ])
    expect(issuesOf(versioned('2.0'))[0]?.message).toMatch(/^version 2\.0 reads as the number 2;/)
    expect(configFrom(versioned('"1.10"')).models.get('a')?.version).toBe('1.10')
    expect(configFrom(versioned('3')).models.get('a')?.version).toBe('3')
  })

  it('takes a version as a string or an integer, as documented: not 1.5 unquoted, not empty', () => {
    const versioned = (version: string): string => ensemble().replace('cancer_logreg.onnx }', `cancer_logreg.onnx, version: ${version} }`)
    expect(issuesOf(versioned('1.5'))).toEqual([expect.objectContaining({ path: 'models.a.version', line: 2, message: 'version 1.5 is not an integer: quote a version that is not one (version: "1.5")' })])
    for (const blank of ['""', '" "']) {
      expect(issuesOf(versioned(blank))).toEqual([
        expect.objectContaining({ path: 'models.a.version', line: 2, message: 'version cannot be empty or blank: annotations and records name it (leave it out for "1")' }),
      ])
    }
    expect(configFrom(versioned('"1.5"')).models.get('a')?.version).toBe('1.5')
    expect(configFrom(versioned('-1')).models.get('a')?.version).toBe('-1')
  })

  it('refuses a fallback_after_ms at or over budget_ms.max: the fallbacks would never start', () => {
    const yaml = `${models}ensembles:\n  e:\n    strategy: { name: deadline-fallback, fallback_after_ms: 100 }\n    models: [a, b]\n    budget_ms: { default: 50, max: 100 }\n`
    expect(issuesOf(yaml)).toEqual([
      expect.objectContaining({ path: 'ensembles.e.strategy.fallback_after_ms', line: 6, message: 'fallback_after_ms 100 is not below budget_ms.max 100: the fallbacks would never start' }),
    ])
    expect(configFrom(yaml.replace('fallback_after_ms: 100', 'fallback_after_ms: 40')).ensembles.get('e')?.strategy.options).toEqual({ fallbackAfterMs: 40 })
  })

  it('warns of a fallback_after_ms at or over budget_ms.default: a default-budget request ends before the fallbacks start', () => {
    const yaml = (after: number): string =>
      `${models}ensembles:\n  e:\n    strategy: { name: deadline-fallback, fallback_after_ms: ${after} }\n    models: [a, b]\n    budget_ms: { default: 50, max: 200 }\n`
    const config = configFrom(yaml(60))
    expect(config.ensembles.get('e')?.strategy.options).toEqual({ fallbackAfterMs: 60 })
    expect(config.warnings).toEqual([
      expect.objectContaining({
        path: 'ensembles.e.strategy.fallback_after_ms',
        line: 6,
        message: 'fallback_after_ms 60 is not below budget_ms.default 50: a request on the default budget ends before the fallbacks start (only requests sending a budget over 60 ms can use them)',
      }),
    ])
    expect(configFrom(yaml(50)).warnings.map((w) => w.path)).toEqual(['ensembles.e.strategy.fallback_after_ms'])
    expect(configFrom(yaml(49)).warnings).toEqual([])
  })

  it('refuses durations a Node.js timer cannot hold (over 2^31-1 ms fires at once)', () => {
    const issues = issuesOf(`${ensemble(', budget_ms: { default: 50, max: 1e12 }')}server: { shutdown_grace_ms: 1000000000000 }\n`)
    const cap = 'must be at most 2147483647 ms (about 24.8 days): Node.js fires a longer timer at once'
    expect(issues.map((i) => `${i.path}: ${i.message}`)).toEqual([`ensembles.e.budget_ms.max: ${cap}`, `server.shutdown_grace_ms: ${cap}`])
    expect(configFrom(`${ensemble()}server: { shutdown_grace_ms: 2147483647 }\n`).server.shutdown_grace_ms).toBe(2147483647)
  })

  it('caps keep_alive_timeout_ms 1000 ms below the longest timer: Node.js adds its keepAliveTimeoutBuffer to it', () => {
    expect(issuesOf(`${ensemble()}server: { keep_alive_timeout_ms: 2147483647 }\n`)).toEqual([
      expect.objectContaining({ path: 'server.keep_alive_timeout_ms', message: 'must be at most 2147482647 ms: Node.js adds 1000 ms (keepAliveTimeoutBuffer) and fires a timer over 2147483647 ms at once' }),
    ])
    expect(configFrom(`${ensemble()}server: { keep_alive_timeout_ms: 2147482647 }\n`).server.keep_alive_timeout_ms).toBe(2147482647)
  })
})

describe('config: errors in two passes, as documented', () => {
  it('a shape error (a port given as a string) is reported with every other shape error; an unknown member only once the shape is right', () => {
    const yaml = (port: string): string => `${ensemble().replace('[a, b]', '[a, typo]')}server: { rest_port: ${port}, bogus: 1 }\n`
    expect(issuesOf(yaml('"8080"')).map((i) => i.path).sort()).toEqual(['server.bogus', 'server.rest_port'])
    expect(issuesOf(yaml('8080').replace(', bogus: 1', '')).map((i) => `${i.path}: ${i.message}`)).toEqual(['ensembles.e.models.1: unknown model "typo"'])
  })
})

describe('config: directories serve makes', () => {
  it('refuses repository.path and output.kafka.spool_dir under a file (serve could not make them), at the key\'s line; accepts them under a directory', () => {
    const dir = tempDir('specserve-dirs-')
    writeFileSync(join(dir, 'afile'), '')
    const yaml = (under: string): string =>
      `${ensemble()}repository: { path: ${join(dir, under, 'repo')} }\noutput:\n  kafka:\n    brokers: ["127.0.0.1:9092"]\n    spool_dir: ${join(dir, under, 'spool')}\n`
    expect(issuesOf(yaml('afile'))).toEqual([
      expect.objectContaining({ path: 'repository.path', line: 6, message: `${join(dir, 'afile')} is a file, not a directory: ${join(dir, 'afile', 'repo')} cannot be made under it` }),
      expect.objectContaining({ path: 'output.kafka.spool_dir', line: 10, message: `${join(dir, 'afile')} is a file, not a directory: ${join(dir, 'afile', 'spool')} cannot be made under it` }),
    ])
    expect(configFrom(yaml('sub')).repository?.path).toBe(join(dir, 'sub', 'repo'))
  })

  it('refuses a spool_dir that is itself a file', () => {
    const file = join(tempDir('specserve-dirs-'), 'spool')
    writeFileSync(file, '')
    expect(issuesOf(`${ensemble()}output: { kafka: { brokers: ["127.0.0.1:9092"], spool_dir: ${file} } }\n`)).toEqual([
      expect.objectContaining({ path: 'output.kafka.spool_dir', line: 6, message: `${file} is not a directory` }),
    ])
  })
})

describe('config: repository.kafka.catch_up_timeout_ms', () => {
  const yaml = (extra: string): string => `${ensemble()}repository:\n  path: ${tempDir('specserve-repo-')}\n  kafka: { brokers: ["127.0.0.1:9092"]${extra} }\n`

  it('defaults to two minutes; 0 (readiness does not wait for the model stream) up to the longest timer are taken', () => {
    expect(configFrom(yaml('')).repository?.kafka?.catchUpTimeoutMs).toBe(120_000)
    expect(configFrom(yaml(', catch_up_timeout_ms: 0')).repository?.kafka?.catchUpTimeoutMs).toBe(0)
    expect(configFrom(yaml(', catch_up_timeout_ms: 2147483647')).repository?.kafka?.catchUpTimeoutMs).toBe(2147483647)
  })

  it('refuses a negative, fractional, textual or too long limit, naming the key at its line', () => {
    const refusal = (value: string): string[] => issuesOf(yaml(`, catch_up_timeout_ms: ${value}`)).map((i) => `${i.path}:${i.line}: ${i.message}`)
    expect(refusal('-1')).toEqual(['repository.kafka.catch_up_timeout_ms:8: must be >= 0'])
    expect(refusal('1.5')).toEqual(['repository.kafka.catch_up_timeout_ms:8: must be integer'])
    expect(refusal('"2m"')).toEqual(['repository.kafka.catch_up_timeout_ms:8: must be integer'])
    expect(refusal('2147483648')).toEqual(['repository.kafka.catch_up_timeout_ms:8: must be at most 2147483647 ms (about 24.8 days): Node.js fires a longer timer at once'])
  })
})

describe('config: outputs_may_drop', () => {
  const withDrop = (value: string): string => ensemble().replace('a: { kind: onnx, path: ../models/cancer_logreg.onnx }', `a: { kind: onnx, path: ../models/cancer_logreg.onnx, outputs_may_drop: ${value} }`)

  it('takes a list of output names, on any model (none by default)', () => {
    const config = configFrom(withDrop('[probabilities, label]'))
    expect(config.models.get('a')!.outputsMayDrop).toEqual(['probabilities', 'label'])
    expect(config.models.get('b')!.outputsMayDrop).toEqual([])
  })

  it('refuses a name that is empty, and a value that is not a list, at its path', () => {
    expect(issuesOf(withDrop('[probabilities, ""]'))).toEqual([expect.objectContaining({ path: 'models.a.outputs_may_drop.1' })])
    expect(issuesOf(withDrop('probabilities'))).toEqual([expect.objectContaining({ path: 'models.a.outputs_may_drop' })])
  })
})

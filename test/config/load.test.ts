import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { configFrom, configIssues, demoConfig, issuesOf, root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const models = `models:
  a: { kind: onnx, path: ../models/cancer_logreg.onnx }
  b: { kind: onnx, path: ../models/cancer_mlp.onnx }
`

describe('config loading', () => {
  it('an empty file (nothing, comments, or a null document) says it is empty, not "must be object"', () => {
    for (const text of ['', '# nothing yet\n', '---\n', '~\n']) {
      expect(issuesOf(text)).toEqual([{ path: '', message: 'the file is empty (no YAML document, or a null one): a config needs at least models: and ensembles:' }])
    }
  })

  it('accepts the demo config and applies documented defaults', () => {
    const config = demoConfig()
    expect([...config.ensembles.keys()]).toEqual(['cancer', 'cancer-straggler', 'wine', 'digits', 'diabetes'])
    expect(config.server.body_limit_bytes).toBe(4 * 1024 * 1024)
    expect(config.server.max_in_flight).toBe(1024)
    expect(config.ensembles.get('wine')?.strategy).toEqual({
      name: 'majority-vote',
      raw: { quorum: 'majority', on_no_majority: 'plurality' },
      // Parsed once, typed and defaulted: what the strategy's factory receives.
      options: { mode: 'hard', weights: {}, quorum: 'majority', onNoMajority: 'plurality', regression: 'median', output: undefined, written: ['quorum', 'on_no_majority'] },
    })
    expect(config.ensembles.get('cancer')?.select).toEqual({ policy: 'all' })
    expect(config.executors.onnx_workers).toBeGreaterThan(0)
    expect(Object.isFrozen(config)).toBe(true)
  })

  it('keeps the headers timeout within the request timeout, as node\'s HTTP server requires: a lower request_timeout_ms lowers its default, and one set over it is a problem at its path', async () => {
    const lowered = configFrom(`server: { request_timeout_ms: 5000 }\n${models}ensembles:\n  e: { strategy: deadline-fallback, models: [a] }\n`)
    expect([lowered.server.headers_timeout_ms, lowered.server.request_timeout_ms]).toEqual([5000, 5000])
    const app = buildServer(lowered) // node throws ERR_OUT_OF_RANGE for a headers timeout over the request timeout
    await app.close()
    expect(issuesOf(`server: { request_timeout_ms: 5000, headers_timeout_ms: 6000 }\n${models}ensembles:\n  e: { strategy: deadline-fallback, models: [a] }\n`)).toEqual([
      expect.objectContaining({ path: 'server.headers_timeout_ms', message: 'headers_timeout_ms (6000) is over request_timeout_ms (5000): the headers are part of the request' }),
    ])
  })

  it('gives a missing budget the default 100 ms with a 1000 ms cap', () => {
    const config = configFrom(`${models}ensembles:\n  e: { strategy: deadline-fallback, models: [a, b] }\n`)
    expect(config.ensembles.get('e')?.budget).toEqual({ default: 100, max: 1000 })
  })

  it('reports an unknown key with its path and line', () => {
    const issues = issuesOf(`${models}ensembles:\n  e:\n    strategy: deadline-fallback\n    models: [a]\n    budgt_ms: 5\n`)
    expect(issues).toContainEqual(expect.objectContaining({ path: 'ensembles.e.budgt_ms', line: 8, message: 'unknown key' }))
  })

  it('reports a reference to a missing model at the list item', () => {
    const issues = issuesOf(`${models}ensembles:\n  e:\n    strategy: deadline-fallback\n    models: [a, zz]\n`)
    expect(issues).toEqual([expect.objectContaining({ path: 'ensembles.e.models.1', line: 7, message: 'unknown model "zz"' })])
  })

  it('reports an unreadable model file', () => {
    const issues = issuesOf(`models:\n  a: { kind: onnx, path: nowhere.onnx }\nensembles:\n  e: { strategy: deadline-fallback, models: [a] }\n`)
    expect(issues).toEqual([expect.objectContaining({ path: 'models.a.path', line: 2 })])
    expect(issues[0]?.message).toMatch(/cannot read model file .*nowhere\.onnx/)
  })

  it('reads a path written ~/… under the home directory (YAML leaves ~ as it is; a shell would not)', () => {
    const home = tempDir('specserve-home-')
    copyFileSync(join(root, 'models', 'cancer_logreg.onnx'), join(home, 'm.onnx'))
    const saved = process.env.HOME
    process.env.HOME = home
    try {
      expect(configIssues(`models:\n  a: { kind: onnx, path: ~/m.onnx }\nensembles:\n  e: { strategy: deadline-fallback, models: [a] }\n`)).toEqual([])
      const tls = issuesOf(`server: { tls: { cert: ~/cert.pem, key: ~/key.pem } }\n${models}ensembles:\n  e: { strategy: deadline-fallback, models: [a] }\n`)
      expect(tls.map((i) => i.message).join('\n')).toContain(join(home, 'cert.pem'))
    } finally {
      process.env.HOME = saved
    }
  })

  it('reports unknown kinds, unknown strategies and invalid strategy options, all at once', () => {
    const issues = issuesOf(`models:
  a: { kind: onnx, path: ../models/cancer_logreg.onnx }
  r: { kind: carrier-pigeon }
ensembles:
  e: { strategy: fastest-wins, models: [a] }
  v:
    strategy: { name: majority-vote, quorum: most }
    models: [a]
  w:
    strategy: { name: best-quality, good_enough: 2 }
    models: [a]
    budget_ms: { default: 500, max: 100 }
`)
    const where = issues.map((i) => `${i.line} ${i.path}`)
    expect(where).toEqual(
      expect.arrayContaining(['3 models.r.kind', '5 ensembles.e.strategy', '7 ensembles.v.strategy.quorum', '10 ensembles.w.strategy.good_enough', '12 ensembles.w.budget_ms.default']),
    )
    expect(issues.find((i) => i.path === 'models.r.kind')?.message).toMatch(/unknown kind "carrier-pigeon"/)
    expect(issues.find((i) => i.path === 'ensembles.e.strategy')?.message).toMatch(/unknown strategy "fastest-wins"/)
  })

  it('reports YAML syntax errors with their line', () => {
    const issues = issuesOf('models:\n  a: { kind: onnx\nensembles: {}\n')
    expect(issues[0]?.line).toBeGreaterThanOrEqual(2)
  })
})

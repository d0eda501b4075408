// What the YAML of a config may hold: what an operator writes by mistake or copies from a
// YAML 1.1 tool is refused at its line (not read some other way, not crashed on), and a
// file that would expand to more than the gateway can check without stalling is refused.
import { describe, expect, it, vi } from 'vitest'
import { shownPath } from '../../src/config/yaml.ts'
import { configFrom, issuesOf } from '../helpers.ts'

const models = `models:
  a: { kind: onnx, path: ../models/cancer_logreg.onnx }
  b: { kind: onnx, path: ../models/cancer_mlp.onnx }
`
const ensembles = 'ensembles:\n  e: { strategy: deadline-fallback, models: [a, b] }\n'
const where = (yaml: string): string[] => issuesOf(yaml).map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`)

describe('config YAML: aliases', () => {
  /** 100 models; e0 lists them all under an anchor, and `ensembles` more ensembles list them through an alias. */
  function aliased(ensembleCount: number): string {
    const names = Array.from({ length: 100 }, (_, i) => `m${i}`)
    const lines = ['models:', ...names.map((n) => `  ${n}: { kind: onnx, path: ../models/cancer_logreg.onnx }`), 'ensembles:']
    lines.push(`  e0: { strategy: deadline-fallback, models: &m [${names.join(', ')}] }`)
    for (let i = 1; i < ensembleCount; i++) lines.push(`  e${i}: { strategy: deadline-fallback, models: *m }`)
    return `${lines.join('\n')}\n`
  }

  it('refuses aliases that add more than 200000 entries, at the alias that goes past; what is written out is not counted', () => {
    // Each alias of the 100-name list adds 100 entries: e2001's is the one past 200000.
    const yaml = aliased(2100)
    const line = yaml.split('\n').findIndex((l) => l.startsWith('  e2001:')) + 1
    expect(issuesOf(yaml)).toEqual([
      {
        path: 'ensembles.e2001.models',
        line,
        col: 49,
        message: 'aliases expand this config past 200000 list items and map entries (here, *m): is this an alias bomb? Repeat fewer large blocks',
      },
    ])
    expect(configFrom(aliased(2000)).ensembles.size).toBe(2000)
  })

  it('refuses an alias bomb (aliases of aliases) at the alias that goes past the bound', () => {
    const bomb = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]']
    for (let i = 1; i <= 8; i++) bomb.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`)
    expect(where(`${bomb.join('\n')}\n${models}${ensembles}`)).toEqual([
      '6:10 a5.0: aliases expand this config past 200000 list items and map entries (here, *a4): is this an alias bomb? Repeat fewer large blocks',
    ])
  })

  it('accepts many aliases of one shared block, and refuses an alias inside its own anchor or naming none', () => {
    const shared = ['  m0: { kind: onnx, path: ../models/cancer_logreg.onnx, description: &d "shared" }']
    for (let i = 1; i <= 150; i++) shared.push(`  m${i}: { kind: onnx, path: ../models/cancer_logreg.onnx, description: *d }`)
    expect(configFrom(`models:\n${shared.join('\n')}\nensembles:\n  e: { strategy: deadline-fallback, models: [m0] }\n`).models.size).toBe(151)
    expect(where(`${models}${ensembles}output: &o { x: [*o] }\n`)).toEqual(['6:18 output.x.0: alias *o is inside its own anchor: it would repeat without end'])
    expect(where(`${models}${ensembles}server: { host: *h }\n`)).toEqual(['6:17 server.host: alias *h names no anchor (&h) before it'])
  })
})

describe('config YAML: keys', () => {
  it('refuses one key written as two YAML types (true and "true", 1 and "1"): one would silently replace the other', () => {
    const twice = (first: string, second: string): string =>
      `${models}  ${first}: { kind: onnx, path: ../models/cancer_logreg.onnx }\n  ${second}: { kind: onnx, path: ../models/cancer_mlp.onnx }\n${ensembles}`
    expect(where(twice('true', '"true"'))).toEqual(['5:3 models.true: duplicate key "true" (true and "true" are one key once read): give each key once'])
    expect(where(twice('1', '"1"'))).toEqual(['5:3 models.1: duplicate key "1" (1 and "1" are one key once read): give each key once'])
    expect(where(twice('1.0', '1'))).toEqual(['5:3 models.1: duplicate key "1" (1.0 and 1 are one key once read): give each key once'])
  })

  it('refuses a merge key (<<), which YAML 1.2 does not have, saying how to write it instead', () => {
    const merge = 'merge keys (<<) are not part of YAML 1.2 and are not supported: write the keys out in this map (an alias can still stand for a whole value: key: *anchor)'
    expect(where(`shared: &s { kind: onnx }\n${models}  c:\n    <<: *s\n    path: ../models/cancer_mlp.onnx\n${ensembles}`)).toEqual([`6:5 models.c.<<: ${merge}`])
  })

  it('refuses lists or maps nested thousands deep saying so, not with the parser\'s stack overflow', () => {
    for (const [open, close] of [['[', ']'], ['{a: ', '}']] as const) {
      const found = issuesOf(`${models}  c: ${open.repeat(5000)}${close.repeat(5000)}\n${ensembles}`)
      expect(found.map((i) => i.message)).toEqual(['lists or maps nested deeper than the YAML reader can follow (hundreds of levels): a config is a few levels deep'])
    }
  })

  it('refuses a list or a map as a key, at its line, rather than a string made of it', () => {
    expect(where(`${models}  ? [x, y]\n  : { kind: onnx }\n${ensembles}`)).toEqual(['4:5 models: a key must be a name or a number written out, not a list, a map or an alias'])
  })
})

describe('config YAML: tags and directives', () => {
  it('refuses the YAML 1.1 tags the parser knows (a merge key behind !!merge, a timestamp), as any tag it does not', () => {
    const unknown = (tag: string): string => `unknown tag ${tag}: a config holds plain YAML 1.2 values (strings, numbers, true/false, null, lists, maps); remove the tag`
    expect(where(`${models}${ensembles}admin: { description: !!timestamp 2024-01-01 }\n`).map((l) => l.replace(/^\S+ \S+ /, ''))).toEqual([unknown('!!timestamp')])
    expect(where(`shared: &s { kind: onnx }\n${models}  c: { !!merge <<: *s, path: ../models/cancer_mlp.onnx }\n${ensembles}`).map((l) => l.replace(/^\S+ \S+ /, ''))).toContain(unknown('!!merge'))
  })

  it('reads a flow list or map closed at its parent\'s indentation (JSON-like layout), as written', () => {
    const yaml = `models:\n  a: { kind: onnx, path: ../models/cancer_logreg.onnx }\n  b: {\n    kind: onnx,\n    path: ../models/cancer_mlp.onnx\n  }\nensembles:\n  e:\n    strategy: deadline-fallback\n    models: [\n      a,\n      b,\n    ]\n`
    expect(configFrom(yaml).ensembles.get('e')?.models).toEqual(['a', 'b'])
  })

  it('refuses tags it does not know, and a core tag its value does not fit, rather than dropping them', () => {
    const unknown = (tag: string): string => `unknown tag ${tag}: a config holds plain YAML 1.2 values (strings, numbers, true/false, null, lists, maps); remove the tag`
    const yaml = `${models}  c: { kind: !custom onnx, path: ../models/cancer_mlp.onnx }\n  d:\n    kind: onnx\n    path: !!js/function ../models/cancer_mlp.onnx\n${ensembles}`
    expect(where(yaml)).toEqual([`4:14 models.c.kind: ${unknown('!custom')}`, `7:11 models.d.path: ${unknown('!!js/function')}`])
    expect(where(`${models}${ensembles}admin: { watch_config: !!bool yes }\n`)).toEqual([
      '6:24 admin.watch_config: the value does not fit its tag !!bool (it would be read as a string): write a !!bool value, or remove the tag',
    ])
    expect(configFrom(`${models}  c: { kind: onnx, path: ../models/cancer_mlp.onnx, version: !!str 2 }\n${ensembles}`).models.get('c')?.version).toBe('2')
  })

  it('refuses %YAML 1.1 (which reads yes as true and has merge keys), and takes %YAML 1.2', () => {
    expect(issuesOf(`%YAML 1.1\n---\n${models}${ensembles}`)).toEqual([
      { path: '', line: 1, col: 1, message: '%YAML 1.1: configs are read as YAML 1.2 only (1.1 reads yes, no, on and off as booleans, 010 as octal, and has merge keys): remove the directive' },
    ])
    expect(configFrom(`%YAML 1.2\n---\n${models}${ensembles}`).models.size).toBe(2)
  })
})

describe('config YAML: where an error is reported', () => {
  it('reports an unknown key whose value is a block map at the key, not at its first child', () => {
    expect(where(`${models}${ensembles}server:\n  tlss:\n    cert: a.pem\n  rest_pot: 8080\n`)).toEqual(['7:3 server.tlss: unknown key', '9:3 server.rest_pot: unknown key'])
  })

  it('reports a missing key of a block map at the map\'s key', () => {
    expect(where(`${models}  c:\n    path: ../models/cancer_mlp.onnx\n${ensembles}`)).toEqual(['4:3 models.c: missing required key: kind'])
  })
})

describe('shownPath', () => {
  it('shows a config below the working directory relative to it, and one elsewhere as its absolute path (not ../etc/…)', () => {
    const cwd = vi.spyOn(process, 'cwd').mockReturnValue('/app')
    try {
      expect(shownPath('/app/conf/gateway.yaml')).toBe('conf/gateway.yaml')
      expect(shownPath('/etc/specserve/specserve.yaml')).toBe('/etc/specserve/specserve.yaml')
      expect(shownPath('/application.yaml')).toBe('/application.yaml')
    } finally {
      cwd.mockRestore()
    }
  })
})

// A reload whose models cannot all be created (an executor kind's create throws on the
// second new model): the new models already made hold workers or connections, so they are
// closed, and the serving config goes on untouched.
import Type from 'typebox'
import { afterEach, describe, expect, it } from 'vitest'
import { getExecutorKind, registerExecutorKind } from '../../src/executors/registry.ts'
import type { Executor } from '../../src/executors/types.ts'
import { Gateway } from '../../src/gateway.ts'
import { configFrom } from '../helpers.ts'
import { x } from '../starter/scripted.ts'

interface FragileConfig {
  kind: 'fragile'
  fail_create?: boolean
}

const closed: string[] = []

function fragile(name: string): Executor {
  return {
    name,
    kind: 'fragile',
    metadata: () => ({ name, version: '1', kind: 'fragile', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'label', datatype: 'INT64', shape: [-1] }] }),
    load: () => Promise.resolve(),
    close: () => {
      closed.push(name)
      return Promise.resolve()
    },
    infer: () => Promise.resolve({ label: { datatype: 'INT64', shape: [1], data: BigInt64Array.of(1n) } }),
  }
}

if (!getExecutorKind('fragile')) {
  registerExecutorKind<FragileConfig, FragileConfig>({
    kind: 'fragile',
    schema: Type.Object({ kind: Type.Literal('fragile'), fail_create: Type.Optional(Type.Boolean()), version: Type.Optional(Type.String()) }),
    create: (name, config) => {
      if (config.fail_create) throw new Error(`cannot create ${name}`)
      return fragile(name)
    },
  })
}

const ensemble = 'ensembles:\n  e:\n    strategy: deadline-fallback\n    models: [m]\n    budget_ms: { default: 500, max: 1000 }\n'

let gateway: Gateway | undefined

afterEach(async () => {
  await gateway?.close()
  closed.length = 0
})

describe('reload: models that cannot all be created', () => {
  it('closes the new models made before the one that failed, and keeps serving the old config', async () => {
    gateway = new Gateway(configFrom(`models:\n  m: { kind: fragile }\n${ensemble}`))
    await gateway.load()
    const next = configFrom(`models:\n  m: { kind: fragile }\n  a: { kind: fragile }\n  b: { kind: fragile, fail_create: true }\n${ensemble}`)
    await expect(gateway.reload(next)).rejects.toThrow('cannot create b')
    expect(closed).toEqual(['a'])
    const result = await gateway.predict({ id: 'r', ensemble: 'e', inputs: x })
    expect(result.error).toBeNull()
    expect(Object.keys(Object.fromEntries(gateway.models))).toEqual(['m'])
  })

  it('closes them when the first config cannot be built', () => {
    expect(() => new Gateway(configFrom(`models:\n  m: { kind: fragile }\n  b: { kind: fragile, fail_create: true }\n${ensemble}`))).toThrow('cannot create b')
    expect(closed).toEqual(['m'])
  })
})

describe('reload report: calibration', () => {
  it('names the models whose calibration (the file beside the config) the reload added, changed or removed', async () => {
    const yaml = 'models:\n  a: { kind: scripted }\n  b: { kind: scripted }\nensembles:\n  e: { strategy: best-quality, models: [a, b] }\n'
    const calibrated = (entries: [string, number | { confidence: Float64Array; accuracy: Float64Array }][]) => ({ ...configFrom(yaml), calibration: new Map(entries) })
    gateway = new Gateway(calibrated([['a', 2], ['b', 1.5]]))
    await gateway.load()
    expect((await gateway.reload(calibrated([['a', 2], ['b', 1.5]]))).calibration).toEqual([])
    const map = { confidence: Float64Array.of(0.5, 0.9), accuracy: Float64Array.of(0.6, 0.8) }
    expect((await gateway.reload(calibrated([['b', map], ['a', 3]]))).calibration).toEqual(['a', 'b'])
    expect((await gateway.reload(calibrated([['b', { ...map, accuracy: Float64Array.of(0.6, 0.7) }]]))).calibration).toEqual(['a', 'b'])
    expect((await gateway.reload(calibrated([['b', { ...map, accuracy: Float64Array.of(0.6, 0.7) }]]))).calibration).toEqual([])
  })
})

// When a reload closes the executors it replaced: only once no predict that could use them
// is running, however many reloads came since the predict started. Executors here fail
// once closed (as a closed ONNX session or worker would), on a fake clock.
import Type from 'typebox'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ModelError } from '../../src/errors.ts'
import { getExecutorKind, registerExecutorKind } from '../../src/executors/registry.ts'
import type { Executor } from '../../src/executors/types.ts'
import { Gateway } from '../../src/gateway.ts'
import type { TensorMap } from '../../src/tensor/index.ts'
import type { PredictResult } from '../../src/types.ts'
import { configFrom } from '../helpers.ts'
import { x } from '../starter/scripted.ts'

interface ClosableConfig {
  kind: 'closable'
  delay_ms: number
}

/** Each close, as `<model>@<delay>`, in order. */
const closed: string[] = []

function closable(name: string, config: ClosableConfig): Executor {
  let isClosed = false
  return {
    name,
    kind: 'closable',
    metadata: () => ({ name, version: String(config.delay_ms), kind: 'closable', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'label', datatype: 'INT64', shape: [-1] }] }),
    load: () => Promise.resolve(),
    close: () => {
      isClosed = true
      closed.push(`${name}@${config.delay_ms}`)
      return Promise.resolve()
    },
    infer: () =>
      new Promise<TensorMap>((resolve, reject) =>
        setTimeout(() => (isClosed ? reject(new ModelError('MODEL_FAILED', 'used after close')) : resolve({ label: { datatype: 'INT64', shape: [1], data: BigInt64Array.of(1n) } })), config.delay_ms),
      ),
  }
}

if (!getExecutorKind('closable')) {
  registerExecutorKind<ClosableConfig, ClosableConfig>({
    kind: 'closable',
    schema: Type.Object({ kind: Type.Literal('closable'), delay_ms: Type.Number(), version: Type.Optional(Type.String()) }),
    create: (name, config) => closable(name, config),
  })
}

const config = (delayMs: number, extraModel = '') =>
  configFrom(`models:\n  m: { kind: closable, delay_ms: ${delayMs} }\n${extraModel}ensembles:\n  e:\n    strategy: deadline-fallback\n    models: [m]\n    budget_ms: { default: 500, max: 1000 }\n`)

let gateway: Gateway

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] })
  closed.length = 0
})

afterEach(async () => {
  vi.useRealTimers()
  await gateway.close()
})

describe('reload: closing replaced models', () => {
  it('a model kept by one reload and replaced by the next serves the predict that started before both, then closes', async () => {
    gateway = new Gateway(config(200))
    await gateway.load()
    let result: PredictResult | undefined
    void gateway.predict({ id: 'r', ensemble: 'e', inputs: x }).then((r) => (result = r))
    await gateway.reload(config(200, '  other: { kind: closable, delay_ms: 1 }\n')) // keeps m
    await gateway.reload(config(50)) // replaces m, while the first predict still runs on it
    expect(closed).toEqual(['other@1']) // the newer state's own leftover: nothing runs on it
    await vi.advanceTimersByTimeAsync(200)
    expect(result?.error).toBeNull()
    expect(result?.models).toMatchObject([{ name: 'm', status: 'ok', used: true }])
    expect(closed).toEqual(['other@1', 'm@200']) // closed once that predict was done
  })

  it('idle() waits for a predict of a replaced config too, not only the serving one\'s (shutdown closes the output after it)', async () => {
    gateway = new Gateway(config(200))
    await gateway.load()
    void gateway.predict({ id: 'r', ensemble: 'e', inputs: x })
    await gateway.reload(config(50)) // the serving config runs nothing; the replaced one runs the predict
    let idle = false
    void gateway.idle(10_000).then(() => (idle = true))
    await vi.advanceTimersByTimeAsync(150)
    expect(idle).toBe(false)
    await vi.advanceTimersByTimeAsync(50)
    expect(idle).toBe(true)
  })

  it('closes a replaced model at once when no predict runs on it, and a new predict runs on the new one', async () => {
    gateway = new Gateway(config(200))
    await gateway.load()
    await gateway.reload(config(50))
    expect(closed).toEqual(['m@200'])
    let result: PredictResult | undefined
    void gateway.predict({ id: 'r', ensemble: 'e', inputs: x }).then((r) => (result = r))
    await vi.advanceTimersByTimeAsync(50)
    expect(result?.error).toBeNull()
    expect(result?.models).toMatchObject([{ name: 'm', status: 'ok' }])
    expect(closed).toEqual(['m@200'])
  })
})

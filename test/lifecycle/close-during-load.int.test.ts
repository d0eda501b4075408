// A gateway closed while its first load is still going (a SIGTERM during the start) does not
// wait for every queued model to load first: the loads a worker has not begun are refused
// ("gateway closing") without being opened. Real pool and sessions: six slow models in one worker.
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/config/yaml.ts'
import { Gateway } from '../../src/gateway.ts'
import { configFrom } from '../helpers.ts'

describe('a gateway closed during its first load', () => {
  it('refuses the loads its worker has not begun instead of waiting for them', async () => {
    const names = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']
    const gateway = new Gateway(
      configFrom(`
executors: { onnx_workers: 1 }
models:
${names.map((m) => `  ${m}: { kind: onnx, path: ../models/cancer_slow.onnx, placement: worker }`).join('\n')}
ensembles:
  e: { strategy: deadline-fallback, models: [${names.join(', ')}] }
`),
    )
    const loaded = gateway.load().then(
      () => null,
      (err: unknown) => err,
    )
    await gateway.close()
    const err = await loaded
    expect(err).toBeInstanceOf(ConfigError)
    // The last queued behind the others: never opened.
    expect((err as ConfigError).issues).toContainEqual(expect.objectContaining({ path: 'models.m5', message: expect.stringContaining('gateway closing') }))
  })
})

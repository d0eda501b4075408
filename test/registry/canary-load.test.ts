// A canary pair's load when one version fails to load: the failure is thrown only once the
// other version's load has settled too. The refused reload closes the pair next; a load
// still going then would register (or open) what that close never sees.
import { describe, expect, it } from 'vitest'
import type { Executor } from '../../src/executors/types.ts'
import { CanaryExecutor } from '../../src/registry/canary.ts'
import type { CanarySettings } from '../../src/registry/config.ts'

const settings: CanarySettings = { weight: 1, promoteAfter: 1000, maxErrorRate: 0.01, minAgreement: 0.9 }

/** A version whose load fails (or not) in a later turn of the event loop; `settled` says whether it has. */
function version(failure?: string): Executor & { settled: boolean } {
  const executor = {
    name: 'm',
    kind: 'stub',
    settled: false,
    metadata: () => ({ name: 'm', version: '1', kind: 'stub', inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [-1, 2] }], outputs: [{ name: 'label', datatype: 'INT64' as const, shape: [-1] }] }),
    load: () =>
      new Promise<void>((resolve, reject) =>
        setImmediate(() => {
          executor.settled = true
          if (failure) reject(new Error(failure))
          else resolve()
        }),
      ),
    infer: () => Promise.reject(new Error('not run')),
    close: () => Promise.resolve(),
  }
  return executor
}

/** A version whose load fails at once. */
function broken(failure: string): Executor {
  return { ...version(), load: () => Promise.reject(new Error(failure)) }
}

const pair = (stable: Executor, canary: Executor): CanaryExecutor => new CanaryExecutor(stable, canary, { version: '2', spec: {}, settings, decide: () => undefined })

describe('canary load', () => {
  it("fails with the serving version's failure only once the canary's load has settled", async () => {
    const canary = version()
    await expect(pair(broken('stable broke'), canary).load()).rejects.toThrow('stable broke')
    expect(canary.settled).toBe(true)
  })

  it("fails with the canary's failure only once the serving version's load has settled", async () => {
    const stable = version()
    await expect(pair(stable, broken('canary broke')).load()).rejects.toThrow('canary broke')
    expect(stable.settled).toBe(true)
  })

  it("fails with the serving version's failure when both fail", async () => {
    await expect(pair(version('stable broke'), broken('canary broke')).load()).rejects.toThrow('stable broke')
  })
})

// An ONNX executor closed while it is still loading (a refused reload closes its fresh
// runtimes as soon as a sibling's load fails) releases what the load goes on to get: its
// lane in the shared pool (and the sessions every worker holds for it), and an inline
// session on the main thread. Real pool and sessions; close() is called at each step.
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { onnxExecutorKind, SHARED_POOL } from '../../../src/executors/onnx/executor.ts'
import { InlineModel } from '../../../src/executors/onnx/inline.ts'
import type { OnnxSpec } from '../../../src/executors/onnx/config.ts'
import type { PlacementMode } from '../../../src/executors/onnx/placement.ts'
import type { OnnxPool } from '../../../src/executors/onnx/pool.ts'
import type { Executor, ExecutorEnv } from '../../../src/executors/types.ts'
import { root } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'
import { usePool } from './pool-helpers.ts'

const pools = usePool()
const tiny = join(root, 'models', 'cancer_logreg.onnx')

/** An executor on a pool of its own test, shared as the gateway's; inline_max_ms far over the tiny model's runs, so auto places it inline. */
function executor(name: string, placement: PlacementMode, path = tiny): { ex: Executor; pool: OnnxPool } {
  const pool = pools.open({ workers: 1, queueLimit: 64 })
  const env: ExecutorEnv = {
    executors: { onnx_workers: 1, onnx_queue: 64, inline_max_ms: 1000, onnx_worker_nice: 0 } as ExecutorEnv['executors'],
    shared: <R,>(key: string): R => {
      expect(key).toBe(SHARED_POOL)
      return pool as R
    },
  }
  const spec: OnnxSpec = { path, version: '1', maxConcurrency: Infinity, dedicatedWorkers: 0, placement, inlineMaxMs: undefined, batching: undefined, repository: undefined }
  return { ex: onnxExecutorKind.create(name, spec, env), pool }
}

/** Calls `during` as the executor starts opening an inline session; resolves with that session once open. */
function onInlineOpen(during: () => void): Promise<InlineModel> {
  const open = InlineModel.open.bind(InlineModel)
  return new Promise((resolve) => {
    vi.spyOn(InlineModel, 'open').mockImplementation(async (...args) => {
      during()
      const inline = await open(...args)
      resolve(inline)
      return inline
    })
  })
}

describe('an onnx executor closed while loading', () => {
  it('unregisters the lane its load registers in the shared pool after the close', async () => {
    const { ex, pool } = executor('closed-registering', 'worker')
    const loading = ex.load().then(() => null, (err: unknown) => err)
    await ex.close()
    const failure = await loading
    expect(pool.laneStats('closed-registering')).toBeUndefined()
    expect(failure).toEqual(new Error('model closed-registering was closed while loading'))
  })

  it('closes the inline session its load opens after the close (placement auto, measured tiny)', async () => {
    const { ex, pool } = executor('closed-opening', 'auto')
    let closing: Promise<void> | undefined
    const opened = onInlineOpen(() => {
      closing = ex.close()
    })
    const loading = ex.load().catch(() => undefined)
    const inline = await opened
    await closing
    await loading
    expect(inline.closed).toBe(true)
    expect(pool.laneStats('closed-opening')).toBeUndefined()
  })

  it('closes the session of a model pinned inline opened after the close', async () => {
    const { ex } = executor('closed-pinned', 'inline')
    let closing: Promise<void> | undefined
    const opened = onInlineOpen(() => {
      closing = ex.close()
    })
    const loading = ex.load().then(() => null, (err: unknown) => err)
    const inline = await opened
    await closing
    expect(await loading).toEqual(new Error('model closed-pinned was closed while loading'))
    expect(inline.closed).toBe(true)
  })
})

describe('an onnx executor measured tiny', () => {
  it('does not serve inline a file replaced on disk after its workers loaded it: it stays with the workers\' copy', async () => {
    const file = join(tempDir('specserve-replaced-'), 'model.onnx')
    copyFileSync(tiny, file)
    const { ex } = executor('replaced', 'auto', file)
    // Replaced as the main thread opens it: its workers serve the file they loaded.
    const opened = onInlineOpen(() => copyFileSync(join(root, 'models', 'cancer_mlp.onnx'), file))
    await ex.load()
    const inline = await opened
    try {
      expect(inline.closed).toBe(true)
      expect(ex.describe?.()).toMatchObject({ placement: { current: 'worker', reason: expect.stringContaining("its file changed since the workers loaded it") } })
    } finally {
      await ex.close()
    }
  })
})

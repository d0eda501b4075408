// RetiredPools' close on made-up pools: it waits for every dedicated pool to be retired and
// closed, a pool retired after the close began included (a trial's fresh runtime still in its
// gate run at the stop is retired once that ends), and only then resolves.
import { describe, expect, it } from 'vitest'
import type { OnnxPool } from '../../../src/executors/onnx/pool.ts'
import { RetiredPools } from '../../../src/executors/onnx/retired-pools.ts'

/** A pool whose close (its last thread's exit) waits for `exit()`; closeLeavingStuck is done at once. */
function pool(): OnnxPool & { exit: () => void; began: boolean } {
  let exit!: () => void
  const closed = new Promise<void>((resolve) => (exit = resolve))
  const fake = {
    exit: () => exit(),
    began: false,
    beginClose: () => void (fake.began = true),
    close: () => closed,
    closeLeavingStuck: () => Promise.resolve(),
    inRun: () => false,
    stats: () => ({ setAside: 0 }),
  }
  return fake as unknown as OnnxPool & { exit: () => void; began: boolean }
}

/** Whether `promise` has settled, after the microtasks queued so far. */
function watch(promise: Promise<void>): () => boolean {
  let settled = false
  void promise.then(() => (settled = true))
  return () => settled
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('RetiredPools.close', () => {
  it('resolves at once when no dedicated pool was made', async () => {
    await expect(new RetiredPools().close()).resolves.toBeUndefined()
  })

  it('waits for a pool retired after it began, as the one before it, until both have closed', async () => {
    const kept = new RetiredPools()
    const [first, later] = [pool(), pool()]
    kept.made(first)
    kept.made(later)
    await kept.retire('a', first)
    const closed = watch(kept.close())
    // A trial's runtime, in its gate run as the close began, is retired now.
    await kept.retire('b', later)
    first.exit()
    await turn()
    expect(closed()).toBe(false)
    later.exit()
    await turn()
    expect(closed()).toBe(true)
  })

  it('waits for a pool made but not yet retired when it began, though nothing was retired then', async () => {
    const kept = new RetiredPools()
    const trial = pool()
    kept.made(trial)
    const closed = watch(kept.close())
    await turn()
    expect(closed()).toBe(false)
    await kept.retire('b', trial)
    await turn()
    expect(closed()).toBe(false)
    trial.exit()
    await turn()
    expect(closed()).toBe(true)
  })

  it('has the pools still serving refuse loads not begun once the gateway stops', () => {
    const kept = new RetiredPools()
    const serving = pool()
    kept.made(serving)
    kept.beginClose()
    expect(serving.began).toBe(true)
  })
})

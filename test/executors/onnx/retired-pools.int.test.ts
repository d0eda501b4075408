// A model's dedicated workers closed while a thread of theirs set aside as stuck still runs
// (an old version a reload replaced; a trial's fresh runtime whose gate run never ends): the
// close does not wait for that run, so a trial or a refused reload ends and frees the reload
// queue; the thread stays in specserve_onnx_workers_set_aside, with `retired="true"`, until it
// exits; and the gateway's close waits for it. The watchdog is shortened here (every 20 ms,
// stuck 200 ms past the deadline); each test closes the gateway, which waits for the stuck
// thread's exit, as a process that exits with a thread inside a run aborts.
import { copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { loadConfigFile, type GatewayConfig } from '../../../src/config/load.ts'
import type { ConfigIssue } from '../../../src/config/yaml.ts'
import type * as Watchdog from '../../../src/executors/onnx/watchdog.ts'
import { inferOffPath } from '../../../src/executors/types.ts'
import { Gateway } from '../../../src/gateway.ts'
import type { VersionSource } from '../../../src/reload/version-source.ts'
import type { TensorMap } from '../../../src/tensor/index.ts'
import type { MetricAttributes, MetricsSink } from '../../../src/types.ts'
import { tempDir } from '../../temp-dirs.ts'
import { writeCostlyModel } from './hand-made-models.ts'

vi.mock('../../../src/executors/onnx/watchdog.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof Watchdog>()),
  WATCHDOG: Object.freeze({ everyMs: 20, floorMs: 200, runs: 10 }),
}))

/** One row for the costly model: `cost` is its column 3 (its Loop turns, in thousands: ~1.5 ms each). */
const costing = (cost: number): TensorMap => ({ input: { datatype: 'FP32', shape: [1, 4], data: Float32Array.from([1, 2, 3, cost]) } })
/** A run of some 2 s: far longer than the watchdog allows a run given 50 ms. */
const STUCK = 1500

let gateway: Gateway | undefined

/** Closes the gateway, with no bound: its close waits for the stuck threads to exit. */
async function close(g: Gateway): Promise<void> {
  gateway = undefined
  await g.close(Infinity)
}

afterEach(async () => {
  vi.restoreAllMocks()
  if (gateway) await close(gateway)
})

/** Two configs serving the costly model on a worker of its own, from two copies of its file (the second is a new runtime). */
function configs(): [GatewayConfig, GatewayConfig] {
  const dir = tempDir('specserve-retired-')
  writeCostlyModel(join(dir, 'costly.onnx'), 1000)
  copyFileSync(join(dir, 'costly.onnx'), join(dir, 'costly-2.onnx'))
  return [1, 2].map((n) => {
    const file = join(dir, `gateway-${n}.yaml`)
    writeFileSync(
      file,
      `models: { costly: { kind: onnx, path: ${n === 1 ? 'costly' : 'costly-2'}.onnx, dedicated_workers: 1 } }
ensembles: { e: { strategy: deadline-fallback, models: [costly] } }
`,
    )
    return loadConfigFile(file)
  }) as [GatewayConfig, GatewayConfig]
}

/**
 * A version source that serves the config as written, `pinned` for a trial, and whose gate
 * passes, but for its `stuckAt`-th call: that one runs an input whose run outlasts the
 * watchdog on each model it judges, and fails at its own time limit, as the registry's gate does.
 */
function versions(pinned: GatewayConfig, stuckAt = 0): VersionSource {
  let calls = 0
  return {
    isRepositoryModel: () => false,
    resolve: (config, reload) => (reload?.pin ? pinned : config),
    gate: async (loaded) => {
      if (++calls !== stuckAt) return []
      const issues: ConfigIssue[] = []
      for (const { model, executor } of loaded) {
        await inferOffPath(executor, costing(STUCK), 50, 'no answer within 0.05 s', false).catch((err: Error) => {
          issues.push({ path: `models.${model.name}`, message: `validation gate failed: ${err.message}` })
        })
      }
      return issues
    },
  }
}

/** The set-aside gauge's points, as a scrape reads them (the models' executors, then the shared resources). */
function setAside(g: Gateway): [MetricAttributes, number][] {
  const points: [MetricAttributes, number][] = []
  const take = (name: string, _help: string, at: readonly (readonly [MetricAttributes, number])[]): void => {
    if (name === 'specserve_onnx_workers_set_aside') for (const [attributes, value] of at) points.push([attributes, value])
  }
  const sink: MetricsSink = { gauge: take, counter: () => undefined }
  for (const m of g.models.values()) m.executor.collect?.(sink)
  for (const resource of g.resources.values()) resource.collect?.(sink)
  return points
}

/** The worker the next run goes to: whether its thread has exited. */
function nextRunsWorker(): { exited: () => boolean } {
  let exited = false
  const post = Worker.prototype.postMessage
  const spy = vi.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (this: Worker, ...args: Parameters<Worker['postMessage']>) {
    if ((args[0] as { type: string }).type === 'run') {
      this.once('exit', () => void (exited = true))
      spy.mockRestore()
    }
    post.apply(this, args)
  })
  return { exited: () => exited }
}

/** Resolves once a worker is set aside as stuck (its warning). */
function stuckWarning(): Promise<void> {
  return new Promise((resolve) => {
    vi.spyOn(process, 'emitWarning').mockImplementation((message) => {
      if (String(message).includes('set aside')) resolve()
    })
  })
}

describe('a model\'s dedicated workers closed with a thread set aside as stuck', () => {
  it('keep that thread in the set-aside gauge, with retired="true", once a reload has replaced the model, until it exits', { timeout: 30_000 }, async () => {
    const [first, second] = configs()
    const g = (gateway = new Gateway(first, { versions: versions(second) }))
    await g.load()
    const setAsideNow = stuckWarning()
    const stuck = nextRunsWorker()
    await expect(inferOffPath(g.model('costly').executor, costing(STUCK), 50, 'cut', false)).rejects.toThrow('cut')
    await setAsideNow
    expect(setAside(g)).toEqual([[{ model: 'costly' }, 1]])
    // The model's entry changes: its old runtime, idle, is closed at the swap.
    const closing = vi.spyOn(g.model('costly').executor, 'close')
    await g.reload(second)
    expect(closing).toHaveBeenCalledOnce()
    // That close does not wait for the stuck run; the thread is still counted, as retired.
    await closing.mock.results[0]!.value
    expect(stuck.exited()).toBe(false)
    expect(setAside(g)).toEqual([
      [{ model: 'costly' }, 0],
      [{ model: 'costly', retired: 'true' }, 1],
    ])
    // The gateway's close waits for the stuck thread: once its run is over, nothing is left to report.
    await close(g)
    expect(setAside(g)).toEqual([])
  })

  it('end a trial whose gate run never ends once the watchdog sets that run aside, freeing the reload queue', { timeout: 30_000 }, async () => {
    const [first, second] = configs()
    // The first load's gate passes; the trial's (its second call) never sees its run end.
    const g = (gateway = new Gateway(first, { versions: versions(second, 2) }))
    await g.load()
    vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    const stuck = nextRunsWorker()
    const trial = g.trial(new Map([['costly', 2]]))
    // Queued behind the trial: it runs once the trial has ended.
    const next = g.reload(first)
    await expect(trial).rejects.toThrow(/models\.costly: validation gate failed: no answer within 0\.05 s/)
    // The trial ended while its fresh runtime's stuck thread runs on.
    expect(stuck.exited()).toBe(false)
    expect(setAside(g)).toEqual([
      [{ model: 'costly' }, 0],
      [{ model: 'costly', retired: 'true' }, 1],
    ])
    await expect(next).resolves.toMatchObject({ models: { kept: ['costly'] } })
    await close(g)
    expect(setAside(g)).toEqual([])
  })
})

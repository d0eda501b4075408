// The bench's reading of a gateway's event loop and garbage collector, from a real
// gateway's /metrics: a turn of the loop held for 80 ms shows as its delay in the slice
// that held it, a full collection as a pause, and a server without those figures as none.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runtimeScrape, scrapeRuntime, sliceRuntime } from '../../bench/lib/gateway-runtime.ts'
import { configFrom } from '../helpers.ts'
import { serveLoaded, type ServedApp } from '../served-app.ts'
import '../starter/scripted.ts' // the scripted kind

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

let served: ServedApp
let metrics: string

beforeAll(async () => {
  served = await serveLoaded(configFrom(`
models:
  fast: { kind: scripted, delay_ms: 0 }
ensembles:
  fast: { strategy: deadline-fallback, models: [fast] }
`))
  metrics = `${await served.app.listen({ port: 0, host: '127.0.0.1' })}/metrics`
})
afterAll(() => served.close())

/** Lets the loop turn (the collector's entries and the delay's samples arrive on timer turns). */
const turn = () => new Promise((resolve) => setTimeout(resolve, 0))

describe('scrapeRuntime and sliceRuntime', () => {
  it("give the slice's longest event-loop delay and its GC pauses", async () => {
    const before = await scrapeRuntime(metrics)
    expect(before).not.toBeNull()
    const until = performance.now() + 80
    while (performance.now() < until);
    gc()
    await turn()
    let after = await scrapeRuntime(metrics)
    const slice = sliceRuntime(before, after)!
    expect(slice.loopDelayMs).toBeGreaterThanOrEqual(70) // the 10-ms sample due in that turn ran after it
    expect(slice.loopDelayCpu).toBeGreaterThan(0) // the loop's thread ran (a busy turn)
    expect(slice.loopDelayCpu).toBeLessThanOrEqual(1)
    expect(slice.loopBusy).toBeGreaterThan(0) // busy for 80 ms of the slice at least
    expect(slice.loopBusy).toBeLessThanOrEqual(1)
    // The full collection is counted once its entry reaches the gateway's observer.
    for (let i = 0; i < 100 && !(after!.gcPauses > before!.gcPauses); i++) {
      await turn()
      after = await scrapeRuntime(metrics)
    }
    const paused = sliceRuntime(before, after)!
    expect(paused.gcMs).toBeGreaterThan(0)
    expect(paused.gcOver10ms).toBeGreaterThanOrEqual(0)
    expect(after!.gcOver10ms).toBeLessThanOrEqual(after!.gcPauses)
  })

  it('read nothing from a server without the runtime figures, or none at all', async () => {
    expect(runtimeScrape('# HELP up whether\nup 1\n')).toBeNull()
    expect(await scrapeRuntime(metrics.replace('/metrics', '/nowhere'))).toBeNull()
    expect(sliceRuntime(null, await scrapeRuntime(metrics))).toBeNull()
  })
})

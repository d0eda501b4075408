// The bench's open-loop load client (bench/load/open-loop.ts, as the bench runs it: a child
// process): against a gateway that answers every request with a fast 500, every request
// is a deadline miss, by the client's clock and by the gateway's; on two servers at once,
// they take turns, slice by slice; each slice says how long an idle thread waited for a core
// and, for a specserve gateway, how late its event loop ran and how long its GC paused.
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LoadResult } from '../../bench/lib/types.ts'
import { configFrom, root } from '../helpers.ts'
import { serveLoaded } from '../served-app.ts'
import '../starter/scripted.ts' // the scripted kind

let server: Server
let url: string
/** The turn-taking servers, and which of them each request reached, in arrival order. */
const pair: Server[] = []
const arrivals: string[] = []

async function listening(handler: Parameters<typeof createServer>[1]): Promise<Server> {
  const s = createServer(handler)
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  return s
}
const urlOf = (s: Server, path: string): string => `http://127.0.0.1:${(s.address() as AddressInfo).port}${path}`

beforeAll(async () => {
  server = await listening((req, res) => {
    req.resume()
    req.on('end', () => {
      res.statusCode = 500
      res.setHeader('content-type', 'application/json')
      res.end('{"error":{"code":"INTERNAL","message":"broken"}}')
    })
  })
  url = urlOf(server, '/v1/ensembles/slow-onnx/predict')
})

beforeAll(async () => {
  for (const name of ['a', 'b', 'c'])
    pair.push(
      await listening((req, res) => {
        arrivals.push(name)
        req.resume()
        req.on('end', () => res.end('{}'))
      }),
    )
})

const closed = (s: Server): Promise<void> => new Promise<void>((resolve) => s.close(() => resolve()))
afterAll(() => Promise.all([server, ...pair].map(closed)))

describe('bench/load/open-loop.ts', () => {
  it('counts a fast 500 as a deadline miss, by both clocks', async () => {
    const spec = { url, body: '{}', rate: 100, connections: 4, durationS: 1, warmupS: 0, missAfterMs: 22, readBodies: true }
    const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'bench', 'load', 'open-loop.ts'), JSON.stringify(spec)])
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as LoadResult
    expect(result.statuses).toEqual({ 500: 100 })
    expect(result.missRate).toBe(1)
    expect(result.serverMissRate).toBe(1)
  })

  it('takes turns between targets in slices, the order reversed every other round, each slice with its own p99', async () => {
    const targets = ['a', 'b', 'c'].map((name, i) => ({ url: urlOf(pair[i]!, `/${name}`), body: '{}' }))
    const spec = { targets, rate: 40, connections: 2, durationS: 2, warmupS: 0, sliceS: 1 }
    const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'bench', 'load', 'open-loop.ts'), JSON.stringify(spec)])
    const { runs } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { runs: LoadResult[] }
    // Round 0: a b c; round 1: c b a. Each slice's requests are answered before the next slice starts.
    const turns = arrivals.filter((name, i) => name !== arrivals[i - 1])
    expect(turns).toEqual(['a', 'b', 'c', 'b', 'a'])
    // Per slice, 0.5 s of lead-in (20 requests, not measured) and 1 s measured (40).
    expect(arrivals.filter((n) => n === 'a')).toHaveLength(120)
    expect(runs.map((r) => r.statuses)).toEqual([{ 200: 80 }, { 200: 80 }, { 200: 80 }])
    for (const r of runs) {
      expect(r.sliceP99).toHaveLength(2)
      expect(r.sliceP99!.every((p) => p !== null && p > 0 && p <= r.latency!.max)).toBe(true)
      expect(r.tool).toContain('taking turns with 2 other targets, 2 slices of 1 s, each after 0.5 s not measured')
    }
  })

  it("reads each slice's box stall and steal, and a gateway's event loop and GC from its /metrics", async () => {
    const served = await serveLoaded(configFrom(`
models:
  fast: { kind: scripted, delay_ms: 0 }
ensembles:
  fast: { strategy: deadline-fallback, models: [fast] }
`))
    try {
      const gateway = await served.app.listen({ port: 0, host: '127.0.0.1' })
      const targets = [
        { url: urlOf(pair[0]!, '/a'), body: '{}' },
        { url: `${gateway}/v1/ensembles/fast/predict`, body: JSON.stringify({ inputs: { x: [[0.5, 0.5]] } }), metricsUrl: `${gateway}/metrics` },
      ]
      const spec = { targets, rate: 40, connections: 2, durationS: 2, warmupS: 0, sliceS: 1 }
      const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'bench', 'load', 'open-loop.ts'), JSON.stringify(spec)])
      const { runs } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { runs: LoadResult[] }
      expect(runs[1]!.statuses).toEqual({ 200: 80 })
      for (const r of runs) {
        expect(r.slices).toHaveLength(2)
        for (const slice of r.slices!) {
          expect(slice.probeMs).toBeGreaterThanOrEqual(0)
          expect(slice.stealMs).toBeGreaterThanOrEqual(0) // Linux: /proc/stat
        }
      }
      // The plain server has no metricsUrl, so no runtime reading; the gateway's come from its /metrics.
      expect(runs[0]!.slices!.every((slice) => !('runtime' in slice))).toBe(true)
      for (const slice of runs[1]!.slices!) {
        expect(slice.runtime?.loopDelayMs).toBeGreaterThanOrEqual(0)
        expect(slice.runtime?.loopDelayCpu).toBeGreaterThanOrEqual(0)
        expect(slice.runtime?.loopBusy).toBeGreaterThan(0)
        expect(slice.runtime?.gcMs).toBeGreaterThanOrEqual(0)
        expect(slice.runtime?.gcOver10ms).toBeGreaterThanOrEqual(0)
      }
      expect(JSON.stringify(runs)).not.toContain('metricsUrl')
    } finally {
      await served.close()
    }
  })
})

// `specserve bench --quick` end to end: every scenario runs against real server processes
// and lands in the report. Asserts that results exist, never what they are (the box is shared).
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { BenchResults } from '../../bench/lib/types.ts'
import { scenarios } from '../../bench/run.ts'
import { root, startProcess, type Proc } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

// Two halves at once, each a `bench --quick --only` process of its own (its own broker and
// MLServer where it needs them): the scenarios are mostly waiting on fixed-length load slices and
// process starts, so the halves overlap well on 2 cores. No figure is asserted, so the contention
// costs nothing here. The first half has the scenarios the plots are drawn from.
const halves = [
  ['overhead', 'ensembles', 'stragglers', 'overload', 'grpc', 'batching', 'soak', 'swap'],
  ['peers', 'kafka', 'remote', 'security', 'stream'],
] as const
const outs = halves.map(() => tempDir('specserve-bench-test-'))
const out = outs[0] as string
let runs: { results: BenchResults; log: string }[] = []
let results: BenchResults

/** A half's run through the CLI, as a user runs it; the bench provisions its peers itself (cache reused). */
function startHalf(only: readonly string[], dir: string): Proc {
  return startProcess(process.execPath, [join(root, 'src', 'cli.ts'), 'bench', '--quick', '--only', only.join(','), '--out', dir])
}

beforeAll(async () => {
  const procs = halves.map((only, i) => startHalf(only, outs[i] as string))
  const ends = procs.map((proc) => new Promise<number | null>((resolve) => proc.child.once('exit', resolve)))
  // A half that fails stops the other at once: left running, it would load the box under the next files.
  let failedFirst: number | undefined
  const stopAll = (): Promise<unknown> => Promise.all(procs.map((proc) => proc.stop()))
  await Promise.all(ends.map((end, i) => end.then((code) => (code === 0 ? undefined : ((failedFirst ??= i), stopAll())))))
  // The half that failed is the one to read, not the one stopped for it.
  for (const i of failedFirst === 1 ? [1, 0] : [0, 1]) expect(procs[i]!.child.exitCode, `half ${i + 1} (${halves[i]!.join(', ')}):\n${procs[i]!.output()}`).toBe(0)
  runs = procs.map((proc, i) => ({ results: JSON.parse(readFileSync(join(outs[i] as string, 'bench', 'results.json'), 'utf8')) as BenchResults, log: proc.output() }))
  results = runs[0]!.results
}, 900_000)

describe('bench --quick', () => {
  it('runs every scenario in exactly one half', () => {
    expect(halves.flat().toSorted()).toEqual(scenarios.map((s) => s.id).toSorted())
  })

  it('records the machine and the settings of the run', () => {
    expect(results.quick).toBe(true)
    expect(results.machine.cores).toBeGreaterThan(0)
    expect(results.machine.node).toBe(process.version)
    expect(results.settings.repetitions).toBe(1)
  })

  it.each(scenarios.map((s) => s.id))('scenario %s ran and measured every variant', (id) => {
    // Read from the half that ran it (the other's report says "not selected (--only)"), with that half's log.
    const half = runs[halves.findIndex((only) => (only as readonly string[]).includes(id))]
    const log = half?.log ?? ''
    const scenario = half?.results.scenarios.find((s) => s.id === id)
    expect(scenario, `no result for ${id}`).toBeDefined()
    expect(scenario?.status, `${id}: ${scenario?.reason ?? ''}\n${log.slice(-3000)}`).toBe('ok')
    expect(scenario?.variants.length).toBeGreaterThan(1)
    for (const variant of scenario?.variants ?? []) {
      expect(variant.runs.length, `${id}/${variant.name}`).toBeGreaterThan(0)
      for (const run of variant.runs) {
        expect(run.requests, `${id}/${variant.name}`).toBeGreaterThan(0)
        expect(run.tool).toMatch(/autocannon|open-loop|paired|ghz|grpc-js|grpc-stream|stream-mode/)
        expect(run.connections).toBeGreaterThan(0)
        expect(run.durationS).toBeGreaterThan(0)
      }
    }
    // Each row has its headline figure; the scenario names the baseline its ratios are against.
    for (const variant of scenario?.variants ?? []) {
      const measured = Object.entries(variant.metrics).filter(([, summary]) => summary !== null).map(([metric]) => metric)
      // A refusal's row counts refusals, not answers. A paired row's targets share one run and the
      // /healthz probe runs at a fixed rate: neither has a req/s of its own, so latency is their headline.
      const paired = variant.runs.some((run) => run.tool.includes('paired.ts'))
      const headline =
        id === 'stragglers' ? 'p99' : variant.name.startsWith('refused') ? 'refused_rps' : variant.name.startsWith('/healthz') ? 'healthz_p99' : paired ? 'p50' : 'rps'
      expect(measured, `${id}/${variant.name}`).toContain(headline)
      if (paired || variant.name.startsWith('/healthz')) expect(measured, `${id}/${variant.name}`).not.toContain('rps')
    }
    expect(scenario?.baseline, id).toBeTruthy()
    expect(scenario?.targets.length, id).toBeGreaterThan(0)
  })

  it('writes the tables and plots from those results', () => {
    for (const dir of outs) {
      const md = readFileSync(join(dir, 'BENCHMARKS.md'), 'utf8')
      expect(md).toContain('**Quick run**')
      for (const s of results.scenarios) expect(md).toContain(`## ${s.title}`)
    }
    for (const file of ['throughput.svg', 'latency-vs-load.svg', 'stragglers.svg']) {
      expect(existsSync(join(out, 'bench', file)), file).toBe(true)
      expect(readFileSync(join(out, 'bench', file), 'utf8')).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    }
  })
})

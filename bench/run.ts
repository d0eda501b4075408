#!/usr/bin/env node
// `npm run bench [-- --quick] [--out DIR] [--only a,b] [--no-profile]` and `specserve bench`:
// runs every scenario against real server processes with load from separate processes,
// keeps the raw results (DIR/bench/results.json) and generates DIR/BENCHMARKS.md and
// DIR/bench/*.svg from them. DIR defaults to docs/.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, platform, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { profileSpecserve } from './lib/profile.ts'
import { onExit, root } from './lib/processes.ts'
import { notRun, type BenchContext, type Scenario } from './lib/scenario.ts'
import type { BenchResults, Machine, ScenarioResult } from './lib/types.ts'
import { renderMarkdown } from './report/markdown.ts'
import { renderPlots } from './report/plots.ts'
import { batching } from './scenarios/batching.ts'
import { ensembles } from './scenarios/ensembles.ts'
import { grpc } from './scenarios/grpc.ts'
import { kafka } from './scenarios/kafka.ts'
import { overhead, singleModelConfig } from './scenarios/overhead.ts'
import { overload } from './scenarios/overload.ts'
import { peers } from './scenarios/peers.ts'
import { remote } from './scenarios/remote.ts'
import { security } from './scenarios/security.ts'
import { soak } from './scenarios/soak.ts'
import { stragglers } from './scenarios/stragglers.ts'
import { stream } from './scenarios/stream.ts'
import { swap } from './scenarios/swap.ts'
import { commaList } from '../src/comma-list.ts'
import { keepAllocationsYoung } from '../src/v8-flags.ts'

export const scenarios: readonly Scenario[] = [overhead, ensembles, stragglers, overload, peers, kafka, grpc, remote, batching, soak, swap, security, stream]

export interface BenchOptions {
  /** One short repetition per scenario: a smoke run (CI), not numbers to publish. */
  readonly quick?: boolean
  /** Where BENCHMARKS.md and bench/ go; default docs/. */
  readonly out?: string
  /** Scenario ids to run; the others are reported as not run. */
  readonly only?: readonly string[]
  /** CPU-profile the gateway under load (default: on for full runs). */
  readonly profile?: boolean
  readonly log?: (message: string) => void
}

function machine(): Machine {
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${platform()} ${release()}`,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    date: new Date().toISOString(),
  }
}

/** BENCHMARKS.md and the plots, from raw results only. */
function writeReport(bench: BenchResults, out: string): void {
  // Plots this run has no data for must not linger from an earlier run.
  for (const old of readdirSync(join(out, 'bench'))) if (old.endsWith('.svg')) rmSync(join(out, 'bench', old))
  for (const [file, svg] of renderPlots(bench)) writeFileSync(join(out, 'bench', file), svg)
  writeFileSync(join(out, 'BENCHMARKS.md'), renderMarkdown(bench))
}

export async function runBench(options: BenchOptions = {}): Promise<BenchResults> {
  const quick = options.quick ?? false
  const log = options.log ?? ((m: string) => console.error(`[bench] ${m}`))
  const out = options.out ?? join(root, 'docs')
  const dir = mkdtempSync(join(tmpdir(), 'specserve-bench-'))
  onExit(() => rmSync(dir, { recursive: true, force: true })) // also when interrupted
  const ctx: BenchContext = {
    quick,
    repetitions: quick ? 1 : 3,
    warmupS: quick ? 0 : 2,
    durationS: quick ? 1 : 10,
    sliceS: quick ? 1 : 2,
    connections: 32,
    sweep: quick ? [0.5] : [0.25, 0.5, 0.75],
    dir,
    log,
    shared: new Map(),
  }
  const startedAt = machine()
  const results: ScenarioResult[] = []
  const selected = scenarios.filter((s) => !options.only || options.only.includes(s.id))
  try {
    for (const scenario of scenarios) {
      if (options.only && !options.only.includes(scenario.id)) {
        results.push(notRun(scenario.id, scenario.title, 'not selected (--only)'))
        continue
      }
      log(`${scenario.title}`)
      const t0 = Date.now()
      try {
        results.push(await scenario.run(ctx))
      } catch (err) {
        log(`${scenario.id} failed: ${(err as Error).stack ?? String(err)}`)
        results.push(notRun(scenario.id, scenario.title, `failed: ${String((err as Error).message).split('\n')[0]}`))
      }
      log(`${scenario.id}: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    }
    const profile = (options.profile ?? !quick) ? await profileSpecserve(ctx, singleModelConfig()).catch((err: unknown) => ({ error: String(err) })) : undefined
    const bench: BenchResults = {
      quick,
      machine: { ...startedAt, loadAverageEnd: loadavg().map((l) => Math.round(l * 100) / 100) },
      settings: { repetitions: ctx.repetitions, warmupS: ctx.warmupS, durationS: ctx.durationS, sliceS: ctx.sliceS, connections: ctx.connections },
      scenarios: results,
      ...(profile ? { profile } : {}),
    }
    mkdirSync(join(out, 'bench'), { recursive: true })
    writeFileSync(join(out, 'bench', 'results.json'), `${JSON.stringify(bench, null, 1)}\n`)
    writeReport(bench, out)
    log(`wrote ${join(out, 'BENCHMARKS.md')} and ${join(out, 'bench')}/`)
    return bench
  } finally {
    for (const s of selected) await s.cleanup?.(ctx)
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A mistake in the command line or its files: one line on stderr, exit 2. */
class BenchUsageError extends Error {}

/** --only's ids, each a scenario's: a typo would run nothing and still write a report of "not run". */
function onlyOf(text: string): string[] {
  const valid = scenarios.map((s) => s.id)
  const ids = commaList(text, { flag: '--only', one: 'scenario', many: 'scenarios', example: `${valid[0]},${valid[1]} (scenarios: ${valid.join(', ')})` }, (message) => {
    throw new BenchUsageError(message)
  })
  const unknown = ids.filter((id) => !valid.includes(id))
  if (unknown.length) throw new BenchUsageError(`--only: no scenario ${unknown.map((id) => `"${id}"`).join(', ')} (scenarios: ${valid.join(', ')})`)
  return ids
}

/** The results --report re-renders, or why there are none. */
function readResults(out: string): BenchResults {
  const file = join(out, 'bench', 'results.json')
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as BenchResults
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (run the bench first, with the same --out)' : (err as Error).message
    throw new BenchUsageError(`--report: cannot read ${file}: ${reason}`)
  }
}

/** `specserve bench` and `node bench/run.ts` share these flags; returns the exit code (2: a usage error). */
export async function benchMain(argv: readonly string[]): Promise<number> {
  try {
    return await bench(argv)
  } catch (err) {
    // parseArgs' own errors (an unknown flag, a missing value) are usage errors too.
    if (!(err instanceof BenchUsageError) && !String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) throw err
    console.error(`specserve bench: ${(err as Error).message} (see --help)`)
    return 2
  }
}

async function bench(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean' },
      out: { type: 'string' },
      only: { type: 'string' },
      'no-profile': { type: 'boolean' },
      profile: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      report: { type: 'boolean' },
    },
  })
  if (values.report) {
    // Re-render the tables and plots from DIR/bench/results.json without measuring anything.
    const out = values.out ?? join(root, 'docs')
    writeReport(readResults(out), out)
    return 0
  }
  if (values.help) {
    console.log(`usage: npm run bench -- [options]   (or: specserve bench [options])
  --quick          one short repetition per scenario, no warm-up, one broker and MLServer for all (a smoke run, ~3 min)
  --out DIR        write DIR/BENCHMARKS.md and DIR/bench/ (default docs/)
  --only a,b       run only these scenarios: ${scenarios.map((s) => s.id).join(', ')}
  --profile        CPU-profile the gateway under load (default in full runs)
  --no-profile     skip it
  --report         only re-render DIR/BENCHMARKS.md and the plots from DIR/bench/results.json`)
    return 0
  }
  const only = values.only === undefined ? undefined : onlyOf(values.only)
  // Ctrl-C: exit normally so every server, peer and broker the bench started is stopped (see lib/processes.ts).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))
  await runBench({
    quick: values.quick === true,
    ...(values.out ? { out: values.out } : {}),
    ...(only ? { only } : {}),
    ...(values['no-profile'] ? { profile: false } : values.profile ? { profile: true } : {}),
  })
  return 0
}

// Run directly (`npm run bench`): the V8 settings `specserve bench` gets from src/cli.ts.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  keepAllocationsYoung()
  process.exit(await benchMain(process.argv.slice(2)))
}

// Closed loops on several targets taking turns (a child process of the bench): each
// target is warmed up, then they run in short slices, one after another, the first one
// rotating, until each has had its duration. Every target sees the same stretch of the
// run, so drift on a shared box (another tenant, a slower minute) lands on all of them
// alike and their ratios are the paths' own. CPU per request is read from /proc around
// each target's own slices, so it is charged to the requests that caused it.
// Usage: node interleaved.ts '<InterleavedSpec JSON>'; prints { runs: [{ result, cpu }] }.
import { cpuMicros } from '../lib/cpu.ts'
import { Tally, closedLoopResult } from '../lib/tally.ts'
import type { CpuPerRequest, InterleavedSpec } from '../lib/types.ts'
import { runAutocannon, version } from './autocannon.ts'

const spec = JSON.parse(process.argv[2] ?? '{}') as InterleavedSpec
const { targets } = spec
const slices = Math.max(1, Math.round(spec.durationS / spec.sliceS))
const sliceS = Math.max(1, Math.round(spec.durationS / slices))

/** CPU µs so far of each of a target's processes: [all threads, main thread]; null where /proc cannot say. */
const readCpu = (pids: readonly (number | undefined)[]): (number | null)[][] => pids.map((pid) => [cpuMicros(pid), cpuMicros(pid, true)])

const added = (sum: number | null, before: number | null, after: number | null): number | null =>
  sum === null || before === null || after === null ? null : sum + after - before

const state = targets.map((t) => ({ tally: new Tally(), seconds: 0, cpu: (t.pids ?? []).map((): (number | null)[] => [0, 0]) }))

for (const t of targets) if (spec.warmupS > 0) await runAutocannon(t, spec.warmupS)
for (let s = 0; s < slices; s++) {
  for (let k = 0; k < targets.length; k++) {
    const i = (s + k) % targets.length
    const t = targets[i]!
    const st = state[i]!
    const before = readCpu(t.pids ?? [])
    st.seconds += await runAutocannon(t, sliceS, st.tally)
    const after = readCpu(t.pids ?? [])
    st.cpu = st.cpu.map((sums, p) => sums.map((sum, j) => added(sum, before[p]![j]!, after[p]![j]!)))
  }
}

const runs = targets.map((t, i) => {
  const { tally, seconds, cpu } = state[i]!
  const tool = `autocannon ${version} (API, ${t.connections} connections; taking turns with ${targets.length - 1} other target${targets.length === 2 ? '' : 's'}, ${slices} slices of ${sliceS} s)`
  const result = closedLoopResult(tool, { durationS: slices * sliceS, warmupS: spec.warmupS }, tally, seconds, t.connections)
  const per = (v: number | null | undefined) => (v == null || result.requests === 0 ? undefined : v / result.requests)
  return { result, cpu: cpu.map(([all, main]): CpuPerRequest => ({ all: per(all), main: per(main) })) }
})
process.stdout.write(`${JSON.stringify({ runs })}\n`)

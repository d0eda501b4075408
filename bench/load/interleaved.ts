// Closed loops on several targets taking turns (a child process of the bench): each
// target is warmed up, then they run in short slices, one after another, until each has
// had its duration. Every target sees the same stretch of the run, so drift on a shared
// box (another tenant, a slower minute) lands on all of them alike. After each slice the
// child waits SETTLE_MS before reading /proc: what a slice leaves behind (requests still
// queued in the server, a publisher's lingering batch and its broker's work) is charged
// to the target that caused it, not to the next. The order is reversed every other round,
// so no target always follows the same one. A target may send one request of its own at the
// start of each of its slices (a model upload: eachSlice), answered before the next turn.
// Usage: node interleaved.ts '<InterleavedSpec JSON>'; prints { runs: [{ result, cpu, actions? }] }.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { cpuSample, type CpuSample } from '../lib/cpu.ts'
import { Tally, closedLoopResult } from '../lib/tally.ts'
import type { CpuPerRequest, InterleavedRun, InterleavedSpec, SliceAction, SliceActionResults } from '../lib/types.ts'
import { runAutocannon, version } from './autocannon.ts'

/** Longer than a Kafka publisher's default linger (100 ms) and its acknowledgement. */
const SETTLE_MS = 300

const spec = JSON.parse(process.argv[2] ?? '{}') as InterleavedSpec
const { targets } = spec
if (!(spec.sliceS >= 1)) throw new Error(`sliceS must be at least 1 s, got ${spec.sliceS}`)
// Whole seconds: autocannon checks its duration on its 1-s sample tick, so a fraction runs to the next second.
const rounds = Math.max(1, Math.round(spec.durationS / spec.sliceS))
const sliceS = Math.max(1, Math.round(spec.durationS / rounds))

/** CPU so far of each of a target's processes. */
const readCpu = (pids: readonly (number | null | undefined)[]): CpuSample[] => pids.map(cpuSample)
const plus = (sum: number | null, before: number | null | undefined, after: number | null | undefined): number | null =>
  sum === null || before == null || after == null ? null : sum + after - before
/** `sum` plus what one process used between two samples; null from the first slice /proc could not say. */
const added = (sum: CpuSample, before: CpuSample | undefined, after: CpuSample | undefined): CpuSample => ({
  all: plus(sum.all, before?.all, after?.all),
  main: plus(sum.main, before?.main, after?.main),
})

const state = targets.map((t) => ({
  tally: new Tally(),
  seconds: 0,
  cpu: (t.pids ?? []).map((): CpuSample => ({ all: 0, main: 0 })),
  actions: { okMs: [], failed: [], outlasted: 0 } as SliceActionResults,
}))
const bodies = targets.map((t) => (t.eachSlice ? readFileSync(t.eachSlice.file) : undefined))

/** The target's slice action number `n` (0-based), recorded in `out`; never rejects. */
async function sendSliceAction(action: SliceAction, body: Buffer, n: number, out: SliceActionResults): Promise<void> {
  const counter = action.first + n
  const started = performance.now()
  try {
    const res = await fetch(action.url.replace('{n}', String(counter)), { method: action.method, headers: { 'content-type': 'application/octet-stream' }, body })
    const text = await res.text()
    if (res.status === action.status) out.okMs.push(performance.now() - started)
    else out.failed.push(`${counter}: answered ${res.status}, not ${action.status}: ${text.slice(0, 200)}`)
  } catch (err) {
    out.failed.push(`${counter}: not answered: ${(err as Error).message}`)
  }
}

for (const t of targets) if (spec.warmupS > 0) await runAutocannon(t, spec.warmupS)
await sleep(SETTLE_MS)
for (let round = 0; round < rounds; round++) {
  for (let k = 0; k < targets.length; k++) {
    const i = round % 2 === 0 ? k : targets.length - 1 - k
    const t = targets[i]!
    const st = state[i]!
    const before = readCpu(t.pids ?? [])
    let answered = false
    const action = t.eachSlice ? sendSliceAction(t.eachSlice, bodies[i]!, round, st.actions).then(() => (answered = true)) : undefined
    st.seconds += await runAutocannon(t, sliceS, st.tally)
    if (action && !answered) {
      st.actions.outlasted++
      await action
    }
    await sleep(SETTLE_MS)
    const after = readCpu(t.pids ?? [])
    st.cpu = st.cpu.map((sum, p) => added(sum, before[p], after[p]))
  }
}

const runs = targets.map((t, i): InterleavedRun => {
  const { tally, seconds, cpu, actions } = state[i]!
  const others = targets.length - 1
  const tool = `autocannon ${version} (API, ${t.connections} connections; taking turns with ${others} other target${others === 1 ? '' : 's'}, ${rounds} slices of ${sliceS} s)`
  const result = closedLoopResult(tool, { durationS: rounds * sliceS, warmupS: spec.warmupS }, tally, seconds, t.connections)
  const per = (v: number | null | undefined) => (v == null || result.requests === 0 ? undefined : v / result.requests)
  return { result, cpu: cpu.map(({ all, main }): CpuPerRequest => ({ all: per(all), main: per(main) })), ...(t.eachSlice ? { actions } : {}) }
})
process.stdout.write(`${JSON.stringify({ runs })}\n`)

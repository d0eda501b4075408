// Where specserve's CPU time goes under max load: runs the gateway with --cpu-prof
// under closed-loop load and reduces each thread's .cpuprofile to self time by
// component and by function, for the "why" of missed targets.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { closedLoop } from './load.ts'
import { nativeBody } from './payloads.ts'
import { root } from './processes.ts'
import type { BenchContext } from './scenario.ts'
import { startSpecserve } from './servers.ts'

interface CpuProfile {
  /** Microseconds on the monotonic clock, the one process.hrtime reads. */
  startTime: number
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  samples: number[]
  timeDeltas: number[]
}

export interface ThreadProfile {
  readonly thread: string
  readonly totalMs: number
  /** Share of busy (non-idle) time per component. */
  readonly components: { name: string; share: number }[]
  readonly functions: { name: string; where: string; share: number }[]
}

export interface ProfileSummary {
  readonly load: string
  readonly throughput: number
  readonly threads: ThreadProfile[]
}

function component(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1] as string
  if (url.startsWith('node:')) return 'node core'
  const src = /\/(src|bench)\/([^/]+)/.exec(url)
  if (src) return `specserve ${src[1]}/${src[2]}`
  return url
}

/** Self time in [from, to] (µs, monotonic clock): the measured load only, not startup or warm-up. */
function reduce(file: string, thread: string, from: number, to: number): ThreadProfile {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]))
  const comp = new Map<string, number>()
  const funcs = new Map<string, { name: string; where: string; us: number }>()
  let busy = 0
  let total = 0
  let at = profile.startTime
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0
    at += us
    if (at < from || at > to) return
    total += us
    const frame = byId.get(id)
    if (!frame || frame.functionName === '(idle)') return
    busy += us
    const c = component(frame.url, frame.functionName)
    comp.set(c, (comp.get(c) ?? 0) + us)
    const where = frame.url ? `${frame.url.replace(`file://${root}/`, '').replace(/^.*node_modules\//, '')}:${frame.lineNumber + 1}` : ''
    const key = `${frame.functionName}@${where}`
    const f = funcs.get(key) ?? { name: frame.functionName || '(anonymous)', where, us: 0 }
    f.us += us
    funcs.set(key, f)
  })
  const share = (us: number): number => (busy ? us / busy : 0)
  return {
    thread,
    totalMs: total / 1000,
    components: [...comp].map(([name, us]) => ({ name, share: share(us) })).sort((a, b) => b.share - a.share).slice(0, 10),
    functions: [...funcs.values()].map((f) => ({ name: f.name, where: f.where, share: share(f.us) })).sort((a, b) => b.share - a.share).slice(0, 12),
  }
}

/** Profiles the single-model gateway of scenario 1 under its max-throughput load. */
export async function profileSpecserve(ctx: BenchContext, config: Record<string, unknown>): Promise<ProfileSummary> {
  const dir = join(ctx.dir, 'cpu-prof')
  mkdirSync(dir, { recursive: true })
  const server = await startSpecserve('profile', config, { dir: ctx.dir, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
  let throughput: number
  const nowUs = (): number => Number(process.hrtime.bigint() / 1000n)
  // The window is the load child's lifetime: warm-up and the child's own start are a little of it, startup is none.
  const from = nowUs()
  let to: number
  try {
    const r = await closedLoop({ url: `${server.url}/v1/ensembles/logreg/predict`, body: nativeBody(), connections: ctx.connections, durationS: ctx.durationS, warmupS: ctx.warmupS })
    to = nowUs()
    throughput = r.throughput
  } finally {
    await server.stop() // the profiles are written as the process exits
  }
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread.
  const threads = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => ({ f, thread: Number(f.split('.')[4]) }))
    .sort((a, b) => a.thread - b.thread)
    .map(({ f, thread }) => reduce(join(dir, f), thread === 0 ? 'main (event loop)' : `worker thread ${thread}`, from, to))
  return { load: `closed loop, ${ctx.connections} connections, ${ctx.durationS} s`, throughput, threads }
}

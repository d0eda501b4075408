// Child processes of the bench: servers under test, peers and load generators. Every
// server lives in its own process group and is killed with it, also when the bench
// itself dies; a failing child's output tail goes into the error.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request, type Dispatcher } from 'undici'
import { NO_PRETENURING } from '../../src/v8-flags.ts'

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface Proc {
  readonly child: ChildProcess
  readonly output: () => string
  stop(): Promise<void>
}

const running = new Set<ChildProcess>()
const killGroup = (child: ChildProcess, signal: NodeJS.Signals): void => {
  try {
    process.kill(-(child.pid as number), signal)
  } catch {
    // already gone
  }
}
const atExit: (() => void)[] = []
process.once('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL')
  for (const fn of atExit.reverse()) fn() // last registered first: a broker is stopped before its dir is removed
})

/** Kills a child started elsewhere (e.g. a peer from test/e2e/peers.ts) if the bench dies before stopping it. */
export function track(child: ChildProcess): void {
  running.add(child)
  child.once('exit', () => running.delete(child))
}

/** Synchronous last-resort cleanup when the bench process exits (e.g. a broker it started as a daemon). */
export function onExit(fn: () => void): void {
  atExit.push(fn)
}

/**
 * Node's arguments for one of the bench's own scripts (the baseline, a peer, a load generator):
 * the V8 settings specserve's CLI starts with (src/v8-flags.ts), so the ratios compare the code,
 * not which process the collector happened to tenure, and a load generator's own pauses do not
 * show as a target's latency.
 */
export const nodeScript = (script: string, ...args: string[]): string[] => [NO_PRETENURING, script, ...args]

export function start(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  let log = ''
  const keep = (b: Buffer): void => {
    log = (log + b.toString()).slice(-8_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = once(child, 'exit')
  return {
    child,
    output: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(child, 'SIGTERM')
        const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 10_000)
        await exited
        clearTimeout(timer)
      }
      running.delete(child)
    },
  }
}

/** Runs a command to completion; resolves with its stdout, rejects with its output tail on failure. */
export async function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4_000)))
  const [code] = (await once(child, 'close')) as [number | null]
  if (code !== 0) throw new Error(`${command} ${args.join(' ').slice(0, 200)} exited with ${code}: ${stderr.trim() || stdout.slice(-2000)}`)
  return stdout
}

// One free-port helper for tests and bench alike.
export { freePort } from '../../test/helpers.ts'

/** Polls a URL until it answers (200 unless `accept` says otherwise; a starting server has no event to await). */
export async function waitForHttp(url: string, proc: Proc, accept: (status: number) => boolean = (status) => status === 200, timeoutMs = 90_000, dispatcher?: Dispatcher): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`${url}: server exited early:\n${proc.output()}`)
    const status = await request(url, { headersTimeout: 2_000, bodyTimeout: 2_000, ...(dispatcher && { dispatcher }) }).then(
      async (res) => {
        await res.body.dump()
        return res.statusCode
      },
      () => 0,
    )
    if (accept(status)) return
    if (Date.now() > until) throw new Error(`${url} not ready after ${timeoutMs} ms:\n${proc.output()}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** Polls until something accepts TCP connections on the port. */
export async function waitForPort(port: number, proc: Proc, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`port ${port}: process exited early:\n${proc.output()}`)
    const ok = await new Promise<boolean>((done) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        done(true)
      })
      socket.once('error', () => done(false))
    })
    if (ok) return
    if (Date.now() > until) throw new Error(`nothing listening on port ${port} after ${timeoutMs} ms:\n${proc.output()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

// Shared test plumbing: the provisioning cache, free ports (below the kernel's range for
// outgoing connections), real child processes that
// are always stopped, the demo models' sample rows, and a gateway on the demo config.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import { parse, stringify } from 'yaml'
import { parseConfig, type GatewayConfig } from '../src/config/load.ts'
import { ConfigError, type ConfigIssue } from '../src/config/yaml.ts'

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** Where provisioning scripts put brokers, venvs and tools; outside the clone so CI reuses it. */
export const cacheDir = (): string => process.env.SPECSERVE_CACHE ?? join(homedir(), '.cache', 'specserve')

/**
 * The lowest port the kernel gives outgoing connections (Linux; 32768 elsewhere). A port picked
 * from that range (listen(0) picks there) and handed to a peer that binds it seconds later can
 * be taken meanwhile by any connection the run opens: MLServer then failed with EADDRINUSE.
 */
const EPHEMERAL_LOW = ((): number => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768
  } catch {
    return 32768
  }
})()
const FIRST_PORT = 10_000
/** Handed out by this process already: two peers of one test never get the same port. */
const handedOut = new Set<number>()

/** Whether something may listen on `port` at 127.0.0.1 now. */
async function bindable(port: number): Promise<boolean> {
  const server = createServer()
  const listening = once(server, 'listening').then(() => true, () => false)
  server.listen(port, '127.0.0.1')
  if (!(await listening)) return false
  server.close()
  await once(server, 'close')
  return true
}

/** A port free now, below the range outgoing connections take theirs from (else one the kernel picks). */
export async function freePort(): Promise<number> {
  for (let tries = 0; EPHEMERAL_LOW > FIRST_PORT + 1000 && tries < 100; tries++) {
    const port = FIRST_PORT + Math.floor(Math.random() * (EPHEMERAL_LOW - FIRST_PORT))
    if (handedOut.has(port) || !(await bindable(port))) continue
    handedOut.add(port)
    return port
  }
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/** Resolves once something accepts TCP connections on the port (polls; a peer has no event to await). */
export async function waitForPort(port: number, timeoutMs = 60_000, host = '127.0.0.1'): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const socket = connect(port, host)
      socket.once('connect', () => {
        socket.destroy()
        res(true)
      })
      socket.once('error', () => res(false))
    })
    if (ok) return
    if (Date.now() > until) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

export interface Proc {
  readonly child: ChildProcess
  readonly output: () => string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Spawns a real process, keeps its output for failure messages, stops it (and its group) on request. */
export function startProcess(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
  const child = spawn(command, args, { cwd: options.cwd ?? root, env: { ...process.env, ...options.env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  const keep = (b: Buffer): void => {
    log = (log + b.toString()).slice(-20_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  return {
    child,
    output: () => log,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      try {
        process.kill(-(child.pid as number), signal)
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-(child.pid as number), 'SIGKILL')
        } catch {
          // already gone
        }
      }, 10_000)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/** Resolves when the process's output contains `text` (a log line it writes). */
export async function outputContains(proc: Proc, text: string): Promise<void> {
  while (!proc.output().includes(text)) {
    const [event] = await Promise.race([once(proc.child.stdout!, 'data').then(() => ['data']), once(proc.child, 'exit').then(() => ['exit'])])
    if (event === 'exit' && !proc.output().includes(text)) throw new Error(`exited without "${text}":\n${proc.output()}`)
  }
}

interface Manifest {
  tasks: Record<string, { features: number; samples: number[][]; expected: Record<string, number[]>; expected_probabilities?: Record<string, number[][]> }>
}
const manifest = JSON.parse(readFileSync(join(root, 'models', 'manifest.json'), 'utf8')) as Manifest

/** Real held-out rows of a task (cancer, wine, digits, diabetes) and each model's expected answers. */
export function samples(task: string): { rows: number[][]; expected: Record<string, number[]>; probabilities: Record<string, number[][]> } {
  const t = manifest.tasks[task]
  if (!t) throw new Error(`no task ${task} in models/manifest.json`)
  return { rows: t.samples, expected: t.expected, probabilities: t.expected_probabilities ?? {} }
}

type Patch = { [key: string]: unknown }
const merge = (base: Patch, patch: Patch): Patch => {
  const out: Patch = { ...base }
  for (const [k, v] of Object.entries(patch)) {
    const b = out[k]
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' ? merge(b as Patch, v as Patch) : v
  }
  return out
}

/** The demo config, optionally deep-merged with a patch (e.g. `{ server: { max_in_flight: 2 } }`). */
export function demoConfig(patch: Patch = {}): GatewayConfig {
  const file = join(root, 'examples', 'demo.yaml')
  const text = readFileSync(file, 'utf8')
  return parseConfig(Object.keys(patch).length ? stringify(merge(parse(text) as Patch, patch)) : text, file)
}

/** A config from YAML text whose relative paths resolve against examples/. */
export function configFrom(yaml: string): GatewayConfig {
  return parseConfig(yaml, join(root, 'examples', 'test.yaml'))
}

/** The issues a config raises at parse time; throws if it is accepted. */
export function issuesOf(yaml: string): ConfigIssue[] {
  const issues = configIssues(yaml)
  if (issues.length === 0) throw new Error('config was accepted')
  return issues
}

/** The issues configFrom(yaml) raises; none when the config is accepted. */
export function configIssues(yaml: string): ConfigIssue[] {
  return issuesThrownBy(() => configFrom(yaml))
}

/** The issues of the ConfigError `run` throws (any other error is thrown on); none when it throws nothing. */
export function issuesThrownBy(run: () => unknown): ConfigIssue[] {
  try {
    run()
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues]
    throw err
  }
  return []
}

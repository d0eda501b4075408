// Where the listeners are (and what to say when one cannot bind): the file's server.host,
// rest_port and grpc_port under the SPECSERVE_* environment overrides. Its own module
// (nothing but node built-ins) so the container's health probe (src/health.ts), when serve
// has not announced its listener, reads the address the way serve does without loading the
// gateway's modules at every interval.
import { isIPv6 } from 'node:net'

export interface ListenerAddress {
  readonly host: string
  readonly restPort: number
  /** null: no gRPC listener. */
  readonly grpcPort: number | null
}

/** The server section's fields that say where to listen, as written. */
export interface RawListener {
  readonly host?: string
  readonly rest_port?: number
  readonly grpc_port?: number | null
}

/** First defined of: environment, file, default (null is a value: "off"). */
const pick = <T>(...values: (T | undefined)[]): T => values.find((v) => v !== undefined) as T

/**
 * Why `host` cannot be a listen address, or null. An empty one must not stand for "every
 * interface" (a template that rendered nothing would open the gateway to the network), and
 * a port belongs in rest_port and grpc_port, not here.
 */
export function hostProblem(host: string): string | null {
  if (host.trim() === '') return 'is empty: give an address (0.0.0.0 for every interface, 127.0.0.1 for this machine only)'
  if (/\s/.test(host)) return 'holds whitespace: give the address alone'
  // A link-local address's zone may be any interface name (fe80::1%br_lan); isIPv6 knows fewer.
  if (isIPv6(host) || (host.includes('%') && isIPv6(host.slice(0, host.indexOf('%'))))) return null
  if (/[[\]]/.test(host)) return 'is in brackets: write an IPv6 address without them (::1)'
  if (host.includes(':')) return 'holds a port (or is not an IPv6 address): give the address alone; the ports are rest_port and grpc_port'
  return null
}

/**
 * Deployments override the address without editing the file: SPECSERVE_HOST=0.0.0.0,
 * SPECSERVE_REST_PORT=9000, SPECSERVE_GRPC_PORT=off. Each set to the empty string is unset
 * (as a shell or a compose file leaves it). A malformed value is reported through `problem`
 * and the file's value is used.
 */
export function listenerAddress(server: RawListener, problem: (message: string) => void): ListenerAddress {
  return {
    host: envHost(problem) ?? (server.host || '0.0.0.0'),
    restPort: envPort('SPECSERVE_REST_PORT', false, problem) ?? server.rest_port ?? 8080,
    grpcPort: pick(envPort('SPECSERVE_GRPC_PORT', true, problem), server.grpc_port, 8081),
  }
}

function envHost(problem: (message: string) => void): string | undefined {
  const value = process.env.SPECSERVE_HOST
  if (value === undefined || value === '') return undefined
  const why = hostProblem(value)
  if (why) problem(`SPECSERVE_HOST=${JSON.stringify(value)} ${why}`)
  return why ? undefined : value
}

/** A port from the environment: digits only (not ' ', 0x1F90 or 8080.0), `off` only where the listener can be off. */
function envPort(name: string, canBeOff: boolean, problem: (message: string) => void): number | null | undefined {
  const value = process.env[name]
  if (value === undefined || value === '') return undefined
  if (value === 'off' && canBeOff) return null
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN
  if (port >= 0 && port <= 65535) return port
  problem(`${name}=${JSON.stringify(value)} is not a port: digits, 0 to 65535${canBeOff ? ', or off' : ' (the REST listener cannot be turned off)'}`)
  return undefined
}

/**
 * One line for a listener that cannot bind: which one, where, and why (grpc-js wraps the
 * cause in a message of its own, so the errno code is read from the text as well).
 */
export function listenError(listener: string, host: string, port: number, err: unknown): string {
  const message = (err as Error).message ?? String(err)
  const code = (err as NodeJS.ErrnoException).code ?? /\b(E[A-Z]+)\b/.exec(message)?.[1]
  const why =
    code === 'EADDRINUSE' ? 'the port is already in use (another process holds it)'
    : code === 'EACCES' ? 'permission denied (a port below 1024 needs privileges)'
    : code === 'EADDRNOTAVAIL' ? `no interface has the address ${host} (server.host)`
    : message
  return `specserve: cannot listen for ${listener} on ${host}:${port}: ${why}`
}

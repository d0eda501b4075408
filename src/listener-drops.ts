// Connections a listener closed as they arrived because it was full (server.max_connections
// for REST, server.grpc_max_connections for gRPC). Node closes them before any byte is read,
// so a client sees its connection closed at once, like a network fault: the count (in
// /metrics and /readyz) and a warning at most every LOG_EVERY_MS say it was the limit.
import type { Server } from 'node:net'
import type { Gateway } from './gateway.ts'
import { silentLogger, type Component, type Logger, type MetricsSink } from './types.ts'

export type ListenerName = 'rest' | 'grpc'

/** At most one warning per listener per this long: a flood must not flood the log too. */
const LOG_EVERY_MS = 10_000

export class ListenerDrops implements Component {
  private readonly counts: Record<ListenerName, number> = { rest: 0, grpc: 0 }
  private log: Logger = silentLogger
  private readonly loggedAt: Record<ListenerName, number> = { rest: -Infinity, grpc: -Infinity }

  /** The gateway's one instance, attached as `listeners` on first use. */
  static of(gateway: Gateway): ListenerDrops {
    const known = gateway.components.get('listeners')
    if (known instanceof ListenerDrops) return known
    const drops = new ListenerDrops()
    gateway.attach('listeners', drops)
    return drops
  }

  /** Where the warnings go (the server's log); silent until set. */
  logTo(log: Logger): void {
    this.log = log
  }

  /** Counts what `server` drops (its `maxConnections` already set to `max`). */
  watch(server: Server, listener: ListenerName, max: number): void {
    server.on('drop', () => this.dropped(listener, max))
  }

  private dropped(listener: ListenerName, max: number): void {
    const count = ++this.counts[listener]
    const now = Date.now()
    if (now - this.loggedAt[listener] < LOG_EVERY_MS) return
    this.loggedAt[listener] = now
    const key = listener === 'rest' ? 'server.max_connections' : 'server.grpc_max_connections'
    this.log.warn({ listener, limit: max, dropped_total: count }, `the ${listener === 'rest' ? 'REST' : 'gRPC'} listener is full (${key}: ${max}): new connections are closed as they arrive`)
  }

  /** In /readyz only once a listener dropped one (undefined leaves the key out). */
  status(): unknown {
    return this.counts.rest + this.counts.grpc === 0 ? undefined : { dropped: { ...this.counts } }
  }

  collect(out: MetricsSink): void {
    out.counter('specserve_connections_dropped', 'Connections a listener closed as they arrived because it was full (server.max_connections, server.grpc_max_connections).', [
      [{ listener: 'rest' }, this.counts.rest],
      [{ listener: 'grpc' }, this.counts.grpc],
    ])
  }
}

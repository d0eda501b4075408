// Open by default, loudly: a gateway without an `auth` section serves anyone who can reach
// it, which is fine on loopback and worth a warning anywhere else.
import { isIP } from 'node:net'
import type { GatewayConfig } from '../config/load.ts'

export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true
  return isIP(host) === 4 && host.startsWith('127.')
}

/** The warning to log at start, or null when there is nothing to warn about. */
export function openWarning(config: GatewayConfig): string | null {
  const { host, tls } = config.server
  if (isLoopback(host)) return null
  if (config.auth === null) {
    return `listening on ${host} without an auth section: every endpoint (predict, model details, /metrics${config.admin.reload_endpoint ? ', /admin/reload' : ''}) is open to anyone who can reach it${tls ? '' : ', in plaintext'}; see docs/security.md`
  }
  if (!tls) return `listening on ${host} in plaintext: bearer credentials cross the network unencrypted; set server.tls (docs/security.md)`
  return null
}

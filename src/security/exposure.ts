// Open by default, loudly: a gateway without an `auth` section serves anyone who can reach
// it, which is fine on loopback and worth a warning anywhere else.
import { isIP } from 'node:net'
import type { GatewayConfig } from '../config/load.ts'

export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true
  return isIP(host) === 4 && host.startsWith('127.')
}

/**
 * SPECSERVE_ADMIN_TOKEN without the whitespace around it: a value read from a file (a
 * Kubernetes Secret, `$(cat token)`) often ends in a newline, which no header can carry (and
 * `canonical` trims around the token a client sends), so the token could never match. Here,
 * not in admin-token.ts, so that the warning below needs none of the guard's modules.
 */
export const adminTokenFromEnv = (): string | undefined => process.env.SPECSERVE_ADMIN_TOKEN?.trim() || undefined

/**
 * The warning to log at start, or null when there is nothing to warn about. On an open
 * gateway the admin routes it serves (POST /admin/reload with admin.reload_endpoint, a
 * repository's upload and rollback) are open too unless `adminToken` (SPECSERVE_ADMIN_TOKEN)
 * guards them.
 */
export function openWarning(config: GatewayConfig, adminToken = adminTokenFromEnv()): string | null {
  const { host, tls } = config.server
  if (isLoopback(host)) return null
  if (config.auth === null) {
    const admin = [...(config.admin.reload_endpoint ? ['/admin/reload'] : []), ...(config.repository ? ['model upload and rollback'] : [])]
    const guarded = adminToken !== undefined && admin.length > 0
    const open = ['predict', 'model details', '/metrics', ...(guarded ? [] : admin)]
    return `listening on ${host} without an auth section: every endpoint${guarded ? ' but those SPECSERVE_ADMIN_TOKEN guards' : ''} (${open.join(', ')}) is open to anyone who can reach it${tls ? '' : ', in plaintext'}; see docs/security.md`
  }
  if (!tls) return `listening on ${host} in plaintext: bearer credentials cross the network unencrypted; set server.tls (docs/security.md)`
  return null
}

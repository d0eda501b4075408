// Scopes compiled once into flags and a set, so a request's check is a field read (or
// one Set lookup for a predict), never string parsing.

/** The scopes a config may grant: predict:<ensemble> or predict:*, read, metrics, admin, debug. */
export const SCOPE_PATTERN = '^(predict:.+|read|metrics|admin|debug)$'

/** What a route or RPC needs. `authenticated`: any valid credentials (an unknown route, a malformed call). */
export type Access = 'health' | 'metrics' | 'read' | 'admin' | 'predict' | 'authenticated'

export interface Grants {
  readonly predictAll: boolean
  readonly predict: ReadonlySet<string>
  readonly read: boolean
  readonly metrics: boolean
  readonly admin: boolean
  /** Full annotations (error messages, upstream details); without it they are reduced to codes. */
  readonly debug: boolean
  /** Health checks: every credential, and anonymous callers unless `anonymous` leaves health out. */
  readonly health: boolean
  /** Holds a credential (false only for anonymous callers). */
  readonly authenticated: boolean
}

/**
 * Scopes from a config entry or a token's claim. Unknown scopes are ignored (a token may
 * carry scopes for other services). `anonymous` compiles the `auth.anonymous` list instead.
 */
export function compileScopes(scopes: readonly string[], anonymous?: readonly ('health' | 'metrics' | 'read')[]): Grants {
  const predict = new Set<string>()
  let predictAll = false
  for (const s of scopes) {
    if (s === 'predict:*') predictAll = true
    else if (s.startsWith('predict:') && s.length > 8) predict.add(s.slice(8))
  }
  const has = (s: string): boolean => scopes.includes(s)
  if (anonymous) {
    const read = anonymous.includes('read')
    // `read` opens /metrics for anonymous callers as it does for keys and tokens (docs/security.md's scope table).
    return { predictAll: false, predict, read, metrics: read || anonymous.includes('metrics'), admin: false, debug: false, health: anonymous.includes('health'), authenticated: false }
  }
  return { predictAll, predict, read: has('read'), metrics: has('metrics') || has('read'), admin: has('admin'), debug: has('debug'), health: true, authenticated: true }
}

/** Whether `grants` allow `access` (for a predict, on `ensemble`). */
export function allows(grants: Grants, access: Access, ensemble: string): boolean {
  switch (access) {
    case 'predict':
      return grants.predictAll || grants.predict.has(ensemble)
    case 'authenticated':
      return grants.authenticated
    default:
      return grants[access]
  }
}

/** Reads a token's scope claim: a space-separated string (RFC 8693 `scope`) or an array of strings (`scp`, `roles`). */
export function claimScopes(claim: unknown): string[] {
  if (typeof claim === 'string') return claim.split(' ').filter((s) => s !== '')
  if (Array.isArray(claim)) return claim.filter((s): s is string => typeof s === 'string')
  return []
}

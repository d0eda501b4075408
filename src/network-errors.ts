// What a failed connection looks like in Node's and undici's errors: the remote executors count
// it against their upstream (unavailable), the model stream tries a record's location again.

/** Codes of a connection that failed or was lost: the socket's, the resolver's, undici's closed or timed-out socket. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN',
  'ENOTFOUND', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
])

/** The error's code, or its cause's (fetch and undici wrap the socket's error); '' when it has none. */
export function errorCodeOf(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null
  const code = e?.cause?.code ?? e?.code
  return typeof code === 'string' ? code : ''
}

/** Whether `code` says the connection failed or was lost (not what was sent or answered over it). */
export const isConnectionFailure = (code: string): boolean => CONNECTION_CODES.has(code)

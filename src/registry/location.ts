// A model stream record's model: inline, or at its `location`, an http(s) URL or a file, read at most max_model_bytes.
// What the record names is refused (committed as rejected): a host no resolver knows, an error
// status, a file that is not there. What the network, the server or the box does for now (a
// connection refused or reset, a resolver not answering, the timeout, 408/429/5xx but 501 and
// 505, EIO, EACCES) is thrown so the stream tries the record again instead of losing it.
import { readFile, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { bodyAtMost } from '../body-limit.ts'
import { errorCodeOf, isConnectionFailure } from '../network-errors.ts'
import type { RepositoryConfig } from './config.ts'
import type { ModelDescriptor } from './descriptor.ts'

/** A record that cannot become a version; its reason is logged and kept. */
export class Refused extends Error {}

/** The network or the server failed for now (unreachable, a reset, no answer in time, 503): tried again. */
export class Unreachable extends Error {
  readonly location: string
  /** What failed, without the location. */
  readonly why: string

  constructor(location: string, why: string) {
    super(`location ${location}: ${why}`)
    this.location = location
    this.why = why
  }
}

const FETCH_TIMEOUT_MS = 60_000

/**
 * A connection that failed for now, tried again; but a name that does not exist (ENOTFOUND, where
 * a resolver not answering is EAI_AGAIN) is the record's. Any other code (a header overflow, a
 * feature not supported) would fail again as it is.
 */
const failedForNow = (code: string): boolean => isConnectionFailure(code) && code !== 'ENOTFOUND'
/** Statuses of a server that may answer later (too busy, restarting, a gateway before it): 501 and 505 would not. */
const TRANSIENT_STATUSES = new Set([408, 425, 429, 500, 502, 503, 504])
/** What a file location's path names that is not there (or cannot be): the record is at fault. */
const NO_FILE = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG'])

const overLimit = (location: string, limit: number): Refused => new Refused(`location ${location}: over max_model_bytes (${limit})`)

/** A failed fetch as the stream takes it: Unreachable for the network, Refused for the rest (a URL or port fetch refuses). */
function fetchFailure(location: string, err: unknown): Error {
  if (err instanceof Refused || err instanceof Unreachable) return err
  const error = err as Error
  if (error.name === 'TimeoutError') return new Unreachable(location, `not read within ${FETCH_TIMEOUT_MS} ms`)
  const cause = error.cause as Error | undefined
  const why = `${error.message}${cause?.message ? ` (${cause.message})` : ''}`
  return failedForNow(errorCodeOf(err)) ? new Unreachable(location, why) : new Refused(`location ${location}: ${why}`)
}

/** An http(s) location's body, read as it streams in: the download is aborted once past `limit`, whatever content-length said. */
export async function fetchAtMost(location: string, limit: number): Promise<Uint8Array> {
  const stop = new AbortController()
  try {
    const res = await fetch(location, { signal: AbortSignal.any([stop.signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]) })
    if (!res.ok) throw TRANSIENT_STATUSES.has(res.status) ? new Unreachable(location, `HTTP ${res.status}`) : new Refused(`location ${location}: HTTP ${res.status}`)
    if (Number(res.headers.get('content-length') ?? 0) > limit) throw overLimit(location, limit)
    const body = await bodyAtMost(res, limit)
    if (body === null) throw overLimit(location, limit)
    return body
  } catch (err) {
    throw fetchFailure(location, err)
  } finally {
    stop.abort() // the rest of a body not read (over the limit, an error status) is not downloaded
  }
}

/** A file location's bytes: a regular file (not a device, a pipe or a directory) of at most `limit` bytes. */
export async function readAtMost(path: string, limit: number): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    const info = await stat(path)
    if (!info.isFile()) throw new Refused(`location ${path}: not a regular file`)
    if (info.size > limit) throw overLimit(path, limit)
    bytes = await readFile(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw code !== undefined && NO_FILE.has(code) ? new Refused(`location ${path}: ${code}`) : err
  }
  if (bytes.byteLength > limit) throw overLimit(path, limit) // it grew since stat
  return bytes
}

/** A record's model: inline, or read from a file (relative to the config's directory) or an http(s) URL, at most max_model_bytes. */
export async function modelOf(d: ModelDescriptor, repository: Pick<RepositoryConfig, 'maxModelBytes' | 'baseDir'>): Promise<Uint8Array> {
  if (!d.payload) throw new Refused('the descriptor has neither data nor location')
  const limit = repository.maxModelBytes
  // Inline data is held already, but no version is larger than an upload or a location may be.
  if (d.payload.kind === 'data' && d.payload.data.byteLength > limit) throw new Refused(`data: ${d.payload.data.byteLength} bytes, over max_model_bytes (${limit})`)
  if (d.payload.kind === 'data') return d.payload.data
  const { location } = d.payload
  if (/^https?:\/\//i.test(location)) return fetchAtMost(location, limit)
  return readAtMost(resolve(repository.baseDir, location.replace(/^file:\/\//, '')), limit)
}

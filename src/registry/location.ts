// A model stream record's `location`: an http(s) URL or a file, read at most max_model_bytes.
import { readFile, stat } from 'node:fs/promises'
import { bodyAtMost } from '../body-limit.ts'

/** A record that cannot become a version; its reason is logged and kept. */
export class Refused extends Error {}

const FETCH_TIMEOUT_MS = 60_000

const overLimit = (location: string, limit: number): Refused => new Refused(`location ${location}: over max_model_bytes (${limit})`)

/** An http(s) location's body, read as it streams in: the download is aborted once past `limit`, whatever content-length said. */
export async function fetchAtMost(location: string, limit: number): Promise<Uint8Array> {
  const stop = new AbortController()
  try {
    const res = await fetch(location, { signal: AbortSignal.any([stop.signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]) })
    if (!res.ok) throw new Refused(`location ${location}: HTTP ${res.status}`)
    if (Number(res.headers.get('content-length') ?? 0) > limit) throw overLimit(location, limit)
    const body = await bodyAtMost(res, limit)
    if (body === null) throw overLimit(location, limit)
    return body
  } catch (err) {
    throw err instanceof Refused ? err : new Refused(`location ${location}: ${(err as Error).message}`)
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
    throw err instanceof Refused ? err : new Refused(`location ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (bytes.byteLength > limit) throw overLimit(path, limit) // it grew since stat
  return bytes
}

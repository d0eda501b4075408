// A model stream record's `location`, and what its failure does to the record: refused (committed
// as rejected) when the record names what cannot be had (an error status, no such file), tried
// again when the network, the server or the box fails for now (a connection refused or reset, a
// resolver not answering, the timeout, a 503, EIO or EACCES on the file), as the stream decides it (triedAgain).
import { once } from 'node:events'
import type * as fsp from 'node:fs/promises'
import { writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { fetchAtMost, readAtMost, Refused } from '../../src/registry/location.ts'
import { triedAgain } from '../../src/registry/stream-judge.ts'
import { tempDir } from '../temp-dirs.ts'

const LIMIT = 1000

/** Reads of a path in `failing` fail with its code, as a failing disk or a permission change does. */
const { failing } = vi.hoisted(() => ({ failing: new Map<string, string>() }))
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof fsp>()
  return {
    ...real,
    readFile: (...args: Parameters<typeof fsp.readFile>) => {
      const code = failing.get(String(args[0]))
      return code ? Promise.reject(Object.assign(new Error(`${code}: cannot read`), { code })) : real.readFile(...args)
    },
  }
})

/** The error `reading` fails with. */
async function failure(reading: Promise<unknown>): Promise<Error> {
  const outcome = await reading.then(() => undefined, (err: unknown) => err as Error)
  if (!outcome) throw new Error('expected the read to fail')
  return outcome
}

let server: Server | undefined
afterEach(() => {
  server?.closeAllConnections()
  server?.close()
  server = undefined
  failing.clear()
  vi.restoreAllMocks()
  vi.unstubAllGlobals()
})

/** A local server answering with `handle`; its base URL. */
async function serving(handle: Parameters<typeof createServer>[1]): Promise<string> {
  server = createServer(handle)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('an http(s) location', () => {
  it('that refuses the connection is tried again, not refused', async () => {
    const base = await serving(() => undefined)
    server!.close()
    await once(server!, 'close')
    const err = await failure(fetchAtMost(`${base}/model.onnx`, LIMIT))
    expect(err).not.toBeInstanceOf(Refused)
    expect(err.message).toMatch(/ECONNREFUSED/)
    expect(triedAgain(err)).toBe(true)
  })

  it('whose resolver does not answer (EAI_AGAIN) is tried again; a name that does not exist (ENOTFOUND) is refused', async () => {
    for (const [code, again] of [['EAI_AGAIN', true], ['ENOTFOUND', false]] as const) {
      const cause = Object.assign(new Error(`getaddrinfo ${code} models.internal`), { code })
      vi.stubGlobal('fetch', () => Promise.reject(new TypeError('fetch failed', { cause })))
      const err = await failure(fetchAtMost('http://models.internal/model.onnx', LIMIT))
      expect([err.message, triedAgain(err)]).toEqual([`location http://models.internal/model.onnx: fetch failed (getaddrinfo ${code} models.internal)`, again])
    }
  })

  it('answering a status a server gives for now (503, 429, 502) is tried again; one that would not change (404, 501) is refused', async () => {
    let status = 0
    const base = await serving((_req, res) => res.writeHead(status).end())
    const outcomes: [number, boolean][] = []
    for (status of [503, 429, 502, 404, 501]) outcomes.push([status, triedAgain(await failure(fetchAtMost(`${base}/model.onnx`, LIMIT)))])
    expect(outcomes).toEqual([[503, true], [429, true], [502, true], [404, false], [501, false]])
  })

  it('failing with an undici code that would fail again as it is (a header overflow) is refused', async () => {
    const cause = Object.assign(new Error('Headers Overflow Error'), { code: 'UND_ERR_HEADERS_OVERFLOW' })
    vi.stubGlobal('fetch', () => Promise.reject(new TypeError('fetch failed', { cause })))
    expect(triedAgain(await failure(fetchAtMost('http://models.internal/model.onnx', LIMIT)))).toBe(false)
  })

  it('whose connection is reset in the middle of the download is tried again', async () => {
    const base = await serving((_req, res) => {
      res.writeHead(200, { 'content-length': String(LIMIT) })
      res.write(Buffer.alloc(100), () => res.destroy())
    })
    const err = await failure(fetchAtMost(`${base}/model.onnx`, LIMIT))
    expect(err).not.toBeInstanceOf(Refused)
    expect(triedAgain(err)).toBe(true)
  })

  it('that does not answer in time is tried again', async () => {
    const timeout = new AbortController()
    vi.spyOn(AbortSignal, 'timeout').mockReturnValue(timeout.signal)
    let asked!: () => void
    const request = new Promise<void>((resolve) => (asked = resolve))
    const base = await serving(() => asked())
    const reading = failure(fetchAtMost(`${base}/model.onnx`, LIMIT))
    await request
    timeout.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))
    const err = await reading
    expect([err.message, triedAgain(err)]).toEqual([`location ${base}/model.onnx: not read within 60000 ms`, true])
  })

  it('answering 404, or a URL fetch cannot use, is refused', async () => {
    const base = await serving((_req, res) => res.writeHead(404).end())
    const gone = await failure(fetchAtMost(`${base}/gone.onnx`, LIMIT))
    expect([gone, triedAgain(gone)]).toEqual([new Refused(`location ${base}/gone.onnx: HTTP 404`), false])
    const badPort = await failure(fetchAtMost('http://127.0.0.1:1/model.onnx', LIMIT))
    expect([badPort instanceof Refused, triedAgain(badPort)]).toEqual([true, false])
  })
})

describe('a file location', () => {
  it('that is not there is refused; one the box cannot read for now (EIO, EACCES, EMFILE) is tried again', async () => {
    const dir = tempDir('specserve-location-')
    const missing = await failure(readAtMost(join(dir, 'missing.onnx'), LIMIT))
    expect([missing, triedAgain(missing)]).toEqual([new Refused(`location ${join(dir, 'missing.onnx')}: ENOENT`), false])
    const file = join(dir, 'model.onnx')
    writeFileSync(file, 'model')
    for (const code of ['EIO', 'EACCES', 'EMFILE']) {
      failing.set(file, code)
      const err = await failure(readAtMost(file, LIMIT))
      expect([err instanceof Refused, (err as NodeJS.ErrnoException).code, triedAgain(err)]).toEqual([false, code, true])
    }
    failing.clear()
    expect(Buffer.from(await readAtMost(file, LIMIT)).toString()).toBe('model')
  })
})

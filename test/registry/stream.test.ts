// The model stream's handling of one record, without a broker: how much of a model (inline, or
// at a `location`) it takes, which failures commit the record (it cannot become a version) and
// which do not (a full disk: it is tried again, and the records after it wait); and a replayed
// record, skipped as a duplicate once the version it names has been judged (judged first if it
// was not, a drain meanwhile leaving it for the next start, as for a record just stored).
import { EventEmitter, once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest'
import { GatewayError } from '../../src/errors.ts'
import type { RepositoryConfig } from '../../src/registry/config.ts'
import { encodeDescriptor, type ModelDescriptor } from '../../src/registry/descriptor.ts'
import type { Registry } from '../../src/registry/registry.ts'
import type { VersionMeta } from '../../src/registry/version-meta.ts'
import { COMMIT_ATTEMPTS, ModelStream, type Raw } from '../../src/registry/stream.ts'
import { retryDelay } from '../../src/registry/stream-judge.ts'
import { Consumer } from '@platformatic/kafka'
import type { Logger } from '../../src/types.ts'
import { tempDir } from '../temp-dirs.ts'

const RETRYING = 'model stream: a record failed unexpectedly; not committed, tried again'
const COMMIT_RETRIED = 'model stream: commit failed; tried again'
const COMMIT_GIVEN_UP = 'model stream: commit failed; the record may be read again'
const LIMIT = 1000

let dir: string
let stream: ModelStream
let arrive: ReturnType<typeof vi.fn<Registry['arrive']>>
/** The registry the stream sees: no version stored yet unless a test says so. */
let registry: { isRepositoryModel: Registry['isRepositoryModel']; versionWithSha: Registry['versionWithSha']; version: Registry['version']; arrive: Registry['arrive']; judgeStored: Registry['judgeStored'] }
const logged = new EventEmitter()
const log: Logger = { info: () => undefined, warn: (obj, msg) => logged.emit(msg, obj), error: (obj, msg) => logged.emit(msg, obj) }

const serving = { version: 2, state: 'serving', reason: null } as VersionMeta
const diskFull = (): NodeJS.ErrnoException => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })

function descriptor(payload: ModelDescriptor['payload']): Buffer {
  return Buffer.from(encodeDescriptor({ name: 'm', version: 0, description: '', modelType: 'onnx', payload, sha256: '' }))
}

let nextOffset = 7n
function record(value: Buffer, offset = nextOffset): Raw {
  nextOffset = offset + 1n
  return { key: 'm', value, topic: 't', partition: 0, offset, leaderEpoch: 0 } as unknown as Raw
}

/** The stream's offset commits (through its consumer), mocked: no broker here. */
let commitCalls: MockInstance<(options: { offsets: readonly { partition: number; offset: bigint }[] }) => Promise<void>>
/** How many times the record's offset was committed. */
const commits = (message: Raw): number => commitCalls.mock.calls.filter(([options]) => options.offsets.some((o) => o.partition === message.partition && o.offset === message.offset + 1n)).length
/** The order of the record's first commit among all commits. */
const commitOrder = (message: Raw): number => commitCalls.mock.invocationCallOrder[commitCalls.mock.calls.findIndex(([options]) => options.offsets.some((o) => o.offset === message.offset + 1n))]!

/** Receives a record and waits until it is judged: [result, model, reason]. */
async function judged(message: Raw): Promise<unknown[]> {
  const done = once(stream, 'record')
  stream.receive(message)
  return done
}

beforeEach(() => {
  nextOffset = 7n
  commitCalls = vi.spyOn(Consumer.prototype, 'commit').mockImplementation(() => Promise.resolve()) as never
  vi.spyOn(Consumer.prototype, 'isActive').mockReturnValue(true)
  dir = tempDir('specserve-stream-')
  arrive = vi.fn<Registry['arrive']>().mockResolvedValue(serving)
  registry = { isRepositoryModel: (name) => name === 'm', versionWithSha: () => Promise.resolve(undefined), version: () => serving, arrive, judgeStored: () => Promise.reject(new Error('not expected')) }
  const repository: RepositoryConfig = { path: join(dir, 'repo'), keepVersions: 3, watch: false, maxModelBytes: LIMIT, kafka: { brokers: ['127.0.0.1:1'], topic: 't', group: 'g', catchUpTimeoutMs: 0 }, baseDir: dir }
  stream = new ModelStream(registry as unknown as Registry, repository, 'test', log)
})

afterEach(async () => {
  vi.useRealTimers()
  await stream.close()
  vi.restoreAllMocks()
})

describe('a model over max_model_bytes', () => {
  let server: Server | undefined
  afterEach(() => server?.close())

  it('served chunked (no content-length): refused once past the limit, the download aborted', async () => {
    const total = 64 * 1024 * 1024
    let sent = 0
    const ended = new Promise<{ sent: number; finished: boolean }>((resolve) => {
      server = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        res.on('close', () => resolve({ sent, finished: res.writableFinished }))
        const chunk = Buffer.alloc(1 << 20)
        const pump = (): void => {
          while (sent < total) {
            sent += chunk.length
            if (!res.write(chunk)) return void res.once('drain', pump)
          }
          res.end()
        }
        pump()
      })
    })
    server!.listen(0, '127.0.0.1')
    await once(server!, 'listening')
    const url = `http://127.0.0.1:${(server!.address() as AddressInfo).port}/model.onnx`
    const message = record(descriptor({ kind: 'location', location: url }))
    expect(await judged(message)).toEqual(['rejected', 'm', `location ${url}: over max_model_bytes (${LIMIT})`])
    const download = await ended
    expect(download.finished).toBe(false)
    expect(download.sent).toBeLessThan(total)
    expect(arrive).not.toHaveBeenCalled()
    expect(commits(message)).toBe(1)
  })

  it('a file: its size is checked before it is read; a directory is refused as not a regular file', async () => {
    writeFileSync(join(dir, 'big.onnx'), Buffer.alloc(LIMIT + 1))
    mkdirSync(join(dir, 'folder.onnx'))
    expect(await judged(record(descriptor({ kind: 'location', location: 'big.onnx' })))).toEqual(['rejected', 'm', `location ${join(dir, 'big.onnx')}: over max_model_bytes (${LIMIT})`])
    expect(await judged(record(descriptor({ kind: 'location', location: 'folder.onnx' })))).toEqual(['rejected', 'm', `location ${join(dir, 'folder.onnx')}: not a regular file`])
    writeFileSync(join(dir, 'small.onnx'), Buffer.alloc(LIMIT))
    expect(await judged(record(descriptor({ kind: 'location', location: 'small.onnx' })))).toEqual(['accepted', 'm', null])
    expect(arrive).toHaveBeenCalledOnce()
  })

  it('inline: refused as a location over it is, committed as rejected', async () => {
    const message = record(descriptor({ kind: 'data', data: Buffer.alloc(LIMIT + 1) }))
    expect([await judged(message), commits(message), arrive.mock.calls.length]).toEqual([['rejected', 'm', `data: ${LIMIT + 1} bytes, over max_model_bytes (${LIMIT})`], 1, 0])
  })
})

describe('which records are committed', () => {
  it('a record that cannot become a version is committed at once, as rejected', async () => {
    const garbage = record(Buffer.from([0xff, 0xff, 0xff]))
    expect(await judged(garbage)).toEqual(['rejected', 'm', expect.stringMatching(/not a specserve.v1.ModelDescriptor/)])
    arrive.mockRejectedValueOnce(new GatewayError('VERSION_EXISTS', 'model "m" has a version 3 already'))
    const exists = record(descriptor({ kind: 'data', data: Buffer.from('model') }))
    expect(await judged(exists)).toEqual(['rejected', 'm', 'model "m" has a version 3 already'])
    expect([commits(garbage), commits(exists)]).toEqual([1, 1])
  })

  it('a record whose handling fails with a bug (not a system error) is committed as rejected, not retried for ever', async () => {
    arrive.mockRejectedValueOnce(new TypeError("Cannot read properties of undefined (reading 'version')"))
    const buggy = record(descriptor({ kind: 'data', data: Buffer.from('model') }))
    expect(await judged(buggy)).toEqual(['rejected', 'm', "unexpected: Cannot read properties of undefined (reading 'version')"])
    expect(commits(buggy)).toBe(1)
    expect(arrive).toHaveBeenCalledTimes(1)
  })

  it('a record stored while the gateway drains (NOT_READY: judged at the next start) is committed as accepted, not rejected', async () => {
    arrive.mockRejectedValueOnce(new GatewayError('NOT_READY', 'cannot reload: gateway is draining: the version is stored and judged once the gateway is ready again'))
    const stored = record(descriptor({ kind: 'data', data: Buffer.from('model') }))
    expect(await judged(stored)).toEqual(['accepted', 'm', null])
    expect(commits(stored)).toBe(1)
    expect(stream.status()).toMatchObject({ accepted: 1, rejected: 0, recent_rejections: [] })
  })

  it('a record that failed unexpectedly (a full disk) is not committed: tried again with backoff, then committed; the next record waits', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    arrive.mockRejectedValueOnce(diskFull()).mockRejectedValueOnce(diskFull())
    const first = record(descriptor({ kind: 'data', data: Buffer.from('model 1') }), 7n)
    const next = record(descriptor({ kind: 'data', data: Buffer.from('model 2') }), 8n)
    const retrying = once(logged, RETRYING)
    const judgedFirst = judged(first)
    stream.receive(next)
    expect(await retrying).toEqual([expect.objectContaining({ model: 'm', offset: '7', attempt: 1, retry_in_ms: retryDelay(1), error: expect.stringMatching(/ENOSPC/) })])
    expect(stream.status()).toMatchObject({ retrying: { model: 'm', offset: '7', attempts: 1 } })
    const again = once(logged, RETRYING)
    await vi.advanceTimersByTimeAsync(retryDelay(1))
    expect(await again).toEqual([expect.objectContaining({ attempt: 2, retry_in_ms: retryDelay(2) })])
    expect([commits(first), commits(next), arrive.mock.calls.length]).toEqual([0, 0, 2])
    await vi.advanceTimersByTimeAsync(retryDelay(2))
    expect(await judgedFirst).toEqual(['accepted', 'm', null])
    await stream.idle()
    expect([commits(first), commits(next), arrive.mock.calls.length]).toEqual([1, 1, 4])
    expect(commitOrder(first)).toBeLessThan(commitOrder(next))
    expect(stream.status()).toMatchObject({ accepted: 2, rejected: 0, retrying: null })
  })

  it('a stop while a record waits for its retry leaves it uncommitted, to be read again, and the record behind it too', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    arrive.mockRejectedValueOnce(diskFull())
    const message = record(descriptor({ kind: 'data', data: Buffer.from('model 1') }))
    const behind = record(descriptor({ kind: 'data', data: Buffer.from('model 2') }))
    const retrying = once(logged, RETRYING)
    stream.receive(message)
    stream.receive(behind)
    await retrying
    await stream.close()
    // Committing the one behind would commit past the first: never read again.
    expect([commits(message), commits(behind)]).toEqual([0, 0])
    expect(arrive).toHaveBeenCalledOnce()
  })

  it('a record judged while the consumer is out of its group is not committed (the client would rejoin by itself)', async () => {
    vi.mocked(Consumer.prototype.isActive).mockReturnValue(false)
    const message = record(descriptor({ kind: 'data', data: Buffer.from('model') }))
    expect(await judged(message)).toEqual(['accepted', 'm', null])
    expect(commits(message)).toBe(0)
  })

  it('a commit that fails is sent again (1 s, then 2 s later) before the next record is judged: no later record may come to commit past it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const coordinatorMoved = new Error('NOT_COORDINATOR')
    commitCalls.mockRejectedValueOnce(coordinatorMoved).mockRejectedValueOnce(coordinatorMoved)
    const first = record(descriptor({ kind: 'data', data: Buffer.from('model 1') }))
    const next = record(descriptor({ kind: 'data', data: Buffer.from('model 2') }))
    const retried = once(logged, COMMIT_RETRIED)
    const judgedFirst = judged(first)
    stream.receive(next)
    expect(await retried).toEqual([expect.objectContaining({ offset: String(first.offset), attempt: 1, retry_in_ms: retryDelay(1), error: 'NOT_COORDINATOR' })])
    const again = once(logged, COMMIT_RETRIED)
    await vi.advanceTimersByTimeAsync(retryDelay(1))
    expect(await again).toEqual([expect.objectContaining({ attempt: 2, retry_in_ms: retryDelay(2) })])
    expect([commits(first), commits(next), arrive.mock.calls.length]).toEqual([2, 0, 1])
    await vi.advanceTimersByTimeAsync(retryDelay(2))
    expect(await judgedFirst).toEqual(['accepted', 'm', null])
    await stream.idle()
    expect([commits(first), commits(next)]).toEqual([3, 1])
    expect(commitOrder(first)).toBeLessThan(commitOrder(next))
  })

  it(`a commit that fails ${COMMIT_ATTEMPTS} times is given up (the record may be read again) and the records after it go on`, async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    for (let i = 0; i < COMMIT_ATTEMPTS; i++) commitCalls.mockRejectedValueOnce(new Error('REQUEST_TIMED_OUT'))
    const first = record(descriptor({ kind: 'data', data: Buffer.from('model 1') }))
    const next = record(descriptor({ kind: 'data', data: Buffer.from('model 2') }))
    const givenUp = once(logged, COMMIT_GIVEN_UP)
    stream.receive(first)
    stream.receive(next)
    await vi.advanceTimersByTimeAsync(retryDelay(1) + retryDelay(2))
    expect(await givenUp).toEqual([expect.objectContaining({ offset: String(first.offset), attempts: COMMIT_ATTEMPTS, error: 'REQUEST_TIMED_OUT' })])
    await stream.idle()
    expect([commits(first), commits(next)]).toEqual([COMMIT_ATTEMPTS, 1])
    expect(stream.status()).toMatchObject({ accepted: 2 })
  })
})

describe('a new message stream (the old one ended in a broker outage)', () => {
  it('delivers again the records still held here: each is judged and committed once, and its commit goes through the consumer', async () => {
    let release: () => void = () => undefined
    arrive.mockImplementationOnce(() => new Promise((resolve) => (release = () => resolve(serving))))
    const first = record(descriptor({ kind: 'data', data: Buffer.from('model 1') }))
    const second = record(descriptor({ kind: 'data', data: Buffer.from('model 2') }))
    const results: unknown[] = []
    stream.on('record', (...args) => results.push(args))
    stream.receive(first)
    stream.receive(second)
    await vi.waitFor(() => expect(arrive).toHaveBeenCalledOnce())
    // The new stream starts from the committed offset: both come again.
    stream.receive({ ...first })
    stream.receive({ ...second })
    expect(stream.status()).toMatchObject({ held: 2 })
    release()
    await stream.idle()
    expect(results).toEqual([['accepted', 'm', null], ['accepted', 'm', null]])
    expect([commits(first), commits(second), arrive.mock.calls.length]).toEqual([1, 1, 2])
  })
})

describe('a replayed record (its bytes are a version already stored)', () => {
  it('whose version is judged: committed as duplicate, not stored again', async () => {
    registry.versionWithSha = () => Promise.resolve(2)
    const replay = record(descriptor({ kind: 'data', data: Buffer.from('model') }))
    expect(await judged(replay)).toEqual(['duplicate', 'm', null])
    expect(commits(replay)).toBe(1)
    expect(arrive).not.toHaveBeenCalled()
  })

  it('whose version is still loading (a system error after storing it): judged now, in turn, and committed once judged', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    registry.versionWithSha = () => Promise.resolve(2)
    registry.version = () => ({ ...serving, state: 'loading' }) as VersionMeta
    // Judging it fails once more on the full disk, then goes through.
    const judgeStored = vi.fn<Registry['judgeStored']>().mockRejectedValueOnce(diskFull()).mockResolvedValue(serving)
    registry.judgeStored = judgeStored
    const retry = record(descriptor({ kind: 'data', data: Buffer.from('model') }))
    const done = once(stream, 'record')
    const failed = once(logged, RETRYING)
    stream.receive(retry)
    expect(await failed).toEqual([expect.objectContaining({ model: 'm', offset: '7', attempt: 1, error: 'ENOSPC: no space left on device, write' })])
    expect(commits(retry)).toBe(0)
    await vi.advanceTimersByTimeAsync(retryDelay(1))
    expect(await done).toEqual(['accepted', 'm', null])
    expect(judgeStored.mock.calls).toEqual([['m', 2], ['m', 2]])
    expect(commits(retry)).toBe(1)
    expect(arrive).not.toHaveBeenCalled()
    expect(stream.status()).toMatchObject({ accepted: 1, duplicate: 0, retrying: null })
  })

  it('whose version is still loading, judged as the gateway drains (NOT_READY: judged at the next start): committed as accepted, not rejected', async () => {
    registry.versionWithSha = () => Promise.resolve(2)
    registry.version = () => ({ ...serving, state: 'loading' }) as VersionMeta
    registry.judgeStored = () => Promise.reject(new GatewayError('NOT_READY', 'cannot reload: gateway is draining: the version is stored and judged once the gateway is ready again'))
    const rejections: unknown[] = []
    logged.on('model descriptor rejected', (obj) => rejections.push(obj))
    const replay = record(descriptor({ kind: 'data', data: Buffer.from('model') }))
    expect(await judged(replay)).toEqual(['accepted', 'm', null])
    expect(commits(replay)).toBe(1)
    expect(stream.status()).toMatchObject({ accepted: 1, rejected: 0, recent_rejections: [] })
    expect(rejections).toEqual([])
    logged.removeAllListeners('model descriptor rejected')
  })
})

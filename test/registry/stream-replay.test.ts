// A model-stream record read again (a new consumer group reads the topic from the start, as a
// restart under a new instance name does) whose model is at a `location`: known by the sha256
// it carries before anything is fetched, so a server gone since, or a 404 now, neither stops
// the stream nor counts as a new rejection. A new record whose location is out of reach is still
// tried again, until its bytes are stored as its version (an operator's upload), then skipped.
// No broker and no network: the registry is a stand-in, and fetch is mocked.
import { EventEmitter, once } from 'node:events'
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest'
import type { RepositoryConfig } from '../../src/registry/config.ts'
import { encodeDescriptor, type ModelDescriptor } from '../../src/registry/descriptor.ts'
import type { Registry } from '../../src/registry/registry.ts'
import { sha256Hex } from '../../src/registry/sha256.ts'
import type { VersionMeta } from '../../src/registry/version-meta.ts'
import { ModelStream, type Raw } from '../../src/registry/stream.ts'
import { retryDelay } from '../../src/registry/stream-judge.ts'
import { Consumer } from '@platformatic/kafka'
import type { Logger } from '../../src/types.ts'

const RETRYING = 'model stream: a record failed unexpectedly; not committed, tried again'
const URL = 'http://127.0.0.1:18090/m.onnx'
const model = Buffer.from('model 8')
const SHA = sha256Hex(model)

/** What the repository holds: the stand-in registry answers from it as the real one does. */
let stored: VersionMeta[]
let arrive: ReturnType<typeof vi.fn<Registry['arrive']>>
let judgeStored: ReturnType<typeof vi.fn<Registry['judgeStored']>>
let fetched: MockInstance<typeof fetch>
let commitCalls: MockInstance<(options: { offsets: readonly { offset: bigint }[] }) => Promise<void>>
let stream: ModelStream
const logged = new EventEmitter()
const log: Logger = { info: () => undefined, warn: (obj, msg) => logged.emit(msg, obj), error: (obj, msg) => logged.emit(msg, obj) }

const meta = (version: number, state: VersionMeta['state'], sha256 = SHA): VersionMeta => ({ version, state, sha256, reason: state === 'rejected' ? 'failed its gate' : null }) as VersionMeta
/** The server named by the location is gone: what undici throws for a connection refused. */
const refused = (): Promise<Response> => Promise.reject(new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:18090'), { code: 'ECONNREFUSED' }) }))

let offset = 7n
function record(version: number, payload: NonNullable<ModelDescriptor['payload']>, sha256: string): Raw {
  const value = Buffer.from(encodeDescriptor({ name: 'cancer-main', version, description: '', modelType: 'onnx', payload, sha256 }))
  return { key: 'cancer-main', value, topic: 't', partition: 0, offset: offset++, leaderEpoch: 0 } as unknown as Raw
}
/** As `publish-model --location` publishes it: the location and the sha256 of the file published. */
const locationRecord = (version: number): Raw => record(version, { kind: 'location', location: URL }, SHA)
const commits = (message: Raw): number => commitCalls.mock.calls.filter(([options]) => options.offsets.some((o) => o.offset === message.offset + 1n)).length

/** A record's next outcome: judged ([result, model, reason]), or left uncommitted to be tried again. */
const nextOutcome = (): Promise<unknown[]> => Promise.race([once(stream, 'record'), once(logged, RETRYING).then(([obj]) => ['tried again', (obj as { error: string }).error])])

function firstOutcome(message: Raw): Promise<unknown[]> {
  const outcome = nextOutcome()
  stream.receive(message)
  return outcome
}

beforeEach(() => {
  offset = 7n
  stored = []
  commitCalls = vi.spyOn(Consumer.prototype, 'commit').mockImplementation(() => Promise.resolve()) as never
  vi.spyOn(Consumer.prototype, 'isActive').mockReturnValue(true)
  fetched = vi.spyOn(globalThis, 'fetch').mockImplementation(refused)
  arrive = vi.fn<Registry['arrive']>().mockImplementation((_name, _bytes, arrival) => Promise.resolve(meta(arrival.version, 'serving')))
  judgeStored = vi.fn<Registry['judgeStored']>().mockRejectedValue(new Error('not expected'))
  const registry: Pick<Registry, 'isRepositoryModel' | 'versionWithSha' | 'list' | 'version' | 'arrive' | 'judgeStored'> = {
    isRepositoryModel: (name) => name === 'cancer-main',
    versionWithSha: (_name, sha256, version = 0) => Promise.resolve(stored.find((m) => m.sha256 === sha256 && (version === 0 || m.version === version))?.version),
    list: () => stored,
    version: (_name, version) => stored.find((m) => m.version === version)!,
    arrive,
    judgeStored,
  }
  const repository: RepositoryConfig = { path: '/nonexistent/repo', keepVersions: 3, watch: false, maxModelBytes: 1000, kafka: { brokers: ['127.0.0.1:1'], topic: 't', group: 'g', catchUpTimeoutMs: 0 }, baseDir: '/nonexistent' }
  stream = new ModelStream(registry as unknown as Registry, repository, 'test', log)
})

afterEach(async () => {
  vi.useRealTimers()
  await stream.close()
  vi.restoreAllMocks()
})

describe('a replayed location record (its sha256 is a version stored already)', () => {
  it('whose server is gone: committed as duplicate without a fetch, and the records after it are judged', async () => {
    stored.push(meta(8, 'serving'))
    const replay = locationRecord(8)
    expect(await firstOutcome(replay)).toEqual(['duplicate', 'cancer-main', null])
    expect([fetched.mock.calls.length, commits(replay)]).toEqual([0, 1])
    // Version 10, new, inline: judged behind it.
    const next = record(10, { kind: 'data', data: Buffer.from('model 10') }, sha256Hex(Buffer.from('model 10')))
    expect(await firstOutcome(next)).toEqual(['accepted', 'cancer-main', null])
    expect(arrive.mock.calls.map(([, , arrival]) => arrival.version)).toEqual([10])
    expect(stream.status()).toMatchObject({ duplicate: 1, accepted: 1, rejected: 0, retrying: null, paused: false })
  })

  it('whose version was rejected (its meta.json kept): not fetched again, and not counted as a new rejection', async () => {
    stored.push(meta(8, 'rejected'))
    fetched.mockImplementation(() => Promise.resolve(new Response('gone', { status: 404 })))
    const replay = locationRecord(8)
    expect(await firstOutcome(replay)).toEqual(['duplicate', 'cancer-main', null])
    expect([fetched.mock.calls.length, commits(replay)]).toEqual([0, 1])
    expect(stream.status()).toMatchObject({ duplicate: 1, rejected: 0, recent_rejections: [] })
  })

  it('with version 0: any version with that sha256 is the replay', async () => {
    stored.push(meta(3, 'ready'))
    expect(await firstOutcome(locationRecord(0))).toEqual(['duplicate', 'cancer-main', null])
    expect(fetched).not.toHaveBeenCalled()
  })

  it('whose version is stored but still loading (never judged): that version is judged in turn, without a fetch', async () => {
    stored.push(meta(8, 'loading'))
    judgeStored.mockResolvedValue(meta(8, 'serving'))
    const replay = locationRecord(8)
    expect(await firstOutcome(replay)).toEqual(['accepted', 'cancer-main', null])
    expect([judgeStored.mock.calls, fetched.mock.calls.length, arrive.mock.calls.length, commits(replay)]).toEqual([[['cancer-main', 8]], 0, 0, 1])
  })

  it('with version 0 and a sha256 not its bytes\' but a stored version\'s: skipped as duplicate, its bytes never checked (a record is known by its sha256)', async () => {
    stored.push(meta(3, 'ready'))
    const forged = record(0, { kind: 'data', data: Buffer.from('other bytes') }, SHA)
    expect(await firstOutcome(forged)).toEqual(['duplicate', 'cancer-main', null])
    expect([arrive.mock.calls.length, commits(forged)]).toEqual([0, 1])
    expect(stream.status()).toMatchObject({ duplicate: 1, rejected: 0 })
  })

  it('naming a version other bytes have: refused as existing, without a fetch', async () => {
    stored.push(meta(8, 'serving', 'f'.repeat(64)))
    expect(await firstOutcome(locationRecord(8))).toEqual(['rejected', 'cancer-main', 'model "cancer-main" has a version 8 already: versions are immutable, publish a new one'])
    expect(fetched).not.toHaveBeenCalled()
  })
})

describe('a new location record', () => {
  it('is fetched, and its bytes are checked against its sha256', async () => {
    fetched.mockImplementation(() => Promise.resolve(new Response(Buffer.from('other bytes'))))
    expect(await firstOutcome(locationRecord(9))).toEqual(['rejected', 'cancer-main', `sha256 mismatch: the descriptor says ${SHA}, the model's bytes are ${sha256Hex(Buffer.from('other bytes'))}`])
    fetched.mockImplementation(() => Promise.resolve(new Response(model)))
    expect(await firstOutcome(locationRecord(9))).toEqual(['accepted', 'cancer-main', null])
    expect(arrive).toHaveBeenCalledOnce()
  })

  it('whose server is out of reach is tried again; once its bytes are stored as its version (an upload), skipped without a fetch', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const record = locationRecord(8)
    expect(await firstOutcome(record)).toEqual(['tried again', 'location http://127.0.0.1:18090/m.onnx: fetch failed (connect ECONNREFUSED 127.0.0.1:18090)'])
    expect([fetched.mock.calls.length, commits(record)]).toEqual([1, 0])
    expect(stream.status()).toMatchObject({ retrying: { model: 'cancer-main', offset: String(record.offset), attempts: 1 } })
    stored.push(meta(8, 'serving')) // PUT /v1/models/cancer-main/versions/8 with the same bytes
    const again = nextOutcome()
    await vi.advanceTimersByTimeAsync(retryDelay(1))
    expect(await again).toEqual(['duplicate', 'cancer-main', null])
    expect([fetched.mock.calls.length, commits(record)]).toEqual([1, 1])
    expect(stream.status()).toMatchObject({ retrying: null, duplicate: 1 })
  })
})

// A model-stream record read from history (below the topic's end offsets the catch-up read at
// the stream's first join) that never became a version here has its location fetched again:
// with its server gone for good (decommissioned), it is tried HISTORY_ATTEMPTS times and then
// committed as rejected, so the records after it are applied; a live record keeps being tried.
// And a record skipped by the sha256 it claims, its bytes unread, is logged at info with its
// offset and claimed version (version 0 is the usual record: a warn each would be noise). No broker and no network: the registry is a stand-in, and fetch is mocked.
import { EventEmitter, once } from 'node:events'
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest'
import { CatchUp } from '../../src/registry/catch-up.ts'
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
const GIVEN_UP = 'model stream: a replayed record\'s location is unreachable; committed as rejected, the records after it go on'
const URL = 'http://127.0.0.1:18090/m.onnx'
const SHA = sha256Hex(Buffer.from('model 8'))

let stored: VersionMeta[]
let fetched: MockInstance<typeof fetch>
let commitCalls: MockInstance<(options: { offsets: readonly { offset: bigint }[] }) => Promise<void>>
let stream: ModelStream
let catchUp: CatchUp
const logged = new EventEmitter()
let lines: { level: string; msg: string; obj: object }[]
const log: Logger = {
  info: (obj, msg) => void lines.push({ level: 'info', msg, obj }),
  warn: (obj, msg) => void (lines.push({ level: 'warn', msg, obj }), logged.emit(msg, obj)),
  error: (obj, msg) => void (lines.push({ level: 'error', msg, obj }), logged.emit(msg, obj)),
}

const meta = (version: number, state: VersionMeta['state'], sha256 = SHA): VersionMeta => ({ version, state, sha256, reason: null }) as VersionMeta
/** The server named by the location is gone: what undici throws for a connection refused. */
const refused = (): Promise<Response> => Promise.reject(new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:18090'), { code: 'ECONNREFUSED' }) }))

function record(offset: bigint, version: number, payload: NonNullable<ModelDescriptor['payload']>, sha256: string): Raw {
  const value = Buffer.from(encodeDescriptor({ name: 'cancer-main', version, description: '', modelType: 'onnx', payload, sha256 }))
  return { key: 'cancer-main', value, topic: 't', partition: 0, offset, leaderEpoch: 0 } as unknown as Raw
}
const locationRecord = (offset: bigint, version: number): Raw => record(offset, version, { kind: 'location', location: URL }, SHA)
const inline = (offset: bigint, version: number): Raw => record(offset, version, { kind: 'data', data: Buffer.from(`model ${version}`) }, sha256Hex(Buffer.from(`model ${version}`)))
const commits = (message: Raw): number => commitCalls.mock.calls.filter(([options]) => options.offsets.some((o) => o.offset === message.offset + 1n)).length
const nextOutcome = (): Promise<unknown[]> => Promise.race([once(stream, 'record'), once(logged, RETRYING).then(() => ['tried again'])])

/** Receives `message` and lets its retries come (fake timers): each of its `tries` attempts is tried again. */
async function triedAgainEachTime(message: Raw, tries: number): Promise<void> {
  let outcome = nextOutcome()
  stream.receive(message)
  for (let attempt = 1; attempt < tries; attempt++) {
    expect(await outcome).toEqual(['tried again'])
    outcome = nextOutcome()
    await vi.advanceTimersByTimeAsync(retryDelay(attempt))
  }
  expect(await outcome).toEqual(['tried again'])
}

/** A stream whose catch-up read the topic's end as `end` at its first join (none: not read). */
async function streamWith(end: bigint | null): Promise<void> {
  catchUp = new CatchUp(120_000, log)
  if (end !== null) {
    catchUp.joined([0], () => Promise.resolve({ ends: [end], from: [0n], replaying: [true] }))
    await vi.waitFor(() => expect(catchUp.status()).toMatchObject({ left: Number(end) }))
  }
  const registry: Pick<Registry, 'isRepositoryModel' | 'versionWithSha' | 'list' | 'version' | 'arrive' | 'judgeStored'> = {
    isRepositoryModel: (name) => name === 'cancer-main',
    versionWithSha: (_name, sha256, version = 0) => Promise.resolve(stored.find((m) => m.sha256 === sha256 && (version === 0 || m.version === version))?.version),
    list: () => stored,
    version: (_name, version) => stored.find((m) => m.version === version)!,
    arrive: (_name, _bytes, arrival) => Promise.resolve(meta(arrival.version, 'serving')),
    judgeStored: () => Promise.reject(new Error('not expected')),
  }
  const repository: RepositoryConfig = { path: '/nonexistent/repo', keepVersions: 3, watch: false, maxModelBytes: 1000, kafka: { brokers: ['127.0.0.1:1'], topic: 't', group: 'g', catchUpTimeoutMs: 120_000 }, baseDir: '/nonexistent' }
  stream = new ModelStream(registry as unknown as Registry, repository, 'test', log, catchUp)
}

beforeEach(() => {
  stored = []
  lines = []
  commitCalls = vi.spyOn(Consumer.prototype, 'commit').mockImplementation(() => Promise.resolve()) as never
  vi.spyOn(Consumer.prototype, 'isActive').mockReturnValue(true)
  fetched = vi.spyOn(globalThis, 'fetch').mockImplementation(refused)
})

afterEach(async () => {
  vi.useRealTimers()
  await stream.close()
  catchUp.close()
  vi.restoreAllMocks()
})

describe('a record whose location is unreachable', () => {
  it('replayed from history: rejected after 3 attempts, with a warn line, and the record after it is applied', async () => {
    await streamWith(10n)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const old = locationRecord(7n, 8)
    const after = inline(8n, 9)
    let outcome = nextOutcome()
    stream.receive(old)
    stream.receive(after) // held behind it
    expect(await outcome).toEqual(['tried again'])
    outcome = nextOutcome()
    await vi.advanceTimersByTimeAsync(retryDelay(1))
    expect(await outcome).toEqual(['tried again'])
    const warned = once(logged, GIVEN_UP)
    outcome = nextOutcome()
    await vi.advanceTimersByTimeAsync(retryDelay(2))
    const reason = 'location http://127.0.0.1:18090/m.onnx unreachable while replaying history (offset 7, 3 attempts): fetch failed (connect ECONNREFUSED 127.0.0.1:18090)'
    expect(await outcome).toEqual(['rejected', 'cancer-main', reason])
    expect((await warned)[0]).toEqual({ model: 'cancer-main', version: 8, offset: '7', location: URL, attempts: 3, error: 'fetch failed (connect ECONNREFUSED 127.0.0.1:18090)' })
    expect([fetched.mock.calls.length, commits(old)]).toEqual([3, 1])
    await stream.idle()
    expect(commits(after)).toBe(1)
    expect(stream.status()).toMatchObject({ rejected: 1, accepted: 1, retrying: null, recent_rejections: [{ model: 'cancer-main', version: null, reason }] })
    expect(catchUp.status()).toMatchObject({ left: 1 }) // both handled: the catch-up counts them (offset 9 is still to come)
  })

  it('live (at or past the end offsets first read): tried again, uncommitted, past any bound', async () => {
    await streamWith(7n)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const live = locationRecord(7n, 8)
    await triedAgainEachTime(live, 7)
    expect([fetched.mock.calls.length, commits(live)]).toEqual([7, 0])
    expect(stream.status()).toMatchObject({ rejected: 0, retrying: { offset: '7', attempts: 7 } })
  })

  it('while the end offsets are not known (catch-up disabled, or not read): taken as live, tried again', async () => {
    await streamWith(null)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const record = locationRecord(0n, 8)
    await triedAgainEachTime(record, 5)
    expect([fetched.mock.calls.length, commits(record)]).toEqual([5, 0])
  })
})

describe('a record skipped by the sha256 it claims, its bytes unread', () => {
  const SKIPPED = 'model stream: a version already stored (replayed record), skipped'

  it("with version 0 whose bytes are not that version's: an info line with its offset, the version matched and unread (a replay of a topic published with version 0 must not warn once per record)", async () => {
    await streamWith(null)
    stored.push(meta(3, 'ready'))
    const forged = record(5n, 0, { kind: 'data', data: Buffer.from('other bytes') }, SHA)
    const outcome = nextOutcome()
    stream.receive(forged)
    expect(await outcome).toEqual(['duplicate', 'cancer-main', null])
    expect(lines.filter((l) => l.level !== 'info')).toEqual([])
    expect(lines).toContainEqual({ level: 'info', msg: SKIPPED, obj: { model: 'cancer-main', version: 3, claimed_version: 0, offset: '5', sha256: SHA, unread: true } })
  })

  it('a genuine replay (the same version and sha256): info only', async () => {
    await streamWith(null)
    stored.push(meta(8, 'serving'))
    const outcome = nextOutcome()
    stream.receive(locationRecord(5n, 8))
    expect(await outcome).toEqual(['duplicate', 'cancer-main', null])
    expect(lines.filter((l) => l.level !== 'info')).toEqual([])
    expect(lines).toContainEqual({ level: 'info', msg: SKIPPED, obj: { model: 'cancer-main', version: 8, claimed_version: 8, offset: '5', sha256: SHA, unread: true } })
  })
})

// Readiness while the model stream catches up, without a broker: held until every record up to
// the end offsets first read is handled (in the partitions this instance reads, from where its
// group reads them), or until the limit, whichever comes first; offsets that cannot be read are
// read again. While nothing is known of the topic's end (brokers down, offsets unreadable) it
// holds GRACE_MS at most, and lets go naming the brokers' error; a missing topic holds nothing.
// Fake timers: the limit and the grace are timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { CatchUp, GRACE_MS, readAgainMs, type StartOffsets } from '../../src/registry/catch-up.ts'
import { ReadinessHolds } from '../../src/readiness.ts'
import type { Logger } from '../../src/types.ts'

const LIMIT = 10_000
let lines: { level: string; msg: string; obj: object }[]
const log: Logger = {
  info: (obj, msg) => void lines.push({ level: 'info', msg, obj }),
  warn: (obj, msg) => void lines.push({ level: 'warn', msg, obj }),
  error: (obj, msg) => void lines.push({ level: 'error', msg, obj }),
}
let catchUp: CatchUp

/** Whether `released` has settled, once the microtasks queued so far have run. */
async function isReleased(): Promise<boolean> {
  let settled = false
  void catchUp.released.then(() => (settled = true))
  await vi.advanceTimersByTimeAsync(0)
  return settled
}

const offsets = (value: StartOffsets) => (): Promise<StartOffsets> => Promise.resolve(value)

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
  lines = []
  catchUp = new CatchUp(LIMIT, log)
})

afterEach(() => {
  catchUp.close()
  vi.useRealTimers()
})

describe('historical (a record the stream replays: below the end offsets first read)', () => {
  it('is false before the offsets are read, below the end true, at or past it and in a partition added since false', async () => {
    expect(catchUp.historical(0, 0n)).toBe(false)
    catchUp.joined([0, 1], offsets({ ends: [3n, 0n], from: [0n, 0n], replaying: [true, true] }))
    await vi.advanceTimersByTimeAsync(0)
    expect([catchUp.historical(0, 2n), catchUp.historical(0, 3n), catchUp.historical(1, 0n), catchUp.historical(2, 0n)]).toEqual([true, false, false, false])
    // A rejoin reads no new ends: a record published since stays live.
    catchUp.joined([0], offsets({ ends: [9n], from: [3n], replaying: [true] }))
    await vi.advanceTimersByTimeAsync(0)
    expect(catchUp.historical(0, 5n)).toBe(false)
  })

  it("is false for a restarted member's backlog: records published while it was down, after its commit, are new to it", async () => {
    catchUp.joined([0, 1], offsets({ ends: [8n, 4n], from: [5n, 0n], replaying: [false, true] }))
    await vi.advanceTimersByTimeAsync(0)
    expect([catchUp.historical(0, 6n), catchUp.historical(1, 2n)]).toEqual([false, true])
  })

  it('is false for good when the first read failed until readiness let go: the ends a later join reads have new records below them', async () => {
    // The consumer's one read: it fails until the brokers are back, after readiness let go.
    let brokersBack = false
    const read = (): Promise<StartOffsets> => (brokersBack ? Promise.resolve({ ends: [40n], from: [0n], replaying: [true] }) : Promise.reject(new Error('leader not available')))
    catchUp.follow({ error: () => null, retrying: () => null })
    catchUp.start()
    catchUp.joined([0], read)
    await vi.advanceTimersByTimeAsync(GRACE_MS)
    expect(await isReleased()).toBe(true)
    brokersBack = true
    catchUp.joined([0], read)
    await vi.advanceTimersByTimeAsync(0)
    expect(catchUp.status()).toMatchObject({ left: 40 }) // read, for /readyz and the metrics
    expect(catchUp.historical(0, 39n)).toBe(false)
  })
})

describe('catching up', () => {
  it('holds readiness until every record to the end first read is handled, then lets go for good', async () => {
    catchUp.start()
    // Three records in the topic (offsets 0-2), nothing committed: read from the start.
    catchUp.joined([0], offsets({ ends: [3n], from: [0n] }))
    await vi.advanceTimersByTimeAsync(0)
    expect(catchUp.waiting()).toBe('catching up: 0 records handled, 3 left to the topic\'s end as first read; ready once caught up, or in 10 s at the latest (repository.kafka.catch_up_timeout_ms)')
    catchUp.judged(0, 0n)
    catchUp.judged(0, 1n)
    expect(catchUp.status()).toMatchObject({ state: 'waiting', handled: 2, left: 1 })
    expect(await isReleased()).toBe(false)
    catchUp.judged(0, 2n)
    expect(catchUp.waiting()).toBeNull()
    expect(await isReleased()).toBe(true)
    expect(catchUp.status()).toMatchObject({ state: 'caught_up', handled: 3, left: 0 })
    expect(lines).toEqual([expect.objectContaining({ level: 'info', msg: 'model stream caught up: readiness no longer waits for it' })])
    // A later record (a new version published) changes nothing, and the limit passing says nothing.
    catchUp.judged(0, 3n)
    await vi.advanceTimersByTimeAsync(LIMIT)
    expect(catchUp.waiting()).toBeNull()
    expect(lines).toHaveLength(1)
  })

  it('counts from where the group reads: a restart whose commits are at the end is caught up at once', async () => {
    catchUp.start()
    catchUp.joined([0, 1], offsets({ ends: [20n, 4n], from: [20n, 4n] }))
    expect(await isReleased()).toBe(true)
    expect(catchUp.status()).toMatchObject({ state: 'caught_up', handled: 0, left: 0 })
  })

  it('waits only for the partitions this instance reads (another member of its group reads the rest)', async () => {
    catchUp.start()
    catchUp.joined([1], offsets({ ends: [5n, 2n], from: [0n, 0n] }))
    await vi.advanceTimersByTimeAsync(0)
    expect(catchUp.status()).toMatchObject({ left: 2 })
    catchUp.judged(1, 1n) // offsets 0 and 1: a record deleted or compacted away leaves a gap, read past
    expect(await isReleased()).toBe(true)
  })

  it('an empty topic holds nothing once its offsets are read', async () => {
    catchUp.start()
    expect(catchUp.waiting()).toBe('catching up: the topic\'s end offsets are not read yet (waiting for the consumer to join its group); ready in 10 s unless they are read by then (repository.kafka.catch_up_timeout_ms)')
    catchUp.joined([0], offsets({ ends: [0n], from: [0n] }))
    expect(await isReleased()).toBe(true)
  })

  it('says it is not started while the gateway still loads (readiness waits for the load anyway)', () => {
    expect(catchUp.waiting()).toBe('catching up: the model stream is not started yet')
  })

  it('reports to /metrics whether readiness waits and how many records are left', async () => {
    const gauges = new Map<string, number>()
    const sink = { gauge: (name: string, _help: string, points: readonly (readonly [object, number])[]) => void gauges.set(name, points[0]![1]), counter: () => undefined }
    catchUp.start()
    catchUp.collect(sink)
    expect([...gauges]).toEqual([['specserve_model_stream_catching_up', 1]])
    catchUp.joined([0], offsets({ ends: [2n], from: [0n] }))
    await vi.advanceTimersByTimeAsync(0)
    catchUp.collect(sink)
    expect(Object.fromEntries(gauges)).toEqual({ specserve_model_stream_catching_up: 1, specserve_model_stream_catch_up_left: 2 })
    catchUp.judged(0, 1n)
    catchUp.collect(sink)
    expect(Object.fromEntries(gauges)).toEqual({ specserve_model_stream_catching_up: 0, specserve_model_stream_catch_up_left: 0 })
  })
})

describe('the limit', () => {
  it('lets go at catch_up_timeout_ms after the load, with a warning saying it is still catching up', async () => {
    catchUp.start()
    catchUp.joined([0], offsets({ ends: [20n], from: [0n] }))
    catchUp.judged(0, 0n)
    await vi.advanceTimersByTimeAsync(LIMIT - 1)
    expect(await isReleased()).toBe(false)
    expect(catchUp.waiting()).toMatch(/ready once caught up, or in 1 s at the latest/)
    await vi.advanceTimersByTimeAsync(1)
    expect(await isReleased()).toBe(true)
    expect(catchUp.waiting()).toBeNull()
    expect(lines).toEqual([
      {
        level: 'warn',
        msg: 'model stream still catching up after catch_up_timeout_ms: ready anyway; versions the topic has replaced may serve until it reaches the end',
        obj: { handled: 1, left: 19, catch_up_timeout_ms: LIMIT, retrying: null, last_error: null },
      },
    ])
    // It reads on: reaching the end is still said (and shown), readiness never held again.
    for (let offset = 1n; offset < 20n; offset++) catchUp.judged(0, offset)
    expect(catchUp.status()).toMatchObject({ state: 'caught_up', left: 0 })
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'model stream caught up (readiness had stopped waiting for it)' })
  })

  it('counts from start(), not from construction: the load takes its own time', async () => {
    await vi.advanceTimersByTimeAsync(LIMIT * 2)
    expect(await isReleased()).toBe(false)
    catchUp.start()
    await vi.advanceTimersByTimeAsync(LIMIT)
    expect(await isReleased()).toBe(true)
  })

  it('bounds a broker that never lets the offsets be read: read again with backoff, then ready at the limit', async () => {
    let reads = 0
    const failing = (): Promise<StartOffsets> => (reads++, Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:9092')))
    catchUp.start()
    catchUp.joined([0], failing)
    await vi.advanceTimersByTimeAsync(0)
    expect(reads).toBe(1)
    expect(catchUp.waiting()).toMatch(/^catching up: the topic's end offsets are not read yet \(connect ECONNREFUSED 127\.0\.0\.1:9092\)/)
    expect(lines[0]).toMatchObject({ level: 'warn', obj: { retry_in_ms: readAgainMs(1) } })
    await vi.advanceTimersByTimeAsync(readAgainMs(1))
    expect(reads).toBe(2)
    await vi.advanceTimersByTimeAsync(LIMIT)
    expect(await isReleased()).toBe(true)
    expect(lines.at(-1)).toMatchObject({ level: 'warn', obj: { error: 'connect ECONNREFUSED 127.0.0.1:9092' } })
    // Not read again on a timer once readiness no longer waits.
    const after = reads
    await vi.advanceTimersByTimeAsync(LIMIT * 10)
    expect(reads).toBe(after)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('offsets read late still count: records handled before them are not counted twice', async () => {
    let answer!: (offsets: StartOffsets) => void
    catchUp.start()
    catchUp.joined([0], () => new Promise((resolve) => (answer = resolve)))
    catchUp.judged(0, 0n)
    catchUp.judged(0, 1n)
    answer({ ends: [2n], from: [1n] }) // the commit of offset 0 was in when they were read
    expect(await isReleased()).toBe(true)
  })
})

describe('with nothing known of the topic\'s end', () => {
  const LONG = 120_000 // the default catch_up_timeout_ms
  const refused = 'connect ECONNREFUSED 127.0.0.1:9092'
  const unknown = "model stream: the models topic's end offsets are not read (the brokers' error is `error`): ready anyway, on the versions in the local repository; the stream catches up once the brokers answer"
  beforeEach(() => {
    catchUp = new CatchUp(LONG, log)
  })

  it('brokers down (the group never joined): ready after GRACE_MS, not catch_up_timeout_ms, naming the brokers\' error', async () => {
    let brokers: string | null = null
    catchUp.follow({ error: () => brokers, retrying: () => null })
    catchUp.start()
    brokers = refused // the stream's first consume() failed
    expect(catchUp.waiting()).toBe(`catching up: the topic's end offsets are not read yet (${refused}); ready in 15 s unless they are read by then; read by then, ready once caught up, or in 120 s at the latest (repository.kafka.catch_up_timeout_ms)`)
    await vi.advanceTimersByTimeAsync(GRACE_MS - 1)
    expect(await isReleased()).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(await isReleased()).toBe(true)
    expect(catchUp.waiting()).toBeNull()
    expect(lines).toEqual([{ level: 'warn', msg: unknown, obj: { error: refused, waited_ms: GRACE_MS, catch_up_timeout_ms: LONG } }])
    // The brokers back: it catches up, readiness never held again.
    catchUp.joined([0], offsets({ ends: [2n], from: [0n] }))
    await vi.advanceTimersByTimeAsync(0)
    expect(catchUp.waiting()).toBeNull()
    catchUp.judged(0, 1n)
    expect(catchUp.status()).toMatchObject({ state: 'caught_up', left: 0 })
    expect(vi.getTimerCount()).toBe(0)
  })

  it('offsets that cannot be read hold GRACE_MS at most, and the warning names their error', async () => {
    catchUp.follow({ error: () => null, retrying: () => null })
    catchUp.start()
    catchUp.joined([0], () => Promise.reject(new Error(refused)))
    await vi.advanceTimersByTimeAsync(GRACE_MS)
    expect(await isReleased()).toBe(true)
    expect(lines.at(-1)).toEqual({ level: 'warn', msg: unknown, obj: { error: refused, waited_ms: GRACE_MS, catch_up_timeout_ms: LONG } })
  })

  it('counts GRACE_MS from the stream\'s start, not the load\'s end: what the registry does between them is not the join\'s time', async () => {
    catchUp.start()
    // The registry judges directories that arrived during the load, then imports the Kafka client.
    await vi.advanceTimersByTimeAsync(GRACE_MS - 1000)
    catchUp.follow({ error: () => null, retrying: () => null })
    await vi.advanceTimersByTimeAsync(GRACE_MS - 1)
    expect(await isReleased()).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(await isReleased()).toBe(true)
  })

  it('records known to be left hold past GRACE_MS, up to catch_up_timeout_ms', async () => {
    catchUp.follow({ error: () => null, retrying: () => null })
    catchUp.start()
    catchUp.joined([0], offsets({ ends: [5n], from: [0n] }))
    await vi.advanceTimersByTimeAsync(GRACE_MS * 2)
    expect(await isReleased()).toBe(false)
    expect(catchUp.waiting()).toMatch(/^catching up: 0 records handled, 5 left to the topic's end as first read; ready once caught up, or in 90 s at the latest/)
    await vi.advanceTimersByTimeAsync(LONG - GRACE_MS * 2)
    expect(await isReleased()).toBe(true)
    expect(lines.at(-1)).toMatchObject({ level: 'warn', obj: { left: 5 } })
  })

  it('a models topic that does not exist (no auto-create) holds nothing: an empty topic', async () => {
    catchUp.start()
    catchUp.topicMissing()
    expect(await isReleased()).toBe(true)
    expect(catchUp.status()).toMatchObject({ state: 'caught_up', handled: 0, left: 0 })
    expect(lines.map((l) => l.msg)).toEqual(['model stream: the models topic does not exist: nothing to catch up to', 'model stream caught up: readiness no longer waits for it'])
  })
})

describe('the consumer\'s fetch position', () => {
  it('counts past offsets no record is delivered at (a transaction\'s commit marker, an aborted transaction)', async () => {
    catchUp.start()
    // A transactional record at 0, its commit marker at 1: the end is 2.
    catchUp.joined([0], offsets({ ends: [2n], from: [0n] }))
    catchUp.judged(0, 0n)
    await vi.advanceTimersByTimeAsync(0)
    expect(catchUp.status()).toMatchObject({ state: 'waiting', left: 1 })
    catchUp.fetched(0, 2n)
    expect(await isReleased()).toBe(true)
    expect(catchUp.status()).toMatchObject({ state: 'caught_up', handled: 1, left: 0 })
  })
})

describe('the limit\'s warning', () => {
  it('names the record tried again that holds the stream', async () => {
    const retrying = { model: 'lr', offset: '3', attempts: 4, error: 'connect ECONNREFUSED 127.0.0.1:8000' }
    catchUp.follow({ error: () => null, retrying: () => retrying })
    catchUp.start()
    catchUp.joined([0], offsets({ ends: [5n], from: [3n] }))
    await vi.advanceTimersByTimeAsync(LIMIT)
    expect(lines.at(-1)).toMatchObject({ level: 'warn', msg: 'model stream still catching up after catch_up_timeout_ms: ready anyway; versions the topic has replaced may serve until it reaches the end', obj: { left: 2, retrying } })
  })
})

describe('close', () => {
  it('lets go and leaves no timer (the gateway stops)', async () => {
    catchUp.start()
    catchUp.joined([0], () => Promise.reject(new Error('down')))
    await vi.advanceTimersByTimeAsync(0)
    catchUp.close()
    expect(await isReleased()).toBe(true)
    expect(vi.getTimerCount()).toBe(0)
    expect(catchUp.status()).toMatchObject({ state: 'closed' })
  })
})

describe('readiness holds', () => {
  it('hold readiness while any waits, each named with its reason; released once all let go', async () => {
    const holds = new ReadinessHolds()
    expect(holds.holding).toBe(false)
    holds.add('model_stream', catchUp)
    expect(holds.holding).toBe(true)
    expect(holds.waiting()).toEqual({ model_stream: 'catching up: the model stream is not started yet' })
    let released = false
    void holds.released().then(() => (released = true))
    catchUp.start()
    await vi.advanceTimersByTimeAsync(LIMIT)
    expect(released).toBe(true)
    expect(holds.holding).toBe(false)
    expect(holds.waiting()).toEqual({})
  })
})

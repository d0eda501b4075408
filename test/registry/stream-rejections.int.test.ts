// What /readyz's model_stream.recent_rejections lists: every record counted `rejected`, whether
// it could not become a version (a bad descriptor) or became one the pipeline rejected (a
// truncated model, one whose inputs differ from its ensemble sibling's, a failed gate, one that
// would take an output from its ensemble), each with its reason. A real registry judges the
// versions; the records are handed to the stream as its consumer would (no broker: commits are
// mocked). A record of a version rejected before, read again by a new consumer group once its
// location is gone, is a replay: not a new rejection.
import { once } from 'node:events'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Consumer } from '@platformatic/kafka'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { encodeDescriptor } from '../../src/registry/descriptor.ts'
import { ModelDirectory } from '../../src/registry/store.ts'
import { sha256Hex } from '../../src/registry/sha256.ts'
import { ModelStream, type Raw } from '../../src/registry/stream.ts'
import { newMeta } from '../../src/registry/version-rules.ts'
import { silentLogger } from '../../src/types.ts'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { renamed } from './output-variants.ts'
import { serveWithRegistry, type Served } from './serve.ts'

const models = join(root, 'models')
const cancer = samples('cancer')
const truth = (JSON.parse(readFileSync(join(models, 'manifest.json'), 'utf8')) as { tasks: { cancer: { truth: number[] } } }).tasks.cancer.truth
const logreg = readFileSync(join(models, 'cancer_logreg.onnx'))

let served: Served | undefined
let stream: ModelStream | undefined

afterEach(async () => {
  await stream?.close()
  await served?.stop()
  vi.restoreAllMocks()
})

/** A gateway serving cancer-main version 1 from a repository (gated on the examples), beside its sibling cancer-logreg. */
async function serve(): Promise<Served> {
  const dir = tempDir('specserve-stream-rejections-')
  writeFileSync(join(dir, 'examples.jsonl'), cancer.rows.map((row, i) => JSON.stringify({ inputs: { input: [row] }, outputs: { label: [truth[i]] } })).join('\n'))
  const directory = new ModelDirectory(join(dir, 'repo'), 'cancer-main')
  directory.open()
  directory.storeSync(logreg, { ...newMeta(1, logreg, 'upload', null), state: 'serving', serving_since: '2026-01-01T00:00:00.000Z' })
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `executors: { onnx_workers: 1 }
repository: { path: ./repo, watch: false }
models:
  cancer-main: { kind: onnx, source: repository, validation: { examples: examples.jsonl } }
  cancer-logreg: { kind: onnx, path: ${join(models, 'cancer_logreg.onnx')} }
ensembles:
  cancer: { strategy: deadline-fallback, models: [cancer-main, cancer-logreg] }
`,
  )
  return serveWithRegistry(join(dir, 'gateway.yaml'), silentLogger)
}

let offset = 0n
function record(data: Buffer): Raw {
  const value = Buffer.from(encodeDescriptor({ name: 'cancer-main', version: 0, description: '', modelType: 'onnx', payload: { kind: 'data', data }, sha256: '' }))
  return { key: 'cancer-main', value, topic: 'models', partition: 0, offset: offset++, leaderEpoch: 0 } as unknown as Raw
}

/** A stream over the served registry, as an instance's consumer group would read the topic (its commits mocked). */
function streamOf(s: Served, instance = 'test'): ModelStream {
  return new ModelStream(s.registry, { ...s.registry.repository, kafka: { brokers: ['127.0.0.1:1'], topic: 'models', group: 'g', catchUpTimeoutMs: 0 } }, instance, silentLogger)
}

async function judgedBy(by: ModelStream, message: Raw): Promise<unknown[]> {
  const done = once(by, 'record')
  by.receive(message)
  return done
}

describe('model_stream.recent_rejections', () => {
  it('lists the versions the pipeline rejected, with its reasons, beside the records that could not become one', async () => {
    vi.spyOn(Consumer.prototype, 'commit').mockResolvedValue(undefined as never)
    vi.spyOn(Consumer.prototype, 'isActive').mockReturnValue(true)
    served = await serve()
    stream = streamOf(served)
    const judged = (message: Raw): Promise<unknown[]> => judgedBy(stream!, message)
    expect(await judged(record(logreg.subarray(0, 200)))).toEqual(['rejected', 'cancer-main', expect.stringMatching(/failed to load/)])
    expect(await judged(record(readFileSync(join(models, 'wine_logreg.onnx'))))).toEqual(['rejected', 'cancer-main', expect.stringMatching(/inputs of "cancer-logreg" .* differ from "cancer-main"/)])
    expect(await judged(record(readFileSync(join(models, 'cancer_mlp.onnx'))))).toEqual(['rejected', 'cancer-main', expect.stringMatching(/validation gate failed: example 3/)])
    expect(await judged(record(renamed(logreg, 'probabilities', 'probabilitiez')))).toEqual(['rejected', 'cancer-main', expect.stringMatching(/version 5 would take away ensemble "cancer"'s probabilities:FP32\[-1,2\] /)])
    expect(await judged({ ...record(logreg), value: Buffer.from([0xff, 0xff, 0xff]) })).toEqual(['rejected', 'cancer-main', expect.stringMatching(/not a specserve.v1.ModelDescriptor/)])
    const status = stream.status() as { rejected: number; recent_rejections: { model: string; version: number | null; reason: string }[] }
    expect(status.rejected).toBe(5)
    expect(status.recent_rejections).toEqual([
      { model: 'cancer-main', version: 2, reason: expect.stringMatching(/failed to load/), at: expect.any(String) },
      { model: 'cancer-main', version: 3, reason: expect.stringMatching(/differ from "cancer-main"/), at: expect.any(String) },
      { model: 'cancer-main', version: 4, reason: expect.stringMatching(/validation gate failed: example 3/), at: expect.any(String) },
      { model: 'cancer-main', version: 5, reason: expect.stringMatching(/would take away ensemble "cancer"'s probabilities/), at: expect.any(String) },
      { model: 'cancer-main', version: null, reason: expect.stringMatching(/not a specserve.v1.ModelDescriptor/), at: expect.any(String) },
    ])
  })

  it('does not list again a version rejected before, when its record is read again (a new group) and its location is gone', async () => {
    vi.spyOn(Consumer.prototype, 'commit').mockResolvedValue(undefined as never)
    vi.spyOn(Consumer.prototype, 'isActive').mockReturnValue(true)
    served = await serve()
    const mlp = readFileSync(join(models, 'cancer_mlp.onnx'))
    const location = join(tempDir('specserve-stream-location-'), 'mlp.onnx')
    writeFileSync(location, mlp)
    const value = Buffer.from(encodeDescriptor({ name: 'cancer-main', version: 5, description: '', modelType: 'onnx', payload: { kind: 'location', location }, sha256: sha256Hex(mlp) }))
    const message = { key: 'cancer-main', value, topic: 'models', partition: 0, offset: 0n, leaderEpoch: 0 } as unknown as Raw
    stream = streamOf(served)
    expect(await judgedBy(stream, message)).toEqual(['rejected', 'cancer-main', expect.stringMatching(/validation gate failed: example 3/)])
    await stream.close()
    rmSync(location) // read again, it would be refused as not there
    stream = streamOf(served, 'restarted')
    expect(await judgedBy(stream, { ...message })).toEqual(['duplicate', 'cancer-main', null])
    expect(stream.status()).toMatchObject({ rejected: 0, duplicate: 1, recent_rejections: [] })
    expect(served.registry.version('cancer-main', 5)).toMatchObject({ state: 'rejected' })
  })
})

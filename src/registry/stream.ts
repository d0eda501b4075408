// The model stream: ModelDescriptor records on a Kafka topic (key = model name), each one a
// version arriving by the same pipeline as an upload. Every instance reads every record:
// its consumer group is the configured prefix plus the instance name. Records are taken one
// at a time, and an offset is committed once its version is judged (at least once). A
// record replayed (a new group reads from the start) is recognised by its sha256 and skipped.
import { EventEmitter } from 'node:events'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { Consumer, type Message, type MessagesStream } from '@platformatic/kafka'
import { GatewayError } from '../errors.ts'
import { connectionOptions, errorMessage } from '../kafka/client.ts'
import type { Component, Logger, MetricsSink } from '../types.ts'
import type { RepositoryConfig } from './config.ts'
import { decodeDescriptor, type ModelDescriptor } from './descriptor.ts'
import type { Registry } from './registry.ts'
import { sha256Hex } from './store.ts'

type Raw = Message<string, Buffer, string, string>

/** A record that cannot become a version; its reason is logged and kept. */
class Refused extends Error {}

const passthrough = (data?: Buffer): Buffer | undefined => data
const FETCH_TIMEOUT_MS = 60_000
/** Rejections kept for /readyz. */
const RECENT = 10

export const RESULTS = ['accepted', 'duplicate', 'rejected'] as const
type Result = (typeof RESULTS)[number]

/** `record` once a record is judged: its result, the model it names, and the reason when rejected. */
export interface ModelStreamEvents {
  record: [result: Result, model: string, reason: string | null]
}

export class ModelStream extends EventEmitter<ModelStreamEvents> implements Component {
  private readonly registry: Registry
  private readonly repository: RepositoryConfig
  private readonly settings: NonNullable<RepositoryConfig['kafka']>
  private readonly log: Logger
  private readonly consumer: Consumer<string, Buffer, string, string>
  private messages: MessagesStream<string, Buffer, string, string> | null = null
  /** Records are judged one after another, in offset order. */
  private chain: Promise<void> = Promise.resolve()
  private readonly counts: Record<Result, number> = { accepted: 0, duplicate: 0, rejected: 0 }
  private readonly recent: { model: string; reason: string; at: string }[] = []
  readonly groupId: string

  constructor(registry: Registry, repository: RepositoryConfig, instance: string, log: Logger) {
    super()
    this.registry = registry
    this.repository = repository
    this.settings = repository.kafka!
    this.log = log
    this.groupId = `${this.settings.group}-${instance}`
    this.consumer = new Consumer({
      ...connectionOptions({ brokers: this.settings.brokers, tls: undefined, sasl: undefined, requestTimeoutMs: 10_000 }, `specserve-models-${instance}`),
      groupId: this.groupId,
      deserializers: { key: (data) => data?.toString('utf8'), value: passthrough, headerKey: (data) => data?.toString('utf8'), headerValue: (data) => data?.toString('utf8') },
      autocommit: false,
      maxWaitTime: 500,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
    })
  }

  async start(): Promise<void> {
    this.messages = await this.consumer.consume({ topics: [this.settings.topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false })
    this.messages.on('data', (message: Raw) => {
      // One failed record must not stop the ones after it.
      this.chain = this.chain.then(() => this.take(message)).catch((err: unknown) => this.log.error({ error: errorMessage(err) }, 'model stream: a record could not be taken'))
    })
    this.messages.on('error', (err: Error) => this.log.error({ error: errorMessage(err) }, 'model stream consumer error'))
    this.log.info({ topic: this.settings.topic, group: this.groupId }, 'model stream: consuming model descriptors')
  }

  private async take(message: Raw): Promise<void> {
    let result: Result
    let reason: string | null
    try {
      ;[result, reason] = await this.handle(message)
    } catch (err) {
      reason = err instanceof Refused || err instanceof GatewayError ? err.message : `unexpected: ${(err as Error).message}`
      this.refuse(message.key ?? '', reason)
      result = 'rejected'
    }
    this.counts[result]++
    await Promise.resolve(message.commit()).catch((err: unknown) => this.log.warn({ error: errorMessage(err) }, 'model stream: commit failed; the record may be read again'))
    this.emit('record', result, message.key ?? '', reason)
  }

  private async handle(message: Raw): Promise<[Result, string | null]> {
    let d: ModelDescriptor
    try {
      d = decodeDescriptor(message.value ?? Buffer.alloc(0))
    } catch (err) {
      throw new Refused((err as Error).message)
    }
    const name = d.name || message.key || ''
    if (!this.registry.isRepositoryModel(name)) throw new Refused(`unknown model "${name.slice(0, 64)}": no source: repository model by that name`)
    if (d.modelType !== '' && d.modelType !== 'onnx') throw new Refused(`model_type "${d.modelType.slice(0, 32)}" is not onnx`)
    const bytes = await this.payload(d)
    const sha = sha256Hex(bytes)
    if (d.sha256 && d.sha256 !== sha) throw new Refused(`sha256 mismatch: the descriptor says ${d.sha256}, the model's bytes are ${sha}`)
    const known = this.registry.versionWithSha(name, sha)
    if (known !== undefined && (d.version === 0 || d.version === known)) {
      this.log.info({ model: name, version: known, sha256: sha }, 'model stream: a version already stored (replayed record), skipped')
      return ['duplicate', null]
    }
    const meta = await this.registry.arrive(name, bytes, { version: d.version, source: 'kafka', description: d.description || undefined })
    return meta.state === 'rejected' ? ['rejected', meta.reason] : ['accepted', null]
  }

  /** The model's bytes: inline, or read from a file or an http(s) URL, at most max_model_bytes. */
  private async payload(d: ModelDescriptor): Promise<Uint8Array> {
    if (!d.payload) throw new Refused('the descriptor has neither data nor location')
    if (d.payload.kind === 'data') return d.payload.data
    const { location } = d.payload
    const limit = this.repository.maxModelBytes
    if (/^https?:\/\//i.test(location)) {
      let res: Response
      try {
        res = await fetch(location, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
      } catch (err) {
        throw new Refused(`location ${location}: ${(err as Error).message}`)
      }
      if (!res.ok) throw new Refused(`location ${location}: HTTP ${res.status}`)
      if (Number(res.headers.get('content-length') ?? 0) > limit) throw new Refused(`location ${location}: over max_model_bytes (${limit})`)
      const bytes = new Uint8Array(await res.arrayBuffer())
      if (bytes.byteLength > limit) throw new Refused(`location ${location}: over max_model_bytes (${limit})`)
      return bytes
    }
    const path = resolve(this.repository.baseDir, location.replace(/^file:\/\//, ''))
    try {
      return await readFile(path)
    } catch (err) {
      throw new Refused(`location ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  }

  private refuse(model: string, reason: string): void {
    this.recent.push({ model, reason, at: new Date().toISOString() })
    if (this.recent.length > RECENT) this.recent.shift()
    this.log.error({ model, reason, topic: this.settings.topic }, 'model descriptor rejected')
  }

  status(): unknown {
    return { topic: this.settings.topic, group: this.groupId, ...this.counts, recent_rejections: this.recent }
  }

  collect(out: MetricsSink): void {
    out.counter('specserve_model_stream_records', 'Model descriptors read from the models topic, by result.', RESULTS.map((result) => [{ result }, this.counts[result]] as const))
  }

  /** Waits for the records taken so far (tests). */
  idle(): Promise<void> {
    return this.chain
  }

  async close(): Promise<void> {
    await this.messages?.close().catch(() => undefined)
    await this.chain
    await this.consumer.close(true).catch(() => undefined)
  }
}

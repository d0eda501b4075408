// The `output.kafka` section: its schema, its checks (with YAML lines, at config load), and
// the normalised settings the sink and stream mode run on. The root schema leaves
// `output` open so each sink validates its own section here.
import { join } from 'node:path'
import { configPath } from '../config/paths.ts'
import Type, { type Static } from 'typebox'
import { MAX_TIMER_MS } from '../config/forms.ts'
import { schemaIssues, type ConfigIssue, type SourceMap } from '../config/yaml.ts'
import { addressIssues, kafkaIdProblem, topicNameProblem } from './names.ts'

const Rate = Type.Number({ minimum: 0, maximum: 1 })
const Positive = Type.Integer({ minimum: 1 })
/**
 * Bytes of one produce request or message, at most: well under the brokers' socket.request.max.bytes
 * (100 MiB), past which a broker drops the connection, and a send looks like an outage for ever.
 */
export const MAX_REQUEST_BYTES = 64 * 1024 * 1024
const RequestBytes = Type.Integer({ minimum: 1, maximum: MAX_REQUEST_BYTES })
const DEFAULT_BATCH_BYTES = 262_144
const DEFAULT_MAX_RECORD_BYTES = 1_000_000
const DEFAULT_TOPIC = 'specserve.results'

const StreamSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    input_topic: Type.Optional(Type.String({ minLength: 1 })),
    output_topic: Type.Optional(Type.String({ minLength: 1 })),
    dead_letter_topic: Type.Optional(Type.String({ minLength: 1 })),
    group_id: Type.Optional(Type.String({ minLength: 1 })),
    max_in_flight_per_partition: Type.Optional(Positive),
  },
  { additionalProperties: false },
)

const SaslSchema = Type.Object(
  {
    mechanism: Type.Union([Type.Literal('PLAIN'), Type.Literal('SCRAM-SHA-256'), Type.Literal('SCRAM-SHA-512'), Type.Literal('OAUTHBEARER')]),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
    token: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
)

export const KafkaSchema = Type.Object(
  {
    // Checked by addressIssues (host:port or [IPv6]:port), with a message that says so.
    brokers: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    topic: Type.Optional(Type.String({ minLength: 1 })),
    client_id: Type.Optional(Type.String({ minLength: 1 })),
    key: Type.Optional(Type.Union([Type.Literal('ensemble'), Type.Literal('id'), Type.Literal('none')])),
    acks: Type.Optional(Type.Union([Type.Literal('all'), Type.Literal('leader'), Type.Literal('none')])),
    compression: Type.Optional(
      Type.Union([Type.Literal('none'), Type.Literal('gzip'), Type.Literal('snappy'), Type.Literal('lz4'), Type.Literal('zstd')]),
    ),
    linger_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
    batch_size: Type.Optional(Positive),
    batch_bytes: Type.Optional(RequestBytes),
    max_record_bytes: Type.Optional(RequestBytes),
    idempotent: Type.Optional(Type.Boolean()),
    // Passed through to node:tls connect options (ca, cert, key, servername, rejectUnauthorized...).
    tls: Type.Optional(Type.Union([Type.Boolean(), Type.Record(Type.String(), Type.Unknown())])),
    sasl: Type.Optional(SaslSchema),
    sample_rate: Type.Optional(Rate),
    sample_rates: Type.Optional(Type.Record(Type.String(), Rate)),
    include_inputs: Type.Optional(Type.Boolean()),
    publish_late: Type.Optional(Type.Boolean()),
    producer_thread: Type.Optional(Type.Boolean()),
    buffer_records: Type.Optional(Positive),
    spool_dir: Type.Optional(Type.String({ minLength: 1 })),
    spool_max_bytes: Type.Optional(Positive),
    request_timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMER_MS })),
    retry_backoff_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMER_MS })),
    shutdown_grace_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TIMER_MS })),
    stream: Type.Optional(StreamSchema),
  },
  { additionalProperties: false },
)

export type RawKafka = Static<typeof KafkaSchema>

export interface StreamSettings {
  readonly enabled: boolean
  readonly inputTopic: string
  readonly outputTopic: string
  readonly deadLetterTopic: string
  readonly groupId: string
  readonly maxInFlightPerPartition: number
}

export interface KafkaSettings {
  readonly brokers: readonly string[]
  readonly topic: string
  readonly clientId: string
  readonly key: 'ensemble' | 'id' | 'none'
  /** Kafka's wire values: -1 all in-sync replicas, 1 the leader, 0 no answer. */
  readonly acks: -1 | 0 | 1
  readonly compression: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd'
  readonly lingerMs: number
  readonly batchSize: number
  /** Encoded keys and values per produce request, at most (a single larger record still goes, alone). */
  readonly batchBytes: number
  /** A message over this (key and value) is never sent: the broker would refuse it, at every retry. */
  readonly maxRecordBytes: number
  readonly idempotent: boolean
  readonly tls: boolean | Readonly<Record<string, unknown>> | undefined
  readonly sasl: Static<typeof SaslSchema> | undefined
  readonly sampleRate: number
  readonly sampleRates: Readonly<Record<string, number>>
  readonly includeInputs: boolean
  readonly publishLate: boolean
  /** The producers run on threads of their own (thread-producer.ts), not on the event loop. */
  readonly producerThread: boolean
  readonly bufferRecords: number
  readonly spoolDir: string
  readonly spoolMaxBytes: number
  readonly requestTimeoutMs: number
  readonly retryBackoffMs: number
  readonly shutdownGraceMs: number
  readonly stream: StreamSettings
}

const ACKS = { all: -1, leader: 1, none: 0 } as const

/** Where serving records wait for the brokers, beside the config, when spool_dir is not given. */
export const DEFAULT_SPOOL_DIR = '.specserve-spool'

/** Every problem in `output` (unknown sinks, the kafka section), with paths and lines. */
export function outputIssues(output: Readonly<Record<string, unknown>> | undefined, ensembles: readonly string[], source: SourceMap): ConfigIssue[] {
  if (!output) return []
  const issues: ConfigIssue[] = []
  const at = (path: (string | number)[], message: string): void => {
    issues.push(source.issue(path, message))
  }
  for (const name of Object.keys(output)) if (name !== 'kafka') at(['output', name], `unknown output "${name}" (known: kafka)`)
  const raw = output.kafka
  if (raw === undefined || raw === null) return issues
  const schema = schemaIssues(KafkaSchema, raw, ['output', 'kafka'], source)
  if (schema.length) return [...issues, ...schema]
  const kafka = raw as RawKafka
  for (const name of Object.keys(kafka.sample_rates ?? {})) {
    if (!ensembles.includes(name)) at(['output', 'kafka', 'sample_rates', name], `unknown ensemble "${name}"`)
  }
  if (kafka.idempotent && kafka.acks !== undefined && kafka.acks !== 'all') at(['output', 'kafka', 'acks'], 'an idempotent producer needs acks: all')
  if (kafka.sasl) saslIssues(kafka.sasl, at)
  // max_record_bytes stands for the topics' max.message.bytes, which bounds a whole record batch
  // (one per partition of a request): a larger batch is refused whole (then split and resent).
  const maxRecordBytes = kafka.max_record_bytes ?? DEFAULT_MAX_RECORD_BYTES
  if (kafka.batch_bytes !== undefined && kafka.batch_bytes > maxRecordBytes) {
    at(['output', 'kafka', 'batch_bytes'], `batch_bytes (${kafka.batch_bytes}) is over max_record_bytes (${maxRecordBytes}): the broker refuses a batch over the topic's max.message.bytes; raise max_record_bytes too if your topics take larger messages`)
  }
  const stream = kafka.stream
  addressIssues(at, ['output', 'kafka'], kafka.brokers, [
    ['topic', kafka.topic],
    ['stream.input_topic', stream?.input_topic],
    ['stream.output_topic', stream?.output_topic],
    ['stream.dead_letter_topic', stream?.dead_letter_topic],
  ])
  const badClient = kafkaIdProblem(kafka.client_id, 'client')
  if (badClient) at(['output', 'kafka', 'client_id'], `client_id ${JSON.stringify(kafka.client_id)} ${badClient}`)
  const badGroup = kafkaIdProblem(stream?.group_id, 'consumer group')
  if (badGroup) at(['output', 'kafka', 'stream', 'group_id'], `group_id ${JSON.stringify(stream?.group_id)} ${badGroup}`)
  if (stream?.enabled && !stream.input_topic) at(['output', 'kafka', 'stream'], 'stream mode needs input_topic')
  // Stream mode would read its own answers, dead letters or records back as requests: one
  // poison message then dead-letters itself for ever. Compared as resolved (defaults included).
  const topics = streamTopics(kafka)
  const loops = (name: string): string => `${name} must differ from the stream's input_topic ("${topics.input}"): stream mode would consume what it writes there as new requests, for ever`
  for (const [field, derived] of [['output_topic', topics.output], ['dead_letter_topic', topics.deadLetter]] as const) {
    // Only from an input_topic that is itself a name: one that is not has its own problem.
    const problem = stream?.[field] === undefined && stream?.input_topic !== undefined && topicNameProblem(stream.input_topic) === null ? topicNameProblem(derived) : null
    if (problem) at(['output', 'kafka', 'stream', 'input_topic'], `its default ${field} "${derived}": ${problem}; set ${field}`)
  }
  if (topics.output === topics.input) at(['output', 'kafka', 'stream', 'output_topic'], loops('output_topic'))
  if (topics.deadLetter === topics.input) at(['output', 'kafka', 'stream', 'dead_letter_topic'], loops('dead_letter_topic'))
  if (stream && (kafka.topic ?? DEFAULT_TOPIC) === topics.input) at(['output', 'kafka', 'topic'], loops('topic (the serving records)'))
  return issues
}

/**
 * A mechanism without its credentials cannot authenticate: every connection would fail its
 * handshake. A credential the mechanism does not use (a token with PLAIN or SCRAM, a username
 * or password with OAUTHBEARER) is never sent: it is refused too, as it most likely means the
 * wrong mechanism, which would otherwise only show as failed handshakes at run time.
 */
function saslIssues(sasl: Static<typeof SaslSchema>, at: (path: (string | number)[], message: string) => void): void {
  const path = ['output', 'kafka', 'sasl']
  const { mechanism } = sasl
  if (mechanism === 'OAUTHBEARER') {
    if (!sasl.token) at(path, 'OAUTHBEARER needs a token')
    for (const field of ['username', 'password'] as const) {
      if (sasl[field] !== undefined) at([...path, field], `${field} is not used by OAUTHBEARER, which sends only the token: remove it, or set the mechanism it is for (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)`)
    }
    return
  }
  if (sasl.username === undefined || sasl.password === undefined) at(path, `${mechanism} needs username and password`)
  if (sasl.token !== undefined) at([...path, 'token'], `token is not used by ${mechanism}, which sends only username and password: remove it, or set mechanism: OAUTHBEARER`)
}

/** The stream's topics, defaults resolved. */
function streamTopics(raw: RawKafka): { input: string; output: string; deadLetter: string } {
  const input = raw.stream?.input_topic ?? 'specserve.requests'
  return { input, output: raw.stream?.output_topic ?? `${input}.results`, deadLetter: raw.stream?.dead_letter_topic ?? `${input}.dlq` }
}

/** Normalised settings of a section outputIssues() accepted; null when no kafka output is configured. */
export function kafkaSettings(output: Readonly<Record<string, unknown>>, baseDir: string): KafkaSettings | null {
  const raw = output.kafka as RawKafka | undefined | null
  if (!raw) return null
  const topic = raw.topic ?? DEFAULT_TOPIC
  const spoolDir = raw.spool_dir ?? DEFAULT_SPOOL_DIR
  const stream = raw.stream ?? {}
  const topics = streamTopics(raw)
  return {
    brokers: raw.brokers,
    topic,
    clientId: raw.client_id ?? 'specserve',
    key: raw.key ?? 'ensemble',
    acks: ACKS[raw.acks ?? 'all'],
    compression: raw.compression ?? 'none',
    lingerMs: raw.linger_ms ?? 100,
    batchSize: raw.batch_size ?? 1000,
    // Well under the broker's message.max.bytes (1 MiB), and under half a G1 region of a small
    // broker heap: larger requests are humongous allocations there (measured: 5× the broker CPU per record).
    // (At most max_record_bytes, which a lowered one lowers too.)
    batchBytes: raw.batch_bytes ?? Math.min(DEFAULT_BATCH_BYTES, raw.max_record_bytes ?? DEFAULT_MAX_RECORD_BYTES),
    // Under the broker's and topics' default max.message.bytes (1,048,588), with room for the batch's framing.
    maxRecordBytes: raw.max_record_bytes ?? DEFAULT_MAX_RECORD_BYTES,
    idempotent: raw.idempotent ?? false,
    tls: raw.tls,
    sasl: raw.sasl,
    sampleRate: raw.sample_rate ?? 1,
    sampleRates: raw.sample_rates ?? {},
    includeInputs: raw.include_inputs ?? false,
    publishLate: raw.publish_late ?? false,
    // Off by default: on the 2-core bench box it bought no throughput (docs/output.md, The producer thread).
    producerThread: raw.producer_thread ?? false,
    bufferRecords: raw.buffer_records ?? 10_000,
    spoolDir: configPath(baseDir, spoolDir),
    spoolMaxBytes: raw.spool_max_bytes ?? 1024 * 1024 * 1024,
    requestTimeoutMs: raw.request_timeout_ms ?? 5000,
    retryBackoffMs: raw.retry_backoff_ms ?? 1000,
    shutdownGraceMs: raw.shutdown_grace_ms ?? 10_000,
    stream: {
      enabled: stream.enabled ?? false,
      inputTopic: topics.input,
      outputTopic: topics.output,
      deadLetterTopic: topics.deadLetter,
      groupId: stream.group_id ?? 'specserve',
      maxInFlightPerPartition: stream.max_in_flight_per_partition ?? 16,
    },
  }
}

/** The spool file of a topic: one per topic, so two sinks never interleave. */
export const spoolFile = (settings: Pick<KafkaSettings, 'spoolDir' | 'topic'>): string =>
  join(settings.spoolDir, `${settings.topic.replace(/[^\w.-]/g, '_')}.spool`)

// Stream mode, the Kafka frontend: predict requests come from an input topic (a consumer
// group, so gateway instances share its partitions), run through the same gateway and
// native data plane as REST, and the answers go to an output topic. At-least-once: a
// partition's offset is committed only up to the last message whose result (or dead
// letter) the broker acknowledged, in offset order. A message that can never succeed (not
// JSON, unknown ensemble, bad input) goes to the dead-letter topic with its error and does
// not stall its partition. Each partition has a bounded number of predicts in flight;
// when one falls behind, intake pauses. Shutting down cancels what is still running once
// the grace period is over: those messages stay uncommitted and are redelivered.
import { Consumer, stringDeserializers, type Message, type MessagesStream, type Producer } from '@platformatic/kafka'
import { GatewayError } from '../../errors.ts'
import type { Gateway } from '../../gateway.ts'
import { ProduceBatcher } from '../../kafka/batcher.ts'
import { connectionOptions, createProducer, errorMessage, messageBytes } from '../../kafka/client.ts'
import type { KafkaSettings } from '../../kafka/config.ts'
import type { Run } from '../../starter/run.ts'
import type { Component, Logger, MetricsSink, PredictResult } from '../../types.ts'
import { readPredict } from '../native/request.ts'
import { failureBody, resultBody } from '../native/result.ts'

type Msg = Message<string, string, string, string>

/** How often the consumer lag is measured (one ListOffsets request to the brokers each time). */
export const LAG_INTERVAL_MS = 5000

/** Errors that depend on the gateway's state, not the message: retried, never dead-lettered. */
const TRANSIENT = new Set(['OVERLOADED', 'NOT_READY'])

interface PartitionState {
  running: number
  readonly queue: Msg[]
  /** Started messages in offset order, and which of them are finished. */
  readonly started: Msg[]
  readonly finished: Set<Msg>
}

export class StreamScorer implements Component {
  private readonly gateway: Gateway
  private readonly settings: KafkaSettings
  private readonly log: Logger
  private readonly producer: Producer<string, string, string, string>
  /** Answers and dead letters decided in the same turn go in one produce request. */
  private readonly outgoing: ProduceBatcher
  private readonly consumer: Consumer<string, string, string, string>
  private messages: MessagesStream<string, string, string, string> | null = null
  private readonly partitions = new Map<string, PartitionState>()
  private readonly commits = new Set<Promise<void>>()
  private paused = false
  private closing = false
  private running = 0
  /** Predicts started from messages and not finished: cancelled when the grace period at shutdown runs out. */
  private readonly runs = new Set<Run>()
  private idle: (() => void) | null = null
  private consumed = 0
  private answered = 0
  private deadLettered = 0
  private notOwned = 0
  private peakPerPartition = 0
  /** The input topic's lag per partition at the last measurement (-1: not assigned to this instance). */
  private lag: readonly bigint[] = []

  constructor(gateway: Gateway, settings: KafkaSettings, log: Logger) {
    this.gateway = gateway
    this.settings = settings
    this.log = log
    this.producer = createProducer(settings, `${settings.clientId}-stream`)
    this.outgoing = new ProduceBatcher(this.producer, settings.batchSize, settings.batchBytes)
    this.consumer = new Consumer({
      ...connectionOptions(settings, `${settings.clientId}-stream`),
      groupId: settings.stream.groupId,
      deserializers: stringDeserializers,
      autocommit: false,
      // Few messages wait inside the client: backpressure is ours (per partition).
      highWaterMark: settings.stream.maxInFlightPerPartition * 2,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
    })
  }

  async start(): Promise<void> {
    const { stream } = this.settings
    this.messages = await this.consumer.consume({ topics: [stream.inputTopic], mode: 'committed', fallbackMode: 'earliest', autocommit: false })
    this.messages.on('data', (message: Msg) => this.accept(message))
    this.messages.on('error', (err: Error) => this.log.error({ error: errorMessage(err) }, 'stream consumer error'))
    this.consumer.on('consumer:lag', (lag) => (this.lag = lag.get(stream.inputTopic) ?? []))
    // Unmeasurable (brokers unreachable: the consumer reports that itself): no figure rather than a stale one.
    this.consumer.on('consumer:lag:error', () => (this.lag = []))
    this.consumer.startLagMonitoring({ topics: [stream.inputTopic] }, LAG_INTERVAL_MS)
    this.log.info({ input: stream.inputTopic, output: stream.outputTopic, dead_letter: stream.deadLetterTopic, group: stream.groupId }, 'stream mode: consuming predict requests')
  }

  status(): Record<string, unknown> {
    const { stream } = this.settings
    return {
      input_topic: stream.inputTopic,
      output_topic: stream.outputTopic,
      dead_letter_topic: stream.deadLetterTopic,
      group_id: stream.groupId,
      assignments: this.consumer.assignments?.map((a) => ({ topic: a.topic, partitions: a.partitions })) ?? [],
      consumed: this.consumed,
      answered: this.answered,
      dead_lettered: this.deadLettered,
      produce_requests: this.outgoing.requests,
      skipped_not_owned: this.notOwned,
      peak_in_flight_per_partition: this.peakPerPartition,
      in_flight: this.running,
      paused: this.paused,
      lag: Object.fromEntries(this.ownedLag().map(([partition, lag]) => [partition, lag])),
    }
  }

  collect(out: MetricsSink): void {
    const none = {}
    out.counter('specserve_stream_consumed_messages', 'Stream mode: predict requests taken from the input topic.', [[none, this.consumed]])
    out.counter('specserve_stream_answered_messages', 'Stream mode: answers acknowledged on the output topic.', [[none, this.answered]])
    out.counter('specserve_stream_dead_lettered_messages', 'Stream mode: requests acknowledged on the dead-letter topic.', [[none, this.deadLettered]])
    out.counter('specserve_stream_produce_requests', 'Stream mode: produce requests carrying answers and dead letters (several per request under load).', [[none, this.outgoing.requests]])
    out.counter('specserve_stream_skipped_messages', 'Stream mode: messages of partitions moved to another instance (read there).', [[none, this.notOwned]])
    out.gauge('specserve_stream_in_flight', 'Stream mode: predicts running.', [[none, this.running]])
    out.gauge('specserve_stream_paused', 'Stream mode: 1 while intake is paused (a partition has its maximum in flight and more queued).', [[none, this.paused ? 1 : 0]])
    const topic = this.settings.stream.inputTopic
    out.gauge(
      'specserve_stream_consumer_lag',
      `Stream mode: messages of the input topic not yet committed, per partition this instance owns (measured every ${LAG_INTERVAL_MS / 1000} s).`,
      this.ownedLag().map(([partition, lag]) => [{ topic, partition: String(partition) }, lag]),
    )
  }

  /** [partition, lag] for the partitions this instance owns, as last measured. */
  private ownedLag(): [number, number][] {
    const owned: [number, number][] = []
    this.lag.forEach((lag, partition) => {
      if (lag >= 0n) owned.push([partition, Number(lag)])
    })
    return owned
  }

  /**
   * Stops intake and lets started predicts finish and commit for up to `graceMs`; then the
   * ones still running are cancelled (left uncommitted). Queued messages are redelivered later.
   */
  async close(graceMs = this.settings.shutdownGraceMs): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.messages?.pause()
    this.consumer.stopLagMonitoring()
    if (this.running > 0) {
      const idle = new Promise<void>((resolve) => (this.idle = resolve))
      let timer: NodeJS.Timeout | undefined
      const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))
      await Promise.race([idle, graceOver])
      clearTimeout(timer)
      for (const run of this.runs) run.cancel('stopping')
      await idle
    }
    await Promise.allSettled(this.commits)
    await this.messages?.close().catch(() => {})
    await this.consumer.close(true).catch(() => {})
    await this.producer.close(true).catch(() => {})
  }

  private accept(message: Msg): void {
    // A fetch issued before a rebalance can still deliver a partition now owned by another
    // member; that member reads it from the committed offset, so leave it alone.
    if (!this.owns(message)) {
      this.notOwned++
      return
    }
    this.consumed++
    const id = `${message.topic}:${message.partition}`
    let p = this.partitions.get(id)
    if (!p) this.partitions.set(id, (p = { running: 0, queue: [], started: [], finished: new Set() }))
    if (this.closing) return
    if (p.running < this.settings.stream.maxInFlightPerPartition) this.begin(p, message)
    else {
      p.queue.push(message)
      if (p.queue.length >= this.settings.stream.maxInFlightPerPartition && !this.paused) {
        this.paused = true
        this.messages?.pause()
      }
    }
  }

  private owns(message: Msg): boolean {
    const assignments = this.consumer.assignments
    if (!assignments) return true
    for (const a of assignments) if (a.topic === message.topic && a.partitions.includes(message.partition)) return true
    return false
  }

  private begin(p: PartitionState, message: Msg): void {
    p.running++
    this.running++
    if (p.running > this.peakPerPartition) this.peakPerPartition = p.running
    p.started.push(message)
    void this.process(message).then((done) => this.end(p, message, done))
  }

  private end(p: PartitionState, message: Msg, done: boolean): void {
    p.running--
    this.running--
    // Unfinished (given up at shutdown): neither it nor anything after it is committed.
    if (done) p.finished.add(message)
    let last: Msg | undefined
    while (p.started.length && p.finished.has(p.started[0]!)) {
      last = p.started.shift()!
      p.finished.delete(last)
    }
    if (last) this.commit(last)
    const next = this.closing ? undefined : p.queue.shift()
    if (next) this.begin(p, next)
    if (this.paused && !this.closing && [...this.partitions.values()].every((s) => s.queue.length < this.settings.stream.maxInFlightPerPartition)) {
      this.paused = false
      this.messages?.resume()
    }
    if (this.running === 0 && this.idle) this.idle()
  }

  private commit(message: Msg): void {
    const done = Promise.resolve(message.commit())
      .catch((err: unknown) => this.log.warn({ error: errorMessage(err), partition: message.partition, offset: String(message.offset) }, 'offset commit failed (the messages will be redelivered)'))
      .finally(() => this.commits.delete(done))
    this.commits.add(done)
  }

  /** Never rejects. True once answered or dead-lettered; false when given up at shutdown (left uncommitted). */
  private async process(message: Msg): Promise<boolean> {
    for (let attempt = 0; !this.closing; attempt++) {
      let result: PredictResult
      try {
        const run = this.startPredict(message)
        this.runs.add(run)
        result = await run.result
        this.runs.delete(run)
      } catch (err) {
        const code = err instanceof GatewayError ? err.code : 'BAD_REQUEST'
        if (TRANSIENT.has(code)) {
          await delay(Math.min(1000, 50 * 2 ** attempt))
          continue
        }
        return this.deadLetter(message, code, (err as Error).message)
      }
      // Cancelled at shutdown: not an answer; the message is redelivered.
      if (result.error?.code === 'CANCELLED') return false
      const answer = JSON.stringify(result.error ? failureBody(result) : resultBody(result))
      // The broker would refuse it at every retry, and the partition would stall behind it.
      const bytes = messageBytes(message.key, answer)
      if (bytes > this.settings.maxRecordBytes) {
        return this.deadLetter(message, 'RESPONSE_TOO_LARGE', `the answer is ${bytes} bytes, over output.kafka.max_record_bytes (${this.settings.maxRecordBytes})`)
      }
      return this.deliver(message, this.settings.stream.outputTopic, answer, () => this.answered++)
    }
    return false
  }

  /** The message's predict, started; request errors throw GatewayError. */
  private startPredict(message: Msg): Run {
    let body: unknown
    try {
      body = JSON.parse(message.value)
    } catch (err) {
      throw new GatewayError('BAD_REQUEST', `message value is not JSON: ${(err as Error).message}`)
    }
    const ensemble = (body as { ensemble?: unknown } | null)?.ensemble
    if (body === null || typeof body !== 'object' || Array.isArray(body) || typeof ensemble !== 'string') {
      throw new GatewayError('BAD_REQUEST', 'message value must be a JSON object: {"ensemble": s, "inputs": {...}, "budget_ms"?: n, "id"?: s}')
    }
    return this.gateway.start(readPredict(this.gateway, ensemble, body))
  }

  private deadLetter(message: Msg, code: string, error: string): Promise<boolean> {
    return this.deliver(message, this.settings.stream.deadLetterTopic, deadLetter(message, code, error, this.settings.maxRecordBytes), () => this.deadLettered++)
  }

  /** Produces until acknowledged (the broker may be restarting); gives up only when closing. */
  private async deliver(message: Msg, topic: string, value: string, count: () => void): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.outgoing.send({ topic, key: message.key || undefined, value })
        count()
        return true
      } catch (err) {
        if (attempt === 0) this.log.warn({ topic, error: errorMessage(err) }, 'stream result not acknowledged yet; retrying')
        if (this.closing) return false
        await delay(Math.min(this.settings.retryBackoffMs, 100 * 2 ** attempt))
      }
    }
  }
}

/** The dead letter: the error, where the message came from, and its value (left out, with its size, when that would put the letter over `maxBytes`). */
function deadLetter(message: Msg, code: string, error: string, maxBytes: number): string {
  const letter = {
    error: { code, message: error },
    source: { topic: message.topic, partition: message.partition, offset: String(message.offset), key: message.key ?? null },
    value: message.value ?? null,
    time: new Date().toISOString(),
  }
  const text = JSON.stringify(letter)
  // Produced under the message's key, which counts against the limit too.
  if (messageBytes(message.key, text) <= maxBytes) return text
  return JSON.stringify({ ...letter, value: null, value_bytes: Buffer.byteLength(message.value ?? '') })
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

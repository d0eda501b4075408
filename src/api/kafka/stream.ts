// Stream mode, the Kafka frontend: predict requests come from an input topic (a consumer
// group, so gateway instances share its partitions), run through the same gateway and
// native data plane as REST, and the answers go to an output topic. At-least-once: a
// partition's offset is committed only up to the last message whose result (or dead
// letter) the broker acknowledged, in offset order. A message that can never succeed (not
// JSON, unknown ensemble, bad input) goes to the dead-letter topic with its error and does
// not stall its partition. Each partition has a bounded number of predicts in flight;
// when one falls behind, intake pauses. Shutting down stops intake as the gateway starts to
// drain, and cancels what is still running once the grace period is over: those messages stay
// uncommitted and are redelivered, while the ones that did finish still get their offsets
// committed (a short attempt past the grace).
import { atMost } from '../../at-most.ts'
import type { Gateway } from '../../gateway.ts'
import { threadedProducer, type RecordProducer } from '../../kafka/thread-producer.ts'
import type { KafkaSettings } from '../../kafka/config.ts'
import type { Component, Logger, MetricsSink } from '../../types.ts'
import { PendingCommits } from './commits.ts'
import { InputConsumer, LAG_INTERVAL_MS, type IntakeState, type Msg } from './intake.ts'
import { markEnded, newPartition, type PartitionState } from './partition.ts'
import { MessageScoring } from './scoring.ts'
import { AnswerSender } from './sender.ts'

/** /readyz's output.stream.state. */
export type StreamState = IntakeState | 'blocked'

export { LAG_INTERVAL_MS } from './intake.ts'

/** At shutdown, past the grace period: how long cancelled predicts and answers on their way get to end. */
const WIND_DOWN_MS = 500
/**
 * At shutdown, the offset commits of finished messages get the rest of the grace and at least
 * this (one round trip to the group coordinator), however long the predicts took: otherwise
 * messages answered near the end would be scored and published again after a restart.
 */
const FINAL_COMMIT_MS = 500

export class StreamScorer implements Component {
  private readonly gateway: Gateway
  private readonly settings: KafkaSettings
  private readonly log: Logger
  private readonly producer: RecordProducer
  private readonly sender: AnswerSender
  private readonly intake: InputConsumer
  private readonly partitions = new Map<string, PartitionState>()
  /** Messages still running of partitions lost in a rebalance, by partition id: they count against its in-flight limit. */
  private readonly lostRunning = new Map<string, number>()
  private readonly commits: PendingCommits
  /** Aborted when shutdown's grace is over: answers still being retried are given up. */
  private readonly windDown = new AbortController()
  private paused = false
  /** close() began. */
  private closed = false
  private closing = false
  private running = 0
  private readonly scoring: MessageScoring
  private idle: (() => void) | null = null
  private consumed = 0
  private notOwned = 0
  private redelivered = 0
  private dropped = 0
  private peakPerPartition = 0

  constructor(gateway: Gateway, settings: KafkaSettings, log: Logger) {
    this.gateway = gateway
    this.settings = settings
    this.log = log
    this.producer = threadedProducer(settings, `${settings.clientId}-stream`, log)
    this.sender = new AnswerSender(this.producer, settings, log, this.windDown.signal)
    this.scoring = new MessageScoring(gateway, this.sender, settings.maxRecordBytes, () => this.closing)
    this.intake = new InputConsumer(settings, log, {
      message: (message) => this.accept(message),
      streamChanged: () => this.streamChanged(),
      assigned: () => this.assigned(),
    })
    this.commits = new PendingCommits(this.intake, log)
  }

  async start(): Promise<void> {
    const { stream } = this.settings
    // The producer's thread has loaded the client before the first message is taken: no answer
    // waits for that, when a shutdown gives answers little time.
    await this.producer.ready?.()
    if (this.closing) return // drained or closed meanwhile (a signal during the start): no consumer joins
    await this.intake.start()
    if (this.intake.state === 'consuming') this.log.info({ input: stream.inputTopic, output: stream.outputTopic, dead_letter: stream.deadLetterTopic, group: stream.groupId }, 'stream mode: consuming predict requests')
  }

  /**
   * The consumer's state, or `blocked` while answers have not been acknowledged for
   * request_timeout_ms (the brokers went away with messages in flight; a leader election's
   * retries are over sooner): intake is paused behind them, so the consumer fetches nothing and
   * would notice no outage, and a consuming state would hide one.
   */
  get state(): StreamState {
    const intake = this.intake.state
    return intake === 'consuming' && performance.now() - this.sender.failingSince >= this.settings.requestTimeoutMs ? 'blocked' : intake
  }

  status(): Record<string, unknown> {
    const { stream } = this.settings
    const state = this.state
    return {
      input_topic: stream.inputTopic,
      output_topic: stream.outputTopic,
      dead_letter_topic: stream.deadLetterTopic,
      group_id: stream.groupId,
      state,
      last_error: this.intake.lastError ?? (state === 'blocked' ? this.sender.lastError : null),
      consumer_restarts: this.intake.reopens,
      consumer_errors: this.intake.consumerErrors,
      assignments: this.intake.assignments(),
      consumed: this.consumed,
      answered: this.sender.answered,
      dead_lettered: this.sender.deadLettered,
      refused_answers: this.sender.refused,
      refused_dead_letters: this.sender.refusedDeadLetters,
      produce_requests: this.sender.outgoing.requests,
      produce_retrying: this.sender.retrying,
      skipped_not_owned: this.skippedNotOwned,
      skipped_redelivered: this.redelivered,
      dropped_revoked: this.dropped,
      peak_in_flight_per_partition: this.peakPerPartition,
      in_flight: this.running,
      paused: this.paused,
      lag: Object.fromEntries(this.intake.ownedLag()),
    }
  }

  collect(out: MetricsSink): void {
    const none = {}
    out.counter('specserve_stream_consumed_messages', 'Stream mode: predict requests taken from the input topic.', [[none, this.consumed]])
    out.counter('specserve_stream_answered_messages', 'Stream mode: answers acknowledged on the output topic.', [[none, this.sender.answered]])
    out.counter('specserve_stream_dead_lettered_messages', 'Stream mode: requests acknowledged on the dead-letter topic.', [[none, this.sender.deadLettered]])
    out.counter(
      'specserve_stream_refused_dead_letter_messages',
      'Stream mode: requests whose dead letter the broker refused for good, even at its smallest (topic not authorized, too large): logged, then committed without an answer.',
      [[none, this.sender.refusedDeadLetters]],
    )
    out.counter('specserve_stream_produce_requests', 'Stream mode: produce requests carrying answers and dead letters (several per request under load).', [[none, this.sender.outgoing.requests]])
    out.counter('specserve_stream_skipped_messages', 'Stream mode: messages fetched before a rebalance took their partition away (read by its owner now, or here again once given back).', [[none, this.skippedNotOwned]])
    out.gauge('specserve_stream_in_flight', 'Stream mode: predicts running.', [[none, this.running]])
    out.gauge('specserve_stream_paused', 'Stream mode: 1 while intake is paused (a partition has its maximum in flight and more queued).', [[none, this.paused ? 1 : 0]])
    out.gauge('specserve_stream_consuming', 'Stream mode: 1 while the input topic is being consumed, 0 while the consumer reconnects or has not joined yet, or answers cannot be acknowledged (state and last_error in /readyz).', [[none, this.state === 'consuming' ? 1 : 0]])
    out.gauge('specserve_stream_produce_retrying', 'Stream mode: answers and dead letters not acknowledged yet and being retried (their partitions wait).', [[none, this.sender.retrying]])
    const topic = this.settings.stream.inputTopic
    out.gauge(
      'specserve_stream_consumer_lag',
      `Stream mode: messages of the input topic not yet committed, per partition this instance owns (measured every ${LAG_INTERVAL_MS / 1000} s).`,
      this.intake.ownedLag().map(([partition, lag]) => [{ topic, partition: String(partition) }, lag]),
    )
  }

  /**
   * Stops intake and lets started predicts finish and commit for up to `graceMs`. Then the
   * ones still running are cancelled (given WIND_DOWN_MS to end), and the offsets of the
   * messages that finished are committed, per partition up to the first unfinished one, for
   * the rest of the grace or at least FINAL_COMMIT_MS; commits not done by then are given up.
   * Unfinished, queued and uncommitted messages are redelivered later.
   */
  async close(graceMs = this.settings.shutdownGraceMs): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.drain()
    const deadline = Date.now() + graceMs
    if (this.running > 0) {
      const idle = new Promise<void>((resolve) => (this.idle = resolve))
      await atMost(idle, graceMs)
      if (this.running > 0) {
        this.log.warn({ running: this.running }, 'shutdown grace over: cancelling the predicts still running (their messages will be scored again)')
        this.windDown.abort()
        this.scoring.cancelAll()
        await atMost(idle, WIND_DOWN_MS)
      }
    }
    // Bounded: a commit still pending when its message stream ended (the consumer was
    // rejoining) is never settled by the client, and waiting for it would hold the exit for ever.
    // Again while commits remain: a message finishing meanwhile adds its own.
    await this.commits.close(Math.max(deadline, Date.now() + FINAL_COMMIT_MS))
    if (this.running > 0) this.log.warn({ running: this.running }, 'predicts or answers still not ended at shutdown: left uncommitted, those messages will be scored again')
    await this.intake.close()
    await this.producer.close(true).catch(() => {})
  }

  /**
   * Takes no more messages, and starts none of those queued: called as the gateway starts to
   * drain (its predicts would be refused NOT_READY). What runs goes on; close() waits for it.
   */
  drain(): void {
    if (this.closing) return
    this.closing = true
    this.intake.stop()
  }

  /** Messages of partitions not this member's when read: taken out here, or dropped from a late fetch answer (InputConsumer). */
  private get skippedNotOwned(): number {
    return this.notOwned + this.intake.skippedStale
  }

  private accept(message: Msg): void {
    // A fetch issued before a rebalance can still deliver a partition now owned by another
    // member, or given back since: it is read again from the committed offset, so leave it alone.
    if (!this.intake.current(message)) {
      this.notOwned++
      return
    }
    const id = `${message.topic}:${message.partition}`
    let p = this.partitions.get(id)
    if (!p) this.partitions.set(id, (p = newPartition(message.topic, message.partition)))
    // Delivered again from the committed offset (a new stream, a group rejoin) while still queued or running here.
    if (message.offset < p.next) {
      this.redelivered++
      return
    }
    p.next = message.offset + 1n
    this.consumed++
    if (this.closing) return
    if (p.running + (this.lostRunning.size === 0 ? 0 : (this.lostRunning.get(id) ?? 0)) < this.settings.stream.maxInFlightPerPartition) this.begin(p, message)
    else {
      p.queue.push(message)
      if (p.queue.length >= this.settings.stream.maxInFlightPerPartition && !this.paused) {
        this.paused = true
        this.intake.pause()
      }
    }
  }

  /** The stream ended or was replaced: what is here already is committed through the consumer, and skipped when a new stream delivers it again. */
  private streamChanged(): void {
    for (const p of this.partitions.values()) p.directBelow = p.next
    this.commits.stranded()
  }

  /**
   * After a rebalance: a lost partition's queued messages are its new owner's now; never start
   * them here. Its running ones end here uncommitted, even if the group gives the partition back
   * before they do: the owner meanwhile may have committed past them, and a commit of theirs
   * would move its offset back. Given back, the partition starts anew from the committed offset.
   * A partition still owned keeps its state, whatever the join: the client's stream may still
   * hold messages of it fetched before the join, and only that state's `next` tells them from
   * the ones read again. One given back needs no such help: what was fetched of it before is
   * left (InputConsumer.current).
   */
  private assigned(): void {
    for (const [id, p] of this.partitions) {
      if (this.intake.owns(p.topic, p.partition)) continue
      this.dropped += p.queue.length
      p.queue.length = 0
      p.lost = true
      this.partitions.delete(id)
      this.intake.forgetCommits(p.topic, p.partition)
      if (p.running > 0) this.lostRunning.set(id, (this.lostRunning.get(id) ?? 0) + p.running)
    }
    this.resumeIfDrained()
  }

  private begin(p: PartitionState, message: Msg): void {
    p.running++
    this.running++
    if (p.running > this.peakPerPartition) this.peakPerPartition = p.running
    p.started.push(message)
    void this.scoring.score(message).then((done) => this.end(p, message, done))
  }

  private end(p: PartitionState, message: Msg, done: boolean): void {
    p.running--
    this.running--
    if (p.lost) return this.endLost(p)
    const last = markEnded(p, message, done)
    const owned = this.intake.owns(message.topic, message.partition)
    if (last && owned) this.commits.commit(p, last)
    const next = this.closing || !owned ? undefined : p.queue.shift()
    if (next) this.begin(p, next)
    this.ended()
  }

  /**
   * A message of a partition lost meanwhile ended: never committed here (given back since, or
   * not, it is its new owner's to commit; ours could move its offset back). Its slot of the
   * partition's in-flight limit goes to a message queued since the partition came back.
   */
  private endLost(p: PartitionState): void {
    const left = (this.lostRunning.get(p.id) ?? 1) - 1
    if (left > 0) this.lostRunning.set(p.id, left)
    else this.lostRunning.delete(p.id)
    const current = this.partitions.get(p.id)
    const next = this.closing || current === undefined ? undefined : current.queue.shift()
    if (next) this.begin(current!, next)
    this.ended()
  }

  private ended(): void {
    this.resumeIfDrained()
    if (this.running === 0 && this.idle) this.idle()
  }

  private resumeIfDrained(): void {
    if (!this.paused || this.closing) return
    for (const s of this.partitions.values()) if (s.queue.length >= this.settings.stream.maxInFlightPerPartition) return
    this.paused = false
    this.intake.resume()
  }
}

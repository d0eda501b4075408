// Readiness while the model stream catches up. A new instance name is a new consumer group: it
// reads the models topic from its start, loading and gating each version in turn, and until it
// reaches the end it serves versions the topic has long replaced (a minute for 20 records was
// seen). So readiness waits until the stream has handled every record up to the topic's end
// offsets as first read (per partition this instance reads), at most
// repository.kafka.catch_up_timeout_ms from the end of the load: a record tried again for ever
// must not keep a pod out of its Service. That long a wait is worth it only once records are
// known to be left. While nothing is known (the brokers down, the group not joined, the offsets
// unreadable) waiting gains nothing and costs every restart its capacity during an outage, a
// fleet's restart all of it: readiness then waits GRACE_MS at most (the join of a restarted
// member whose old session has still to expire fits in it), and lets go naming the brokers'
// error. A topic that does not exist has nothing to catch up to. The versions in the local
// repository serve meanwhile, predicts included. Loaded with the registry, before any Kafka
// module: it imports none (the stream hands it the offsets, src/registry/stream-group.ts).
import { count } from '../plural.ts'
import type { ReadinessHold } from '../readiness.ts'
import type { Logger, MetricsSink } from '../types.ts'
import { doubling } from '../backoff.ts'

/**
 * The topic's offsets when the stream first joined its group, by partition: `ends`, the end of
 * each; `from`, where this group reads it from (its committed offset, else the log's start).
 */
export interface StartOffsets {
  readonly ends: readonly bigint[]
  readonly from: readonly bigint[]
  /** By partition: nothing committed, the group reads it from the log's start (a new group replaying it). */
  readonly replaying?: readonly boolean[]
}
export type ReadOffsets = () => Promise<StartOffsets>

/** What the catch-up asks the model stream, for what it says: why the brokers are out of reach, and a record tried again. */
export interface StreamView {
  /** The brokers' error while the stream cannot consume (model_stream.last_error); null while it consumes. */
  error(): string | null
  /** The record being tried again after an unexpected failure (model_stream.retrying); null when none is. */
  retrying(): unknown
}

/** `waiting`: readiness waits for it; `caught_up`: it reached the end; `timed_out`: readiness stopped waiting first. */
export type CatchUpState = 'waiting' | 'caught_up' | 'timed_out' | 'closed'

/** Offsets that could not be read are read again after 1 s, 2 s, 4 s … at most 10 s apart, while readiness waits. */
export const readAgainMs = doubling(1000, 10_000)

/** How long readiness waits while nothing is known of the topic's end (catch_up_timeout_ms, when less). */
export const GRACE_MS = 15_000

export class CatchUp implements ReadinessHold {
  readonly released: Promise<void>
  private release!: () => void
  private state: CatchUpState = 'waiting'
  private readonly limitMs: number
  /** The wait while nothing is known of the topic's end: GRACE_MS, or the limit when shorter. */
  private readonly graceMs: number
  private readonly log: Logger
  private stream: StreamView | undefined
  /** When the limit's clock started (the load had ended); undefined before. */
  private startedAt: number | undefined
  private limit: NodeJS.Timeout | undefined
  private grace: NodeJS.Timeout | undefined
  private retry: NodeJS.Timeout | undefined
  private read: ReadOffsets | undefined
  private reading = false
  private readAttempts = 0
  private lastError: string | null = null
  /** Per partition, the topic's end when first read; undefined until then. */
  private ends: readonly bigint[] | undefined
  /**
   * History, for historical(): the end offsets and the partitions a new group replays, from a
   * read done while readiness waited. A read after it let go (at a later join, the first read
   * having failed) gives later ends, below which new records sit: not history.
   */
  private history: { readonly ends: readonly bigint[]; readonly replaying: readonly boolean[] } | undefined
  private graceStartedAt: number | undefined
  /** Per partition, the offset after the last record handled (or where the group reads from). */
  private readonly positions = new Map<number, bigint>()
  /** The partitions this instance reads (another member of its group reads the rest); undefined before the first join. */
  private assigned: readonly number[] | undefined
  /** Records the stream has handled (judged) since it started. */
  private handled = 0

  constructor(limitMs: number, log: Logger) {
    this.limitMs = limitMs
    this.graceMs = Math.min(limitMs, GRACE_MS)
    this.log = log
    this.released = new Promise((resolve) => (this.release = resolve))
  }

  /** The gateway has loaded: the limit's clock starts. */
  start(): void {
    if (this.state !== 'waiting' || this.startedAt !== undefined) return
    this.startedAt = performance.now()
    // Unref'd: a registry never closed (a test) is no reason to keep the process alive.
    this.limit = setTimeout(() => this.timedOut(), this.limitMs).unref()
    this.startGrace()
  }

  /** The model stream, asked what it knows when readiness waits or lets go. */
  follow(stream: StreamView): void {
    this.stream = stream
    this.startGrace()
  }

  /**
   * The grace counts from the later of the load's end and the stream's start: what the registry
   * does between them (judging directories that arrived during the load, importing the Kafka
   * client) must not use up the time the group's join has.
   */
  private startGrace(): void {
    if (this.startedAt === undefined || this.stream === undefined || this.grace !== undefined || this.state !== 'waiting') return
    if (this.graceMs >= this.limitMs) return
    this.graceStartedAt = performance.now()
    this.grace = setTimeout(() => this.graceOver(), this.graceMs).unref()
  }

  /**
   * The models topic does not exist (the brokers create none: auto.create.topics.enable=false):
   * nothing to catch up to, as an empty topic. A topic created later is read as it comes.
   */
  topicMissing(): void {
    if (this.ends !== undefined || this.state === 'closed') return
    this.log.info({}, 'model stream: the models topic does not exist: nothing to catch up to')
    this.ends = []
    this.assigned ??= []
    this.check()
  }

  /** The stream's consumer joined its group (again), reading `partitions`; `read` reads the offsets, once. */
  joined(partitions: readonly number[], read: ReadOffsets): void {
    this.assigned = partitions
    this.read ??= read
    if (this.ends === undefined && !this.reading && this.state !== 'closed') void this.readOffsets()
    this.check()
  }

  /** The stream has handled the record at `offset` of `partition` (its version judged, or the record refused). */
  judged(partition: number, offset: bigint): void {
    this.handled++
    this.advance(partition, offset + 1n)
    this.check()
  }

  /**
   * Whether the record at `offset` of `partition` is a replay from history: the group had
   * committed nothing there (a new group: a new instance name, a fresh disk) and the record
   * was in the topic as the catch-up first read it. Not a restarted member's backlog (records
   * published while it was down are new to it, and the rest of the fleet serves them), nor
   * any record while those offsets are not known (not read while readiness waited, the topic
   * missing, a partition added since).
   */
  historical(partition: number, offset: bigint): boolean {
    const end = this.history?.ends[partition]
    return end !== undefined && this.history?.replaying[partition] === true && offset < end
  }

  /**
   * The stream's consumer fetches `partition` from `offset` next, with every record before it
   * handled. Past the last record it can be further than judged() says: a transaction's commit
   * marker, or an aborted transaction, takes offsets no record is delivered at, and the topic's
   * end counts them.
   */
  fetched(partition: number, offset: bigint): void {
    this.advance(partition, offset)
    this.check()
  }

  waiting(): string | null {
    if (this.state !== 'waiting') return null
    if (this.startedAt === undefined) return 'catching up: the model stream is not started yet'
    const inS = (ms: number): number => Math.max(0, Math.ceil((this.startedAt! + ms - performance.now()) / 1000))
    const left = this.left()
    if (left === null) {
      const then = this.graceMs < this.limitMs ? `; read by then, ready once caught up, or in ${inS(this.limitMs)} s at the latest (repository.kafka.catch_up_timeout_ms)` : ' (repository.kafka.catch_up_timeout_ms)'
      // The grace counts from the stream's start (startGrace), the limit from the load's end.
      const grace =
        this.graceMs >= this.limitMs
          ? `in ${inS(this.limitMs)} s`
          : this.graceStartedAt === undefined
            ? `${Math.ceil(this.graceMs / 1000)} s after the model stream starts`
            : `in ${Math.max(0, Math.ceil((this.graceStartedAt + this.graceMs - performance.now()) / 1000))} s`
      return `catching up: the topic's end offsets are not read yet (${this.brokerError() ?? 'waiting for the consumer to join its group'}); ready ${grace} unless they are read by then${then}`
    }
    return `catching up: ${count(this.handled, 'record')} handled, ${left} left to the topic's end as first read; ready once caught up, or in ${inS(this.limitMs)} s at the latest (repository.kafka.catch_up_timeout_ms)`
  }

  status(): unknown {
    return { state: this.state, handled: this.handled, left: this.left(), timeout_ms: this.limitMs, grace_ms: this.graceMs, last_error: this.lastError }
  }

  collect(out: MetricsSink): void {
    out.gauge('specserve_model_stream_catching_up', '1 while readiness waits for the model stream to read the models topic to its end (repository.kafka.catch_up_timeout_ms at most); 0 once it has, or readiness stopped waiting.', [[{}, this.state === 'waiting' ? 1 : 0]])
    const left = this.left()
    if (left !== null) out.gauge('specserve_model_stream_catch_up_left', 'Records the model stream has still to handle to the models topic\'s end offsets as first read (0 once caught up).', [[{}, left]])
  }

  /** The registry closes: nothing holds readiness any more, and no timer is left. */
  close(): void {
    if (this.state === 'waiting') this.state = 'closed'
    this.stopTimers()
    this.release()
  }

  /** Records left to the end offsets first read, in the partitions this instance reads; null before both are known. */
  private left(): number | null {
    if (this.ends === undefined || this.assigned === undefined) return null
    let left = 0n
    for (const partition of this.assigned) {
      const end = this.ends[partition]
      if (end === undefined) continue // a partition added since: its records were not there when the stream started
      const at = this.positions.get(partition) ?? 0n
      if (end > at) left += end - at
    }
    return Number(left)
  }

  private advance(partition: number, offset: bigint): void {
    if (offset > (this.positions.get(partition) ?? -1n)) this.positions.set(partition, offset)
  }

  private async readOffsets(): Promise<void> {
    this.reading = true
    try {
      const { ends, from, replaying } = await this.read!()
      if (this.state === 'closed') return
      this.ends = ends
      if (this.state === 'waiting') this.history ??= { ends, replaying: replaying ?? [] }
      from.forEach((offset, partition) => this.advance(partition, offset))
      this.lastError = null
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err)
      // Once readiness no longer waits, the next join reads them (for the `caught up` line, /readyz, metrics).
      if (this.state !== 'waiting') return
      const delay = readAgainMs(++this.readAttempts)
      this.log.warn({ error: this.lastError, retry_in_ms: delay }, 'model stream: cannot read the models topic\'s end offsets; readiness waits for them, at most the catch-up grace')
      this.retry = setTimeout(() => {
        this.retry = undefined
        if (this.ends === undefined && !this.reading) void this.readOffsets()
      }, delay).unref()
    } finally {
      this.reading = false
    }
    this.check()
  }

  private check(): void {
    if (this.state !== 'waiting' && this.state !== 'timed_out') return
    if (this.left() !== 0) return
    const after = this.state
    this.state = 'caught_up'
    this.stopTimers()
    const waited_ms = this.startedAt === undefined ? 0 : Math.round(performance.now() - this.startedAt)
    if (after === 'waiting') this.log.info({ handled: this.handled, waited_ms }, 'model stream caught up: readiness no longer waits for it')
    else this.log.info({ handled: this.handled, waited_ms }, 'model stream caught up (readiness had stopped waiting for it)')
    this.release()
  }

  /** The brokers' error: the stream's (it cannot consume), else the offsets' read's. */
  private brokerError(): string | null {
    return this.stream?.error() ?? this.lastError
  }

  /** GRACE_MS has passed with nothing known of the topic's end: waiting longer gains nothing. */
  private graceOver(): void {
    this.grace = undefined
    if (this.state === 'waiting' && this.left() === null) this.letGo()
  }

  private timedOut(): void {
    this.limit = undefined
    if (this.state === 'waiting') this.letGo()
  }

  private letGo(): void {
    this.state = 'timed_out'
    this.stopTimers()
    const left = this.left()
    if (left === null) {
      this.log.warn(
        { error: this.brokerError(), waited_ms: Math.round(performance.now() - (this.graceStartedAt ?? this.startedAt ?? performance.now())), catch_up_timeout_ms: this.limitMs },
        'model stream: the models topic\'s end offsets are not read (the brokers\' error is `error`): ready anyway, on the versions in the local repository; the stream catches up once the brokers answer',
      )
    } else {
      // A record tried again (a location out of reach, a full disk) holds every record after it: say which.
      this.log.warn(
        { handled: this.handled, left, catch_up_timeout_ms: this.limitMs, retrying: this.stream?.retrying() ?? null, last_error: this.brokerError() },
        'model stream still catching up after catch_up_timeout_ms: ready anyway; versions the topic has replaced may serve until it reaches the end',
      )
    }
    this.release()
  }

  private stopTimers(): void {
    clearTimeout(this.limit)
    clearTimeout(this.grace)
    clearTimeout(this.retry)
    this.limit = this.grace = this.retry = undefined
  }
}

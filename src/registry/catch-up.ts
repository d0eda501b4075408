// Readiness while the model stream catches up. A new instance name is a new consumer group: it
// reads the models topic from its start, loading and gating each version in turn, and until it
// reaches the end it serves versions the topic has long replaced (a minute for 20 records was
// seen). So readiness waits until the stream has handled every record up to the topic's end
// offsets as first read (per partition this instance reads), at most
// repository.kafka.catch_up_timeout_ms from the end of the load: a broker that is down, or a
// record tried again for ever, must not keep a pod out of its Service. The versions in the
// local repository serve meanwhile, predicts included. Loaded with the registry, before any
// Kafka module: it imports none (the stream hands it the offsets, src/registry/stream-group.ts).
import { count } from '../plural.ts'
import type { ReadinessHold } from '../readiness.ts'
import type { Logger, MetricsSink } from '../types.ts'

/**
 * The topic's offsets when the stream first joined its group, by partition: `ends`, the end of
 * each; `from`, where this group reads it from (its committed offset, else the log's start).
 */
export interface StartOffsets {
  readonly ends: readonly bigint[]
  readonly from: readonly bigint[]
}
export type ReadOffsets = () => Promise<StartOffsets>

/** `waiting`: readiness waits for it; `caught_up`: it reached the end; `timed_out`: readiness stopped waiting first. */
export type CatchUpState = 'waiting' | 'caught_up' | 'timed_out' | 'closed'

/** Offsets that could not be read are read again after 1 s, 2 s, 4 s … at most 10 s apart, while readiness waits. */
export const readAgainMs = (attempt: number): number => Math.min(1000 * 2 ** (attempt - 1), 10_000)

export class CatchUp implements ReadinessHold {
  readonly released: Promise<void>
  private release!: () => void
  private state: CatchUpState = 'waiting'
  private readonly limitMs: number
  private readonly log: Logger
  /** When the limit's clock started (the load had ended); undefined before. */
  private startedAt: number | undefined
  private limit: NodeJS.Timeout | undefined
  private retry: NodeJS.Timeout | undefined
  private read: ReadOffsets | undefined
  private reading = false
  private readAttempts = 0
  private lastError: string | null = null
  /** Per partition, the topic's end when first read; undefined until then. */
  private ends: readonly bigint[] | undefined
  /** Per partition, the offset after the last record handled (or where the group reads from). */
  private readonly positions = new Map<number, bigint>()
  /** The partitions this instance reads (another member of its group reads the rest); undefined before the first join. */
  private assigned: readonly number[] | undefined
  /** Records the stream has handled (judged) since it started. */
  private handled = 0

  constructor(limitMs: number, log: Logger) {
    this.limitMs = limitMs
    this.log = log
    this.released = new Promise((resolve) => (this.release = resolve))
  }

  /** The gateway has loaded: the limit's clock starts. */
  start(): void {
    if (this.state !== 'waiting' || this.startedAt !== undefined) return
    this.startedAt = performance.now()
    // Unref'd: a registry never closed (a test) is no reason to keep the process alive.
    this.limit = setTimeout(() => this.timedOut(), this.limitMs).unref()
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

  waiting(): string | null {
    if (this.state !== 'waiting') return null
    if (this.startedAt === undefined) return 'catching up: the model stream is not started yet'
    const by = `ready once caught up, or in ${Math.max(0, Math.ceil((this.startedAt + this.limitMs - performance.now()) / 1000))} s at the latest (repository.kafka.catch_up_timeout_ms)`
    const left = this.left()
    if (left === null) return `catching up: the topic's end offsets are not read yet (${this.lastError ?? 'waiting for the consumer to join its group'}); ${by}`
    return `catching up: ${count(this.handled, 'record')} handled, ${left} left to the topic's end as first read; ${by}`
  }

  status(): unknown {
    return { state: this.state, handled: this.handled, left: this.left(), timeout_ms: this.limitMs, last_error: this.lastError }
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
      const { ends, from } = await this.read!()
      if (this.state === 'closed') return
      this.ends = ends
      from.forEach((offset, partition) => this.advance(partition, offset))
      this.lastError = null
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err)
      // Once readiness no longer waits, the next join reads them (for the `caught up` line, /readyz, metrics).
      if (this.state !== 'waiting') return
      const delay = readAgainMs(++this.readAttempts)
      this.log.warn({ error: this.lastError, retry_in_ms: delay }, 'model stream: cannot read the models topic\'s end offsets; readiness waits for them, at most until catch_up_timeout_ms')
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
    else this.log.info({ handled: this.handled, waited_ms }, 'model stream caught up (readiness had stopped waiting for it at catch_up_timeout_ms)')
    this.release()
  }

  private timedOut(): void {
    this.limit = undefined
    if (this.state !== 'waiting') return
    this.state = 'timed_out'
    this.stopTimers()
    this.log.warn(
      { handled: this.handled, left: this.left(), catch_up_timeout_ms: this.limitMs, last_error: this.lastError },
      'model stream still catching up after catch_up_timeout_ms: ready anyway; versions the topic has replaced may serve until it reaches the end',
    )
    this.release()
  }

  private stopTimers(): void {
    clearTimeout(this.limit)
    clearTimeout(this.retry)
    this.limit = this.retry = undefined
  }
}

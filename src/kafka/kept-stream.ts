// A consumer's message stream, kept open for as long as the gateway runs. Three things end
// one, and each leads to a new consume() (which joins the group again), after a backoff,
// until one works:
// - the library ends a message stream for good on an error it does not retry itself (a fetch
//   that failed 4 times: a broker outage of a few seconds);
// - the consumer itself emits 'error' when a rejoin the group asked for (a rebalance: another
//   member came or went) fails, the broker being gone meanwhile. Nobody listening, Node would
//   throw it and take the whole gateway down; after it, the member no longer heartbeats, so
//   the stream it had must go;
// - the first consume() fails (the brokers are unreachable at start): the gateway starts anyway.
// `state` and `lastError` say where it is (/readyz, metrics): lastError why it is not
// consuming, null again once a stream is open.
import type { Consumer, MessagesStream } from '@platformatic/kafka'
import type { Logger } from '../types.ts'
import { atMost } from '../at-most.ts'
import { errorMessage } from './client.ts'

/** How long start() waits for the first stream before the gateway goes on starting. */
const START_WAIT_MS = 5000

/** `starting`: the first consume() is under way; `consuming`: a message stream is open; `reconnecting`: none is, and one is being opened. */
export type KeptStreamState = 'starting' | 'consuming' | 'reconnecting' | 'closed'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any key/value types: only the stream's lifecycle is used here
type AnyStream = MessagesStream<any, any, any, any>
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
type AnyConsumer = Consumer<any, any, any, any>

export interface KeptStreamOptions<S extends AnyStream> {
  /** The topic consume() subscribes to. */
  readonly topic: string
  /** What the logs call it ("stream mode: the input stream"). */
  readonly name: string
  consume(): Promise<S>
  /** A stream just opened; `again`: one was open before. Its listeners go on here. */
  opened(stream: S, again: boolean): void
  /** The open stream is lost (ended, or its consumer lost the group): a commit through it would never settle. */
  lost?(): void
  /** The wait before the `attempt`th try (1, 2, …) to open a stream again. */
  backoffMs(attempt: number): number
}

export class KeptStream<S extends AnyStream> {
  state: KeptStreamState = 'starting'
  /** Why the stream was lost or could not be opened; null while one is open (and before the first attempt ends). */
  lastError: string | null = null
  /** Message streams opened after one ended. */
  reopens = 0
  /** Errors the consumer itself emitted (a failed rejoin). */
  consumerErrors = 0
  stream: S | null = null
  private readonly consumer: AnyConsumer
  private readonly log: Logger
  private readonly options: KeptStreamOptions<S>
  private everOpened = false
  private paused = false
  private closing = false
  private attempt = 0
  private retry: NodeJS.Timeout | null = null

  constructor(consumer: AnyConsumer, log: Logger, options: KeptStreamOptions<S>) {
    this.consumer = consumer
    this.log = log
    this.options = options
    consumer.on('error', (err: unknown) => this.consumerFailed(err))
  }

  /**
   * Opens the stream, waiting for it at most `waitMs`: brokers that do not answer (a connect
   * timeout per try) must not hold the gateway's start. When opening fails, keeps trying in the
   * background, state `reconnecting`; resolves all the same.
   */
  async start(waitMs = START_WAIT_MS): Promise<void> {
    let late = false
    const first = this.open().then(
      () => {
        if (late && this.state === 'consuming') this.log.info({ topic: this.options.topic }, `${this.options.name}: consuming`)
      },
      (err: unknown) => {
        if (this.closing) return
        this.state = 'reconnecting'
        this.cannotConsume(err)
      },
    )
    await atMost(first, waitMs)
    late = true
  }

  pause(): void {
    this.paused = true
    this.stream?.pause()
  }

  resume(): void {
    this.paused = false
    this.stream?.resume()
  }

  /** No more streams are opened; the one open is paused (commits still go through it). */
  stop(): void {
    this.closing = true
    if (this.retry) clearTimeout(this.retry)
    this.retry = null
    this.stream?.pause()
  }

  async close(): Promise<void> {
    this.stop()
    this.state = 'closed' // our own close of the stream is no loss to report
    await this.stream?.close().catch(() => {})
  }

  /** Whether the stream opened replaces one that was open before. */
  private async open(): Promise<boolean> {
    let stream: S
    try {
      stream = await this.options.consume()
    } catch (err) {
      // A consume() whose join failed leaves its topic subscribed: the next one would then
      // take a stream without joining the group (no partitions, no heartbeats).
      this.consumer.topics.untrack(this.options.topic)
      throw err
    }
    if (this.closing) {
      await stream.close().catch(() => {})
      return false
    }
    const again = this.everOpened
    this.everOpened = true
    this.stream = stream
    this.state = 'consuming'
    // It said why no stream was open (/readyz pairs it with reconnecting): consuming, it is past.
    this.lastError = null
    this.attempt = 0
    this.options.opened(stream, again)
    stream.on('error', (err: Error) => {
      this.lastError = errorMessage(err)
      this.log.error({ error: this.lastError }, `${this.options.name}: consumer error`)
    })
    stream.once('close', () => this.ended(stream))
    if (this.paused) stream.pause()
    return again
  }

  private consumerFailed(err: unknown): void {
    this.consumerErrors++
    this.lastError = errorMessage(err)
    if (!this.closing) this.log.warn({ error: this.lastError }, `${this.options.name}: the consumer lost its group (a rejoin failed); consuming again`)
    // Its stream would go on fetching for a member that no longer heartbeats: closed and replaced.
    const stream = this.stream
    if (stream === null || this.state === 'closed') return
    this.lose()
    stream.close().catch(() => {})
  }

  private ended(stream: S): void {
    if (stream !== this.stream || this.state === 'closed') return
    if (!this.closing) this.log.warn({ error: this.lastError }, `${this.options.name} ended; consuming again`)
    this.lose()
  }

  /**
   * The open stream is gone: `lost` is told (its commits would never settle), stopped or not
   * (a shutdown still commits what finished). Opened again unless stopped.
   */
  private lose(): void {
    this.stream = null
    this.state = this.closing ? 'closed' : 'reconnecting' // not consuming either way (/readyz, specserve_stream_consuming)
    this.options.lost?.()
    if (!this.closing) this.reopenLater()
  }

  private cannotConsume(err: unknown): void {
    this.lastError = errorMessage(err)
    this.log.warn({ error: this.lastError, retry_in_ms: this.options.backoffMs(this.attempt + 1) }, `${this.options.name}: cannot consume yet; retrying`)
    this.reopenLater()
  }

  private reopenLater(): void {
    this.retry = setTimeout(() => {
      this.retry = null
      this.open().then(
        (again) => {
          if (this.closing) return
          if (again) this.reopens++
          this.log.info({ topic: this.options.topic }, `${this.options.name}: consuming again`)
        },
        (err: unknown) => {
          if (!this.closing) this.cannotConsume(err)
        },
      )
    }, this.options.backoffMs(++this.attempt))
  }
}

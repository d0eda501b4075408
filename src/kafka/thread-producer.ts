// A gateway's producers (the record sink's, stream mode's): the client on the event loop, or,
// with output.kafka.producer_thread, each on a thread of its own (producer-thread.ts). The
// event loop then packs a produce request's values into one buffer and
// moves it there: one message per request, not per record. What the client costs per record
// (serializing, partitioning, the record batch's framing and checksum, the socket writes) is
// then paid beside the event loop, not on it. Requests are answered by id; an answer's error
// is the client's, rebuilt (errorMessage() and isTooLarge() read it as they read the client's
// own). A thread that dies fails what it had in hand (the sink spools it, as for a broker that
// failed) and the next request starts a new one; one that dies before it has loaded the client
// is likely to die again, so the next waits a backoff, and requests are refused meanwhile.
import type { Worker } from 'node:worker_threads'
import { startThread } from '../thread-entry.ts'
import { doubling } from '../backoff.ts'
import { errorMessage, type GatewayProducer } from './client.ts'
import type { KafkaSettings } from './config.ts'
import { errorFromTree, packMessages, type FromThread, type OutgoingRecord, type ThreadSetup, type ToThread } from './thread-protocol.ts'
import type { Logger } from '../types.ts'

/** What the record sink and stream mode ask of a producer (the client's own, or one on a thread). */
export interface RecordProducer {
  send(options: { messages: OutgoingRecord[] }): Promise<unknown>
  metadata(options: { topics: string[]; autocreateTopics?: boolean }): Promise<unknown>
  close(force?: boolean): Promise<void>
  /** Resolves once a request can go at once (a thread of its own has loaded the client); absent: always. */
  ready?(): Promise<void>
}

const threadUrl = new URL('./producer-thread.ts', import.meta.url)

/** The longest wait before starting a thread again after threads that died while loading. */
export const THREAD_RESTART_MAX_MS = 60_000

/** Threads that died before they had loaded the client: when the next may start (performance.now()), and why the last one died. */
interface Paused {
  readonly until: number
  readonly cause: string
}

interface Asked {
  resolve(): void
  reject(err: Error): void
}

export class ThreadProducer implements RecordProducer {
  private readonly setup: ThreadSetup
  private readonly log: Logger
  private worker: Worker | null = null
  /** The running thread's: resolves once it has loaded the client, or has stopped (ready()). */
  private loaded: Promise<void> = Promise.resolve()
  private readonly asked = new Map<number, Asked>()
  private lastId = 0
  private closed = false
  /** The client could not be made (the library refused its options): every request is refused with this, no thread started again. */
  private failure: Error | null = null
  /** Threads in a row that died before they had loaded the client (each start costs about half a second of CPU). */
  private diedLoading = 0
  private paused: Paused | null = null
  private readonly restartWait: (attempt: number) => number
  private readonly entry: URL

  /** `entry`: the thread's module (a test's that dies while loading). */
  constructor(setup: ThreadSetup, log: Logger, entry: URL = threadUrl) {
    this.setup = setup
    this.log = log
    this.entry = entry
    this.restartWait = doubling(setup.settings.retryBackoffMs, Math.max(setup.settings.retryBackoffMs, THREAD_RESTART_MAX_MS))
  }

  send(options: { messages: OutgoingRecord[] }): Promise<void> {
    const messages = packMessages(options.messages)
    return this.ask({ type: 'send', id: ++this.lastId, messages }, [messages.bytes, messages.ends.buffer as ArrayBuffer, messages.keyed.buffer as ArrayBuffer])
  }

  metadata(options: { topics: string[]; autocreateTopics?: boolean }): Promise<void> {
    return this.ask({ type: 'metadata', id: ++this.lastId, topics: options.topics, autocreateTopics: options.autocreateTopics ?? false })
  }

  /**
   * Starts the thread if it is not running, and resolves once it has loaded the client (about
   * half a second of CPU), or has stopped. A request's own timers (request_timeout_ms) start
   * after this, and a stream takes its first message only then.
   */
  ready(): Promise<void> {
    if (!this.closed && this.failure === null && this.worker === null && this.pausedFor() === null) this.start()
    return this.loaded
  }

  /** Closes the client (`force`: what it has on the wire fails now), then the thread. */
  async close(force = false): Promise<void> {
    if (this.closed) return
    const worker = this.worker
    const closing = worker && this.failure === null ? this.ask({ type: 'close', id: ++this.lastId, force }) : null
    this.closed = true
    if (!worker) return
    try {
      await closing
    } finally {
      await worker.terminate()
    }
  }

  private ask(msg: ToThread, transfer: ArrayBuffer[] = []): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the kafka producer is closed'))
    if (this.failure) return Promise.reject(this.failure)
    // Paused only while no thread runs (one starts only once the pause is over).
    const paused = this.pausedFor()
    if (paused) return Promise.reject(paused)
    const worker = this.worker ?? this.start()
    return new Promise<void>((resolve, reject) => {
      worker.postMessage(msg, transfer) // first: one that throws leaves nothing in hand
      // The thread keeps the process alive only while it has something in hand (a shutdown's last send).
      if (this.asked.size === 0) worker.ref()
      this.asked.set(msg.id, { resolve, reject })
    })
  }

  /** While threads that died loading are waited out: the error requests are refused with; null once the next may start. */
  private pausedFor(): Error | null {
    if (this.paused === null) return null
    const left = Math.ceil(this.paused.until - performance.now())
    if (left > 0) return new Error(`the kafka producer thread stopped while loading the client (${this.paused.cause}): a new one starts at the first request after ${left} ms more`)
    this.paused = null
    return null
  }

  private start(): Worker {
    // Kept alive while it loads (a start awaiting ready()), then only while it has something in hand.
    const worker = startThread(this.entry, { workerData: this.setup })
    let hasLoaded = false
    let loaded!: () => void
    this.loaded = new Promise((resolve) => (loaded = resolve))
    worker.on('message', (msg: FromThread) => {
      if (msg.type === 'log') this.log[msg.level](msg.fields, msg.msg)
      else if (msg.type === 'done') this.answered(worker, msg)
      else if (msg.type === 'ready') {
        hasLoaded = true
        this.diedLoading = 0
        if (this.asked.size === 0) worker.unref()
        loaded()
      } else {
        this.failed(worker, errorFromTree(msg.error))
        loaded()
      }
    })
    worker.on('error', (err) => this.lost(worker, err, hasLoaded))
    worker.on('exit', (code) => {
      loaded()
      this.lost(worker, new Error(`the kafka producer thread exited with code ${code}`), hasLoaded)
    })
    this.worker = worker
    return worker
  }

  private answered(worker: Worker, msg: Extract<FromThread, { type: 'done' }>): void {
    const asked = this.asked.get(msg.id)
    if (!asked) return
    this.asked.delete(msg.id)
    if (this.asked.size === 0) worker.unref()
    if (msg.error === null) asked.resolve()
    else asked.reject(errorFromTree(msg.error))
  }

  /** The thread could not make the client: said once, and the thread is let go. */
  private failed(worker: Worker, err: Error): void {
    this.failure = err
    this.log.error({ error: errorMessage(err) }, 'the kafka producer could not be made: nothing is sent (records are spooled, stream answers retried) until the gateway is restarted with settings the client takes')
    this.lost(worker, err, false)
    void worker.terminate()
  }

  /**
   * Everything the thread had in hand fails; the next request starts a new thread (unless the
   * client could not be made). A thread that died before it had loaded the client is not
   * started again at once: each wait doubles, from retry_backoff_ms up to THREAD_RESTART_MAX_MS
   * (or retry_backoff_ms, if that is longer).
   */
  private lost(worker: Worker, err: Error, hasLoaded: boolean): void {
    if (this.worker !== worker) return
    this.worker = null
    if (!this.closed && this.failure === null) {
      if (hasLoaded) this.log.error({ error: errorMessage(err), in_hand: this.asked.size }, 'the kafka producer thread stopped: its requests failed (their senders spool or retry them); the next request starts a new thread')
      else {
        const waitMs = this.restartWait(++this.diedLoading)
        this.paused = { until: performance.now() + waitMs, cause: errorMessage(err) }
        this.log.error({ error: errorMessage(err), in_hand: this.asked.size, restart_after_ms: waitMs }, 'the kafka producer thread stopped while loading the client: its requests failed (their senders spool or retry them), and so do those until a new thread starts, after a backoff')
      }
    }
    for (const asked of this.asked.values()) asked.reject(err)
    this.asked.clear()
  }
}

/**
 * The client on the event loop (producer_thread: false), loaded and made at its first request:
 * a gateway whose producers run on threads never loads the library on the event loop.
 */
export class LoopProducer implements RecordProducer {
  private readonly settings: KafkaSettings
  private readonly clientId: string
  private readonly log: Logger
  private client: Promise<GatewayProducer> | null = null
  private closed = false

  constructor(settings: KafkaSettings, clientId: string, log: Logger) {
    this.settings = settings
    this.clientId = clientId
    this.log = log
  }

  async send(options: { messages: OutgoingRecord[] }): Promise<void> {
    await (await this.made()).send(options)
  }

  async metadata(options: { topics: string[]; autocreateTopics?: boolean }): Promise<void> {
    await (await this.made()).metadata(options)
  }

  async close(force = false): Promise<void> {
    if (this.closed) return
    this.closed = true
    const client = await this.client?.catch(() => null)
    await client?.close(force)
  }

  private made(): Promise<GatewayProducer> {
    if (this.closed) return Promise.reject(new Error('the kafka producer is closed'))
    if (this.client === null) {
      const client = import('./producer.ts').then(({ createProducer }) => createProducer(this.settings, this.clientId, this.log))
      // A client that could not be made is tried again at the next request (cheap here: the library stays loaded).
      client.catch(() => {
        if (this.client === client) this.client = null
      })
      this.client = client
    }
    return this.client
  }
}

/**
 * A producer of `clientId` on its own thread, unless `producerThread` is off or the settings
 * cannot be passed to one (an embedder's tls options holding functions): then the client on
 * the event loop.
 */
export function threadedProducer(settings: KafkaSettings, clientId: string, log: Logger): RecordProducer {
  if (!settings.producerThread) return new LoopProducer(settings, clientId, log)
  try {
    const setup = structuredClone({ settings, clientId })
    return new ThreadProducer(setup, log)
  } catch (err) {
    log.warn({ error: errorMessage(err) }, 'output.kafka settings cannot be passed to a thread: the kafka producer runs on the event loop')
    return new LoopProducer(settings, clientId, log)
  }
}

/** The record sink's producer (`<client_id>-records`). */
export const recordProducer = (settings: KafkaSettings, log: Logger): RecordProducer => threadedProducer(settings, `${settings.clientId}-records`, log)

// The record sink's producer, run on a thread of its own (producer-thread.ts). The event
// loop packs a produce request's values into one buffer and moves it there: one message per
// request, not per record. What the client costs per record (measured on the 2-core CI box:
// about as much CPU as encoding the record itself) is then paid beside the event loop, not on
// it. Requests are answered by id; an answer's error is the client's, rebuilt (errorMessage()
// and isTooLarge() read it as they read the client's own). A thread that dies fails what it
// had in hand (the sink spools it, as for a broker that failed) and the next request starts a
// new one.
import { Worker } from 'node:worker_threads'
import { createProducer, errorMessage } from './client.ts'
import type { KafkaSettings } from './config.ts'
import { errorFromTree, packMessages, type FromThread, type OutgoingRecord, type ThreadSetup, type ToThread } from './thread-protocol.ts'
import type { Logger } from '../types.ts'

/** What the record sink asks of a producer (the client's own, or one on a thread). */
export interface RecordProducer {
  send(options: { messages: OutgoingRecord[] }): Promise<unknown>
  metadata(options: { topics: string[]; autocreateTopics?: boolean }): Promise<unknown>
  close(force?: boolean): Promise<void>
}

const threadUrl = new URL('./producer-thread.ts', import.meta.url)

interface Asked {
  resolve(): void
  reject(err: Error): void
}

export class ThreadProducer implements RecordProducer {
  private readonly setup: ThreadSetup
  private readonly log: Logger
  private worker: Worker | null = null
  private readonly asked = new Map<number, Asked>()
  private lastId = 0
  private closed = false

  constructor(setup: ThreadSetup, log: Logger) {
    this.setup = setup
    this.log = log
  }

  send(options: { messages: OutgoingRecord[] }): Promise<void> {
    const messages = packMessages(options.messages)
    return this.ask({ type: 'send', id: ++this.lastId, messages }, [messages.bytes, messages.ends.buffer as ArrayBuffer])
  }

  metadata(options: { topics: string[]; autocreateTopics?: boolean }): Promise<void> {
    return this.ask({ type: 'metadata', id: ++this.lastId, topics: options.topics, autocreateTopics: options.autocreateTopics ?? false })
  }

  /** Closes the client (`force`: what it has on the wire fails now), then the thread. */
  async close(force = false): Promise<void> {
    if (this.closed) return
    const worker = this.worker
    const closing = worker ? this.ask({ type: 'close', id: ++this.lastId, force }) : null
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
    const worker = this.worker ?? this.start()
    return new Promise<void>((resolve, reject) => {
      // The thread keeps the process alive only while it has something in hand (a shutdown's last send).
      if (this.asked.size === 0) worker.ref()
      this.asked.set(msg.id, { resolve, reject })
      worker.postMessage(msg, transfer)
    })
  }

  private start(): Worker {
    const worker = new Worker(threadUrl, { workerData: this.setup })
    worker.unref()
    worker.on('message', (msg: FromThread) => (msg.type === 'log' ? this.log[msg.level](msg.fields, msg.msg) : this.answered(worker, msg)))
    worker.on('error', (err) => this.lost(worker, err))
    worker.on('exit', (code) => this.lost(worker, new Error(`the kafka producer thread exited with code ${code}`)))
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

  /** Everything the thread had in hand fails; the next request starts a new thread. */
  private lost(worker: Worker, err: Error): void {
    if (this.worker !== worker) return
    this.worker = null
    if (!this.closed) this.log.error({ error: errorMessage(err), in_hand: this.asked.size }, 'the kafka producer thread stopped: its requests failed (their records are spooled); the next one starts a new thread')
    for (const asked of this.asked.values()) asked.reject(err)
    this.asked.clear()
  }
}

/**
 * The record sink's producer: on its own thread unless `producerThread` is off or the settings
 * cannot be passed to one (an embedder's tls options holding functions): then the client's own.
 */
export function recordProducer(settings: KafkaSettings, log: Logger): RecordProducer {
  const clientId = `${settings.clientId}-records`
  if (!settings.producerThread) return createProducer(settings, clientId, log)
  try {
    const setup = structuredClone({ settings, clientId })
    return new ThreadProducer(setup, log)
  } catch (err) {
    log.warn({ error: errorMessage(err) }, 'output.kafka settings cannot be passed to a thread: the kafka producer runs on the event loop')
    return createProducer(settings, clientId, log)
  }
}

// A gateway's Kafka producer on a thread of its own: the client's per-message work
// (serializing, partitioning, the record batch's framing and checksum) and the socket writes
// are off the event loop, which serves predicts. It answers each request of
// thread-producer.ts by id, as each completes. A client that cannot be made (the library
// refusing its options) is said once, and every request is refused with that reason.
import { parentPort, workerData } from 'node:worker_threads'
import type { GatewayProducer } from './client.ts'
import { errorTree, unpackMessages, type FromThread, type ThreadSetup, type ToThread } from './thread-protocol.ts'
import type { Logger } from '../types.ts'

const port = parentPort!
const { settings, clientId } = workerData as ThreadSetup
const post = (msg: FromThread): void => port.postMessage(msg)
const log: Logger = {
  info: (fields, msg) => post({ type: 'log', level: 'info', fields, msg }),
  warn: (fields, msg) => post({ type: 'log', level: 'warn', fields, msg }),
  error: (fields, msg) => post({ type: 'log', level: 'error', fields, msg }),
}

let producer: GatewayProducer
try {
  const { createProducer } = await import('./producer.ts')
  producer = createProducer(settings, clientId, log)
  post({ type: 'ready' })
} catch (err) {
  post({ type: 'failed', error: errorTree(err) })
}

const answer = (id: number) => [() => post({ type: 'done', id, error: null }), (err: unknown) => post({ type: 'done', id, error: errorTree(err) })] as const

port.on('message', (msg: ToThread) => {
  const [ok, failed] = answer(msg.id)
  try {
    if (msg.type === 'send') producer.send({ messages: unpackMessages(msg.messages) }).then(ok, failed)
    else if (msg.type === 'metadata') producer.metadata({ topics: [...msg.topics], autocreateTopics: msg.autocreateTopics }).then(ok, failed)
    else producer.close(msg.force).then(ok, failed)
  } catch (err) {
    failed(err)
  }
})

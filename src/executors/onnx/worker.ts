// One inference worker: holds one onnxruntime session per model and runs one job at a
// time (a thread's sessions share one inference lane: see session.ts). Messages are
// handled one at a time, in order; a job the pool cancelled while it waited here is
// answered `cancelled` without running.
import { parentPort, workerData } from 'node:worker_threads'
import type ort from 'onnxruntime-node'
import type { Tensor } from '../../tensor/index.ts'
import { fromOrtTensor, toOrtFeeds } from '../../tensor/ort.ts'
import { CANCEL_SLOTS, type FromWorker, type ToWorker, type WireTensors } from './protocol.ts'
import { openSession } from './session.ts'

const port = parentPort
if (!port) throw new Error('worker.ts must run in a worker thread')
/** Set by the pool when a job we hold was cancelled: such a job is never started. */
const cancelled = (workerData as { cancel: Int32Array }).cancel

const sessions = new Map<string, ort.InferenceSession>()

async function load(key: string, path: string): Promise<FromWorker> {
  try {
    // Warmed (the first run allocates, and would land on a real request) and timed.
    const { session, inputs, outputs, warmRunsMs } = await openSession(path)
    await sessions.get(key)?.release()
    sessions.set(key, session)
    return { type: 'loaded', key, metadata: { inputs, outputs }, warmRunsMs }
  } catch (err) {
    return { type: 'load-failed', key, message: (err as Error).message }
  }
}

async function run(id: number, key: string, inputs: WireTensors): Promise<{ reply: FromWorker; transfer: ArrayBuffer[] }> {
  const session = sessions.get(key)
  if (!session) return { reply: { type: 'failed', id, message: `model ${key} is not loaded` }, transfer: [] }
  try {
    const feeds = toOrtFeeds(inputs)
    const started = performance.now()
    const results = await session.run(feeds)
    const runMs = performance.now() - started
    const outputs: Record<string, Tensor> = {}
    const transfer: ArrayBuffer[] = []
    for (const name in results) {
      const tensor = fromOrtTensor(name, results[name]!)
      if (!Array.isArray(tensor.data)) transfer.push(tensor.data.buffer as ArrayBuffer)
      outputs[name] = tensor
    }
    return { reply: { type: 'result', id, outputs, runMs }, transfer }
  } catch (err) {
    return { reply: { type: 'failed', id, message: (err as Error).message }, transfer: [] }
  }
}

// One message at a time: loads must not interleave, or their warm-up timings include each other.
let chain: Promise<void> = Promise.resolve()
port.on('message', (msg: ToWorker) => {
  chain = chain.then(() => handle(msg)).catch((err: unknown) => console.error('inference worker:', err))
})

async function handle(msg: ToWorker): Promise<void> {
  if (msg.type === 'load') {
    port?.postMessage(await load(msg.key, msg.path))
  } else if (msg.type === 'close') {
    // Releasing here, in order, is the only safe way to stop: a thread terminated inside a
    // native onnxruntime call (run, create, release) aborts the whole process.
    for (const session of sessions.values()) await session.release()
    sessions.clear()
    port?.close()
  } else if (msg.type === 'unload') {
    const session = sessions.get(msg.key)
    sessions.delete(msg.key)
    await session?.release()
  } else if (Atomics.load(cancelled, msg.id % CANCEL_SLOTS) === msg.id) {
    port?.postMessage({ type: 'cancelled', id: msg.id } satisfies FromWorker)
  } else {
    const { reply, transfer } = await run(msg.id, msg.key, msg.inputs)
    port?.postMessage(reply, transfer)
  }
}

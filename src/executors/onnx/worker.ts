// One inference worker: holds one onnxruntime session per model and runs one unit at a
// time (a thread's sessions share one inference lane: see session.ts). Messages are
// handled one at a time, in order; a unit the pool cancelled while it waited here is
// answered `cancelled` without running.
import { readlinkSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import type { Tensor } from '../../tensor/index.ts'
import { fromOrtTensor } from '../../tensor/ort.ts'
import { rowsOf, stack, unstack } from './batch.ts'
import { stampOfSync } from '../../file-stamp.ts'
import { CANCEL_SLOTS, type FromWorker, type PartAnswer, type ToWorker, type WireTensors, type WireUnit, type WorkerSetup } from './protocol.ts'
import { ortMessage } from './ort-message.ts'
import { openSession, type ThreadSession } from './session.ts'

const port = parentPort
if (!port) throw new Error('worker.ts must run in a worker thread')
const setup = workerData as WorkerSetup
/** Set by the pool when a unit we hold was cancelled: such a unit is never started. */
const cancelled = setup.cancel
/** Set by the pool when it closes (protocol.ts). */
const closing = setup.closing

/**
 * Lowers this thread's CPU priority below the event loop's, so that on a contended core the
 * loop (admission, deadlines, fallbacks, refusals) runs first and inference takes the rest.
 * Linux gives each thread its own nice value; /proc/thread-self names this one.
 */
function lowerPriority(steps: number): FromWorker {
  // Elsewhere a thread has no nice value of its own: the workers run as the event loop.
  if (process.platform !== 'linux') return { type: 'priority', nice: 0 }
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
    if (!Number.isSafeInteger(tid) || tid <= 0) throw new Error('no thread id in /proc/thread-self')
    const before = getPriority(tid)
    setPriority(tid, Math.min(19, before + steps))
    return { type: 'priority', nice: getPriority(tid) - before }
  } catch (err) {
    return { type: 'priority', nice: 0, message: (err as Error).message }
  }
}
if (setup.nice > 0) port.postMessage(lowerPriority(setup.nice))

const sessions = new Map<string, ThreadSession>()

/**
 * Opens the file only while it is the one the pool stamped: a worker started again after a
 * crash must load the bytes its siblings loaded, not a file replaced since (it would answer
 * for the old version). Stamped again after opening, so a change during the open is seen too.
 */
async function load(key: string, path: string, stamp: string | undefined): Promise<FromWorker> {
  // A load queued behind others is never begun once the pool closes: each can take seconds,
  // and the pool must not wait on them, nor cut them (a thread terminated inside a create aborts the process).
  if (Atomics.load(closing, 0) !== 0) return { type: 'load-failed', key, message: 'gateway closing' }
  const changed = (): FromWorker => ({ type: 'load-failed', key, message: `model file ${path} changed on disk since the model was registered (a reload loads the new file)` })
  try {
    if (stampOfSync(path) !== stamp) return changed()
    // Warmed (the first run allocates, and would land on a real request) and timed.
    const { session, inputs, outputs, warmRunsMs } = await openSession(path)
    if (stampOfSync(path) !== stamp) {
      await session.release()
      return changed()
    }
    await sessions.get(key)?.release()
    sessions.set(key, session)
    return { type: 'loaded', key, metadata: { inputs, outputs }, warmRunsMs }
  } catch (err) {
    return { type: 'load-failed', key, message: (err as Error).message }
  }
}

async function run(unit: WireUnit): Promise<void> {
  const { id, parts } = unit
  const session = sessions.get(unit.key)
  if (!session) return reply({ type: 'failed', id, message: `model ${unit.key} is not loaded` }, [])
  const transfer: ArrayBuffer[] = []
  try {
    const rows = parts.length === 1 ? undefined : parts.map(rowsOf)
    const feeds = rows ? stack(parts, rows.reduce((a, b) => a + b, 0)) : parts[0]!
    const started = performance.now()
    const results = await session.run(feeds)
    const runMs = performance.now() - started
    const whole = outputsOf(results, transfer)
    // Each request's rows are views of the one output buffer, transferred once.
    const outputs: WireTensors[] = rows ? unstack(whole, rows) : [whole]
    reply({ type: 'result', id, outputs, runMs }, transfer)
  } catch (err) {
    if (parts.length === 1) return reply({ type: 'failed', id, message: ortMessage(err) }, [])
    // Every request of it left while it ran: none waits for the runs alone.
    if (Atomics.load(cancelled, id % CANCEL_SLOTS) === id) return reply({ type: 'cancelled', id }, [])
    // One request's input can fail a stacked run: each part runs alone, so it fails only its own.
    transfer.length = 0
    const answers: PartAnswer[] = []
    for (const part of parts) {
      try {
        const started = performance.now()
        const results = await session.run(part)
        answers.push({ outputs: outputsOf(results, transfer), runMs: performance.now() - started })
      } catch (partErr) {
        answers.push({ message: ortMessage(partErr) })
      }
    }
    reply({ type: 'apart', id, answers }, transfer)
  }
}

/** A run's outputs as wire tensors, their buffers added to `transfer`. */
function outputsOf(results: Awaited<ReturnType<ThreadSession['run']>>, transfer: ArrayBuffer[]): WireTensors {
  const outputs: Record<string, Tensor> = {}
  for (const name in results) {
    const tensor = fromOrtTensor(name, results[name]!)
    if (!Array.isArray(tensor.data)) transfer.push(tensor.data.buffer as ArrayBuffer)
    outputs[name] = tensor
  }
  return outputs
}

function reply(msg: FromWorker, transfer: ArrayBuffer[]): void {
  port?.postMessage(msg, transfer)
}

// One message at a time: loads must not interleave, or their warm-up timings include each other.
let chain: Promise<void> = Promise.resolve()
port.on('message', (msg: ToWorker) => {
  chain = chain.then(() => handle(msg)).catch((err: unknown) => console.error('inference worker:', err))
})

async function handle(msg: ToWorker): Promise<void> {
  if (msg.type === 'load') {
    port?.postMessage(await load(msg.key, msg.path, msg.stamp))
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
  } else {
    for (const unit of msg.units) {
      if (Atomics.load(cancelled, unit.id % CANCEL_SLOTS) === unit.id) reply({ type: 'cancelled', id: unit.id }, [])
      else await run(unit)
    }
  }
}

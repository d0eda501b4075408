// One inference worker: holds one onnxruntime session per model and runs one job at a
// time. session.run blocks this thread for the whole inference, which is why it lives
// here and not on the event loop. Messages are handled one at a time, in order; a job the
// pool cancelled while it waited here is answered `cancelled` without running.
import { parentPort, workerData } from 'node:worker_threads'
import ort from 'onnxruntime-node'
import { isDataType } from '../../tensor.ts'
import type { DataType, Tensor, TensorSpec } from '../../types.ts'
import { CANCEL_SLOTS, type FromWorker, type ToWorker, type WireTensors } from './protocol.ts'

const port = parentPort
if (!port) throw new Error('worker.ts must run in a worker thread')
/** Set by the pool when a job we hold was cancelled: such a job is never started. */
const cancelled = (workerData as { cancel: Int32Array }).cancel

const toOrt: Readonly<Record<DataType, ort.Tensor.Type>> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
}
const fromOrt = new Map<string, DataType>(Object.entries(toOrt).map(([k, v]) => [v, k as DataType]))

const sessions = new Map<string, ort.InferenceSession>()
const options: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
}

function specs(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorSpec[] {
  return meta.map((m) => {
    if (!m.isTensor) throw new Error(`"${m.name}" is not a tensor (sklearn models need zipmap=False)`)
    const datatype = fromOrt.get(m.type)
    if (!datatype) throw new Error(`"${m.name}" has unsupported type ${m.type}`)
    return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) }
  })
}

/** Zeros in the declared shape (dynamic dims as 1): the warm-up input. */
function zeros(spec: TensorSpec): ort.Tensor {
  const shape = spec.shape.map((d) => (d < 0 ? 1 : d))
  const n = shape.reduce((a, b) => a * b, 1)
  const type = toOrt[spec.datatype]
  const data = type === 'int64' ? new BigInt64Array(n) : type === 'string' ? new Array<string>(n).fill('') : new Float64Array(n)
  return type === 'int64' || type === 'string' || type === 'float64' ? new ort.Tensor(type, data, shape) : new ort.Tensor(type, toTyped(type, n), shape)
}

function toTyped(type: ort.Tensor.Type, n: number): ort.Tensor.DataType {
  switch (type) {
    case 'float32': return new Float32Array(n)
    case 'int32': return new Int32Array(n)
    case 'int16': return new Int16Array(n)
    case 'int8': return new Int8Array(n)
    default: return new Uint8Array(n)
  }
}

async function load(key: string, path: string): Promise<FromWorker> {
  try {
    const session = await ort.InferenceSession.create(path, options)
    const metadata = { inputs: specs(session.inputMetadata), outputs: specs(session.outputMetadata) }
    // Warm every worker's session: the first run allocates, and would land on a real request.
    const warm: Record<string, ort.Tensor> = {}
    for (const spec of metadata.inputs) warm[spec.name] = zeros(spec)
    await session.run(warm)
    await sessions.get(key)?.release()
    sessions.set(key, session)
    return { type: 'loaded', key, metadata }
  } catch (err) {
    return { type: 'load-failed', key, message: (err as Error).message }
  }
}

async function run(id: number, key: string, inputs: WireTensors): Promise<{ reply: FromWorker; transfer: ArrayBuffer[] }> {
  const session = sessions.get(key)
  if (!session) return { reply: { type: 'failed', id, message: `model ${key} is not loaded` }, transfer: [] }
  try {
    const feeds: Record<string, ort.Tensor> = {}
    for (const [name, t] of Object.entries(inputs)) {
      feeds[name] = new ort.Tensor(toOrt[t.datatype], t.data as ort.Tensor.DataType, t.shape as number[])
    }
    const started = performance.now()
    const results = await session.run(feeds)
    const runMs = performance.now() - started
    const outputs: Record<string, Tensor> = {}
    const transfer: ArrayBuffer[] = []
    for (const [name, t] of Object.entries(results)) {
      const datatype = fromOrt.get(t.type)
      if (!datatype || !isDataType(datatype)) throw new Error(`output "${name}" has unsupported type ${t.type}`)
      const data = t.data as Tensor['data']
      if (!Array.isArray(data)) transfer.push(data.buffer as ArrayBuffer)
      outputs[name] = { datatype, shape: t.dims.slice(), data }
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

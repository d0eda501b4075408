// Messages between the pool (main thread) and an inference worker. Tensors travel as
// plain {datatype, shape, data} (src/tensor/ort.ts makes them ort.Tensors); typed arrays
// are copied in and transferred back out. Everything the pool hands one worker in one
// turn of the event loop travels in one message (every co-located member of a request).
import type { Tensor, TensorMap } from '../../tensor/index.ts'
import type { ModelMetadata } from '../../types.ts'

export type WireTensors = Record<string, Tensor>

/**
 * A request's inputs as they go to a worker. postMessage copies a typed array's whole
 * buffer, not just its view: an input that is a view of a larger buffer (a gRPC decoder's
 * aligned float run over the received bytes, often one of Node's shared 64 KiB pool
 * buffers) is copied on its own first, so the worker gets its bytes and nothing else.
 */
export function wireInputs(inputs: TensorMap): TensorMap {
  let out: Record<string, Tensor> | undefined
  for (const name in inputs) {
    const t = inputs[name]!
    const data = t.data
    if (Array.isArray(data) || data.byteLength === data.buffer.byteLength) continue
    out ??= { ...inputs }
    out[name] = { datatype: t.datatype, shape: t.shape, data: data.slice() as typeof data }
  }
  return out ?? inputs
}

/**
 * One session.run: a single request's inputs, or several requests' inputs the worker
 * stacks along the first dimension (dynamic batching) and whose outputs it cuts back apart.
 */
export interface WireUnit {
  readonly id: number
  readonly key: string
  readonly parts: readonly WireTensors[]
}

/** Size of the shared cancel-flag ring; far more than the units a worker ever holds. */
export const CANCEL_SLOTS = 1024

export type ToWorker =
  /** Load this file if it is still the one stamped `stamp` (src/file-stamp.ts; undefined: none could be taken, the load says why). */
  | { readonly type: 'load'; readonly key: string; readonly path: string; readonly stamp: string | undefined }
  | { readonly type: 'unload'; readonly key: string }
  /** Finish everything before this message, release every session, then exit. */
  | { readonly type: 'close' }
  /** Run these, in order, answering each as it ends. */
  | { readonly type: 'run'; readonly units: readonly WireUnit[] }

/** What the pool hands a worker at its start. */
export interface WorkerSetup {
  readonly cancel: Int32Array
  /** One flag, set by the pool when it closes: a load not yet begun is then answered load-failed, never opened. */
  readonly closing: Int32Array
  /** Nice steps to run below the event loop (0: as the event loop). */
  readonly nice: number
}

export type FromWorker =
  /** Sent once at start when asked to run below the event loop: the steps it got (0 if the OS refused). */
  | { readonly type: 'priority'; readonly nice: number; readonly message?: string }
  | { readonly type: 'loaded'; readonly key: string; readonly metadata: Omit<ModelMetadata, 'name' | 'version' | 'kind'>; readonly warmRunsMs: number[] }
  | { readonly type: 'load-failed'; readonly key: string; readonly message: string }
  /** One output map per part of the unit, in order. */
  | { readonly type: 'result'; readonly id: number; readonly outputs: WireTensors[]; readonly runMs: number }
  | { readonly type: 'failed'; readonly id: number; readonly message: string }
  /** A stacked unit whose run failed: each part was then run alone, and answers on its own. */
  | { readonly type: 'apart'; readonly id: number; readonly answers: PartAnswer[] }
  | { readonly type: 'cancelled'; readonly id: number }

/** One part of a unit run alone: its outputs and run time, or why it failed. */
export type PartAnswer = { readonly outputs: WireTensors; readonly runMs: number } | { readonly message: string }

/** What a worker says that the pool acts on (its priority report stays with its slot). */
export type WorkerAnswer = Exclude<FromWorker, { readonly type: 'priority' }>

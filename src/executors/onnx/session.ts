// One onnxruntime session as every thread opens it: its options, and a timed warm-up. Used
// by the inference workers and by the main thread (models placed inline).
//
// onnxruntime-node runs an inference synchronously on the thread that asks (its public run
// only defers the call with setImmediate): one at a time per thread, every session opened
// in a thread shares that thread's one inference lane. A slow model on the main thread's
// lane would hold the event loop and every inline model behind it, which is why only models
// measured to be tiny are placed there.
import ort from 'onnxruntime-node'
import type { Tensor } from '../../tensor/index.ts'
import { specsOf, toOrtFeeds, zerosFor } from '../../tensor/ort.ts'
import type { TensorSpec } from '../../tensor/index.ts'
import { openSync, type SyncSession } from './native.ts'

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = Object.freeze({
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
})

/** Timed warm-up runs: at most this many, and no more once this much time is spent. */
const WARM_RUNS = 64
const WARM_BUDGET_MS = 150

export interface Opened {
  readonly session: ort.InferenceSession
  readonly inputs: TensorSpec[]
  readonly outputs: TensorSpec[]
  /** Inference times of the warm-up runs (batch of 1, zeros), after the first (which allocates). */
  readonly warmRunsMs: number[]
}

/** Zeros for every input, as onnxruntime feeds. */
function warmFeeds(inputs: readonly TensorSpec[]): Record<string, ort.Tensor> {
  const warm: Record<string, Tensor> = {}
  for (const spec of inputs) warm[spec.name] = zerosFor(spec)
  return toOrtFeeds(warm)
}

async function openSession(path: string): Promise<Opened> {
  const session = await ort.InferenceSession.create(path, SESSION_OPTIONS)
  const inputs = specsOf(session.inputMetadata)
  const outputs = specsOf(session.outputMetadata)
  const feeds = warmFeeds(inputs)
  await session.run(feeds) // the first run allocates: not timed
  const warmRunsMs: number[] = []
  const until = performance.now() + WARM_BUDGET_MS
  while (warmRunsMs.length < WARM_RUNS && performance.now() < until) {
    const started = performance.now()
    await session.run(feeds)
    warmRunsMs.push(performance.now() - started)
  }
  return { session, inputs, outputs, warmRunsMs }
}

/** A session the thread runs itself: the native one, run synchronously (native.ts), or the public API's. */
export type DirectOpened =
  | (Opened & { readonly sync?: undefined })
  | (Omit<Opened, 'session'> & { readonly sync: SyncSession; readonly fetches: Readonly<Record<string, null>>; readonly session?: undefined })

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Results in hand (not a promise), a tensor for every declared output. */
function answersEveryOutput(results: unknown, outputs: readonly TensorSpec[]): boolean {
  if (typeof results !== 'object' || results === null || typeof (results as { then?: unknown }).then === 'function') return false
  return outputs.every((o) => {
    const t = (results as Record<string, { dims?: unknown; data?: unknown } | undefined>)[o.name]
    return t !== undefined && Array.isArray(t.dims) && t.data !== undefined
  })
}

/**
 * Opens a session on the native binding when it can (the inline lane and the workers run
 * it synchronously; the public API's when the binding is not the shape native.ts knows, or
 * its first run does not answer as expected); each warm-up run is its own setImmediate
 * callback, as the inline lane's runs are. `native: false` takes the public API's session.
 */
export async function openDirectSession(path: string, native = true): Promise<DirectOpened> {
  await nextTurn() // the load is synchronous: not inside the caller's turn
  const sync = native ? openSync(path, SESSION_OPTIONS) : undefined
  if (!sync) return openSession(path)
  try {
    const inputs = specsOf(sync.inputMetadata)
    const outputs = specsOf(sync.outputMetadata)
    const fetches: Readonly<Record<string, null>> = Object.freeze(Object.fromEntries(outputs.map((o) => [o.name, null])))
    const feeds = warmFeeds(inputs)
    // The first run allocates: not timed. It also shows the binding answers as this code expects.
    if (!answersEveryOutput(sync.run(feeds, fetches), outputs)) {
      sync.release()
      return await openSession(path)
    }
    const warmRunsMs: number[] = []
    const until = performance.now() + WARM_BUDGET_MS
    while (warmRunsMs.length < WARM_RUNS && performance.now() < until) {
      await nextTurn()
      const started = performance.now()
      sync.run(feeds, fetches)
      warmRunsMs.push(performance.now() - started)
    }
    return { sync, fetches, inputs, outputs, warmRunsMs }
  } catch (err) {
    sync.release()
    throw err
  }
}

// One onnxruntime session as every thread opens it: its options, and a timed warm-up. Used
// by the inference workers and by the main thread (models placed inline).
//
// onnxruntime-node runs an inference off the JS thread, but one at a time per thread: every
// session opened in a thread shares that thread's one inference lane. A slow model on the
// main thread's lane would delay every inline model behind it, which is why only models
// measured to be tiny are placed there.
import ort from 'onnxruntime-node'
import type { Tensor } from '../../tensor/index.ts'
import { specsOf, toOrtFeeds, zerosFor } from '../../tensor/ort.ts'
import type { TensorSpec } from '../../tensor/index.ts'

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

export async function openSession(path: string): Promise<Opened> {
  const session = await ort.InferenceSession.create(path, SESSION_OPTIONS)
  const inputs = specsOf(session.inputMetadata)
  const outputs = specsOf(session.outputMetadata)
  const warm: Record<string, Tensor> = {}
  for (const spec of inputs) warm[spec.name] = zerosFor(spec)
  const feeds = toOrtFeeds(warm)
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

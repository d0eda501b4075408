// One onnxruntime session as every thread opens it: its options, and a timed warm-up. Used
// by the inference workers and by the main thread (models placed inline).
//
// onnxruntime-node runs an inference synchronously on the thread that asks (its public run
// only defers the call with setImmediate): one at a time per thread, every session opened
// in a thread shares that thread's one inference lane. A slow model on the main thread's
// lane would hold the event loop and every inline model behind it, which is why only models
// measured to be tiny are placed there.
import './ort-env.ts'
import { readFileSync } from 'node:fs'
import ort from 'onnxruntime-node'
import type { Tensor, TensorMap, TensorSpec } from '../../tensor/index.ts'
import { specsOf, toNativeFeeds, toOrtFeeds, zerosFor } from '../../tensor/ort.ts'
import { unknownRankTensors } from './graph.ts'
import { openSync } from './native.ts'
import { ortMessage } from './ort-message.ts'

/**
 * onnxruntime logs nothing below fatal, itself: it writes its lines raw (ANSI-coloured) to
 * stderr, out of the process's log, and a failed run's error line would be one a client can
 * repeat at will. What fails is thrown anyway: a load's error fails the load, a run's is the
 * request's MODEL_FAILED annotation. Set where a session opens, in every thread, before
 * onnxruntime-node's first session reads it (its environment's level, once per process).
 */
const FATAL = 4
ort.env.logLevel = 'fatal'

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = Object.freeze({
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  logSeverityLevel: FATAL,
})

/** Timed warm-up runs: at most this many, and no more once this much time is spent. */
const WARM_RUNS = 64
const WARM_BUDGET_MS = 150

type Results = ort.InferenceSession.ReturnType

/**
 * A session as a thread runs it: the native one answers at once (native.ts), the public
 * API's with a promise. Each takes our tensors and makes the feeds its API reads. Closures
 * per session, none per run.
 */
export type ThreadSession =
  | { readonly sync: true; run(inputs: TensorMap): Results; release(): void }
  | { readonly sync: false; run(inputs: TensorMap): Promise<Results>; release(): Promise<void> }
export type SyncThreadSession = Extract<ThreadSession, { sync: true }>

export interface Opened {
  readonly session: ThreadSession
  readonly inputs: TensorSpec[]
  readonly outputs: TensorSpec[]
  /** Inference times of the warm-up runs (batch of 1, zeros), after the first (which allocates). */
  readonly warmRunsMs: number[]
}

/** Zeros for every input. */
function warmInputs(inputs: readonly TensorSpec[]): TensorMap {
  const warm: Record<string, Tensor> = {}
  for (const spec of inputs) warm[spec.name] = zerosFor(spec)
  return warm
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Timed warm-up runs, each its own setImmediate callback, as the inline lane's runs are. */
async function warmUp(session: ThreadSession, feeds: TensorMap): Promise<number[]> {
  const warmRunsMs: number[] = []
  const until = performance.now() + WARM_BUDGET_MS
  while (warmRunsMs.length < WARM_RUNS && performance.now() < until) {
    await nextTurn()
    const started = performance.now()
    await session.run(feeds)
    warmRunsMs.push(performance.now() - started)
  }
  return warmRunsMs
}

/**
 * The session's declared inputs and outputs as specs. onnxruntime reports a tensor of unknown
 * rank (its graph declares no shape) as a scalar's []: those are read from the file's graph
 * (only when one is [], and only these few fields: graph.ts), and take any shape.
 */
function declaredSpecs(path: string, meta: { readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[]; readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[] }): { inputs: TensorSpec[]; outputs: TensorSpec[] } {
  const inputs = specsOf(meta.inputMetadata, 'input')
  const outputs = specsOf(meta.outputMetadata, 'output')
  if (!inputs.some(scalar) && !outputs.some(scalar)) return { inputs, outputs }
  let unknown: ReadonlySet<string>
  try {
    unknown = unknownRankTensors(readFileSync(path))
  } catch {
    // Not a protobuf this reader takes (onnxruntime opens its own .ort format too): as onnxruntime says.
    return { inputs, outputs }
  }
  const mark = (spec: TensorSpec): TensorSpec => (scalar(spec) && unknown.has(spec.name) ? { ...spec, anyRank: true } : spec)
  return { inputs: inputs.map(mark), outputs: outputs.map(mark) }
}

const scalar = (spec: TensorSpec): boolean => spec.shape.length === 0

async function openPublic(path: string): Promise<Opened> {
  const publicSession = await ort.InferenceSession.create(path, SESSION_OPTIONS)
  const session: ThreadSession = { sync: false, run: (inputs) => publicSession.run(toOrtFeeds(inputs)), release: () => publicSession.release() }
  try {
    const { inputs, outputs } = declaredSpecs(path, publicSession)
    const feeds = warmInputs(inputs)
    await session.run(feeds) // the first run allocates: not timed
    return { session, inputs, outputs, warmRunsMs: await warmUp(session, feeds) }
  } catch (err) {
    // A model that fails its warm-up fails on every load attempt: each would leave a session behind.
    await publicSession.release().catch(() => undefined)
    throw err
  }
}

/** Results in hand (not a promise), a tensor for every declared output. */
function answersEveryOutput(results: unknown, outputs: readonly TensorSpec[]): boolean {
  if (typeof results !== 'object' || results === null || typeof (results as { then?: unknown }).then === 'function') return false
  return outputs.every((o) => {
    const t = (results as Record<string, { dims?: unknown; data?: unknown } | undefined>)[o.name]
    return t !== undefined && Array.isArray(t.dims) && t.data !== undefined
  })
}

/** The native session's first run; what it threw counts as an unexpected answer. */
function firstRun(session: SyncThreadSession, feeds: TensorMap): unknown {
  try {
    return session.run(feeds)
  } catch {
    return undefined
  }
}

/**
 * Opens a session on the native binding when it can (the inline lane and the workers run
 * it synchronously); on the public API when the binding is not the shape native.ts knows,
 * or its first run does not answer as expected, or `native` is false. What it throws carries
 * onnxruntime's message without its C++ source location (ort-message.ts).
 */
export async function openSession(path: string, native = true): Promise<Opened> {
  try {
    return await open(path, native)
  } catch (err) {
    throw new Error(ortMessage(err), { cause: err })
  }
}

async function open(path: string, native: boolean): Promise<Opened> {
  await nextTurn() // the load is synchronous: not inside the caller's turn
  const raw = native ? openSync(path, SESSION_OPTIONS) : undefined
  if (!raw) return openPublic(path)
  try {
    const { inputs, outputs } = declaredSpecs(path, raw)
    const fetches: Readonly<Record<string, null>> = Object.freeze(Object.fromEntries(outputs.map((o) => [o.name, null])))
    const session: SyncThreadSession = { sync: true, run: (feeds) => raw.run(toNativeFeeds(feeds), fetches), release: () => raw.release() }
    const feeds = warmInputs(inputs)
    // The first run allocates: not timed. It also shows the binding reads plain feeds and
    // answers as this code expects; if it does not, the public API serves (below).
    if (answersEveryOutput(firstRun(session, feeds), outputs)) return { session, inputs, outputs, warmRunsMs: await warmUp(session, feeds) }
  } catch (err) {
    raw.release()
    throw err
  }
  raw.release()
  return openPublic(path)
}

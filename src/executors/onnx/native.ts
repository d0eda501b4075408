// onnxruntime-node runs an inference synchronously on the calling thread. Its public
// InferenceSession.run wraps that one native call in a setImmediate, two promises and a
// second check of the feeds and results: measured on a 30-feature logistic regression, ~18 µs
// per run through the public API against ~12 µs for the native call alone. The inline lane
// schedules its runs itself, so it calls the native session directly (session.ts): the binding
// onnxruntime-node's own backend loads (dist/binding.js). That module is not a public API, so
// it is used only when it has the shape this code knows; otherwise `openSync` returns
// undefined and the public API serves (the lane runs either).
import { createRequire } from 'node:module'
import type ort from 'onnxruntime-node'
import type { NativeFeed } from '../../tensor/ort.ts'

/** A session whose run returns its results at once. */
export interface SyncSession {
  readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[]
  readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[]
  run(feeds: Readonly<Record<string, NativeFeed>>, fetches: Readonly<Record<string, null>>): Record<string, ort.Tensor>
  release(): void
}

/** The binding's session, as far as this code uses it. */
interface NativeSession {
  loadModel(path: string, options: ort.InferenceSession.SessionOptions): void
  run(feeds: Readonly<Record<string, NativeFeed>>, fetches: Readonly<Record<string, null>>, options: object): Record<string, ort.Tensor>
  dispose(): void
  readonly inputMetadata: readonly RawMetadata[]
  readonly outputMetadata: readonly RawMetadata[]
}
interface RawMetadata {
  readonly name: string
  readonly isTensor: boolean
  readonly type: number
  readonly shape: readonly number[]
}
interface Binding {
  readonly binding: { readonly InferenceSession: new () => NativeSession }
  readonly initOrt: () => void
}

/** ONNX TensorProto element types, by their numbers in the ONNX standard, as onnxruntime-node names them. */
const ELEMENT_TYPES: Readonly<Record<number, ort.Tensor.Type>> = Object.freeze({
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64',
})
const NO_RUN_OPTIONS = Object.freeze({})

let loaded: Binding | null | undefined

/** The binding, or null when this onnxruntime-node's does not look like the one this code knows. */
function nativeBinding(): Binding | null {
  if (loaded !== undefined) return loaded
  try {
    const mod = createRequire(import.meta.url)('onnxruntime-node/dist/binding.js') as Partial<Binding>
    const proto = (mod.binding?.InferenceSession as { prototype?: Record<string, unknown> } | undefined)?.prototype
    // `in`, not a read: the metadata are getters that throw on the prototype itself.
    const known =
      typeof mod.initOrt === 'function' &&
      proto !== undefined &&
      ['loadModel', 'run', 'dispose'].every((m) => typeof proto[m] === 'function') &&
      'inputMetadata' in proto &&
      'outputMetadata' in proto
    loaded = known ? (mod as Binding) : null
  } catch {
    loaded = null
  }
  return loaded
}

const metadataOf = (raw: readonly RawMetadata[]): ort.InferenceSession.ValueMetadata[] =>
  raw.map((m) => {
    if (!m.isTensor) return { name: m.name, isTensor: false }
    const type = ELEMENT_TYPES[m.type]
    if (type === undefined) throw new Error(`"${m.name}" has unsupported element type ${m.type}`)
    return { name: m.name, isTensor: true, type, shape: m.shape.map((d) => (d >= 0 ? d : -1)) }
  })

/**
 * Opens `path` on the native session, synchronously (as the public API does, one
 * setImmediate later); undefined when the binding is not one this code knows.
 */
export function openSync(path: string, options: ort.InferenceSession.SessionOptions): SyncSession | undefined {
  const mod = nativeBinding()
  if (!mod) return undefined
  mod.initOrt()
  const session = new mod.binding.InferenceSession()
  session.loadModel(path, options)
  let inputMetadata: ort.InferenceSession.ValueMetadata[]
  let outputMetadata: ort.InferenceSession.ValueMetadata[]
  try {
    inputMetadata = metadataOf(session.inputMetadata)
    outputMetadata = metadataOf(session.outputMetadata)
  } catch (err) {
    session.dispose()
    throw err
  }
  return {
    inputMetadata,
    outputMetadata,
    run: (feeds, fetches) => session.run(feeds, fetches, NO_RUN_OPTIONS),
    release: () => session.dispose(),
  }
}

import type { TObject } from 'typebox'
import type { ModelMetadata, TensorMap } from '../types.ts'
import type { OnnxPool } from './onnx/pool.ts'

export interface InferContext {
  /** Fires when the request is decided, cancelled, or out of time: stop working. */
  readonly signal: AbortSignal
  /** Absolute deadline on the `performance.now()` clock. Remote calls get `deadline - now`. */
  readonly deadline: number
}

/** One model the gateway can call. Created from config, loaded once, shared by requests. */
export interface Executor {
  readonly name: string
  readonly kind: string
  /** Declared or discovered metadata; valid after `load()` resolves. */
  metadata(): ModelMetadata
  /** Load, read or fetch metadata, warm with one inference. Rejects with a readable message. */
  load(): Promise<void>
  /** Throws ModelError for known failures; any other throw is reported as MODEL_FAILED. */
  infer(inputs: TensorMap, ctx: InferContext): Promise<TensorMap>
  close(): Promise<void>
}

/** Shared resources executors may use; built once per gateway. */
export interface ExecutorEnv {
  /** Directory relative model paths resolve against (the config file's directory). */
  readonly baseDir: string
  readonly onnxPool: () => OnnxPool
}

/** Registry entry for one executor kind (`kind:` in YAML). */
export interface ExecutorFactory<Config = unknown> {
  readonly kind: string
  /** TypeBox schema of the model's YAML entry (including `kind`). */
  readonly schema: TObject
  /** Static checks at config load (e.g. the model file is readable). Return messages, keyed by field. */
  check?(config: Config, env: ExecutorEnv): { field: string; message: string }[]
  create(name: string, config: Config, env: ExecutorEnv): Executor
}

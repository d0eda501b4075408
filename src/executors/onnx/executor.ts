import { accessSync, constants } from 'node:fs'
import { resolve } from 'node:path'
import Type from 'typebox'
import type { ModelMetadata, TensorMap } from '../../types.ts'
import { commonModelFields, type CommonModelConfig } from '../common.ts'
import type { Executor, ExecutorEnv, ExecutorFactory } from '../types.ts'
import { OnnxPool } from './pool.ts'

export interface OnnxModelConfig extends CommonModelConfig {
  readonly kind: 'onnx'
  readonly path: string
  /** Most jobs of this model that may run at once in the shared pool (default: no limit). */
  readonly max_concurrency?: number
  /**
   * Run this model in worker threads of its own instead of the shared pool: a slow model
   * then never occupies a worker the other models need (the only sure isolation when the
   * shared pool has a single worker, as on a 2-core machine).
   */
  readonly dedicated_workers?: number
}

/** Queue of a dedicated pool: jobs beyond it are skipped OVERLOADED. */
const DEDICATED_QUEUE = 256

const schema = Type.Object(
  {
    kind: Type.Literal('onnx'),
    path: Type.String({ minLength: 1 }),
    max_concurrency: Type.Optional(Type.Integer({ minimum: 1 })),
    dedicated_workers: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    ...commonModelFields,
  },
  { additionalProperties: false },
)

/**
 * Pool key per executor instance: after a hot reload the old and the new executor of a
 * model (another file) are both loaded until the old one's predicts finish.
 */
const instances = new Map<string, number>()
const poolKey = (name: string): string => {
  const n = (instances.get(name) ?? 0) + 1
  instances.set(name, n)
  return n === 1 ? name : `${name}#${n}`
}

export const onnxExecutorKind: ExecutorFactory<OnnxModelConfig> = {
  kind: 'onnx',
  schema,
  check(config, env) {
    try {
      accessSync(resolve(env.baseDir, config.path), constants.R_OK)
      return []
    } catch {
      return [{ field: 'path', message: `cannot read model file ${resolve(env.baseDir, config.path)}` }]
    }
  },
  create(name: string, config: OnnxModelConfig, env: ExecutorEnv): Executor {
    const path = resolve(env.baseDir, config.path)
    const key = poolKey(name)
    const dedicated = config.dedicated_workers ? new OnnxPool({ workers: config.dedicated_workers, queueLimit: DEDICATED_QUEUE }) : undefined
    const pool = (): OnnxPool => dedicated ?? env.onnxPool()
    let meta: ModelMetadata | undefined
    return {
      name,
      kind: 'onnx',
      metadata() {
        if (!meta) throw new Error(`model ${name} is not loaded`)
        return meta
      },
      async load() {
        const loaded = await pool().register(key, path, config.max_concurrency)
        meta = { name, version: String(config.version ?? '1'), kind: 'onnx', ...loaded }
      },
      infer(inputs: TensorMap, ctx) {
        return pool().run(key, inputs, ctx.signal, ctx.deadline)
      },
      async close() {
        pool().unregister(key)
        await dedicated?.close()
      },
    }
  },
}

// `kind: onnx` — an ONNX model embedded in the process, run by onnxruntime in worker
// threads: the gateway-wide pool, or workers of its own (`dedicated_workers`).
import { accessSync, constants } from 'node:fs'
import { resolve } from 'node:path'
import Type, { type Static } from 'typebox'
import type { TensorMap } from '../../tensor/index.ts'
import type { ModelMetadata } from '../../types.ts'
import { commonModelFields } from '../common.ts'
import type { Executor, ExecutorKind } from '../types.ts'
import { OnnxPool } from './pool.ts'

const schema = Type.Object(
  {
    kind: Type.Literal('onnx'),
    path: Type.String({ minLength: 1 }),
    /** Most jobs of this model that may run at once in the shared pool (default: no limit). */
    max_concurrency: Type.Optional(Type.Integer({ minimum: 1 })),
    /**
     * Run this model in worker threads of its own instead of the shared pool: a slow model
     * then never occupies a worker the other models need (the only sure isolation when the
     * shared pool has a single worker, as on a 2-core machine).
     */
    dedicated_workers: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    ...commonModelFields,
  },
  { additionalProperties: false },
)

export interface OnnxSpec {
  /** Absolute path of the .onnx file. */
  readonly path: string
  readonly version: string
  readonly maxConcurrency: number
  readonly dedicatedWorkers: number
}

/** Queue of a dedicated pool: jobs beyond it are skipped OVERLOADED. */
const DEDICATED_QUEUE = 256

/** The gateway-wide pool's key among the gateway's shared resources. */
export const SHARED_POOL = 'onnx-pool'

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

export const onnxExecutorKind: ExecutorKind<OnnxSpec, Static<typeof schema>> = {
  kind: 'onnx',
  schema,
  parse(entry, ctx) {
    const path = resolve(ctx.baseDir, entry.path)
    try {
      accessSync(path, constants.R_OK)
    } catch {
      ctx.problem('path', `cannot read model file ${path}`)
    }
    return { path, version: String(entry.version ?? '1'), maxConcurrency: entry.max_concurrency ?? Infinity, dedicatedWorkers: entry.dedicated_workers ?? 0 }
  },
  files: (spec) => [spec.path],
  create(name, spec, env): Executor {
    const key = poolKey(name)
    const dedicated = spec.dedicatedWorkers > 0 ? new OnnxPool({ workers: spec.dedicatedWorkers, queueLimit: DEDICATED_QUEUE }) : undefined
    const { onnx_workers: workers, onnx_queue: queueLimit } = env.executors
    const pool = (): OnnxPool => dedicated ?? env.shared(SHARED_POOL, () => new OnnxPool({ workers, queueLimit }))
    let meta: ModelMetadata | undefined
    return {
      name,
      kind: 'onnx',
      metadata() {
        if (!meta) throw new Error(`model ${name} is not loaded`)
        return meta
      },
      async load() {
        const loaded = await pool().register(key, spec.path, spec.maxConcurrency)
        meta = { name, version: spec.version, kind: 'onnx', ...loaded }
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

// A test executor kind whose timing and failures are scripted in YAML, to drive the
// starter through every lifecycle path with real collectors and the real Gateway.
import { EventEmitter } from 'node:events'
import Type from 'typebox'
import { ModelError } from '../../src/errors.ts'
import { registerExecutorKind, getExecutorKind } from '../../src/executors/registry.ts'
import type { Executor } from '../../src/executors/types.ts'
import { DATATYPE_NAMES, type DataType, type TensorMap } from '../../src/tensor/index.ts'
import type { ModelMetadata } from '../../src/types.ts'

export interface ScriptedConfig {
  kind: 'scripted'
  delay_ms?: number
  /** The n-th inference takes delays_ms[n] (the last one repeats); overrides delay_ms. */
  delays_ms?: number[]
  label?: number
  fail?: string
  /** Never settles and ignores abort: the worst upstream there is. */
  hang?: boolean
  version?: string
  /** The declared input (default `x`, FP32 [-1, 2]). */
  input?: { name?: string; datatype: DataType; shape: number[] }
}

/** Every abort signal a scripted model saw, by model name, in call order. */
export const signals = new Map<string, AbortSignal[]>()
/** Emits 'infer' (model name) as each scripted inference starts. */
export const inferences = new EventEmitter()

const metadata = (name: string, version: string, input: ScriptedConfig['input']): ModelMetadata => ({
  name,
  version,
  kind: 'scripted',
  inputs: [{ name: input?.name ?? 'x', datatype: input?.datatype ?? 'FP32', shape: input?.shape ?? [-1, 2] }],
  outputs: [
    { name: 'label', datatype: 'INT64', shape: [-1] },
    { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] },
  ],
})

function scripted(name: string, config: ScriptedConfig): Executor {
  const meta = metadata(name, config.version ?? '1', config.input)
  let calls = 0
  const delay = (): number => (config.delays_ms?.length ? config.delays_ms[Math.min(calls++, config.delays_ms.length - 1)]! : (config.delay_ms ?? 0))
  return {
    name,
    kind: 'scripted',
    metadata: () => meta,
    load: () => Promise.resolve(),
    close: () => Promise.resolve(),
    infer(_inputs, ctx): Promise<TensorMap> {
      const seen = signals.get(name) ?? []
      seen.push(ctx.signal)
      signals.set(name, seen)
      inferences.emit('infer', name)
      if (config.hang) return new Promise<TensorMap>(() => undefined)
      const ms = delay()
      return new Promise<TensorMap>((resolve, reject) => {
        setTimeout(() => {
          if (config.fail) return reject(new ModelError('MODEL_FAILED', config.fail))
          const label = config.label ?? 1
          resolve({
            label: { datatype: 'INT64', shape: [1], data: BigInt64Array.of(BigInt(label)) },
            probabilities: { datatype: 'FP32', shape: [1, 2], data: Float32Array.of(1 - label, label) },
          })
        }, ms)
      })
    },
  }
}

if (!getExecutorKind('scripted')) {
  registerExecutorKind<ScriptedConfig, ScriptedConfig>({
    kind: 'scripted',
    schema: Type.Object({
      kind: Type.Literal('scripted'),
      delay_ms: Type.Optional(Type.Number()),
      delays_ms: Type.Optional(Type.Array(Type.Number())),
      label: Type.Optional(Type.Integer()),
      fail: Type.Optional(Type.String()),
      hang: Type.Optional(Type.Boolean()),
      version: Type.Optional(Type.String()),
      input: Type.Optional(Type.Object({ name: Type.Optional(Type.String()), datatype: Type.Union(DATATYPE_NAMES.map((d) => Type.Literal(d))), shape: Type.Array(Type.Integer()) })),
    }),
    create: (name, config) => scripted(name, config),
  })
}

export const x = { x: { datatype: 'FP32', shape: [1, 2], data: Float32Array.of(0.5, 0.5) } } as const

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
  /** Answers one row per entry, with these labels (whatever the input's rows); overrides label. */
  labels?: number[]
  fail?: string
  /** The failure's code (default MODEL_FAILED): OVERLOADED is a full queue. */
  fail_code?: 'MODEL_FAILED' | 'OVERLOADED'
  /** Refused before it runs, as an executor refuses (a full queue, no time left, an open circuit): the member is `skipped`. */
  refuse?: 'OVERLOADED' | 'WOULD_MISS_DEADLINE' | 'CIRCUIT_OPEN'
  /** Never settles and ignores abort: the worst upstream there is. */
  hang?: boolean
  version?: string
  /** The declared input (default `x`, FP32 [-1, 2]). */
  input?: { name?: string; datatype: DataType; shape: number[] }
  /** Classes in `probabilities` (default 2; -1 declares them dynamic, and answers 2). */
  classes?: number
  /** Datatype of `probabilities` (default FP32). */
  prob_dtype?: 'FP32' | 'FP64'
  /** Also produces `extra` (FP32 [-1]), an output its siblings may not have. */
  extra_output?: boolean
  /** close() waits until releaseClose(name): as a model whose inference a worker thread is inside. */
  close_held?: boolean
}

/** The held closes (close_held) begun, by model name: each resolves its close. */
const heldCloses = new Map<string, () => void>()
/** Emits 'close' (model name) as a held close begins. */
export const closes = new EventEmitter()
/** Lets the held close of `name` end. */
export function releaseClose(name: string): void {
  heldCloses.get(name)?.()
  heldCloses.delete(name)
}

/** Every abort signal a scripted model saw, by model name, in call order. */
export const signals = new Map<string, AbortSignal[]>()
/** Emits 'infer' (model name) as each scripted inference starts. */
export const inferences = new EventEmitter()

const metadata = (name: string, config: ScriptedConfig): ModelMetadata => ({
  name,
  version: config.version ?? '1',
  kind: 'scripted',
  inputs: [{ name: config.input?.name ?? 'x', datatype: config.input?.datatype ?? 'FP32', shape: config.input?.shape ?? [-1, 2] }],
  outputs: [
    { name: 'label', datatype: 'INT64', shape: [-1] },
    { name: 'probabilities', datatype: config.prob_dtype ?? 'FP32', shape: [-1, config.classes ?? 2] },
    ...(config.extra_output ? [{ name: 'extra', datatype: 'FP32' as const, shape: [-1] }] : []),
  ],
})

/**
 * The answer, in the declared datatypes and class count: one row per entry of `labels` (else
 * one, `label`), probabilities [1 - label, label] for two classes (label 2 gives a
 * "probability" above 1), else one-hot.
 */
function answer(config: ScriptedConfig): TensorMap {
  const labels = config.labels ?? [config.label ?? 1]
  const rows = labels.length
  const classes = config.classes === undefined || config.classes < 0 ? 2 : config.classes
  const probs = labels.flatMap((label) => (classes === 2 ? [1 - label, label] : Array.from({ length: classes }, (_, i) => (i === label ? 1 : 0))))
  return {
    label: { datatype: 'INT64', shape: [rows], data: BigInt64Array.from(labels, BigInt) },
    probabilities: { datatype: config.prob_dtype ?? 'FP32', shape: [rows, classes], data: config.prob_dtype === 'FP64' ? Float64Array.from(probs) : Float32Array.from(probs) },
    ...(config.extra_output ? { extra: { datatype: 'FP32', shape: [rows], data: new Float32Array(rows).fill(7) } as const } : {}),
  }
}

function scripted(name: string, config: ScriptedConfig): Executor {
  const meta = metadata(name, config)
  let calls = 0
  const delay = (): number => (config.delays_ms?.length ? config.delays_ms[Math.min(calls++, config.delays_ms.length - 1)]! : (config.delay_ms ?? 0))
  return {
    name,
    kind: 'scripted',
    metadata: () => meta,
    load: () => Promise.resolve(),
    close: () => {
      if (!config.close_held) return Promise.resolve()
      return new Promise<void>((resolve) => {
        heldCloses.set(name, resolve)
        closes.emit('close', name)
      })
    },
    infer(_inputs, ctx): Promise<TensorMap> {
      const seen = signals.get(name) ?? []
      seen.push(ctx.signal)
      signals.set(name, seen)
      inferences.emit('infer', name)
      if (config.refuse) return Promise.reject(new ModelError(config.refuse, `refused: ${config.refuse}`, true))
      if (config.hang) return new Promise<TensorMap>(() => undefined)
      const ms = delay()
      return new Promise<TensorMap>((resolve, reject) => {
        setTimeout(() => {
          if (config.fail) return reject(new ModelError(config.fail_code ?? 'MODEL_FAILED', config.fail))
          resolve(answer(config))
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
      labels: Type.Optional(Type.Array(Type.Integer(), { minItems: 1 })),
      fail: Type.Optional(Type.String()),
      fail_code: Type.Optional(Type.Union([Type.Literal('MODEL_FAILED'), Type.Literal('OVERLOADED')])),
      refuse: Type.Optional(Type.Union([Type.Literal('OVERLOADED'), Type.Literal('WOULD_MISS_DEADLINE'), Type.Literal('CIRCUIT_OPEN')])),
      hang: Type.Optional(Type.Boolean()),
      version: Type.Optional(Type.String()),
      input: Type.Optional(Type.Object({ name: Type.Optional(Type.String()), datatype: Type.Union(DATATYPE_NAMES.map((d) => Type.Literal(d))), shape: Type.Array(Type.Integer()) })),
      classes: Type.Optional(Type.Integer({ minimum: -1 })),
      prob_dtype: Type.Optional(Type.Union([Type.Literal('FP32'), Type.Literal('FP64')])),
      extra_output: Type.Optional(Type.Boolean()),
      close_held: Type.Optional(Type.Boolean()),
    }),
    create: (name, config) => scripted(name, config),
  })
}

export const x = { x: { datatype: 'FP32', shape: [1, 2], data: Float32Array.of(0.5, 0.5) } } as const

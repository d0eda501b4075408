// TF Serving's Classify and Regress answers as tensors named as TF's classification and
// regression signatures name theirs: `classes` and `scores` ([rows, K]), `outputs` ([rows]).
// (The requests, tf.Examples, are encoded in src/tensor/tf.ts.)
import type { WireTensor } from '../tensor/index.ts'
import { badResponse } from './remote/errors.ts'
import type { UpstreamMetadata } from './remote/executor.ts'
import type { WireOutputs } from './remote/outputs.ts'

export const TF_METHODS = ['predict', 'classify', 'regress'] as const
export type TfMethod = (typeof TF_METHODS)[number]

/** What Classify and Regress answer with; the inputs are whatever features YAML declares. */
export const EXAMPLE_METHOD_METADATA: Readonly<Record<Exclude<TfMethod, 'predict'>, UpstreamMetadata>> = {
  classify: {
    inputs: [],
    outputs: [
      { name: 'classes', datatype: 'BYTES', shape: [-1, -1] },
      { name: 'scores', datatype: 'FP32', shape: [-1, -1] },
    ],
  },
  regress: { inputs: [], outputs: [{ name: 'outputs', datatype: 'FP32', shape: [-1] }] },
}

/** [[label, score], ...] per example (REST) or {classes: [{label, score}]} per example (gRPC) → classes and scores. */
export function classifications(perExample: readonly unknown[], rows: number, pair: (c: unknown) => [unknown, unknown]): WireOutputs {
  if (perExample.length !== rows) throw badResponse(`${perExample.length} classifications for ${rows} examples`)
  const k = Array.isArray(perExample[0]) ? perExample[0].length : -1
  const labels: unknown[] = []
  const scores: unknown[] = []
  for (const classes of perExample) {
    if (!Array.isArray(classes) || classes.length !== k) throw badResponse('classifications differ in their number of classes, or are not lists')
    for (const c of classes) {
      const [label, score] = pair(c)
      labels.push(label)
      scores.push(score)
    }
  }
  const shape = [rows, k]
  return new Map<string, WireTensor>([
    ['classes', { datatype: 'BYTES', shape, data: labels }],
    ['scores', { datatype: 'FP32', shape, data: scores }],
  ])
}

export function regressions(values: readonly unknown[], rows: number): WireOutputs {
  if (values.length !== rows) throw badResponse(`${values.length} regressions for ${rows} examples`)
  return new Map<string, WireTensor>([['outputs', { datatype: 'FP32', shape: [rows], data: values }]])
}

/** A REST class: ["label", score]. */
export function restPair(c: unknown): [unknown, unknown] {
  if (!Array.isArray(c) || c.length !== 2) throw badResponse('a class is not a [label, score] pair')
  return [c[0], c[1]]
}

/** A gRPC tensorflow.serving.Class. */
export function grpcPair(c: unknown): [unknown, unknown] {
  const { label, score } = (c ?? {}) as { label?: unknown; score?: unknown }
  return [label ?? '', score ?? 0]
}

// The one request every scenario sends: a real held-out breast-cancer row (30 features)
// from models/manifest.json, in each wire format.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { root } from './processes.ts'

interface Manifest {
  tasks: Record<string, { samples: number[][] }>
}
const manifest = JSON.parse(readFileSync(join(root, 'models', 'manifest.json'), 'utf8')) as Manifest
export const row: number[] = manifest.tasks.cancer?.samples[0] ?? []
/** A held-out digits row (64 features): the batching scenario's model input. */
export const digitsRow: number[] = manifest.tasks.digits?.samples[0] ?? []

/** specserve's native predict body, also what the baseline takes. */
export const nativeBody = (budgetMs?: number, input: readonly number[] = row): string =>
  JSON.stringify({ inputs: { input: [input] }, ...(budgetMs ? { budget_ms: budgetMs } : {}) })

/** Open Inference Protocol V2 infer body (MLServer and specserve's /v2 routes), optionally asking for named outputs. */
export const v2Body = (outputs?: readonly string[]): string =>
  JSON.stringify({ inputs: [{ name: 'input', shape: [1, row.length], datatype: 'FP32', data: row }], ...(outputs ? { outputs: outputs.map((name) => ({ name })) } : {}) })

/** specserve.v1.Gateway/Predict request as ghz's JSON. */
export const grpcPredict = (ensemble: string): unknown => ({ ensemble, inputs: { input: { datatype: 'FP32', shape: [1, row.length], fp32_data: row } } })

// Serving records: what the starter hands to output/ for every predict (and, if asked,
// for every model that answered after the decision). The hook only captures references
// and a timestamp; digesting and JSON encoding happen later, off the predict's path.
// docs/serving-record.schema.json describes the JSON this produces.
import { hash } from 'node:crypto'
import { traceIdOf } from '../telemetry/tracing.ts'
import { nestedMap, nestedMapJson, type Tensor, type TensorMap } from '../tensor/index.ts'
import { decisionJson, modelsJson, numberJson } from '../result-json.ts'
import type { ErrorInfo, ModelAnnotation, PredictResult, ShadowAnswer, Votes } from '../types.ts'

export const RECORD_SCHEMA_VERSION = 1

export interface LateAnswer {
  readonly model: string
  readonly version: string
  readonly latency_ms: number
  readonly outputs: TensorMap
}

export interface ServingRecord {
  readonly schema_version: typeof RECORD_SCHEMA_VERSION
  readonly type: 'result' | 'late'
  readonly id: string
  readonly time: string
  readonly ensemble: string
  readonly strategy: string
  readonly inputs_digest: string
  readonly inputs: Record<string, unknown> | null
  readonly outputs: Record<string, unknown> | null
  readonly decision: { readonly chosen: string | null; readonly reason: string; readonly votes: Votes | null }
  readonly error: ErrorInfo | null
  readonly budget_ms: number
  readonly elapsed_ms: number
  readonly models: readonly ModelAnnotation[]
  readonly late: { readonly model: string; readonly version: string; readonly latency_ms: number; readonly outputs: Record<string, unknown> } | null
  /** Shadow members' answers, when the predict ran them. */
  readonly shadows?: readonly ShadowRecord[]
  /** Filled in once tracing lands (telemetry/); null until then. */
  readonly trace_id: string | null
  readonly instance: string
}

export interface ShadowRecord {
  readonly name: string
  readonly version: string
  readonly status: 'ok' | 'error'
  readonly latency_ms: number
  readonly agrees: boolean | null
  readonly outputs: Record<string, unknown> | null
  readonly error?: ErrorInfo
}

const shadowRecord = (s: ShadowAnswer): ShadowRecord => ({
  name: s.name,
  version: s.version,
  status: s.status,
  latency_ms: s.latency_ms,
  agrees: s.agrees,
  outputs: s.outputs ? nestedMap(s.outputs) : null,
  ...(s.error ? { error: s.error } : {}),
})

/** One record waiting to be published: references only, encoded on demand. */
export class PendingRecord {
  readonly key: string | null
  readonly result: PredictResult
  readonly inputs: TensorMap
  /** Date.now() when the predict was decided: the record's `time` (a late answer's record too). */
  readonly at: number
  readonly late: LateAnswer | null
  readonly includeInputs: boolean
  readonly instance: string

  constructor(key: string | null, result: PredictResult, inputs: TensorMap, at: number, late: LateAnswer | null, includeInputs: boolean, instance: string) {
    this.key = key
    this.result = result
    this.inputs = inputs
    this.at = at
    this.late = late
    this.includeInputs = includeInputs
    this.instance = instance
  }

  toRecord(): ServingRecord {
    const r = this.result
    const late = this.late
    return {
      schema_version: RECORD_SCHEMA_VERSION,
      type: late ? 'late' : 'result',
      id: r.id,
      time: isoTime(this.at),
      ensemble: r.ensemble,
      strategy: r.strategy,
      inputs_digest: inputsDigest(this.inputs),
      inputs: this.includeInputs ? nestedMap(this.inputs) : null,
      outputs: r.outputs ? nestedMap(r.outputs) : null,
      decision: r.decision,
      error: r.error,
      budget_ms: r.budget_ms,
      elapsed_ms: r.elapsed_ms,
      models: r.models,
      late: late ? { model: late.model, version: late.version, latency_ms: late.latency_ms, outputs: nestedMap(late.outputs) } : null,
      // The predict's own record has them; its late ones (same result object) need not repeat them.
      ...(r.shadows && !late ? { shadows: r.shadows.map(shadowRecord) } : {}),
      trace_id: traceIdOf(r),
      instance: this.instance,
    }
  }

  /** toRecord() as JSON text, written directly (the same text JSON.stringify gives, without the objects). */
  encode(): string {
    const r = this.result
    const late = this.late
    let out =
      `{"schema_version":${RECORD_SCHEMA_VERSION},"type":"${late ? 'late' : 'result'}","id":${JSON.stringify(r.id)},"time":"${isoTime(this.at)}",` +
      `"ensemble":${JSON.stringify(r.ensemble)},"strategy":${JSON.stringify(r.strategy)},"inputs_digest":"${inputsDigest(this.inputs)}",` +
      `"inputs":${this.includeInputs ? nestedMapJson(this.inputs) : 'null'},"outputs":${r.outputs ? nestedMapJson(r.outputs) : 'null'},` +
      `"decision":${decisionJson(r.decision)},"error":${r.error === null ? 'null' : JSON.stringify(r.error)},` +
      `"budget_ms":${numberJson(r.budget_ms)},"elapsed_ms":${numberJson(r.elapsed_ms)},"models":${modelsJson(r.models)},` +
      `"late":${late ? JSON.stringify({ model: late.model, version: late.version, latency_ms: late.latency_ms, outputs: nestedMap(late.outputs) }) : 'null'}`
    if (r.shadows && !late) out += `,"shadows":${JSON.stringify(r.shadows.map(shadowRecord))}`
    const trace = traceIdOf(r)
    return `${out},"trace_id":${trace === null ? 'null' : JSON.stringify(trace)},"instance":${JSON.stringify(this.instance)}}`
  }
}

/**
 * "sha256:<hex>" over every input in name order: name, datatype and shape, then the raw
 * element bytes (little-endian, as the typed array holds them; BYTES elements as UTF-8,
 * each followed by a NUL). Equal inputs give equal digests across instances and restarts.
 */
export function inputsDigest(inputs: TensorMap): string {
  // One buffer and one-shot hashing: a third of the cost of a Hash object fed piece by piece.
  const names = Object.keys(inputs)
  if (names.length > 1) names.sort()
  const parts: Uint8Array[] = []
  for (const name of names) {
    const t = inputs[name] as Tensor
    parts.push(Buffer.from(`${name}\0${t.datatype}\0${t.shape.join(',')}\0`))
    if (Array.isArray(t.data)) parts.push(Buffer.from(t.data.map((s) => `${s}\0`).join('')))
    else parts.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))
  }
  return `sha256:${hash('sha256', Buffer.concat(parts))}`
}

// Records decided in the same millisecond share their time string (under load, several do).
let isoAt = Number.NaN
let iso = ''
function isoTime(at: number): string {
  if (at !== isoAt) {
    iso = new Date(at).toISOString()
    isoAt = at
  }
  return iso
}

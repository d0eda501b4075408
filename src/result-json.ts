// JSON text of the result parts every writer shares (the REST body, the serving record):
// written directly, in the key order of the objects they stand for, because a generic
// JSON.stringify of these small objects showed in the predict path's profile. The tests
// compare them with JSON.stringify of the same objects.
import type { DecisionInfo, ModelAnnotation } from './types.ts'

/** A number as JSON writes it (non-finite numbers are null). */
export const numberJson = (n: number): string => (Number.isFinite(n) ? `${n}` : 'null')

export function decisionJson(d: DecisionInfo): string {
  return `{"chosen":${d.chosen === null ? 'null' : JSON.stringify(d.chosen)},"reason":${JSON.stringify(d.reason)},"votes":${d.votes === null ? 'null' : JSON.stringify(d.votes)}}`
}

export function modelsJson(models: readonly ModelAnnotation[]): string {
  let out = '['
  for (let i = 0; i < models.length; i++) {
    const m = models[i] as ModelAnnotation
    if (i > 0) out += ','
    out += `{"name":${JSON.stringify(m.name)},"version":${JSON.stringify(m.version)},"status":${JSON.stringify(m.status)},"latency_ms":${numberJson(m.latency_ms)},"used":${m.used}`
    if (m.batch !== undefined) out += `,"batch":${numberJson(m.batch)}`
    if (m.error !== undefined) out += `,"error":${JSON.stringify(m.error)}`
    out += '}'
  }
  return `${out}]`
}

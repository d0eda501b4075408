// A guarded config shared by the REST and gRPC tests: scripted models (one failing with
// an upstream-looking message), API keys by role, and optionally a JWT issuer.
import { createHash } from 'node:crypto'

export const KEYS = {
  reader: 'reader-key-0001',
  predictE: 'predict-e-key-0002',
  debugger: 'debug-key-0003',
  limited: 'limited-key-0004',
  metrics: 'metrics-key-0005',
} as const

export const UPSTREAM_DETAIL = 'upstream http://10.0.0.7:8501 answered 500: tensorflow/core/kernels/oops.cc'

const hash = (key: string): string => createHash('sha256').update(key).digest('hex')

/**
 * A remote model whose upstream is down (`port`: one nothing listens on), loaded on the tensors
 * it declares, with an upstream's error text in its description; ensemble `r` serves it.
 */
export const downUpstream = (port: number): string =>
  `  down: { kind: oip, url: "http://127.0.0.1:${port}", model: m, inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }], outputs: [{ name: label, datatype: INT64, shape: [-1] }] }\n`

/** The YAML; `jwt` is a `jwt:` flow mapping, `without` drops API keys by role (a revocation), `down` adds downUpstream on that port. */
export function guardedYaml(options: { jwt?: string; without?: (keyof typeof KEYS)[]; extra?: string; down?: number } = {}): string {
  const keys = [
    ['reader', ['read']],
    ['predictE', ['predict:e']],
    ['debugger', ['predict:*', 'debug', 'read']],
    ['limited', ['predict:*'], '{ rps: 0.5, burst: 2 }'],
    ['metrics', ['metrics']],
  ] as const
  const entries = keys
    .filter(([role]) => !options.without?.includes(role))
    .map(([role, scopes, rate]) => `    - { id: ${role}, sha256: "${hash(KEYS[role])}", scopes: [${scopes.map((s) => `"${s}"`).join(', ')}]${rate ? `, rate_limit: ${rate}` : ''} }`)
  return `
models:
  ok: { kind: scripted, label: 1 }
  broken: { kind: scripted, fail: "${UPSTREAM_DETAIL}" }
${options.down === undefined ? '' : downUpstream(options.down)}ensembles:
${options.down === undefined ? '' : '  r: { strategy: deadline-fallback, models: [down] }\n'}  e: { strategy: deadline-fallback, models: [broken, ok] }
  f: { strategy: deadline-fallback, models: [broken] }
  g: { strategy: deadline-fallback, models: [ok] }
admin: { reload_endpoint: true, watch_config: false }
auth:
  api_keys:
${entries.join('\n')}
${options.jwt ? `  jwt: ${options.jwt}\n` : ''}  anonymous: [health]
${options.extra ?? ''}`
}

export const bearer = (key: string): { authorization: string } => ({ authorization: `Bearer ${key}` })

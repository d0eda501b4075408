// Interop with a V2 client someone else wrote: NVIDIA's tritonclient (HTTP and gRPC),
// installed from PyPI into a venv under the cache, against a real `specserve serve`.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { root, samples } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { cancerEnsemble, cancerModels, serve, type Served } from './serve.ts'

let python: string
let served: Served | undefined

beforeAll(async () => {
  python = execFileSync(join(root, 'scripts/tritonclient-env.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
  const dir = tempDir('specserve-oip-')
  const intModel = join(dir, 'int64_counts.onnx')
  execFileSync(python, [join(root, 'test/e2e/oip_int64_model.py'), intModel])
  served = await serve(
    `${cancerModels}\n  counts-model: { kind: onnx, path: ${intModel} }`,
    `${cancerEnsemble}\n  counts:\n    strategy: deadline-fallback\n    models: [counts-model]\n    budget_ms: { default: 1000, max: 2000 }`,
    dir,
  )
}, 900_000)

afterAll(async () => {
  await served?.proc.stop()
})

describe('tritonclient against specserve (Open Inference Protocol V2)', () => {
  it('checks health and metadata, infers FP32 and INT64 tensors, and surfaces errors, over HTTP and gRPC', () => {
    const cancer = samples('cancer')
    const { restPort, grpcPort } = served!
    const out = execFileSync(python, [join(root, 'test/e2e/oip_interop.py'), `127.0.0.1:${restPort}`, `127.0.0.1:${grpcPort}`, JSON.stringify({ rows: cancer.rows, expected: cancer.expected })], {
      encoding: 'utf8',
      timeout: 120_000,
    })
    const report = JSON.parse(out) as Record<'http' | 'grpc', { fp32: { chosen: string; labels: number[] }; int64: { argmax: number[]; total: number[] }; errors: string[] }>
    for (const protocol of ['http', 'grpc'] as const) {
      const r = report[protocol]
      expect(r.fp32.labels).toEqual(cancer.expected[r.fp32.chosen.replace('-', '_')])
      // 9e9 does not fit 32 bits: argmax proves INT64 arrived whole; the model casts to FP32 before summing.
      expect(r.int64).toEqual({ argmax: [1, 2], total: [8, Math.fround(Math.fround(9_000_000_000) + 43)] })
      expect(r.errors).toHaveLength(2)
    }
    expect(report.http.errors).toEqual(['404', '400'])
    expect(report.grpc.errors).toEqual(['StatusCode.NOT_FOUND', 'StatusCode.INVALID_ARGUMENT'])
  }, 180_000)
})

// grpcurl (from the Go module proxy) knows nothing of our protos: it lists services and
// calls Predict through server reflection alone, against a real `specserve serve`.
import { execFile, execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { root, samples } from '../helpers.ts'
import { cancerEnsemble, cancerModels, serve, type Served } from './serve.ts'

const run = promisify(execFile)
let grpcurl: string
let served: Served | undefined
let target: string

beforeAll(async () => {
  grpcurl = execFileSync(join(root, 'scripts/grpcurl.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
  served = await serve(cancerModels, cancerEnsemble)
  target = `127.0.0.1:${served.grpcPort}`
}, 900_000)

afterAll(async () => {
  await served?.proc.stop()
})

const call = (...args: string[]) => run(grpcurl, ['-plaintext', ...args], { encoding: 'utf8' })

describe('grpcurl via server reflection', () => {
  it('lists every service', async () => {
    const { stdout } = await call(target, 'list')
    expect(stdout.trim().split('\n')).toEqual(['grpc.health.v1.Health', 'inference.GRPCInferenceService', 'specserve.v1.Gateway'])
  })

  it('describes a service and checks health', async () => {
    const { stdout } = await call(target, 'describe', 'specserve.v1.Gateway')
    expect(stdout).toContain('rpc Predict ( .specserve.v1.PredictRequest ) returns ( .specserve.v1.PredictResponse );')
    // A proto3 `optional` field, as the .proto has it, not the synthetic oneof behind it.
    const request = await call(target, 'describe', 'specserve.v1.PredictRequest')
    expect(request.stdout).toContain('  optional double budget_ms = 3;')
    const health = await call(target, 'grpc.health.v1.Health/Check')
    expect(JSON.parse(health.stdout)).toEqual({ status: 'SERVING' })
  })

  it('calls Predict and V2 ModelInfer with JSON built from reflection', async () => {
    const cancer = samples('cancer')
    const { stdout } = await call('-d', JSON.stringify({ ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } }), target, 'specserve.v1.Gateway/Predict')
    const res = JSON.parse(stdout) as { decision: { chosen: string }; outputs: { label: { int64_data: string[] } } }
    expect(Number(res.outputs.label.int64_data[0])).toBe(cancer.expected[res.decision.chosen.replace('-', '_')]![0])
    const infer = await call('-d', JSON.stringify({ model_name: 'cancer', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 30], contents: { fp32_contents: cancer.rows[0] } }] }), target, 'inference.GRPCInferenceService/ModelInfer')
    expect(JSON.parse(infer.stdout)).toMatchObject({ model_name: 'cancer', parameters: { chosen: { string_param: res.decision.chosen } } })
  })

  it('streams predicts over PredictStream, an error message among them', async () => {
    const cancer = samples('cancer')
    const messages = [
      { id: 'a', ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[0] } } },
      { id: 'b', ensemble: 'nope', inputs: {} },
      { id: 'c', ensemble: 'cancer', inputs: { input: { fp32_data: cancer.rows[1] } } },
    ]
    const { stdout } = await call('-d', messages.map((m) => JSON.stringify(m)).join('\n'), target, 'specserve.v1.Gateway/PredictStream')
    // grpcurl prints each reply as a JSON object, one after the other.
    const replies = stdout.split(/\n(?=\{)/).map((text) => JSON.parse(text) as { id: string; response?: { ensemble: string }; error?: { code: string } })
    expect(replies.map((r) => r.id).toSorted()).toEqual(['a', 'b', 'c'])
    expect(replies.find((r) => r.id === 'b')!.error!.code).toBe('UNKNOWN_ENSEMBLE')
    expect(replies.filter((r) => r.response?.ensemble === 'cancer')).toHaveLength(2)
  })

  it('shows the status and trailers of a failed call', async () => {
    const err = await call('-v', '-d', JSON.stringify({ ensemble: 'cancer', inputs: {} }), target, 'specserve.v1.Gateway/Predict').catch((e: { stdout: string; stderr: string }) => e)
    expect('stderr' in err && err.stderr).toMatch(/Code: InvalidArgument\s+Message: missing input "input"/)
    expect('stdout' in err && err.stdout).toMatch(/specserve-code: BAD_INPUT/)
  })
})

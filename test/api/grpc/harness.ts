// A gateway and its gRPC frontend on a free port, with real grpc-js clients loaded from
// the same .proto files a user would use. Scripted models (test/starter/scripted.ts)
// make every failure status reproducible; the ONNX models make real predicts.
import * as grpc from '@grpc/grpc-js'
import { expect, vi } from 'vitest'
import { buildGrpcServer, type GrpcFrontend } from '../../../src/api/grpc/server.ts'
import { reflectedDefinition } from '../../../src/proto/index.ts'
import { Gateway } from '../../../src/gateway.ts'
import { configFrom } from '../../helpers.ts'
import type { Logger, PredictResult } from '../../../src/types.ts'
import { signals } from '../../starter/scripted.ts'

export const TEST_CONFIG = `
server: { max_in_flight: 6, grpc_max_receive_bytes: 65536 }
executors: { onnx_workers: 2 }
models:
  cancer-mlp: { kind: onnx, path: ../models/cancer_mlp.onnx, version: "3" }
  cancer-logreg: { kind: onnx, path: ../models/cancer_logreg.onnx }
  slow: { kind: scripted, delay_ms: 600, label: 0 }
  fast: { kind: scripted, delay_ms: 1, label: 1 }
  broken: { kind: scripted, fail: "boom" }
  hang: { kind: scripted, hang: true }
  says-0: { kind: scripted, label: 0 }
  says-1: { kind: scripted, label: 1 }
ensembles:
  cancer:
    strategy: deadline-fallback
    models: [cancer-mlp, cancer-logreg]
    budget_ms: { default: 1000, max: 2000 }
  fallback:
    strategy: deadline-fallback
    models: [slow, fast]
    budget_ms: { default: 100, max: 1000 }
  broken:
    strategy: deadline-fallback
    models: [broken]
  late:
    strategy: deadline-fallback
    models: [hang]
    budget_ms: { default: 30, max: 100 }
  hanging:
    strategy: deadline-fallback
    models: [hang]
    budget_ms: { default: 5000, max: 10000 }
  split:
    strategy: { name: majority-vote, quorum: all, on_no_majority: error }
    models: [says-0, says-1]
`

type Method = (...args: unknown[]) => unknown

export interface Harness {
  gateway: Gateway
  frontend: GrpcFrontend
  address: string
  gatewayClient: grpc.Client & Record<string, Method>
  inferenceClient: grpc.Client & Record<string, Method>
  close(): Promise<void>
}

type ClientCtor = new (address: string, creds: grpc.ChannelCredentials) => grpc.Client & Record<string, Method>

/** `log`: the gRPC frontend's (warnings at start, connections a full listener dropped). */
export async function startHarness(yaml = TEST_CONFIG, log?: Logger): Promise<Harness> {
  const config = configFrom(yaml)
  const gateway = new Gateway(config)
  await gateway.load()
  const frontend = buildGrpcServer(gateway, config, log)
  const port = await frontend.listen('127.0.0.1', 0)
  frontend.setServing(true)
  const address = `127.0.0.1:${port}`
  const pkg = grpc.loadPackageDefinition(reflectedDefinition()) as unknown as {
    specserve: { v1: { Gateway: ClientCtor } }
    inference: { GRPCInferenceService: ClientCtor }
  }
  const gatewayClient = new pkg.specserve.v1.Gateway(address, grpc.credentials.createInsecure())
  const inferenceClient = new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure())
  return {
    gateway,
    frontend,
    address,
    gatewayClient,
    inferenceClient,
    async close() {
      gatewayClient.close()
      inferenceClient.close()
      await frontend.close(1000)
      await gateway.close()
    },
  }
}

export interface CallError {
  code: number
  details: string
  metadata: grpc.Metadata
}

/** One unary call; resolves with the response, rejects with the grpc-js ServiceError. */
export function unary<T = Record<string, unknown>>(client: grpc.Client & Record<string, Method>, method: string, request: object, options: grpc.CallOptions = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method]!(request, new grpc.Metadata(), options, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)))
  })
}

/** The call's error (fails the test if it succeeded). */
export async function failure(pending: Promise<unknown>): Promise<CallError> {
  try {
    await pending
  } catch (err) {
    return err as CallError
  }
  throw new Error('the call succeeded; expected an error status')
}

/** The JSON annotations a failed predict carries in its trailers. */
export const trailerResult = (err: CallError): Record<string, unknown> => JSON.parse(String(err.metadata.get('specserve-result')[0])) as Record<string, unknown>
export const trailerCode = (err: CallError): string => String(err.metadata.get('specserve-code')[0])

export const xInput = { x: { fp32_data: [0.5, 0.5], shape: [1, 2] } }

/**
 * Opens a stream, sends two predicts that hang (`send` writes the method's message for an
 * id), cancels the call, and checks what a client cancel must do: the call ends CANCELLED,
 * both predicts end CANCELLED with their models aborted, and no admission slot stays taken.
 */
export async function expectCancelStopsRuns(h: Harness, open: () => grpc.ClientDuplexStream<object, unknown>, send: (call: grpc.ClientDuplexStream<object, unknown>, id: string) => void): Promise<void> {
  signals.clear()
  const results: PredictResult[] = []
  const bothDone = new Promise<void>((resolve) => {
    h.gateway.hooks.onResult = (r) => {
      results.push(r)
      if (results.length === 2) resolve()
    }
  })
  const call = open()
  const ended = new Promise((resolve, reject) => {
    call.on('end', resolve)
    call.on('error', reject)
  })
  send(call, 'a')
  send(call, 'b')
  await vi.waitFor(() => expect(signals.get('hang')).toHaveLength(2))
  call.cancel()
  await expect(ended).rejects.toMatchObject({ code: grpc.status.CANCELLED })
  await bothDone
  h.gateway.hooks.onResult = undefined
  expect(results.map((r) => r.error?.code)).toEqual(['CANCELLED', 'CANCELLED'])
  expect(signals.get('hang')!.every((s) => s.aborted)).toBe(true)
  expect(h.gateway.admission.count).toBe(0)
}

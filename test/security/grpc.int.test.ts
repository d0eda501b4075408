// The policy on the gRPC listener, native (specserve.v1) and V2 (inference) services alike,
// with credentials in the `authorization` metadata: the same codes as REST, as gRPC statuses,
// redacted annotations in the failure trailer, health open, reflection behind `read`.
import * as grpc from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GrpcStatus } from '../../src/errors.ts'
import { failure, startHarness, trailerCode, trailerResult, type Harness } from '../api/grpc/harness.ts'
import { configFrom, freePort } from '../helpers.ts'
import { METADATA_ERROR_REDACTED } from '../../src/security/redact.ts'
import { bearer, guardedYaml, KEYS } from './fixture.ts'
import { AUDIENCE, ISSUER, startIssuer, type Issuer } from './issuer.ts'

let h: Harness
let issuer: Issuer
const jwtSection = (): string => `{ jwks_url: "${issuer.url}", issuer: "${ISSUER}", audience: ${AUDIENCE} }`

beforeAll(async () => {
  issuer = await startIssuer()
  h = await startHarness(guardedYaml({ jwt: jwtSection(), down: await freePort() }))
})
afterAll(async () => {
  await h.close()
  await issuer.close()
})

const x = { x: { fp32_data: [0.5, 0.5], shape: [1, 2] } }
const withAuth = (key?: string): grpc.Metadata => {
  const md = new grpc.Metadata()
  if (key !== undefined) md.set('authorization', bearer(key).authorization)
  return md
}
function call<T = Record<string, unknown>>(client: Harness['gatewayClient'], method: string, request: object, key?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method]!(request, withAuth(key), {}, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)))
  })
}
const predict = (ensemble: string, key?: string) => call(h.gatewayClient, 'Predict', { ensemble, inputs: x }, key)
const infer = (model: string, key?: string) =>
  call(h.inferenceClient, 'ModelInfer', { model_name: model, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [0.5, 0.5] } }] }, key)

describe('gRPC credentials and scopes', () => {
  it.each([
    ['Predict', () => predict('e')],
    ['ModelInfer', () => infer('e')],
    ['ListEnsembles', () => call(h.gatewayClient, 'ListEnsembles', {})],
    ['ModelMetadata', () => call(h.inferenceClient, 'ModelMetadata', { name: 'e' })],
  ])('%s without credentials: UNAUTHENTICATED', async (_what, run) => {
    const err = await failure(run())
    expect(err.code).toBe(GrpcStatus.UNAUTHENTICATED)
    expect(trailerCode(err)).toBe('UNAUTHENTICATED')
  })

  it('an unknown key is UNAUTHENTICATED, a key without the scope PERMISSION_DENIED, on both services', async () => {
    expect((await failure(predict('e', 'nope'))).code).toBe(GrpcStatus.UNAUTHENTICATED)
    for (const err of [await failure(predict('g', KEYS.predictE)), await failure(infer('g', KEYS.predictE))]) {
      expect(err.code).toBe(GrpcStatus.PERMISSION_DENIED)
      expect(err.details).toBe('needs scope predict:g or predict:*')
    }
    expect(await predict('e', KEYS.predictE)).toMatchObject({ ensemble: 'e' })
    expect(await infer('e', KEYS.predictE)).toMatchObject({ model_name: 'e' })
    expect((await failure(call(h.gatewayClient, 'ListEnsembles', {}, KEYS.predictE))).code).toBe(GrpcStatus.PERMISSION_DENIED)
    expect(await call(h.gatewayClient, 'ListEnsembles', {}, KEYS.reader)).toHaveProperty('ensembles')
  })

  it('a JWT from the issuer works as a bearer credential, its scope claim deciding', async () => {
    expect(await predict('g', await issuer.sign({ scope: 'predict:g' }))).toMatchObject({ ensemble: 'g' })
    expect((await failure(predict('e', await issuer.sign({ scope: 'predict:g' })))).code).toBe(GrpcStatus.PERMISSION_DENIED)
    expect((await failure(predict('g', await issuer.sign({ aud: 'other' })))).code).toBe(GrpcStatus.UNAUTHENTICATED)
  })

  it('a message that does not decode is still refused without credentials, and INVALID_ARGUMENT with them', async () => {
    const raw = (key?: string) =>
      new Promise<grpc.ServiceError>((resolve) => {
        h.gatewayClient.makeUnaryRequest('/specserve.v1.Gateway/Predict', (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0xff]), withAuth(key), (err: grpc.ServiceError | null) => resolve(err!))
      })
    expect((await raw()).code).toBe(GrpcStatus.UNAUTHENTICATED)
    expect((await raw(KEYS.predictE)).code).toBe(GrpcStatus.INVALID_ARGUMENT)
  })

  it('an empty message (no ensemble named) is asked for its scope first, as REST: PERMISSION_DENIED without predict:*, then the name NOT_FOUND', async () => {
    for (const [client, method] of [[h.gatewayClient, 'Predict'], [h.inferenceClient, 'ModelInfer']] as const) {
      expect((await failure(call(client, method, {}))).code, method).toBe(GrpcStatus.UNAUTHENTICATED)
      const denied = await failure(call(client, method, {}, KEYS.predictE))
      expect([denied.code, trailerCode(denied), denied.details], method).toEqual([GrpcStatus.PERMISSION_DENIED, 'PERMISSION_DENIED', 'needs scope predict:* (the call names no ensemble)'])
      const unknown = await failure(call(client, method, {}, KEYS.debugger))
      expect([unknown.code, trailerCode(unknown)], method).toEqual([GrpcStatus.NOT_FOUND, 'UNKNOWN_ENSEMBLE'])
    }
  })

  it('health is open (anonymous: [health]); reflection needs read', async () => {
    expect(await call(h.inferenceClient, 'ServerLive', {})).toEqual({ live: true })
    const healthClient = new grpc.Client(h.address, grpc.credentials.createInsecure())
    const check = (key?: string) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        healthClient.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), withAuth(key), (err: grpc.ServiceError | null) => resolve(err))
      })
    expect(await check()).toBeNull()
    const reflect = (key?: string) =>
      new Promise<number>((resolve) => {
        const stream = healthClient.makeBidiStreamRequest('/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo', (b: Buffer) => b, (b: Buffer) => b, withAuth(key))
        stream.on('data', () => {
          stream.cancel()
          resolve(0)
        })
        stream.on('error', (err: grpc.ServiceError) => resolve(err.code))
        // list_services: "" (field 7, an empty string)
        stream.write(Buffer.from([0x3a, 0x00]))
      })
    expect(await reflect()).toBe(GrpcStatus.UNAUTHENTICATED)
    expect(await reflect(KEYS.reader)).toBe(0)
    healthClient.close()
  })
})

describe('gRPC redaction and limits', () => {
  it('a failed predict\'s trailer keeps codes but not upstream messages without debug', async () => {
    const plain = await failure(predict('f', KEYS.limited))
    expect(plain.code).toBe(GrpcStatus.UNAVAILABLE)
    expect(trailerResult(plain)).toMatchObject({ code: 'ALL_MODELS_FAILED', models: [{ status: 'error', error: { code: 'MODEL_FAILED' } }] })
    expect(JSON.stringify(trailerResult(plain))).not.toContain('10.0.0.7')
    const debug = await failure(predict('f', KEYS.debugger))
    expect(JSON.stringify(trailerResult(debug))).toContain('10.0.0.7')
  })

  it("GetModel's details say an upstream's metadata could not be read at load, and only to debug its error", async () => {
    const details = (key: string) => call<{ details_json: string }>(h.gatewayClient, 'GetModel', { name: 'down' }, key).then((res) => JSON.parse(res.details_json).metadata_error)
    expect(await details(KEYS.reader)).toBe(METADATA_ERROR_REDACTED)
    expect(await details(KEYS.debugger)).toMatch(/ECONNREFUSED 127\.0\.0\.1:\d+/)
  })

  it('over the rate limit: RESOURCE_EXHAUSTED, code RATE_LIMITED, a retry-after trailer', async () => {
    let refused
    for (let i = 0; i < 3 && !refused; i++) {
      try {
        await predict('g', KEYS.limited)
      } catch (err) {
        refused = err as grpc.ServiceError
      }
    }
    expect(refused!.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED)
    expect(trailerCode(refused!)).toBe('RATE_LIMITED')
    expect(String(refused!.metadata.get('retry-after')[0])).toMatch(/^[1-2]$/)
  })
})

describe('gRPC PredictStream under the policy', () => {
  interface Reply {
    id: string
    outcome: 'response' | 'error'
    response?: Record<string, unknown>
    error?: { code: string; message: string; result_json: string }
  }
  /** Sends each message on one stream, half-closes, and resolves with every reply (or rejects with the call's status). */
  function stream(messages: object[], key?: string): Promise<Reply[]> {
    const call = (h.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, Reply>)(withAuth(key))
    const replies: Reply[] = []
    call.on('data', (r: Reply) => replies.push(r))
    const done = new Promise<Reply[]>((resolve, reject) => {
      call.on('end', () => resolve(replies))
      call.on('error', reject)
    })
    for (const m of messages) call.write(m)
    call.end()
    return done
  }

  it('needs credentials to open; then each message is asked for its own ensemble', async () => {
    const err = await failure(stream([{ id: 'a', ensemble: 'e', inputs: x }]))
    expect(err.code).toBe(GrpcStatus.UNAUTHENTICATED)
    const replies = await stream([{ id: 'mine', ensemble: 'e', inputs: x }, { id: 'other', ensemble: 'g', inputs: x }], KEYS.predictE)
    const byId = new Map(replies.map((r) => [r.id, r]))
    expect(byId.get('mine')!.outcome).toBe('response')
    expect(byId.get('other')).toMatchObject({ outcome: 'error', error: { code: 'PERMISSION_DENIED', message: 'needs scope predict:g or predict:*' } })
  })

  it('redacts failed members\' messages without debug, as unary Predict does', async () => {
    const [plain] = await stream([{ id: 'p', ensemble: 'e', inputs: x }], KEYS.predictE)
    const [debug] = await stream([{ id: 'd', ensemble: 'e', inputs: x }], KEYS.debugger)
    const broken = (r: Reply | undefined) => (r!.response!.models as { name: string; error?: { code: string; message: string } }[]).find((m) => m.name === 'broken')!
    expect(broken(plain).error).toEqual({ code: 'MODEL_FAILED', message: '' })
    expect(broken(debug).error!.message).toContain('10.0.0.7')
  })

  it('ModelStreamInfer too: each message asked for its model\'s scope', async () => {
    const call = (h.inferenceClient.ModelStreamInfer as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, { error_message: string; infer_response?: { id: string } }>)(withAuth(KEYS.predictE))
    const replies: { error_message: string; infer_response?: { id: string } }[] = []
    call.on('data', (r: (typeof replies)[number]) => replies.push(r))
    const ended = new Promise((resolve, reject) => {
      call.on('end', resolve)
      call.on('error', reject)
    })
    const tensor = [{ name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [0.5, 0.5] } }]
    call.write({ id: 'mine', model_name: 'e', inputs: tensor })
    call.write({ id: 'other', model_name: 'g', inputs: tensor })
    call.end()
    await ended
    expect(replies).toHaveLength(2)
    expect(replies.find((r) => r.infer_response?.id === 'mine')).toBeDefined()
    expect(replies.filter((r) => r.error_message.startsWith('PERMISSION_DENIED: needs scope predict:g'))).toHaveLength(1)
  })

  it('asks again for every message: a key a reload removed is refused on a stream opened before', async () => {
    const call = (h.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, Reply>)(withAuth(KEYS.predictE))
    const replies: Reply[] = []
    const ended = new Promise((resolve, reject) => {
      call.on('end', resolve)
      call.on('error', reject)
    })
    const answered = new Promise<void>((resolve) => {
      call.on('data', (r: Reply) => {
        replies.push(r)
        resolve()
      })
    })
    call.write({ id: 'before', ensemble: 'e', inputs: x })
    await answered
    await h.gateway.reload(configFrom(guardedYaml({ jwt: jwtSection(), without: ['predictE'] })))
    try {
      call.write({ id: 'after', ensemble: 'e', inputs: x })
      call.end()
      await ended
    } finally {
      await h.gateway.reload(configFrom(guardedYaml({ jwt: jwtSection() })))
    }
    expect(replies.find((r) => r.id === 'before')!.outcome).toBe('response')
    expect(replies.find((r) => r.id === 'after')).toMatchObject({ outcome: 'error', error: { code: 'UNAUTHENTICATED' } })
  })
})


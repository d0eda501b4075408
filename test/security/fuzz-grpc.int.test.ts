// Hostile bytes on every gRPC method of both services: random bytes, mutated valid
// messages, fields of the wrong wire type, and oversized messages. Every call gets a
// status (the server never crashes or answers INTERNAL/UNKNOWN); a message that does not
// decode is INVALID_ARGUMENT; an oversized one RESOURCE_EXHAUSTED; and a real predict is
// still answered afterwards.
import * as grpc from '@grpc/grpc-js'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GrpcStatus } from '../../src/errors.ts'
import { CODE_KEY } from '../../src/api/grpc/status.ts'
import { decodedService } from '../../src/api/grpc/services.ts'
import { GATEWAY_SERVICE, INFERENCE_SERVICE, type Method } from '../../src/proto/index.ts'
import { startHarness, unary, xInput, type Harness } from '../api/grpc/harness.ts'

let h: Harness
let raw: grpc.Client
const seen = new Map<number, number>()
let calls = 0

beforeAll(async () => {
  h = await startHarness()
  raw = new grpc.Client(h.address, grpc.credentials.createInsecure())
})
afterAll(async () => {
  raw.close()
  await h.close()
  console.info(`gRPC fuzz: ${calls} calls; statuses ${JSON.stringify(Object.fromEntries([...seen].map(([c, n]) => [grpc.status[c], n])))}`)
})

/** The client's own deadline passed: the server never answered (a DEADLINE_EXCEEDED the server sends, with its code trailer, is a predict's answer). */
const HUNG = -1

/** Sends bytes as the request of `path`; resolves with the status code (0 for OK, HUNG). */
function send(path: string, bytes: Uint8Array): Promise<number> {
  calls++
  return new Promise((resolve) => {
    raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null) => {
      const code = !err ? 0 : err.code === grpc.status.DEADLINE_EXCEEDED && err.metadata.get(CODE_KEY).length === 0 ? HUNG : err.code
      seen.set(code, (seen.get(code) ?? 0) + 1)
      resolve(code)
    })
  })
}

const NEVER = [GrpcStatus.INTERNAL, grpc.status.UNKNOWN, grpc.status.UNIMPLEMENTED, HUNG]

/** A valid request per method, to mutate. */
const VALID: Record<string, object> = {
  Predict: { ensemble: 'fallback', inputs: xInput, budget_ms: 50 },
  ListEnsembles: {},
  GetEnsemble: { name: 'cancer' },
  GetModel: { name: 'fast' },
  ServerLive: {},
  ServerReady: {},
  ServerMetadata: {},
  ModelReady: { name: 'cancer' },
  ModelMetadata: { name: 'cancer' },
  ModelInfer: { model_name: 'fallback', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [0.5, 0.5] } }] },
}

// Each method as the server decodes it (services.ts): the oracle for "does not decode" is the
// decoder the server runs (the hand-written decoders accept some bytes protobufjs refuses,
// such as a tag in an overlong varint, as protobuf's C++ parser does). Requests are still
// written, and stream replies read, by proto-loader.
const gatewayMethods = decodedService(GATEWAY_SERVICE) as unknown as Record<string, Method>
const inferenceMethods = decodedService(INFERENCE_SERVICE) as unknown as Record<string, Method>
const all: [string, Method][] = [...Object.entries(gatewayMethods), ...Object.entries(inferenceMethods)]
const methods = all.filter(([, m]) => !m.requestStream)
const streamMethod = gatewayMethods.PredictStream!

/** Whether our own decoder refuses these bytes (then the server must say INVALID_ARGUMENT). */
function undecodable(method: Method, bytes: Uint8Array): boolean {
  try {
    method.requestDeserialize(Buffer.from(bytes))
    return false
  } catch {
    return true
  }
}

describe.each(methods)('gRPC %s under hostile bytes', (name, method) => {
  const valid = new Uint8Array(method.requestSerialize(VALID[name] ?? {}))

  it('random bytes: a status, never INTERNAL; INVALID_ARGUMENT when they do not decode', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (bytes) => {
        const code = await send(method.path, bytes)
        expect(NEVER).not.toContain(code)
        if (undecodable(method, bytes)) expect(code).toBe(GrpcStatus.INVALID_ARGUMENT)
      }),
      { numRuns: 150 },
    )
  })

  it('mutated valid messages (bytes flipped, cut, spliced): the same', async () => {
    const mutation = fc.record({
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      cut: fc.option(fc.nat()),
      splice: fc.uint8Array({ maxLength: 16 }),
    })
    await fc.assert(
      fc.asyncProperty(mutation, async ({ flips, cut, splice }) => {
        const bytes = new Uint8Array(valid)
        for (const [at, value] of flips) if (bytes.length > 0) bytes[at % bytes.length] = value
        const at = cut === null ? bytes.length : cut % (bytes.length + 1)
        const mutated = new Uint8Array([...bytes.subarray(0, at), ...splice])
        const code = await send(method.path, mutated)
        expect(NEVER).not.toContain(code)
        if (undecodable(method, mutated)) expect(code).toBe(GrpcStatus.INVALID_ARGUMENT)
      }),
      { numRuns: 150 },
    )
  })

  it('fields of the wrong wire type, and a message over grpc_max_receive_bytes', async () => {
    const wrongTypes = [
      [0x08, 0x96, 0x01], // field 1 as a varint
      [0x09, 1, 2, 3, 4, 5, 6, 7, 8], // field 1 as fixed64
      [0x0d, 1, 2, 3, 4], // field 1 as fixed32
      [0x12, 0x03, 0xff, 0xff, 0xff], // field 2 as a length-delimited run of garbage
      [0x1a, 0x05, 0x0a, 0x03, 0x08, 0x01], // field 3 a nested message whose field 1 is a varint
      [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], // field 1 claiming 4 GiB
    ]
    for (const bytes of wrongTypes) {
      const code = await send(method.path, new Uint8Array(bytes))
      expect(NEVER, `bytes ${bytes.join(',')}`).not.toContain(code)
      if (undecodable(method, new Uint8Array(bytes))) expect(code).toBe(GrpcStatus.INVALID_ARGUMENT)
    }
    const big = new Uint8Array(70_000) // over the harness's 65536-byte limit
    big.set([0x0a, 0xeb, 0xa2, 0x04]) // field 1, 69995 bytes
    expect(await send(method.path, big)).toBe(GrpcStatus.RESOURCE_EXHAUSTED)
  })
})

interface StreamOutcome {
  readonly status: number
  readonly replies: { id: string; outcome: string; error?: { code: string } }[]
}

/** Sends each buffer as one message of a PredictStream, half-closes, and collects the replies and the call's status. */
function sendStream(messages: readonly Uint8Array[]): Promise<StreamOutcome> {
  calls += messages.length
  return new Promise((resolve) => {
    const call = raw.makeBidiStreamRequest(streamMethod.path, (b: Buffer) => b, (b: Buffer) => b, new grpc.Metadata(), { deadline: Date.now() + 5000 })
    const replies: StreamOutcome['replies'] = []
    call.on('data', (b: Buffer) => replies.push(streamMethod.responseDeserialize(b) as StreamOutcome['replies'][number]))
    call.on('status', (status: grpc.StatusObject) => {
      seen.set(status.code, (seen.get(status.code) ?? 0) + 1)
      resolve({ status: status.code, replies })
    })
    call.on('error', () => undefined) // the status says it
    for (const m of messages) call.write(Buffer.from(m))
    call.end()
  })
}

describe('gRPC PredictStream under hostile bytes', () => {
  const valid = new Uint8Array(streamMethod.requestSerialize(VALID.Predict!))

  it('random and mutated messages: each answered on the open stream, BAD_REQUEST when it does not decode', async () => {
    const message = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat()).map(([at, value, cut]) => {
        const bytes = new Uint8Array(valid)
        bytes[at % bytes.length] = value
        return bytes.subarray(0, cut % (bytes.length + 1))
      }),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 8 }), async (messages) => {
        const { status, replies } = await sendStream(messages)
        expect(status).toBe(grpc.status.OK)
        expect(replies).toHaveLength(messages.length)
        const refused = replies.filter((r) => r.error?.code === 'BAD_REQUEST').length
        expect(refused).toBeGreaterThanOrEqual(messages.filter((m) => undecodable(streamMethod, m)).length)
      }),
      { numRuns: 60 },
    )
  })

  it('a message over grpc_max_receive_bytes ends the call RESOURCE_EXHAUSTED', async () => {
    const big = new Uint8Array(70_000)
    big.set([0x0a, 0xeb, 0xa2, 0x04])
    expect((await sendStream([big])).status).toBe(GrpcStatus.RESOURCE_EXHAUSTED)
  })
})

describe('after the fuzzing', () => {
  it('the server still answers a real predict', async () => {
    const res = await unary(h.gatewayClient, 'Predict', { ensemble: 'cancer', inputs: { input: { fp32_data: Array.from({ length: 30 }, () => 0.5), shape: [1, 30] } } })
    expect(res).toMatchObject({ ensemble: 'cancer' })
  })
})

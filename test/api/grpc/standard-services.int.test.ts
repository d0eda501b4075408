// The standard services beside ours, through the real server: a proto3 string that is not
// UTF-8 in a grpc.health.v1.Health or server reflection request is INVALID_ARGUMENT
// (specserve-code BAD_REQUEST) naming the field, as on our own services, where they read it
// with U+FFFD in its place (a health Check NOT_FOUND, a Watch of SERVICE_UNKNOWN left open, a
// reflection lookup of a symbol never sent).
import { createRequire } from 'node:module'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { loadSync, type MethodDefinition } from '@grpc/proto-loader'
import { protoPath as healthProtoPath } from 'grpc-health-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startHarness, trailerCode, type CallError, type Harness } from './harness.ts'

type Method = MethodDefinition<object, object>
const health = loadSync(healthProtoPath, { keepCase: true, enums: String })['grpc.health.v1.Health'] as unknown as Record<'Check' | 'Watch', Method>
const reflectionDir = createRequire(import.meta.url).resolve('@grpc/reflection/package.json').replace(/package\.json$/, '')
const reflectionOf = (version: 'v1' | 'v1alpha'): Method =>
  (loadSync(join(reflectionDir, `build/proto/grpc/reflection/${version}/reflection.proto`), { keepCase: true, oneofs: true })[`grpc.reflection.${version}.ServerReflection`] as unknown as Record<string, Method>).ServerReflectionInfo!

const raw = (b: Buffer): Buffer => b
/** `request` encoded by `method`, with a byte 0xff (never in UTF-8) in place of the marker's first letter. */
function poisoned(method: Method, request: object): Buffer {
  const bytes = Buffer.from(method.requestSerialize(request))
  bytes[bytes.indexOf('QQQ')] = 0xff
  return bytes
}

const refusal = (field: string): RegExp => new RegExp(`^request message does not decode: ${field.replaceAll('.', '\\.')} is not valid UTF-8 \\(at byte \\d+\\): proto3 strings are UTF-8$`)

function expectRefused(err: CallError, field: string): void {
  expect(err.code).toBe(grpc.status.INVALID_ARGUMENT)
  expect(trailerCode(err)).toBe('BAD_REQUEST')
  expect(err.details).toMatch(refusal(field))
}

let h: Harness
let client: grpc.Client
beforeAll(async () => {
  h = await startHarness()
  client = new grpc.Client(h.address, grpc.credentials.createInsecure())
})
afterAll(async () => {
  client?.close()
  await h?.close()
})

const check = (bytes: Buffer): Promise<Buffer> =>
  new Promise((resolve, reject) => client.makeUnaryRequest(health.Check.path, raw, raw, bytes, (err, res) => (err ? reject(err) : resolve(res!))))

/** The first thing a stream does, a message or its end with an error status; the call is cancelled after it. */
function firstOf(call: grpc.ClientReadableStream<Buffer>): Promise<{ data: Buffer } | { error: CallError }> {
  return new Promise((resolve) => {
    call.once('data', (data: Buffer) => (resolve({ data }), call.cancel()))
    call.once('error', (error: CallError) => resolve({ error }))
  })
}

describe('grpc.health.v1.Health', () => {
  it('Check: a service name that is not UTF-8 is INVALID_ARGUMENT naming the field', async () => {
    const err = await check(poisoned(health.Check, { service: 'QQQ' })).then(() => undefined, (e: CallError) => e)
    expectRefused(err!, 'service')
  })

  it('Check: the names it knows, and U+FFFD sent as UTF-8, are read as before', async () => {
    expect(health.Check.responseDeserialize(await check(Buffer.from(health.Check.requestSerialize({ service: '' }))))).toEqual({ status: 'SERVING' })
    const unknown = await check(Buffer.from(health.Check.requestSerialize({ service: 'a\ufffdb' }))).then(() => undefined, (e: CallError) => e)
    expect(unknown!.code).toBe(grpc.status.NOT_FOUND)
  })

  it('Watch: a service name that is not UTF-8 ends the call INVALID_ARGUMENT naming the field, nothing sent', async () => {
    const first = await firstOf(client.makeServerStreamRequest(health.Watch.path, raw, raw, poisoned(health.Watch, { service: 'QQQ' })))
    expect(first).toHaveProperty('error')
    expectRefused((first as { error: CallError }).error, 'service')
    // A name it knows is watched as before.
    const known = await firstOf(client.makeServerStreamRequest(health.Watch.path, raw, raw, Buffer.from(health.Watch.requestSerialize({ service: '' }))))
    expect(health.Watch.responseDeserialize((known as { data: Buffer }).data)).toEqual({ status: 'SERVING' })
  })
})

describe('server reflection', () => {
  const CASES: [string, object][] = [
    ['file_containing_symbol', { file_containing_symbol: 'QQQ' }],
    ['file_by_filename', { file_by_filename: 'QQQ.proto' }],
    ['list_services', { list_services: 'QQQ' }],
    ['host', { host: 'QQQ', list_services: '*' }],
    ['file_containing_extension.containing_type', { file_containing_extension: { containing_type: 'QQQ', extension_number: 1 } }],
  ]

  for (const version of ['v1', 'v1alpha'] as const) {
    const method = reflectionOf(version)
    it.each(CASES)(`${version}: %s not UTF-8 ends the stream INVALID_ARGUMENT naming it, after the answers before it`, async (field, request) => {
      const call = client.makeBidiStreamRequest(method.path, raw, raw)
      const answers: { list_services_response?: unknown; error_response?: unknown }[] = []
      const ended = new Promise<CallError | undefined>((resolve) => {
        call.on('data', (b: Buffer) => {
          answers.push(method.responseDeserialize(b) as (typeof answers)[number])
          // Under the old reading, the second message was answered (an error_response): it ends here.
          if (answers.length === 2) call.cancel()
        })
        call.once('error', (err: CallError) => resolve(err))
        call.once('end', () => resolve(undefined))
      })
      call.write(Buffer.from(method.requestSerialize({ list_services: '*' })))
      call.write(poisoned(method, request))
      call.write(Buffer.from(method.requestSerialize({ list_services: '*' })))
      const err = await ended
      expect(answers).toEqual([expect.objectContaining({ list_services_response: expect.anything() })])
      expectRefused(err!, field)
    })
  }
})

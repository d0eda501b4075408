// Server reflection serves what the .proto files say, as protoc would describe them: a
// client asks for a file by the path it imports, and a proto3 `optional` field is flagged as
// one (code generated from reflection gets an optional field, not a oneof wrapper).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { fromJSON, loadSync } from '@grpc/proto-loader'
import { protoPath as healthProtoPath } from 'grpc-health-check'
import protobuf from 'protobufjs'
import descriptor from 'protobufjs/ext/descriptor/index.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addReflection } from '../../../src/api/grpc/reflection.ts'
import { PROTO_DIR, reflectedDefinition } from '../../../src/proto/index.ts'

interface Field { name: string; oneofIndex?: number; proto3Optional?: boolean }
interface Message { name: string; field: Field[]; oneofDecl: { name: string }[]; nestedType: Message[] }
interface File { name: string; messageType: Message[]; enumType: { name: string }[]; service: { name: string }[] }
const { FileDescriptorProto } = descriptor as unknown as { FileDescriptorProto: { decode(b: Uint8Array): File } }

type Reply = { message_response: string; file_descriptor_response?: { file_descriptor_proto: Buffer[] }; error_response?: { error_code: number } }
type Reflect = (request: object) => Promise<Reply>

/**
 * A reflection server over the given definition, and a v1 client asking it one thing per call;
 * `builds` counts the times the definition was asked for.
 */
async function reflectionOver(definition: ReturnType<typeof reflectedDefinition>): Promise<{ ask: Reflect; close(): void; builds: () => number }> {
  const server = new grpc.Server()
  let builds = 0
  addReflection(server, () => (builds++, definition))
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  )
  const dir = createRequire(import.meta.url).resolve('@grpc/reflection/package.json').replace(/package\.json$/, '')
  const pkg = grpc.loadPackageDefinition(loadSync(join(dir, 'build/proto/grpc/reflection/v1/reflection.proto'), { keepCase: true, oneofs: true }))
  const Client = (pkg as unknown as { grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } } }).grpc.reflection.v1.ServerReflection
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<object, Reply> }
  const ask: Reflect = (request) =>
    new Promise((resolve, reject) => {
      const call = client.ServerReflectionInfo()
      call.once('data', resolve).once('error', reject)
      call.end(request)
    })
  return { ask, close: () => (client.close(), server.forceShutdown()), builds: () => builds }
}

const files = (reply: Reply): File[] => (reply.file_descriptor_response?.file_descriptor_proto ?? []).map((b) => FileDescriptorProto.decode(b))
const message = (file: File, name: string): Message => file.messageType.find((m) => m.name === name)!
const allMessages = (messages: Message[]): Message[] => messages.flatMap((m) => [m, ...allMessages(m.nestedType)])
/** The field's oneof, if it has one (a decoded field without one reads 0 from the prototype). */
const oneofOf = (m: Message, f: Field): string | undefined => (Object.hasOwn(f, 'oneofIndex') ? m.oneofDecl[f.oneofIndex!]!.name : undefined)

let reflection: Awaited<ReturnType<typeof reflectionOver>>
beforeAll(async () => {
  reflection = await reflectionOver(reflectedDefinition())
})
afterAll(() => reflection?.close())

/** Each reflected file, and where its source is (the health proto ships under another path). */
const SOURCES = {
  'specserve/v1/gateway.proto': join(PROTO_DIR, 'specserve/v1/gateway.proto'),
  'inference/grpc_service.proto': join(PROTO_DIR, 'inference/grpc_service.proto'),
  'grpc/health/v1/health.proto': healthProtoPath,
}

describe('server reflection', () => {
  it('finds each file by the path a client imports, holding what that .proto declares', async () => {
    for (const [path, source] of Object.entries(SOURCES)) {
      const reply = await reflection.ask({ file_by_filename: path })
      expect(reply.message_response, path).toBe('file_descriptor_response')
      const [file] = files(reply)
      expect(file!.name).toBe(path)
      // The same top-level declarations as the source, so the name is not a lie.
      const parsed = protobuf.parse(readFileSync(source, 'utf8'), { keepCase: true })
      const declared = parsed.root.lookup(parsed.package!) as protobuf.Namespace
      const names = (kind: new (...a: never[]) => unknown) => declared.nestedArray.filter((n) => n instanceof kind).map((n) => n.name).sort()
      expect(file!.messageType.map((m) => m.name).sort(), path).toEqual(names(protobuf.Type))
      expect(file!.service.map((s) => s.name).sort(), path).toEqual(names(protobuf.Service))
      expect(file!.enumType.map((e) => e.name).sort(), path).toEqual(names(protobuf.Enum))
      // Every proto3 `optional` field is flagged, and only those.
      const optional = (type: protobuf.Type): string[] => [
        ...type.fieldsArray.filter((f) => f.options?.['proto3_optional']).map((f) => `${type.name}.${f.name}`),
        ...type.nestedArray.filter((n) => n instanceof protobuf.Type).flatMap((n) => optional(n)),
      ]
      const flagged = allMessages(file!.messageType).flatMap((m) => m.field.filter((f) => f.proto3Optional).map((f) => `${m.name}.${f.name}`))
      expect(flagged.sort(), path).toEqual(declared.nestedArray.filter((n) => n instanceof protobuf.Type).flatMap((n) => optional(n)).sort())
    }
    const { error_response } = await reflection.ask({ file_by_filename: 'specserve_v1.proto' })
    expect(error_response?.error_code).toBe(grpc.status.NOT_FOUND)
  })

  it('describes budget_ms and chosen as proto3 optional fields in their synthetic oneofs', async () => {
    const [file] = files(await reflection.ask({ file_containing_symbol: 'specserve.v1.PredictRequest' }))
    for (const [type, name] of [['PredictRequest', 'budget_ms'], ['Decision', 'chosen']] as const) {
      const m = message(file!, type)
      const field = m.field.find((f) => f.name === name)!
      expect(field.proto3Optional, `${type}.${name}`).toBe(true)
      expect(oneofOf(m, field)).toBe(`_${name}`)
    }
    // A real oneof's members are not optional fields.
    const stream = message(file!, 'PredictStreamResponse')
    expect(stream.field.filter((f) => oneofOf(stream, f) === 'outcome').map((f) => f.proto3Optional)).toEqual([false, false])
  })

  it('is built on the first reflection call, once: a start that nobody lists does not pay for it', async () => {
    const other = await reflectionOver(reflectedDefinition())
    try {
      expect(other.builds()).toBe(0)
      const [file] = files(await other.ask({ file_by_filename: 'specserve/v1/gateway.proto' }))
      expect(file?.service.map((s) => s.name)).toEqual(['Gateway'])
      await other.ask({ list_services: '' })
      expect(other.builds()).toBe(1)
    } finally {
      other.close()
    }
  })

  it('lists synthetic oneofs after the real ones, as protoc does', async () => {
    const source = `syntax = "proto3"; package t;
      message M { optional int32 a = 1; oneof real { string b = 2; int32 c = 3; } optional string d = 4; string e = 5; }
      service S { rpc Get(M) returns (M) {} }`
    const other = await reflectionOver(fromJSON(protobuf.parse(source, { keepCase: true }).root.toJSON(), { keepCase: true }))
    try {
      const [file] = files(await other.ask({ file_containing_symbol: 't.M' }))
      const m = message(file!, 'M')
      expect(m.oneofDecl.map((o) => o.name)).toEqual(['real', '_a', '_d'])
      expect(m.field.map((f) => [f.name, oneofOf(m, f), f.proto3Optional])).toEqual([
        ['a', '_a', true],
        ['b', 'real', false],
        ['c', 'real', false],
        ['d', '_d', true],
        ['e', undefined, false],
      ])
    } finally {
      other.close()
    }
  })
})

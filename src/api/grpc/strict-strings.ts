// proto-loader (protobufjs) reads a proto3 `string` field's bytes with U+FFFD in place of
// what is not UTF-8: a model name sent to ModelMetadata, ModelReady, GetEnsemble or GetModel
// would be read altered, where the hand codecs (predict-codec.ts, infer-codec.ts) refuse
// it, as REST refuses a body that is not UTF-8. So the methods proto-loader decodes have
// their request's bytes walked once it has: every string field, in nested messages and map
// entries too, along the request type's descriptor, must be UTF-8, else ProtoError naming
// the field, answered INVALID_ARGUMENT (BAD_REQUEST) as a message that does not decode
// (tolerantService). These methods are not the hot path: the walk is a second read of a
// few bytes.
import type { MessageTypeDefinition, ServiceDefinition } from '@grpc/proto-loader'
import descriptor from 'protobufjs/ext/descriptor/index.js'
import { ProtoReader, WireType } from '../../tensor/index.ts'

/** google.protobuf.FieldDescriptorProto.Type's values read here. */
const TYPE_STRING = 9
const TYPE_MESSAGE = 11

interface FieldDescriptor {
  name: string
  number: number
  type: number
  typeName: string
}

interface MessageDescriptor {
  name: string
  field: FieldDescriptor[]
  nestedType: MessageDescriptor[]
}

interface FileDescriptor {
  package: string
  messageType: MessageDescriptor[]
  service: { name: string; method: { name: string; inputType: string }[] }[]
}

const { FileDescriptorProto } = descriptor as unknown as { FileDescriptorProto: { decode(bytes: Uint8Array): FileDescriptor } }

/** A message's fields to look at, by number: a string (checked) or a message (walked, its fields resolved on first use). */
type Fields = ReadonlyMap<number, { readonly name: string; readonly message: (() => Fields) | null }>

/**
 * The service with every method's request checked, once proto-loader has decoded it, for
 * string fields that are not UTF-8. A refusal names the field as the descriptor does, through
 * `fieldName` (for a proto loaded without keepCase, whose descriptors carry camelCase names).
 */
export function strictStrings(service: ServiceDefinition, fieldName: (name: string) => string = (name) => name): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {}
  for (const [name, method] of Object.entries(service)) {
    const decode = method.requestDeserialize
    // Built on the method's first call, as reflection is (a start decodes no descriptor).
    let fields: Fields | undefined
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        const message = decode(bytes)
        fields ??= requestFields(method.path, (method.requestType as MessageTypeDefinition<object, object>).fileDescriptorProtos, fieldName)
        // After decode: protobufjs has refused what it cannot read, messages nested past 100 levels included.
        walk(new ProtoReader(bytes), fields, '')
        return message
      },
    }
  }
  return out as ServiceDefinition
}

function walk(r: ProtoReader, fields: Fields, prefix: string): void {
  while (!r.done) {
    const tag = r.tag()
    const field = fields.get(tag >>> 3)
    if (field === undefined || (tag & 7) !== WireType.LEN) {
      r.skip(tag & 7, tag >>> 3)
      continue
    }
    if (field.message === null) {
      r.string(prefix + field.name)
      continue
    }
    const [start, end] = r.span()
    walk(new ProtoReader(r.buf, start, end), field.message(), `${prefix}${field.name}.`)
  }
}

/** Each file descriptor decoded once, whichever methods' requests it declares. */
const decodedFiles = new WeakMap<Buffer, FileDescriptor>()
function decoded(bytes: Buffer): FileDescriptor {
  let file = decodedFiles.get(bytes)
  if (!file) decodedFiles.set(bytes, (file = FileDescriptorProto.decode(bytes)))
  return file
}

/** The fields of the request type of the method at `path` ("/package.Service/Method"), from the files proto-loader describes it in. */
function requestFields(path: string, files: readonly Buffer[], fieldName: (name: string) => string): Fields {
  const [, serviceName = '', methodName = ''] = path.split('/')
  const types = new Map<string, MessageDescriptor>()
  let input: string | undefined
  for (const bytes of files) {
    const file = decoded(bytes)
    const scope = file.package ? `${file.package}.` : ''
    const index = (message: MessageDescriptor, prefix: string): void => {
      types.set(prefix + message.name, message)
      for (const nested of message.nestedType) index(nested, `${prefix}${message.name}.`)
    }
    for (const message of file.messageType) index(message, scope)
    for (const s of file.service) if (scope + s.name === serviceName) input ??= s.method.find((m) => m.name === methodName)?.inputType
  }
  if (input === undefined) throw new Error(`no descriptor of ${path}'s request type`)
  const resolved = new Map<string, Fields>()
  const fieldsOf = (fullName: string): Fields => {
    const known = resolved.get(fullName)
    if (known) return known
    const message = types.get(fullName)
    if (!message) throw new Error(`no descriptor of message type ${fullName}`)
    const map = new Map<number, { name: string; message: (() => Fields) | null }>()
    resolved.set(fullName, map)
    for (const f of message.field) {
      if (f.type === TYPE_STRING) map.set(f.number, { name: fieldName(f.name), message: null })
      else if (f.type === TYPE_MESSAGE) {
        const type = resolve(types, f.typeName, fullName)
        map.set(f.number, { name: fieldName(f.name), message: () => fieldsOf(type) })
      }
    }
    return map
  }
  return fieldsOf(input.replace(/^\./, ''))
}

/** A type name as protobuf scopes it: absolute with a leading dot, else looked up from the innermost enclosing scope out (protobufjs writes map entries and nested types by their bare names). */
function resolve(types: ReadonlyMap<string, MessageDescriptor>, name: string, scope: string): string {
  if (name.startsWith('.')) return name.slice(1)
  for (let at = scope; ; at = at.slice(0, Math.max(0, at.lastIndexOf('.')))) {
    const candidate = at ? `${at}.${name}` : name
    if (types.has(candidate)) return candidate
    if (!at) throw new Error(`no message type ${name} in scope ${scope}`)
  }
}

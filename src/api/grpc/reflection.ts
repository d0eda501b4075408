// Server reflection over our package definition. proto-loader's descriptors (built by
// protobufjs) name a map field's entry type "Field" where protoc and every strict
// reflection client (grpcurl, Go protobuf) require "FieldEntry"; we rename them here,
// once at startup, so `grpcurl list/describe/invoke` work without proto files.
import type { PackageDefinition } from '@grpc/proto-loader'
import descriptor from 'protobufjs/ext/descriptor/index.js'

interface MessageDescriptor {
  name: string
  field: { name: string; typeName?: string }[]
  nestedType: MessageDescriptor[]
  options?: { mapEntry?: boolean } | null
}

interface FileDescriptor {
  messageType: MessageDescriptor[]
}

const { FileDescriptorProto } = descriptor as unknown as {
  FileDescriptorProto: { decode(bytes: Uint8Array): FileDescriptor; encode(message: FileDescriptor): { finish(): Uint8Array } }
}

/** A copy of the definition whose file descriptors have protoc-style map entry names. */
export function withMapEntryNames(definition: PackageDefinition): PackageDefinition {
  const fixed = new Map<Buffer, Buffer>()
  const fix = (bytes: Buffer): Buffer => {
    let out = fixed.get(bytes)
    if (!out) {
      const file = FileDescriptorProto.decode(bytes)
      file.messageType.forEach(renameMapEntries)
      out = Buffer.from(FileDescriptorProto.encode(file).finish())
      fixed.set(bytes, out)
    }
    return out
  }
  const copy: PackageDefinition = {}
  for (const [name, entry] of Object.entries(definition)) {
    const files = (entry as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos
    copy[name] = files ? ({ ...entry, fileDescriptorProtos: files.map(fix) } as PackageDefinition[string]) : entry
  }
  return copy
}

function renameMapEntries(message: MessageDescriptor): void {
  for (const nested of message.nestedType) {
    if (!nested.options?.mapEntry) {
      renameMapEntries(nested)
      continue
    }
    const field = message.field.find((f) => f.typeName === nested.name)
    if (!field) continue
    nested.name = `${camel(field.name)}Entry`
    field.typeName = nested.name
  }
}

/** protoc's rule: capitalize, drop underscores, capitalize the letter after each. */
const camel = (name: string): string => name.replace(/(?:^|_)([a-z0-9])/g, (_m, c: string) => c.toUpperCase())

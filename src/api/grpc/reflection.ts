// Server reflection over our package definition. proto-loader's descriptors (built by
// protobufjs) differ from what protoc makes of the same .proto files, and strict reflection
// clients (grpcurl, Go protobuf, code generators) follow protoc; we fix them here, once at
// startup, so `grpcurl list/describe/invoke` work without proto files and say what they say:
// - a map field's entry type is "Field", not protoc's "FieldEntry";
// - a proto3 `optional` field comes out as a plain member of its synthetic oneof
//   (protobufjs writes the flag under the wrong key), so clients see `oneof _x { x }`;
// - each file is named after its package ("specserve_v1.proto"), so `file_by_filename`
//   of the path a client imports is NOT_FOUND.
import type { Server, UntypedServiceImplementation } from '@grpc/grpc-js'
import type { PackageDefinition } from '@grpc/proto-loader'
import { ReflectionService } from '@grpc/reflection'
import descriptor from 'protobufjs/ext/descriptor/index.js'
import { SERVED_PACKAGE_FILES } from '../../proto/index.ts'
import { strictService } from './standard-services.ts'

interface FieldDescriptor {
  name: string
  typeName?: string
  oneofIndex?: number
  proto3Optional?: boolean
}

interface MessageDescriptor {
  name: string
  field: FieldDescriptor[]
  nestedType: MessageDescriptor[]
  oneofDecl: { name: string }[]
  options?: { mapEntry?: boolean } | null
}

interface FileDescriptor {
  name: string
  dependency: string[]
  messageType: MessageDescriptor[]
}

const { FileDescriptorProto } = descriptor as unknown as {
  FileDescriptorProto: { decode(bytes: Uint8Array): FileDescriptor; encode(message: FileDescriptor): { finish(): Uint8Array } }
}

/**
 * The file each package we reflect is declared in, as clients import it. protobufjs makes
 * one descriptor per package, so this holds while each of those packages is one file
 * (test/api/grpc/reflection.int.test.ts checks every reflected file against its .proto).
 */
const FILE_OF_PACKAGE: Readonly<Record<string, string>> = {
  ...SERVED_PACKAGE_FILES,
  // grpc-health-check ships it as health/v1/health.proto; grpc (and its Go and Java
  // servers' reflection) calls it this.
  'grpc.health.v1': 'grpc/health/v1/health.proto',
}

/** protobufjs's name for a package's file → the real one (names and dependencies alike). */
const REAL_NAMES = new Map(Object.entries(FILE_OF_PACKAGE).map(([pkg, path]) => [`${pkg.replaceAll('.', '_')}.proto`, path]))
const realName = (name: string): string => REAL_NAMES.get(name) ?? name

/**
 * Adds server reflection (v1 and v1alpha) over `definition()`, built on the first reflection
 * call: building it loads, decodes and fixes every descriptor of the served packages, about
 * 0.1 s of a start's CPU that a gateway nobody lists never needs.
 */
export function addReflection(server: Pick<Server, 'addService'>, definition: () => PackageDefinition): void {
  let built: Map<string, UntypedServiceImplementation> | undefined
  const implOf = (path: string): UntypedServiceImplementation => {
    if (!built) {
      const impls = new Map<string, UntypedServiceImplementation>()
      new ReflectionService(withMapEntryNames(definition())).addToServer({ addService: (d, impl) => void impls.set(servicePath(d), impl) })
      built = impls
    }
    return built.get(path)!
  }
  // The same services' definitions, from a reflection of no package: cheap.
  new ReflectionService({}).addToServer({
    addService: (d, impl) => {
      const path = servicePath(d)
      const methods = Object.keys(impl).map((name) => [name, (...args: unknown[]) => (implOf(path)[name] as (...a: unknown[]) => unknown)(...args)])
      // Its requests' strings checked for UTF-8, as ours are (standard-services.ts).
      server.addService(...strictService(d, Object.fromEntries(methods) as UntypedServiceImplementation))
    },
  })
}

/** A service's name as its methods' paths carry it (`/grpc.reflection.v1.ServerReflection/…`). */
const servicePath = (definition: object): string => (Object.values(definition)[0] as { path: string }).path.split('/')[1]!

/** A copy of the definition whose file descriptors say what protoc's would (see above). */
export function withMapEntryNames(definition: PackageDefinition): PackageDefinition {
  const fixed = new Map<Buffer, Buffer>()
  const fix = (bytes: Buffer): Buffer => {
    let out = fixed.get(bytes)
    if (!out) {
      const file = FileDescriptorProto.decode(bytes)
      file.name = realName(file.name)
      file.dependency = file.dependency.map(realName)
      file.messageType.forEach(renameMapEntries)
      file.messageType.forEach(markProto3Optional)
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

/**
 * Flags proto3 `optional` fields: protobufjs gives each one a oneof of its own named
 * "_<field>" (as protoc does), so a field alone in such a oneof is one. protoc also lists
 * these synthetic oneofs after every real one, and strict clients reject a descriptor that
 * does not, so they are moved there (protobufjs keeps declaration order).
 */
function markProto3Optional(message: MessageDescriptor): void {
  message.nestedType.forEach(markProto3Optional)
  // A decoded field without a oneof still reads oneofIndex 0 from the prototype.
  const inOneof = message.field.filter((f) => Object.hasOwn(f, 'oneofIndex'))
  const synthetic = message.oneofDecl.map((oneof, i) => {
    const members = inOneof.filter((f) => f.oneofIndex === i)
    return members.length === 1 && oneof.name === `_${members[0]!.name}`
  })
  if (!synthetic.includes(true)) return
  const order = [...synthetic.keys()].sort((a, b) => Number(synthetic[a]) - Number(synthetic[b]) || a - b)
  message.oneofDecl = order.map((i) => message.oneofDecl[i]!)
  for (const field of inOneof) {
    if (synthetic[field.oneofIndex!]) field.proto3Optional = true
    field.oneofIndex = order.indexOf(field.oneofIndex!)
  }
}

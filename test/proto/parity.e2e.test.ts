// Our .proto files are written by us from the published API descriptions; standard clients
// interoperate only if every package, message, field number and type, and every service
// method, is the published one. This holds each of our files against the compiled protos
// the projects themselves publish on PyPI (read through Python's descriptors, in the venvs
// the e2e tests provision): TF Serving's tensorflow-serving-api and TensorFlow's own
// protos, NVIDIA's tritonclient and MLServer (Open Inference Protocol, package inference),
// and seldon-core.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import protobuf from 'protobufjs'
import { describe, expect, it } from 'vitest'
import { root } from '../helpers.ts'
import { provisionMlserver, provisionSeldon, provisionTfServingStandIn } from '../e2e/peers.ts'

interface Published {
  readonly messages: Record<string, Record<string, [number, string, boolean]>>
  readonly services: Record<string, Record<string, [string, string]>>
}

function published(python: string, modules: readonly string[]): Published {
  return JSON.parse(execFileSync(python, [join(root, 'test/proto/descriptors.py'), ...modules], { encoding: 'utf8' })) as Published
}

/** Our files, in the same shape: messages and services under `prefix`, by full name. */
function ours(files: readonly string[], prefix: string): Published {
  const r = new protobuf.Root()
  r.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(root, 'proto', target))
  r.loadSync([...files], { keepCase: true })
  r.resolveAll()
  const out: { messages: Published['messages']; services: Published['services'] } = { messages: {}, services: {} }
  const name = (o: protobuf.ReflectionObject): string => o.fullName.slice(1)
  const typeOf = (f: protobuf.Field): string => {
    const t = f.resolvedType ? name(f.resolvedType) : f.type
    return f instanceof protobuf.MapField ? `map<${f.keyType},${t}>` : t
  }
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type && name(o).startsWith(prefix)) {
        out.messages[name(o)] = Object.fromEntries(o.fieldsArray.map((f) => [f.name, [f.id, typeOf(f), f.repeated && !(f instanceof protobuf.MapField)]]))
      }
      if (o instanceof protobuf.Service && name(o).startsWith(prefix)) {
        out.services[name(o)] = Object.fromEntries(o.methodsArray.map((m) => [m.name, [name(m.resolvedRequestType!), name(m.resolvedResponseType!)]]))
      }
      if (o instanceof protobuf.Namespace) walk(o)
    }
  }
  walk(r)
  return out
}

/**
 * Fields we declare as bytes where the published type is a message serving never sends: the
 * same wire type (length-delimited), so the bytes hold that message, undecoded.
 */
const OPAQUE = new Set(['tensorflow.TensorProto.resource_handle_val', 'tensorflow.TensorProto.variant_val'])

/**
 * Where ours differs from the published protos. Every message, field and method we declare
 * must be published as is by at least one source (OIP has two: Triton's and MLServer's, which
 * adds parameters maps), and no source may use one of our field numbers for something else.
 * We may declare fewer fields or methods.
 */
function differences(mine: Published, sources: readonly Published[]): string[] {
  const out: string[] = []
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
  for (const [message, fields] of Object.entries(mine.messages)) {
    const published = sources.flatMap((s) => (s.messages[message] ? [s.messages[message]] : []))
    if (!published.length) {
      out.push(`${message}: not a published message`)
      continue
    }
    for (const [field, shape] of Object.entries(fields)) {
      const where = `${message}.${field}`
      const theirs = published.flatMap((p) => (p[field] ? [p[field]] : []))
      const opaque = OPAQUE.has(where) && shape[1] === 'bytes' && theirs.some((t) => t[0] === shape[0] && t[2] === shape[2])
      if (!opaque && !theirs.some((t) => same(t, shape))) out.push(`${where}: ours ${JSON.stringify(shape)}, published ${JSON.stringify(theirs)}`)
      for (const p of published) {
        for (const [other, [number]] of Object.entries(p)) if (number === shape[0] && other !== field) out.push(`${where}: number ${number} is published as ${other}`)
      }
    }
  }
  for (const [service, methods] of Object.entries(mine.services)) {
    for (const [method, types] of Object.entries(methods)) {
      if (!sources.some((s) => same(s.services[service]?.[method], types))) out.push(`${service}/${method}: ours ${JSON.stringify(types)}, not published so`)
    }
  }
  return out
}

function expectPublished(mine: Published, ...sources: Published[]): void {
  expect(Object.keys(mine.messages).length).toBeGreaterThan(0)
  expect(differences(mine, sources)).toEqual([])
}

describe('our protos match the published ones', () => {
  it('TF Serving (tensorflow-serving-api) and TensorFlow (tensorflow-protobuf): every message and method we declare', () => {
    const python = join(provisionTfServingStandIn(), 'bin', 'python')
    const apis = ['prediction_service', 'predict', 'classification', 'regression', 'input', 'get_model_metadata', 'model'].map((m) => `tensorflow_serving.apis.${m}_pb2`)
    const core = ['framework.tensor', 'framework.tensor_shape', 'framework.types', 'protobuf.meta_graph', 'example.example', 'example.feature'].map((m) => `tensorflow.core.${m}_pb2`)
    const theirs = published(python, [...apis, ...core])
    const mine = ours(['tensorflow/serving/prediction_service.proto'], 'tensorflow.')
    expectPublished(mine, theirs)
    // Classify and Regress are there, with the messages TF Serving's own clients send.
    expect(mine.services['tensorflow.serving.PredictionService']).toMatchObject({ Classify: expect.any(Array), Regress: expect.any(Array), Predict: expect.any(Array) })
  }, 900_000)

  it('Open Inference Protocol V2 (tritonclient and MLServer, package inference): every message, and every method of GRPCInferenceService', () => {
    const tritonclient = execFileSync(join(root, 'scripts/tritonclient-env.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
    const triton = published(tritonclient, ['tritonclient.grpc.service_pb2'])
    const mlserver = published(join(provisionMlserver(), 'bin', 'python'), ['mlserver.grpc.dataplane_pb2'])
    const mine = ours(['inference/grpc_service.proto'], 'inference.')
    expectPublished(mine, triton, mlserver)
    // The V2 methods are all there, and Triton's ModelStreamInfer (Triton adds more of its own beyond them).
    expect(Object.keys(mine.services['inference.GRPCInferenceService'] ?? {}).sort()).toEqual(
      ['ModelInfer', 'ModelMetadata', 'ModelReady', 'ModelStreamInfer', 'ServerLive', 'ServerMetadata', 'ServerReady'].sort(),
    )
  }, 900_000)

  it('Seldon Core v1 (seldon-core): SeldonMessage and the Seldon service', () => {
    const python = join(provisionSeldon(), 'bin', 'python')
    const theirs = published(python, ['seldon_core.proto.prediction_pb2'])
    const mine = ours(['seldon/prediction.proto'], 'seldon.')
    expectPublished(mine, theirs)
    expect(mine.services['seldon.protos.Seldon']).toMatchObject({ Predict: ['seldon.protos.SeldonMessage', 'seldon.protos.SeldonMessage'] })
  }, 900_000)
})

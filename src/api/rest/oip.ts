// Open Inference Protocol V2 over REST, on the same fastify app as the native API:
// health, server and model metadata, readiness, and infer (JSON tensors, plus the
// binary tensor data extension that tritonclient uses by default). Lives in its own
// encapsulated context so its body parser and `{"error": "..."}` errors stay here.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError, inputFailure } from '../../errors.ts'
import type { Gateway } from '../../gateway.ts'
import { inputSpec, type EnsembleRuntime } from '../../starter/ensemble.ts'
import { checkTensor, describe, fromOipJson, fromRaw, readOipHeader, toOipJson, toRaw, type Tensor, type TensorMap } from '../../tensor/index.ts'
import { mapError, mapResultError } from '../errors.ts'
import { parseJsonBytes, type JsonWords } from '../json-bytes.ts'
import { readBudget, readRequestId } from '../native/request.ts'
import { ENSEMBLE_VERSION, modelMetadata, modelReady, requestedOutputs, resultParameters, serverMetadata, V2_BUDGET, v2Model } from '../oip/model.ts'
import { forCaller } from '../../security/redact.ts'
import { admitRouted, trackRun } from './admission.ts'
import { encodedBody } from './bodies.ts'
import { registerNotFound } from './methods.ts'

/** Header of the binary tensor data extension: length of the JSON part of the body. */
const HEADER_LENGTH = 'inference-header-content-length'
const DIGITS = /^\d+$/
/** How the infer route's refusals of its JSON name it. */
const INFER_BODY: JsonWords = { subject: 'body', notJson: 'body is not valid JSON', empty: 'empty body: expected a JSON inference request' }

interface ModelParams {
  name: string
  version?: string
}

interface V2Tensor {
  name?: unknown
  shape?: unknown
  datatype?: unknown
  data?: unknown
  parameters?: { binary_data_size?: unknown; binary_data?: unknown } | null
}

interface V2InferBody {
  id?: unknown
  parameters?: Record<string, unknown> | null
  inputs?: unknown
  outputs?: unknown
}

export function registerOipRoutes(app: FastifyInstance, gateway: Gateway): void {
  // Named: @fastify/otel names each route's handler span after its plugin (an arrow gets its source text).
  void app.register(
    async function oipRoutes(v2) {
      // Bodies are JSON, or JSON followed by raw tensors: parse them here, whatever the content
      // type says; never compressed ones (bodies.ts).
      v2.removeAllContentTypeParsers()
      v2.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => done(encodedBody(request) ?? null, body))
      v2.setErrorHandler((err, request, reply) => {
        const mapped = mapError(err)
        if (mapped.code === 'INTERNAL') request.server.log.error({ err, reqId: request.id }, 'unexpected error')
        void reply.status(mapped.http).send({ error: mapped.message, code: mapped.code })
      })
      registerNotFound(v2, 'oip')

      v2.get('/', async () => serverMetadata())
      v2.get('/health/live', async () => ({ live: true }))
      // The spec reads health from the status code: 200 is true, 4xx is false.
      v2.get('/health/ready', async (_request, reply) => reply.status(gateway.readyForTraffic ? 200 : 400).send({ ready: gateway.readyForTraffic }))

      for (const base of ['/models/:name', '/models/:name/versions/:version']) {
        v2.get<{ Params: ModelParams }>(base, async (request) => modelMetadata(v2Model(gateway, request.params.name, request.params.version)))
        v2.get<{ Params: ModelParams }>(`${base}/ready`, async (request, reply) => {
          const ready = modelReady(gateway, request.params.name, request.params.version)
          return reply.status(ready ? 200 : 400).send({ name: request.params.name, ready })
        })
        v2.post<{ Params: ModelParams }>(`${base}/infer`, (request, reply) => infer(gateway, request, reply))
      }
    },
    { prefix: '/v2' },
  )
}

async function infer(gateway: Gateway, request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply): Promise<unknown> {
  const { name, version } = request.params
  admitRouted(gateway, reply, name)
  const ens = v2Model(gateway, name, version)
  const { body, binary } = parseBody(request)
  // In the order every frontend reads a request: the ensemble, the body, the id, the inputs, the budget.
  const id = readRequestId(body.id, request.headers['x-request-id'])
  const inputs = readInputs(ens, body.inputs, binary)
  const wanted = outputRequests(body)
  const names = requestedOutputs(ens, wanted.names)
  const budgetMs = readBudget(ens, inputs, body.parameters?.budget_ms, request.headers['x-budget-ms'], V2_BUDGET)
  const run = gateway.start({ id, ensemble: name, inputs, budgetMs }, true)
  trackRun(reply, run)
  const result = forCaller(await run.result, request.principal)
  if (result.error) {
    const mapped = mapResultError(result)
    // The id as every other frontend's failure carries it: a client that sent none can still match this to its record.
    return reply.status(mapped.http).send({ error: mapped.message, code: mapped.code, id: result.id, parameters: resultParameters(result) })
  }

  const outputs: unknown[] = []
  const chunks: Buffer[] = []
  if (result.outputs) {
    for (const out of names) {
      const tensor = result.outputs[out]
      if (!tensor) continue
      if (wanted.binary(out)) {
        const raw = toRaw(tensor)
        outputs.push({ name: out, datatype: tensor.datatype, shape: tensor.shape, parameters: { binary_data_size: raw.length } })
        chunks.push(raw)
      } else {
        outputs.push(toOipJson(out, tensor))
      }
    }
  }
  const response = { model_name: name, model_version: ENSEMBLE_VERSION, id, parameters: resultParameters(result), outputs }
  if (chunks.length === 0) return response
  const header = Buffer.from(JSON.stringify(response), 'utf8')
  return reply
    .header(HEADER_LENGTH, header.length)
    .type('application/octet-stream')
    .send(Buffer.concat([header, ...chunks]))
}

/** Splits a body into its JSON part and (binary extension) the raw tensor bytes after it. */
function parseBody(request: FastifyRequest): { body: V2InferBody; binary: Buffer | undefined } {
  const raw = request.body
  if (!Buffer.isBuffer(raw)) throw new GatewayError('BAD_REQUEST', INFER_BODY.empty)
  let json = raw
  let binary: Buffer | undefined
  const declared = request.headers[HEADER_LENGTH]
  if (declared !== undefined) {
    // Decimal digits only (x-budget-ms refuses hex alike): Number() would take `0x13b`, ` 315 `, `315.0`, `31.5e1` and `` (as 0).
    if (typeof declared !== 'string' || !DIGITS.test(declared)) throw new GatewayError('BAD_REQUEST', `${HEADER_LENGTH} must be a length in decimal digits, got ${describe(declared)}`)
    const n = Number(declared)
    if (!Number.isSafeInteger(n) || n > raw.length) throw new GatewayError('BAD_REQUEST', `${HEADER_LENGTH} ${describe(declared)} does not fit a ${raw.length}-byte body`)
    json = raw.subarray(0, n)
    binary = raw.subarray(n)
  }
  const body = parseJsonBytes(json, INFER_BODY)
  if (!isObject(body)) throw new GatewayError('BAD_REQUEST', 'body must be a JSON object: {"inputs": [...], "outputs"?: [...], "parameters"?: {...}}')
  checkParameters(body as V2InferBody)
  return { body: body as V2InferBody, binary }
}

const TENSOR_LISTS = ['inputs', 'outputs'] as const

const isObject = (value: unknown): value is object => value !== null && typeof value === 'object' && !Array.isArray(value)

/**
 * `parameters`, of the request and of each input and output, is an object when given (null
 * counts as none): a string or an array would be read as no parameters at all (no
 * budget_ms, no binary_data_size), so it is the body's shape that is wrong, BAD_REQUEST.
 */
function checkParameters(body: V2InferBody): void {
  notObject(body.parameters, 'parameters')
  for (const field of TENSOR_LISTS) {
    const tensors = body[field]
    if (!Array.isArray(tensors)) continue
    for (let i = 0; i < tensors.length; i++) {
      const tensor: unknown = tensors[i]
      if (isObject(tensor)) notObject((tensor as V2Tensor).parameters, field, i)
    }
  }
}

function notObject(parameters: unknown, field: string, index?: number): void {
  if (parameters === undefined || parameters === null || isObject(parameters)) return
  const where = index === undefined ? field : `${field}[${index}].parameters`
  throw new GatewayError('BAD_REQUEST', `${where} must be a JSON object of parameters, got ${describe(parameters)}`)
}

function readInputs(ens: EnsembleRuntime, inputs: unknown, binary: Buffer | undefined): TensorMap {
  if (!Array.isArray(inputs)) throw new GatewayError('BAD_INPUT', 'inputs must be an array of tensors')
  const out: Record<string, Tensor> = {}
  let offset = 0
  for (const item of inputs as V2Tensor[]) {
    if (item === null || typeof item !== 'object' || typeof item.name !== 'string') {
      throw new GatewayError('BAD_INPUT', 'each input must be an object with a string "name"')
    }
    const spec = inputSpec(ens, item.name)
    if (Object.hasOwn(out, spec.name)) throw new GatewayError('BAD_INPUT', `input "${spec.name}" is given twice`)
    const size = item.parameters?.binary_data_size
    if (size === undefined) {
      out[spec.name] = fromOipJson(item, spec, inputFailure)
      continue
    }
    if (!Number.isSafeInteger(size) || (size as number) < 0) throw new GatewayError('BAD_INPUT', `input "${spec.name}": binary_data_size must be a non-negative integer`)
    // The binary extension: an input whose data is binary has no "data" (answering from one of the two would drop the other).
    if (item.data !== undefined) throw new GatewayError('BAD_INPUT', `input "${spec.name}" has both "data" and binary_data_size: give its data in one or the other`)
    if (!binary || offset + (size as number) > binary.length) {
      throw new GatewayError('BAD_INPUT', `input "${spec.name}": binary_data_size ${String(size)} runs past the body's binary data`)
    }
    const shape = readOipHeader(spec, item.datatype, item.shape, inputFailure)
    const data = fromRaw(binary.subarray(offset, offset + (size as number)), spec.datatype, shape, inputFailure, spec.name)
    out[spec.name] = checkTensor({ datatype: spec.datatype, shape, data }, spec, inputFailure)
    offset += size as number
  }
  if (binary && offset !== binary.length) throw new GatewayError('BAD_INPUT', `${binary.length - offset} bytes of binary data belong to no input`)
  return out
}

/** Which outputs to return, and which of them as binary (per-output flag, else `binary_data_output`). */
function outputRequests(body: V2InferBody): { names: string[]; binary: (name: string) => boolean } {
  const all = body.parameters?.binary_data_output === true
  if (body.outputs === undefined || body.outputs === null) return { names: [], binary: () => all }
  if (!Array.isArray(body.outputs)) throw new GatewayError('BAD_INPUT', 'outputs must be an array of {"name": ...}')
  const flags = new Map<string, boolean>()
  for (const o of body.outputs as V2Tensor[]) {
    if (o === null || typeof o !== 'object' || typeof o.name !== 'string') throw new GatewayError('BAD_INPUT', 'each output must be an object with a string "name"')
    const flag = o.parameters?.binary_data
    flags.set(o.name, typeof flag === 'boolean' ? flag : all)
  }
  return { names: [...flags.keys()], binary: (name) => flags.get(name) ?? all }
}

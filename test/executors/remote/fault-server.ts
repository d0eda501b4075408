// Purpose-built misbehaving upstreams: a real node:http server speaking just enough of the
// V2 REST protocol to fail in one chosen way per model name, and a real gRPC server whose
// ModelInfer fails with a chosen status. Each records what it saw (requests, aborts, deadlines).
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import * as grpc from '@grpc/grpc-js'
import { INFERENCE_SERVICE, SELDON_SERVICE, service, TFSERVING_SERVICE } from '../../../src/proto/index.ts'

/** The YAML tensors of a wine classifier served by these servers: the models declare them (the servers give no metadata). */
export const WINE_IO = `inputs: [{ name: input, datatype: FP32, shape: [-1, 13] }], outputs: [{ name: label, datatype: INT64, shape: [-1] }, { name: probabilities, datatype: FP32, shape: [-1, 3] }]`

/** One model's annotation in a predict response, as these tests read it. */
export interface Annotation {
  name: string
  status: string
  used: boolean
  latency_ms: number
  error?: { code: string; message: string }
}

/** A well-formed V2 answer for `rows` wine rows (always class 1). */
export function goodAnswer(rows: number): object {
  return {
    outputs: [
      { name: 'label', datatype: 'INT64', shape: [rows], data: new Array(rows).fill(1) },
      { name: 'probabilities', datatype: 'FP32', shape: [rows, 3], data: new Array(rows).fill([0.1, 0.8, 0.1]).flat() },
    ],
  }
}

export interface FaultServer {
  readonly url: string
  /** Requests received per model (fault) name. */
  readonly hits: Map<string, number>
  /** The headers of the last request per model name. */
  readonly headers: Map<string, IncomingHttpHeaders>
  /** Requests the client aborted before an answer was sent. */
  aborted: number
  /** TCP connections accepted. */
  connections: number
  /** Resolves on the next request the client aborts. */
  nextAbort(): Promise<void>
  /** Resolves when the next request arrives, with its model (fault) name. */
  nextRequest(): Promise<string>
  /** Answers every request to `held` parked so far, and every later one at once. */
  releaseHeld(): void
  close(): Promise<void>
}

/**
 * Model names are faults: ok, hang, held (until releaseHeld()), delayed (50 ms), slow, error500, garbage, wrongshape,
 * flaky (hangs on odd hits), flaky503 (503 on odd hits), huge (a valid answer padded to 1 MiB), announced-huge (a 200 MiB content-length, one byte sent),
 * twice (a valid answer with a second output named label).
 * Metadata: `typed` has some (a string label), `mute` never answers its metadata call, the others answer 404.
 */
export async function startFaultServer(slowMs = 400): Promise<FaultServer> {
  const pending = new Set<ServerResponse>()
  const abortWaiters: (() => void)[] = []
  const requestWaiters: ((fault: string) => void)[] = []
  let held: (() => void)[] | undefined = []
  const state: FaultServer = {
    url: '',
    hits: new Map(),
    headers: new Map(),
    aborted: 0,
    connections: 0,
    nextAbort: () => new Promise((resolve) => abortWaiters.push(resolve)),
    nextRequest: () => new Promise((resolve) => requestWaiters.push(resolve)),
    releaseHeld: () => {
      const parked = held ?? []
      held = undefined
      for (const answer of parked) answer()
    },
    close: async () => {
      for (const res of pending) res.destroy()
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method === 'GET' && req.url === '/v2/models/mute') return // metadata never answered
    if (req.method === 'GET' && req.url === '/v2/models/typed') {
      // Metadata whose label is a string tensor.
      const metadata = { name: 'typed', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 13] }], outputs: [{ name: 'label', datatype: 'BYTES', shape: [-1] }] }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(metadata))
      return
    }
    const match = /^\/v2\/models\/([^/]+)\/infer$/.exec(req.url ?? '')
    if (req.method !== 'POST' || !match) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no metadata here"}')
      return
    }
    const fault = match[1]!
    const n = (state.hits.get(fault) ?? 0) + 1
    state.hits.set(fault, n)
    state.headers.set(fault, req.headers)
    pending.add(res)
    res.on('close', () => {
      pending.delete(res)
      if (!res.writableEnded) {
        state.aborted++
        for (const w of abortWaiters.splice(0)) w()
      }
    })
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    for (const w of requestWaiters.splice(0)) w(fault)
    const body = JSON.parse(Buffer.concat(chunks).toString()) as { inputs: { shape: number[] }[] }
    const rows = body.inputs[0]!.shape[0]!
    const json = (status: number, payload: string): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(payload)
    }
    switch (fault) {
      case 'ok':
        return json(200, JSON.stringify(goodAnswer(rows)))
      case 'hang':
        return // never answers
      case 'held': {
        const answer = (): void => json(200, JSON.stringify(goodAnswer(rows)))
        if (held) held.push(answer)
        else answer()
        return
      }
      case 'flaky':
        if (n % 2 === 1) return
        return json(200, JSON.stringify(goodAnswer(rows)))
      case 'flaky503':
        if (n % 2 === 1) return json(503, '{"error":"model is loading"}')
        return json(200, JSON.stringify(goodAnswer(rows)))
      case 'huge':
        return json(200, JSON.stringify({ ...goodAnswer(rows), padding: 'x'.repeat(1 << 20) }))
      case 'announced-huge': // headers announcing 200 MiB, one byte, then nothing
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(200 << 20) }).write('{')
        return
      case 'delayed':
        setTimeout(() => json(200, JSON.stringify(goodAnswer(rows))), 50).unref()
        return
      case 'slow':
        setTimeout(() => json(200, JSON.stringify(goodAnswer(rows))), slowMs).unref()
        return
      case 'error500':
        return json(500, '{"error":"model crashed: division by zero"}')
      case 'bad400':
        return json(400, '{"error":"Input X contains infinity"}')
      case 'garbage':
        return json(200, '{"outputs": [{"name": "label", "data": [1,')
      case 'twice': {
        // Two outputs named label, of different values: which copy would be meant?
        const answer = goodAnswer(rows) as { outputs: object[] }
        answer.outputs.push({ name: 'label', datatype: 'INT64', shape: [rows], data: new Array(rows).fill(2) })
        return json(200, JSON.stringify(answer))
      }
      case 'wrongshape': {
        const answer = goodAnswer(rows) as { outputs: { shape: number[]; data: number[] }[] }
        answer.outputs[1] = { ...answer.outputs[1]!, shape: [rows, 2], data: new Array(rows * 2).fill(0.5) }
        return json(200, JSON.stringify(answer))
      }
      default:
        return json(404, `{"error":"unknown model ${fault}"}`)
    }
  }
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy())
  })
  server.on('connection', () => state.connections++)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return Object.assign(state, { url: `http://127.0.0.1:${port}` })
}

export interface GrpcFaultServer {
  readonly url: string
  /** Deadline (ms from the moment the call arrived) of each ModelInfer call seen. */
  readonly deadlines: number[]
  /** The metadata of the last call per model name (`seldon` for Seldon v1 Predict). */
  readonly metadata: Map<string, Record<string, unknown>>
  /** Calls cancelled by the client. */
  cancelled: number
  /** Seldon v1 Predict calls received. */
  seldonCalls: number
  nextCancel(): Promise<void>
  close(): Promise<void>
}

/**
 * A V2 gRPC server: model `ok` answers, `hang` never does, `twice` answers with a second output named label, `huge` answers 1 MiB of
 * probabilities, `echo` answers its first input back as output `echo` (contents as they
 * came, so 64-bit integers stay decimal strings), `error` fails with INTERNAL, `unavailable`
 * with UNAVAILABLE, `invalid` with INVALID_ARGUMENT (an input it refuses). Metadata is
 * UNIMPLEMENTED (the YAML declares it), but for `mute`, whose metadata call is never answered; `ok` names version 7 in its answers. It also serves
 * TF Serving's Predict (naming version 9; `unversioned` an empty version), and Seldon v1 Predict: a fixed tensor, or
 * status FAILURE for the deployment `failing`. Its protos come from src/proto, with the
 * gateway's own loader options.
 */
export async function startGrpcFaultServer(options?: grpc.ServerOptions): Promise<GrpcFaultServer> {
  const server = new grpc.Server(options)
  const cancelWaiters: (() => void)[] = []
  const state = { url: '', deadlines: [] as number[], metadata: new Map<string, Record<string, unknown>>(), cancelled: 0, seldonCalls: 0, nextCancel: () => new Promise<void>((r) => cancelWaiters.push(r)), close: async () => {} }
  server.addService(service(INFERENCE_SERVICE), {
    ModelMetadata: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (call.request.name !== 'mute') cb({ code: grpc.status.UNIMPLEMENTED, details: 'no metadata' })
    },
    ModelInfer: (call: grpc.ServerUnaryCall<{ model_name: string; inputs: { datatype: string; shape: string[]; contents: unknown }[] }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const deadline = call.getDeadline()
      state.deadlines.push(deadline instanceof Date ? deadline.getTime() - Date.now() : Number(deadline) - Date.now())
      call.on('cancelled', () => {
        state.cancelled++
        for (const w of cancelWaiters.splice(0)) w()
      })
      const rows = Number(call.request.inputs[0]?.shape[0] ?? 1)
      state.metadata.set(call.request.model_name, call.metadata.getMap())
      switch (call.request.model_name) {
        case 'ok':
          return cb(null, {
            model_version: '7',
            outputs: [
              { name: 'label', datatype: 'INT64', shape: [rows], contents: { int64_contents: new Array(rows).fill(2) } },
              { name: 'probabilities', datatype: 'FP32', shape: [rows, 3], contents: { fp32_contents: new Array(rows).fill([0.1, 0.1, 0.8]).flat() } },
            ],
          })
        case 'hang':
          return
        case 'twice': // a second output named label, of other values
          return cb(null, {
            outputs: [
              { name: 'label', datatype: 'INT64', shape: [rows], contents: { int64_contents: new Array(rows).fill(2) } },
              { name: 'probabilities', datatype: 'FP32', shape: [rows, 3], contents: { fp32_contents: new Array(rows).fill([0.1, 0.1, 0.8]).flat() } },
              { name: 'label', datatype: 'INT64', shape: [rows], contents: { int64_contents: new Array(rows).fill(0) } },
            ],
          })
        case 'echo': {
          const { datatype, shape, contents } = call.request.inputs[0]!
          return cb(null, { outputs: [{ name: 'echo', datatype, shape, contents }] })
        }
        case 'huge':
          return cb(null, { outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1 << 18], contents: { fp32_contents: new Array<number>(1 << 18).fill(0.5) } }] })
        case 'unavailable':
          return cb({ code: grpc.status.UNAVAILABLE, details: 'model is loading' })
        case 'invalid':
          return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'Input X contains infinity' })
        default:
          return cb({ code: grpc.status.INTERNAL, details: 'model crashed: out of memory' })
      }
    },
  })
  // TF Serving's Predict: model `wine` answers probabilities, and names version 9 in its model_spec.
  server.addService(service(TFSERVING_SERVICE), {
    GetModelMetadata: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'no metadata' }),
    // Model `unversioned` answers with an empty version wrapper, as a server that leaves it unset may.
    Predict: (call: grpc.ServerUnaryCall<{ model_spec: { name: string } }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, {
        model_spec: { name: call.request.model_spec.name, version: call.request.model_spec.name === 'unversioned' ? {} : { value: '9' }, signature_name: 'serving_default' },
        outputs: { probabilities: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 1 }, { size: 3 }] }, float_val: [0.1, 0.8, 0.1] } },
      }),
  })
  server.addService(service(SELDON_SERVICE), {
    Predict: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      state.metadata.set('seldon', call.metadata.getMap())
      state.seldonCalls++
      // The deployment named `failing` answers as a crashed Seldon model does: status FAILURE.
      if (call.metadata.get('seldon')[0] === 'failing') return cb(null, { status: { code: 500, info: 'model crashed: out of memory', status: 'FAILURE' } })
      cb(null, { data: { names: ['a', 'b', 'c'], tensor: { shape: [1, 3], values: [0.2, 0.3, 0.5] } } })
    },
    SendFeedback: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'no feedback' }),
  })
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  )
  return Object.assign(state, {
    url: `grpc://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
  })
}

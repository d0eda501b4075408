// Admission and cancellation for REST predicts, in front of fastify. A predict refused
// after its body was read and parsed costs almost as much as one served, so under
// overload refusals would queue behind the work: the gateway's one admission slot is
// taken as the request arrives, before routing, and an excess predict gets a
// pre-serialized 503 without fastify seeing it. The same response 'close' that frees the
// slot cancels the predict when it comes before the answer was written: the client went
// away, so its models stop (remote calls aborted, queued jobs dropped).
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import { ErrorCatalogue } from '../../errors.ts'
import type { Gateway } from '../../gateway.ts'
import type { Run } from '../../starter/run.ts'

const RUN = Symbol('specserve.run')

type Tracked = ServerResponse & { [RUN]?: Run }

/** The routes admission counts: POST …/predict (native) and …/infer (Open Inference Protocol), a query string aside. */
function predictKind(req: IncomingMessage): 'native' | 'oip' | null {
  if (req.method !== 'POST') return null
  const url = req.url ?? ''
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  return path.endsWith('/predict') ? 'native' : path.endsWith('/infer') ? 'oip' : null
}

interface Refusal {
  readonly body: string
  readonly headers: Readonly<Record<string, string | number>>
}

const refusalOf = (body: string): Refusal => ({
  body,
  headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'retry-after': '1' },
})

/** The ensemble a predict URL names (`/v1/ensembles/{name}/predict`, `/v2/models/{name}/…`), for the refusal count. */
function ensembleOf(url: string): string {
  const parts = url.split('?', 1)[0]!.split('/')
  const at = parts.indexOf(parts[1] === 'v2' ? 'models' : 'ensembles')
  try {
    return decodeURIComponent(parts[at + 1] ?? '')
  } catch {
    return ''
  }
}

/** Ties a started predict to its response: a client that goes away before the answer cancels it. */
export function trackRun(reply: FastifyReply, run: Run): void {
  const res = reply.raw as Tracked
  res[RUN] = run
  // Gone already, while its body was read or parsed: 'close' has fired and will not again.
  if (res.closed && !res.writableFinished) run.cancel()
}

/** Wraps fastify's request handler with the gateway's admission for predicts. */
export function admitting(gateway: Gateway, handler: RequestListener): RequestListener {
  const { admission } = gateway
  // One listener for every predict response ('close' fires once, answered or aborted): no closure per request.
  function onClose(this: Tracked): void {
    admission.leave()
    const run = this[RUN]
    if (run !== undefined && !this.writableFinished) run.cancel()
  }
  // The 503s in each API's error shape, built again only when the limit (and so the message) changes.
  let forLimit = -1
  let native = refusalOf('')
  let oip = native
  function refusal(kind: 'native' | 'oip'): Refusal {
    if (admission.max !== forLimit) {
      forLimit = admission.max
      const message = admission.message()
      native = refusalOf(JSON.stringify({ code: 'OVERLOADED', message }))
      oip = refusalOf(JSON.stringify({ error: message, code: 'OVERLOADED' }))
    }
    return kind === 'native' ? native : oip
  }
  return (req, res) => {
    const kind = predictKind(req)
    if (kind) {
      if (!admission.tryEnter()) {
        gateway.ensembles.get(ensembleOf(req.url ?? ''))?.requestStats.count('OVERLOADED')
        const { body, headers } = refusal(kind)
        res.writeHead(ErrorCatalogue.OVERLOADED.http, headers)
        res.end(body)
        return
      }
      res.on('close', onClose)
    }
    handler(req, res)
  }
}

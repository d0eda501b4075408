// Admission and cancellation for REST predicts. The gateway's one admission counts predicts
// that run, not bodies in transit: a predict takes its slot in its route, once its body is
// in and parsed (admitRouted), so a client trickling a body holds no slot (slow bodies are
// bounded by server.request_timeout_ms and connection limits instead). A refusal after the
// body was read costs almost as much as serving, so under overload refusals would queue
// behind the work: while the slots are all held, a predict is refused as it arrives, before
// routing, with a pre-serialized 503 that fastify never sees. The response 'close' that frees
// the slot cancels the predict when it comes before the answer was written: the client went
// away, so its models stop (remote calls aborted, queued jobs dropped).
// The early check reads the raw URL; the router decodes it (`predic%74`, a `#` fragment),
// so a spelling it misses still meets the limit in the route, refused there if full.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import { ErrorCatalogue } from '../../errors.ts'
import type { Gateway } from '../../gateway.ts'
import type { Admission } from '../../starter/admission.ts'
import type { Run } from '../../starter/run.ts'

const RUN = Symbol('specserve.run')
/** The admission whose slot the response holds; set when the slot is taken, for onClose to free. */
const SLOT = Symbol('specserve.slot')

type Tracked = ServerResponse & { [RUN]?: Run; [SLOT]?: Admission }

/** One listener for every predict response ('close' fires once, answered or aborted): no closure per request. */
function onClose(this: Tracked): void {
  this[SLOT]!.leave()
  const run = this[RUN]
  if (run !== undefined && !this.writableFinished) run.cancel()
}

/** The routes the early check refuses: POST …/predict (native) and …/infer (Open Inference Protocol), a query string aside. */
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

/**
 * Called first by each predict route, once per request, its body in and parsed: the one place
 * a REST predict takes its slot, or is refused with OVERLOADED in the route's error shape when
 * the slots filled while its body arrived (or the early check missed its URL's spelling).
 */
export function admitRouted(gateway: Gateway, reply: FastifyReply, ensemble: string): void {
  const res = reply.raw as Tracked
  // Gone already: 'close' fired and will not again to free a slot, so none is taken; trackRun cancels the run at once.
  if (res.closed) return
  const { admission } = gateway
  if (!admission.tryEnter()) {
    gateway.ensembles.get(ensemble)?.requestStats.count('OVERLOADED')
    throw admission.overloaded()
  }
  res[SLOT] = admission
  res.on('close', onClose)
}

/** Ties a started predict to its response: a client that goes away before the answer cancels it. */
export function trackRun(reply: FastifyReply, run: Run): void {
  const res = reply.raw as Tracked
  res[RUN] = run
  // Gone already, while its body was read or parsed: 'close' has fired and will not again.
  if (res.closed && !res.writableFinished) run.cancel()
}

/** Wraps fastify's request handler with the early refusal of predicts while every slot is held. */
export function admitting(gateway: Gateway, handler: RequestListener): RequestListener {
  const { admission } = gateway
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
    // A check, not a slot: with a slot free the predict goes on, and takes one in its route.
    const kind = admission.full ? predictKind(req) : null
    if (kind) {
      gateway.ensembles.get(ensembleOf(req.url ?? ''))?.requestStats.count('OVERLOADED')
      const { body, headers } = refusal(kind)
      res.writeHead(ErrorCatalogue.OVERLOADED.http, headers)
      res.end(body)
      return
    }
    handler(req, res)
  }
}

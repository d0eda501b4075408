// Admission and cancellation for REST predicts, in front of fastify. A predict refused
// after its body was read and parsed costs almost as much as one served, so under overload
// refusals would queue behind the work: the gateway's one admission slot is taken as the
// request arrives, before routing, and an excess predict gets a pre-serialized 503 without
// fastify seeing it. A body still in transit keeps that slot only for one to two
// BODY_SLOT_MS sweeps (slow uploads, or a client trickling bodies on purpose, cannot hold the
// slots that running predicts need, on any frontend); its predict takes a slot again once
// the body is in, in its route (admitRouted), or is refused there. A predict whose caller's
// credentials take a network round trip to check (a new JWT waiting on the issuer's JWKS)
// gives its slot back meanwhile the same way (handBackSlot). The response 'close' that
// frees the slot cancels the predict when it comes before the answer was written: the client
// went away, so its models stop (remote calls aborted, queued jobs dropped).
// The early check reads the raw URL; the router decodes it (`predic%74`, a `#` fragment), so
// a spelling it misses still meets the limit in the route.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import { ErrorCatalogue } from '../../errors.ts'
import type { Gateway } from '../../gateway.ts'
import type { Admission } from '../../starter/admission.ts'
import type { Run } from '../../starter/run.ts'
import { pathOf } from '../../url-path.ts'

const RUN = Symbol('specserve.run')
/** The admission whose slot the response holds; set when the slot is taken, for onClose to free. */
const SLOT = Symbol('specserve.slot')

/** Set once the response's 'close' listener is on (it is added once, whichever way the slot was taken). */
const CLOSING = Symbol('specserve.closing')

type Tracked = ServerResponse & { [RUN]?: Run; [SLOT]?: Admission; [CLOSING]?: true }

/**
 * How long a predict whose body is still arriving keeps the slot it took on arrival: between
 * one and two of these. A body of a few KiB is in within a turn of the event loop; one that
 * takes longer gives its slot back and takes one again once it is in.
 */
export const BODY_SLOT_MS = 1000

/**
 * Slot holders whose body has not reached their route: two generations, one shared timer (no
 * timer or clock read per request). Each sweep frees the slots of the older generation.
 */
class BodiesInTransit {
  private young = new Set<Tracked>()
  private old = new Set<Tracked>()
  private timer: NodeJS.Timeout | undefined

  add(res: Tracked): void {
    this.young.add(res)
    this.timer ??= setInterval(() => this.sweep(), BODY_SLOT_MS).unref()
  }

  /** Its body is in (or it closed): it keeps its slot, if it still has one. */
  arrived(res: Tracked): void {
    if (!this.young.delete(res)) this.old.delete(res)
  }

  /** Frees the slots of the bodies in transit since before the last sweep; stops the timer when none is left. */
  sweep(): void {
    for (const res of this.old) release(res)
    this.old.clear()
    ;[this.old, this.young] = [this.young, this.old]
    if (this.old.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }
}

const inTransit = new BodiesInTransit()

/** Two sweeps at once, as after 2 × BODY_SLOT_MS: for tests, which await events rather than time. */
export function sweepBodiesInTransit(): void {
  inTransit.sweep()
  inTransit.sweep()
}

function release(res: Tracked): void {
  const slot = res[SLOT]
  if (slot === undefined) return
  res[SLOT] = undefined
  slot.leave()
}

/** One listener for every predict response ('close' fires once, answered or aborted): no closure per request. */
function onClose(this: Tracked): void {
  if (this[SLOT] !== undefined) inTransit.arrived(this)
  release(this)
  const run = this[RUN]
  if (run !== undefined && !this.writableFinished) run.cancel()
}

function holdSlot(res: Tracked, admission: Admission): void {
  res[SLOT] = admission
  if (res[CLOSING]) return
  res[CLOSING] = true
  res.on('close', onClose)
}

/** The routes admission counts early: POST …/predict (native) and …/infer (Open Inference Protocol), a query string aside. */
function predictKind(req: IncomingMessage): 'native' | 'oip' | null {
  if (req.method !== 'POST') return null
  const path = pathOf(req.url ?? '')
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
 * Gives back the slot a predict took on arrival while it waits for something other than its
 * own work: its caller's first JWT verification, which may wait on the issuer's JWKS fetch
 * (src/security/rest.ts). A caller not yet let through must not hold a slot real callers
 * need; once let through, its route takes one again (admitRouted) or refuses it there.
 * Only that path calls it (a cached token or an API key is checked synchronously).
 */
export function handBackSlot(res: ServerResponse): void {
  const tracked = res as Tracked
  if (tracked[SLOT] === undefined) return
  inTransit.arrived(tracked)
  release(tracked)
}

/**
 * Called first by each predict route, its body in and parsed: it keeps the slot taken on
 * arrival; one whose slot went while its body arrived (or whose URL the early check did not
 * recognize) takes a slot here, or is refused with OVERLOADED in the route's error shape.
 */
export function admitRouted(gateway: Gateway, reply: FastifyReply, ensemble: string): void {
  const res = reply.raw as Tracked
  if (res[SLOT] !== undefined) return inTransit.arrived(res)
  // Gone already: 'close' fired and will not again to free a slot, so none is taken; trackRun cancels the run at once.
  if (res.closed) return
  const { admission } = gateway
  if (!admission.tryEnter()) {
    gateway.ensembles.get(ensemble)?.requestStats.count('OVERLOADED')
    throw admission.overloaded()
  }
  holdSlot(res, admission)
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
      holdSlot(res as Tracked, admission)
      inTransit.add(res as Tracked)
    }
    handler(req, res)
  }
}

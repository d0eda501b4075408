// Admission and cancellation for REST predicts. A predict refused after its body was read
// and parsed costs almost as much as one served, so under overload the refusals would queue
// behind the work: the gateway's one admission slot is taken at the first byte, and an
// excess request gets its 503 before its body is read. The same response 'close' event
// that frees the slot cancels the predict when it comes before the answer was written:
// the client went away, so its models stop (remote calls aborted, queued jobs dropped).
import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { ErrorCatalogue } from '../../errors.ts'
import type { Gateway } from '../../gateway.ts'
import type { Run } from '../../starter/run.ts'

const RUN = Symbol('specserve.run')

type Tracked = ServerResponse & { [RUN]?: Run }

const isPredict = (method: string, url: string | undefined): boolean =>
  method === 'POST' && url !== undefined && (url.endsWith('/predict') || url.endsWith('/infer'))

/** Ties a started predict to its response: a client that goes away before the answer cancels it. */
export function trackRun(reply: FastifyReply, run: Run): void {
  const res = reply.raw as Tracked
  res[RUN] = run
  // Gone already, while its body was read or parsed: 'close' has fired and will not again.
  if (res.closed && !res.writableFinished) run.cancel()
}

export function registerAdmission(app: FastifyInstance, gateway: Gateway): void {
  const { admission } = gateway
  // One listener for every predict response ('close' fires once, answered or aborted): no closure per request.
  function onClose(this: Tracked): void {
    admission.leave()
    const run = this[RUN]
    if (run !== undefined && !this.writableFinished) run.cancel()
  }
  app.addHook('onRequest', (request, reply, done) => {
    if (!isPredict(request.method, request.routeOptions.url)) return done()
    if (!admission.tryEnter()) {
      gateway.ensembles.get((request.params as { name?: string }).name ?? '')?.requestStats.count('OVERLOADED')
      void reply.status(ErrorCatalogue.OVERLOADED.http).header('content-type', 'application/json').send(admission.refusalBody())
      return
    }
    reply.raw.on('close', onClose)
    done()
  })
}

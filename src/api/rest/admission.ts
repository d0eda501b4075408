// Sheds load at the door. A predict refused after its body was read and parsed costs
// almost as much as one served, so under overload the refusals queue behind the work.
// Counting admitted predicts from their first byte to their answer lets an excess request
// get its 503 before its body is read.
import type { FastifyInstance } from 'fastify'
import { ErrorCatalogue } from '../../errors.ts'

const isPredict = (method: string, url: string | undefined): boolean =>
  method === 'POST' && url !== undefined && (url.endsWith('/predict') || url.endsWith('/infer'))

/** `onShed(ensemble)` counts a refusal where the request metrics expect it. */
export function registerAdmission(app: FastifyInstance, maxInFlight: number, onShed: (ensemble: string) => void): void {
  let admitted = 0
  const release = (): void => {
    admitted--
  }
  const body = JSON.stringify({ code: 'OVERLOADED', message: `more than ${maxInFlight} predicts in flight (server.max_in_flight)` })
  app.addHook('onRequest', (request, reply, done) => {
    if (!isPredict(request.method, request.routeOptions.url)) return done()
    if (admitted >= maxInFlight) {
      onShed((request.params as { name?: string }).name ?? '')
      void reply.status(ErrorCatalogue.OVERLOADED.http).header('content-type', 'application/json').send(body)
      return
    }
    admitted++
    // 'close' fires once per response, answered or aborted: the count cannot leak.
    reply.raw.once('close', release)
    done()
  })
}

// Requests refused for who is calling, counted per gateway by code and API for /metrics
// (specserve_auth_refusals_total). Six numbers incremented in place: a refused request
// costs one branch on its code and one addition, and the points are only built when
// /metrics is scraped. Shared by the REST and gRPC listeners; on an open gateway only the
// SPECSERVE_ADMIN_TOKEN checks count (and the six stay at 0 otherwise).
import { GatewayError } from '../errors.ts'
import type { Gateway } from '../gateway.ts'
import type { MetricsSink } from '../types.ts'

export const REFUSAL_CODES = ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'RATE_LIMITED'] as const
export type RefusalCode = (typeof REFUSAL_CODES)[number]
export const REFUSAL_APIS = ['rest', 'grpc'] as const
export type RefusalApi = (typeof REFUSAL_APIS)[number]

const indexOf = (code: string): number => (code === 'UNAUTHENTICATED' ? 0 : code === 'PERMISSION_DENIED' ? 1 : code === 'RATE_LIMITED' ? 2 : -1)

export class Refusals {
  private readonly rest = [0, 0, 0]
  private readonly grpc = [0, 0, 0]

  /** Counts `err` when it is one of the three refusals; anything else is not the guard's. */
  count(api: RefusalApi, err: unknown): void {
    if (err instanceof GatewayError) this.countCode(api, err.code)
  }

  countCode(api: RefusalApi, code: string): void {
    const i = indexOf(code)
    if (i >= 0) (api === 'rest' ? this.rest : this.grpc)[i]!++
  }

  /** Every code and API, zeros included: a rate() of a series that appears late misses its first refusals. */
  collect(out: MetricsSink): void {
    const points: (readonly [{ code: RefusalCode; api: RefusalApi }, number])[] = []
    for (const api of REFUSAL_APIS) {
      const counts = api === 'rest' ? this.rest : this.grpc
      REFUSAL_CODES.forEach((code, i) => points.push([{ code, api }, counts[i]!]))
    }
    out.counter('specserve_auth_refusals', 'Requests (and PredictStream messages) refused for their caller, by code (UNAUTHENTICATED, PERMISSION_DENIED, RATE_LIMITED) and API (rest, grpc).', points)
  }
}

const byGateway = new WeakMap<Gateway, Refusals>()

/** The gateway's refusal counts (made on first use). */
export function refusalsOf(gateway: Gateway): Refusals {
  let refusals = byGateway.get(gateway)
  if (!refusals) byGateway.set(gateway, (refusals = new Refusals()))
  return refusals
}

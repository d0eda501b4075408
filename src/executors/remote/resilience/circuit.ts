// The circuit breaker as a layer: refuses at once while the upstream's circuit is open (the
// model is annotated `skipped` CIRCUIT_OPEN, costing no budget), and tells the breaker how
// each call ended. A call cut off at the deadline counts against the upstream only if it
// was given a fair chance (at least FAIR_CHANCE_MIN_MS and the upstream's usual latency):
// otherwise one client's tiny budget_ms could open the circuit for everyone. A call the
// collector cancelled (it decided), or an input the upstream refused, is no verdict at all.
import { ModelError, ModelErrorCode } from '../../../errors.ts'
import { UpstreamError } from '../errors.ts'
import { Admission, type CircuitBreaker } from './breaker.ts'
import type { Call, LatencyEstimate } from './call.ts'

export const FAIR_CHANCE_MIN_MS = 5

export function withBreaker<Req, Res>(call: Call<Req, Res>, breaker: CircuitBreaker, latency: LatencyEstimate): Call<Req, Res> {
  return async (req, signal, deadline) => {
    const admission = breaker.allow()
    if (admission === Admission.refused) {
      const wait = Math.ceil(breaker.retryInMs())
      throw new ModelError(ModelErrorCode.CIRCUIT_OPEN, `circuit open after ${breaker.failuresToOpen} consecutive failures; next probe in ${wait} ms`, true)
    }
    const probe = admission === Admission.probe
    const started = performance.now()
    try {
      const res = await call(req, signal, deadline)
      breaker.success(probe)
      latency.observe(performance.now() - started)
      return res
    } catch (err) {
      if (signal.aborted) {
        // "Given" is the budget at the start of the call, not how late the deadline timer fired.
        const given = deadline - started
        if (performance.now() >= deadline - 1 && given >= Math.max(FAIR_CHANCE_MIN_MS, latency.ms)) breaker.failure(probe)
        else breaker.release(probe)
        throw signal.reason
      }
      // An input the upstream refused (HTTP 400, gRPC INVALID_ARGUMENT…) is the client's, not
      // the upstream's: no verdict, or one client could open the circuit for everyone.
      if (err instanceof UpstreamError && err.causedByInput) breaker.release(probe)
      else breaker.failure(probe)
      throw err
    }
  }
}

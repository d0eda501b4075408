// The circuit breaker as a layer: refuses at once while the upstream's circuit is open (the
// model is annotated `skipped` CIRCUIT_OPEN, costing no budget), and tells the breaker how
// each call ended. A call cut off at the deadline counts against the upstream only if it
// was given a fair chance (at least FAIR_CHANCE_MIN_MS and the upstream's usual latency):
// otherwise one client's tiny budget_ms could open the circuit for everyone. A call the
// collector cancelled (it decided), or an input the upstream refused, is no verdict at all.
// The half-open probe is the exception: a cancel (the collector decided, the client left) stops
// the run waiting for it, not the probe, which goes on to its deadline. Else a member slower than the others (the third
// voter, a preferred model behind its fallback) would have every probe cancelled once the run
// decides, and stay half-open for good: one call at a time, the rest skipped.
import { orAbort } from '../../../at-most.ts'
import { ModelError, ModelErrorCode } from '../../../errors.ts'
import { MAX_TIMER_MS } from '../../../timer-step.ts'
import { UpstreamError } from '../errors.ts'
import { Admission, type CircuitBreaker } from './breaker.ts'
import type { Call, LatencyEstimate } from './call.ts'

export const FAIR_CHANCE_MIN_MS = 5

export function withBreaker<Req, Res>(call: Call<Req, Res>, breaker: CircuitBreaker, latency: LatencyEstimate): Call<Req, Res> {
  const verdict = async (req: Req, signal: AbortSignal, deadline: number, probe: boolean): Promise<Res> => {
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
  return (req, signal, deadline) => {
    const admission = breaker.allow()
    if (admission === Admission.refused) {
      const wait = Math.ceil(breaker.retryInMs())
      return Promise.reject(new ModelError(ModelErrorCode.CIRCUIT_OPEN, `circuit open after ${breaker.failuresToOpen} consecutive failures; next probe in ${wait} ms`, true))
    }
    if (admission === Admission.call || signal.aborted) return verdict(req, signal, deadline, admission === Admission.probe)
    return probeToDeadline(verdict, req, signal, deadline)
  }
}

type Verdict<Req, Res> = (req: Req, signal: AbortSignal, deadline: number, probe: true) => Promise<Res>

/** Runs the probe on a signal of its own, which the deadline reaches and a cancel does not; the caller waits for it only until its own signal fires. */
function probeToDeadline<Req, Res>(verdict: Verdict<Req, Res>, req: Req, signal: AbortSignal, deadline: number): Promise<Res> {
  const own = new AbortController()
  let timer: NodeJS.Timeout | undefined
  // At the deadline the caller's signal carries the run's reason (reported `timeout`). A caller
  // that left before (the collector decided) leaves the probe a timer of its own to the deadline.
  const callerAborted = (): void => {
    const left = deadline - performance.now()
    if (left <= 1) return own.abort(signal.reason)
    timer = setTimeout(() => own.abort(new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, 'the circuit probe had no answer by the deadline', true)), Math.min(left, MAX_TIMER_MS))
    timer.unref() // a stop does not wait for a probe nobody waits for
  }
  signal.addEventListener('abort', callerAborted, { once: true })
  const probed = verdict(req, own.signal, deadline, true).finally(() => {
    clearTimeout(timer)
    signal.removeEventListener('abort', callerAborted)
  })
  return orAbort(probed, signal)
}

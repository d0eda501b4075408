// The circuit breaker as a layer: refuses at once while the upstream's circuit is open (the
// model is annotated `skipped` CIRCUIT_OPEN, costing no budget), and tells the breaker how
// each call ended. A call cut off at the deadline counts against the upstream only if it
// was given a fair chance (fairChanceMs: twice the upstream's usual latency, at least
// FAIR_CHANCE_MIN_MS; circuit_breaker.first_calls_ms until a call has answered): otherwise one client's tiny budget_ms could open the circuit for
// everyone. A call the collector cancelled, or an input the upstream refused, is no verdict.
// Two calls are judged on a fair chance whatever their caller's budget: the half-open probe,
// and, while no call has answered yet (so no usual latency is known: after a load, or an
// upstream that never answered), one call at a time, the learner. Each runs on a signal of
// its own to the later of its caller's deadline and its fair chance: a cancel (the collector
// decided, the client left) or a tiny budget stops the run waiting for it, not the call (a
// learner whose caller left early stops at its fair chance, with no verdict: LEFT_EARLY).
// Else a member slower than the others would have every probe cancelled once the run decides
// and stay half-open for good, and a client sending tiny budgets could cut every probe short
// and keep a healthy upstream's circuit open.
import { orAbort } from '../../../at-most.ts'
import { ModelError, ModelErrorCode } from '../../../errors.ts'
import { MAX_TIMER_MS } from '../../../timer-step.ts'
import { UpstreamError } from '../errors.ts'
import { Admission, type CircuitBreaker } from './breaker.ts'
import type { Call, LatencyEstimate } from './call.ts'

export const FAIR_CHANCE_MIN_MS = 5

/** How long a call must have had for its cut-off to count against the upstream (circuit_breaker.first_calls_ms while no call has answered). */
const fairChanceMs = (latency: LatencyEstimate, breaker: CircuitBreaker): number => (latency.ms === 0 ? breaker.firstCallsMs : Math.max(FAIR_CHANCE_MIN_MS, 2 * latency.ms))

export function withBreaker<Req, Res>(call: Call<Req, Res>, breaker: CircuitBreaker, latency: LatencyEstimate): Call<Req, Res> {
  let learning = false
  /** `judged`: a call run to its fair chance (the probe, the learner), whose cut-off always counts. */
  const verdict = async (req: Req, signal: AbortSignal, deadline: number, probe: boolean, judged: boolean): Promise<Res> => {
    const started = performance.now()
    try {
      const res = await call(req, signal, deadline)
      breaker.success(probe)
      latency.observe(performance.now() - started)
      return res
    } catch (err) {
      if (signal.aborted) {
        // A judged call's own signal ends it only once its fair chance is over. "Given" is the
        // budget at the start of the call, not how late the deadline timer fired.
        const given = deadline - started
        if (signal.reason === LEFT_EARLY) breaker.release(probe)
        else if (judged || (performance.now() >= deadline - 1 && given >= fairChanceMs(latency, breaker))) breaker.failure(probe)
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
      return Promise.reject(new ModelError(ModelErrorCode.CIRCUIT_OPEN, `circuit open (${breaker.openedBecause}); next probe in ${wait} ms`, true))
    }
    const probe = admission === Admission.probe
    if (signal.aborted) return verdict(req, signal, deadline, probe, false)
    if (probe) return onFairChance((own, until) => verdict(req, own, until, true, true), signal, deadline, fairChanceMs(latency, breaker), true)
    if (latency.ms > 0 || learning) return verdict(req, signal, deadline, false, false)
    learning = true
    const learner = (own: AbortSignal, until: number): Promise<Res> => verdict(req, own, until, false, true).finally(() => (learning = false))
    return onFairChance(learner, signal, deadline, breaker.firstCallsMs, false)
  }
}

/**
 * A learner whose caller left before its deadline (the collector decided, the client went
 * away) stops at its fair chance with no verdict: its caller would have given it longer, so
 * an answer still missing says nothing of the upstream. Else a member slower than
 * `first_calls_ms` that usually loses would fail every learner and open its circuit after
 * each load; nor does a call nobody waits for hold a connection to a long deadline.
 */
const LEFT_EARLY = new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, 'its caller left before its deadline: stopped at its fair chance, no verdict', true)
const UNANSWERED = new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, 'no answer within the fair chance the circuit breaker judges by', true)

/**
 * Runs a judged call (`run`, on a signal of its own and its deadline) to the later of the
 * caller's deadline and its fair chance; the caller waits for it only until its own signal
 * fires. A probe runs on after its caller leaves (a probe of a member slower than the
 * decision still gets its verdict); a learner, see LEFT_EARLY.
 */
function onFairChance<Res>(run: (own: AbortSignal, until: number) => Promise<Res>, signal: AbortSignal, deadline: number, fairMs: number, probe: boolean): Promise<Res> {
  const own = new AbortController()
  const fairUntil = performance.now() + fairMs
  const until = Math.max(deadline, fairUntil)
  let timer: NodeJS.Timeout | undefined
  // At the caller's deadline its signal carries the run's reason (reported `timeout`): when that
  // is the call's fair chance too, the call ends with it. Otherwise a timer of its own ends it.
  const callerAborted = (): void => {
    const now = performance.now()
    const leftEarly = !probe && now < deadline - 1
    const left = (leftEarly ? fairUntil : until) - now
    if (left <= 1) return own.abort(leftEarly ? LEFT_EARLY : signal.reason)
    timer = setTimeout(() => own.abort(leftEarly ? LEFT_EARLY : UNANSWERED), Math.min(left, MAX_TIMER_MS))
    timer.unref() // a stop does not wait for a judged call nobody waits for
  }
  signal.addEventListener('abort', callerAborted, { once: true })
  const judging = run(own.signal, until).finally(() => {
    clearTimeout(timer)
    signal.removeEventListener('abort', callerAborted)
  })
  return orAbort(judging, signal)
}

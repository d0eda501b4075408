// Per-attempt timeout (`timeout_ms`): an attempt that has not answered by then is aborted
// with UPSTREAM_UNAVAILABLE, whatever budget is left. The error is retryable: with
// `retries`, the next attempt (with a timeout_ms of its own) uses what is left of the budget,
// on the retry layer's usual terms (enough budget left, a retry-budget token).
// When the request's deadline comes first there is no timer of our own: the caller's signal
// fires then, and the model is reported `timeout`, not failed.
import { ModelErrorCode } from '../../../errors.ts'
import { UpstreamError } from '../errors.ts'
import type { Call } from './call.ts'

export function withTimeout<Req, Res>(call: Call<Req, Res>, timeoutMs: number): Call<Req, Res> {
  if (!Number.isFinite(timeoutMs)) return call
  return async (req, signal, deadline) => {
    if (signal.aborted) throw signal.reason
    const now = performance.now()
    if (now + timeoutMs >= deadline) return call(req, signal, deadline)
    const capped = new AbortController()
    const onAbort = (): void => capped.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    const timer = setTimeout(() => capped.abort(new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, `no answer within timeout_ms ${timeoutMs}`, true)), timeoutMs)
    try {
      return await call(req, capped.signal, now + timeoutMs)
    } catch (err) {
      throw capped.signal.aborted ? capped.signal.reason : err
    } finally {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
    }
  }
}

// Hedged requests (`hedge_after_ms`, as in "The Tail at Scale"): when the first attempt has
// not answered after `afterMs`, a second identical request goes to the same upstream; the
// first answer wins and the other attempt is aborted. The second request is paid for from
// the retry budget, so hedging can never add more load than the budget allows. (Not to be
// confused with deadline-fallback's `fallback_after_ms`, which delays the *other* models.)
import { ModelError, ModelErrorCode } from '../../../errors.ts'
import type { Call } from './call.ts'
import type { RetryBudget } from './retry-budget.ts'

/** Reason a hedge's losing attempt is aborted with. */
const HEDGE_LOST = new ModelError(ModelErrorCode.MODEL_FAILED, 'another attempt answered first')

export function withHedge<Req, Res>(call: Call<Req, Res>, afterMs: number, budget: RetryBudget): Call<Req, Res> {
  if (!(afterMs > 0)) return call
  return (req, signal, deadline) => {
    // Already cancelled: no attempt (a listener added now would never fire, and the attempts would run uncancelled).
    if (signal.aborted) return Promise.reject(signal.reason as Error)
    return new Promise<Res>((resolve, reject) => {
      const group = new AbortController()
      const onAbort = (): void => group.abort(signal.reason)
      signal.addEventListener('abort', onAbort, { once: true })
      let running = 0
      let settled = false
      let firstError: unknown
      const settle = (): void => {
        settled = true
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
      }
      const launch = (): void => {
        running++
        call(req, group.signal, deadline).then(
          (out) => {
            if (settled) return
            settle()
            group.abort(HEDGE_LOST) // the other attempt, if any, is cancelled
            resolve(out)
          },
          (err: unknown) => {
            running--
            firstError ??= err
            if (settled || running > 0) return
            settle()
            reject(firstError as Error)
          },
        )
      }
      const timer = setTimeout(() => {
        if (!settled && deadline - performance.now() > 0 && budget.withdraw()) launch()
      }, afterMs)
      launch()
    })
  }
}

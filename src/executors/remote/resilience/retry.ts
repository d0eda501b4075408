// Budget-aware retries: a failure that another attempt may fix (connection refused or
// reset, 502/503/504, gRPC UNAVAILABLE, an attempt cut off by timeout_ms) is tried again, at most `retries` times, only while
// more of the budget is left than the upstream usually takes, and only while the retry
// budget has a token (so retries never add more than its ratio to the upstream's load).
import { UpstreamError } from '../errors.ts'
import type { Call, LatencyEstimate } from './call.ts'
import type { RetryBudget } from './retry-budget.ts'

export interface RetryOptions {
  readonly retries: number
  readonly budget: RetryBudget
  readonly latency: LatencyEstimate
}

const isRetryable = (err: unknown): boolean => err instanceof UpstreamError && err.retryable

export function withRetry<Req, Res>(call: Call<Req, Res>, options: RetryOptions): Call<Req, Res> {
  const { retries, budget, latency } = options
  return async (req, signal, deadline) => {
    budget.deposit()
    for (let attempt = 0; ; attempt++) {
      try {
        return await call(req, signal, deadline)
      } catch (err) {
        if (signal.aborted) throw signal.reason
        const left = deadline - performance.now()
        if (attempt < retries && isRetryable(err) && left > latency.ms && budget.withdraw()) continue
        throw err
      }
    }
  }
}

// A scripted upstream call for the resilience layers: each attempt answers, fails or hangs
// after a set time on the fake clock, and records the signal and deadline it was given.
import { ModelErrorCode } from '../../../../src/errors.ts'
import { UpstreamError } from '../../../../src/executors/remote/errors.ts'
import type { Call } from '../../../../src/executors/remote/resilience/call.ts'

export type Step = { readonly after: number } & ({ readonly answer: string } | { readonly fail: 'retryable' | 'final' } | { readonly hang: true })

export interface Attempt {
  readonly at: number
  readonly signal: AbortSignal
  readonly deadline: number
}

/** Attempt n follows steps[n] (the last step repeats). */
export function upstream(steps: readonly Step[]): { call: Call<string, string>; attempts: Attempt[] } {
  const attempts: Attempt[] = []
  const call: Call<string, string> = (_req, signal, deadline) => {
    const step = steps[Math.min(attempts.length, steps.length - 1)]!
    attempts.push({ at: performance.now(), signal, deadline })
    return new Promise((resolve, reject) => {
      const timer = 'hang' in step ? undefined : setTimeout(() => ('answer' in step ? resolve(step.answer) : reject(new UpstreamError(ModelErrorCode.UPSTREAM_UNAVAILABLE, `failed (${step.fail})`, step.fail === 'retryable'))), step.after)
      signal.addEventListener('abort', () => {
        clearTimeout(timer)
        reject(signal.reason as Error)
      }, { once: true })
    })
  }
  return { call, attempts }
}

/** Settles `promise` into a value or an error code, without an unhandled rejection. */
export function outcome(promise: Promise<string>): { value?: string; code?: string; done: boolean } {
  const state: { value?: string; code?: string; done: boolean } = { done: false }
  promise.then(
    (v) => Object.assign(state, { value: v, done: true }),
    (e: { code?: string }) => Object.assign(state, { code: e.code ?? 'ABORTED', done: true }),
  )
  return state
}

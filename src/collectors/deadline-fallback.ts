// deadline-fallback: models in preference order; answer with the most-preferred model that
// can still answer, as soon as it has. A less-preferred success is held (not returned)
// while a more-preferred model may still succeed; at the deadline the best held one wins.
import Type from 'typebox'
import type { Static } from 'typebox'
import type { TensorMap } from '../tensor/index.ts'
import type { Decision, Outcome } from '../types.ts'
import { ALL_FAILED, DEADLINE } from './outputs.ts'
import type { Collector, Strategy, StrategyFactory } from './types.ts'

export const DeadlineFallbackSchema = Type.Object(
  {
    /** Start fallbacks (index >= 1) this many ms after the preferred model instead of at once. */
    fallback_after_ms: Type.Optional(Type.Number({ minimum: 0 })),
    /** The old name of fallback_after_ms (a remote model's hedge_after_ms is another thing). */
    hedge_after_ms: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
)

export interface DeadlineFallbackOptions {
  /** Delay before the fallbacks start; undefined: all models start at once. */
  readonly fallbackAfterMs: number | undefined
}

// Per-model state; a Uint8Array keeps the per-request footprint to one small allocation.
const PENDING = 0
const OK = 1
const FAILED = 2

class DeadlineFallbackCollector implements Collector {
  private readonly n: number
  private readonly state: Uint8Array
  private readonly outputs: (TensorMap | undefined)[]
  /** Lowest index that has not failed: the model we are waiting for. */
  private preferred = 0
  private failed = 0
  private done = false

  constructor(n: number) {
    this.n = n
    this.state = new Uint8Array(n)
    this.outputs = new Array<TensorMap | undefined>(n)
  }

  onOutcome(outcome: Outcome): Decision | undefined {
    const i = outcome.index
    // A decided collector, an unknown index or a repeat is ignored rather than thrown on:
    // the starter may race a late outcome against the decision.
    if (this.done || i < 0 || i >= this.n || this.state[i] !== PENDING) return undefined
    if (outcome.status === 'ok') {
      this.state[i] = OK
      this.outputs[i] = outcome.outputs
    } else {
      this.state[i] = FAILED
      if (++this.failed === this.n) return this.decide(ALL_FAILED)
      while (this.state[this.preferred] === FAILED) this.preferred++
    }
    const p = this.preferred
    if (this.state[p] !== OK) return undefined
    return this.decide(answer(p, p === 0 ? 'preferred-finished' : 'fallback-after-error', this.outputs[p]))
  }

  onDeadline(): Decision {
    this.done = true
    // Every model below the first success is failed or late; the first success wins.
    for (let i = this.preferred; i < this.n; i++) {
      if (this.state[i] === OK) return answer(i, 'fallback-at-deadline', this.outputs[i])
    }
    return this.failed === this.n ? ALL_FAILED : DEADLINE
  }

  private decide(decision: Decision): Decision {
    this.done = true
    return decision
  }
}

function answer(chosen: number, reason: string, outputs: TensorMap | undefined): Decision {
  return { kind: 'answer', chosen, reason, outputs: outputs ?? null, votes: null }
}

export const deadlineFallback: StrategyFactory<DeadlineFallbackOptions, Static<typeof DeadlineFallbackSchema>> = {
  name: 'deadline-fallback',
  options: DeadlineFallbackSchema,
  parse(raw, ctx) {
    if (raw.hedge_after_ms !== undefined) {
      if (raw.fallback_after_ms !== undefined) ctx.problem('hedge_after_ms', 'give fallback_after_ms only (hedge_after_ms is its old name)')
      else ctx.warn('hedge_after_ms', 'renamed fallback_after_ms; the old name still works for now')
    }
    const fallbackAfterMs = raw.fallback_after_ms ?? raw.hedge_after_ms
    // At or past budget_ms.max every request is over before the fallbacks would start.
    if (fallbackAfterMs !== undefined && ctx.budgetMs) {
      const key = raw.fallback_after_ms === undefined ? 'hedge_after_ms' : 'fallback_after_ms'
      const { default: byDefault, max } = ctx.budgetMs
      if (fallbackAfterMs >= max) ctx.problem(key, `${key} ${fallbackAfterMs} is not below budget_ms.max ${max}: the fallbacks would never start`)
      // Only a warning: a request that sends a larger budget can still reach the fallbacks.
      else if (fallbackAfterMs >= byDefault) {
        ctx.warn(key, `${key} ${fallbackAfterMs} is not below budget_ms.default ${byDefault}: a request on the default budget ends before the fallbacks start (only requests sending a budget over ${fallbackAfterMs} ms can use them)`)
      }
    }
    return { fallbackAfterMs }
  },
  create(options, ensemble): Strategy {
    const n = ensemble.models.length
    const delay = options.fallbackAfterMs
    const startDelaysMs = delay === undefined ? undefined : Object.freeze(Array.from({ length: n }, (_, i) => (i === 0 ? 0 : delay)))
    return {
      name: 'deadline-fallback',
      ...(startDelaysMs === undefined ? {} : { startDelaysMs }),
      collector: () => new DeadlineFallbackCollector(n),
    }
  },
}

// deadline-fallback: models in preference order; answer with the most-preferred model that
// can still answer, as soon as it has. A less-preferred success is held (not returned)
// while a more-preferred model may still succeed; at the deadline the best held one wins.
import Type from 'typebox'
import type { Static } from 'typebox'
import type { Decision, Outcome, TensorMap } from '../types.ts'
import { ALL_FAILED, DEADLINE } from './outputs.ts'
import type { Collector, EnsembleShape, Strategy, StrategyFactory } from './types.ts'

export const DeadlineFallbackOptions = Type.Object(
  {
    /** Start fallbacks (index >= 1) this many ms after the preferred model instead of at once. */
    hedge_after_ms: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
)
export type DeadlineFallbackOptions = Static<typeof DeadlineFallbackOptions>

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

export const deadlineFallback: StrategyFactory<DeadlineFallbackOptions> = {
  name: 'deadline-fallback',
  options: DeadlineFallbackOptions,
  create(options: DeadlineFallbackOptions, ensemble: EnsembleShape): Strategy {
    const n = ensemble.models.length
    const hedge = options.hedge_after_ms
    const startDelaysMs = hedge === undefined ? undefined : Object.freeze(Array.from({ length: n }, (_, i) => (i === 0 ? 0 : hedge)))
    return {
      name: 'deadline-fallback',
      ...(startDelaysMs === undefined ? {} : { startDelaysMs }),
      collector: () => new DeadlineFallbackCollector(n),
    }
  },
}
